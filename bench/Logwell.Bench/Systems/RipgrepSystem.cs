using System.Diagnostics;
using System.Globalization;

namespace Logwell.Bench.Systems;

/// <summary>ripgrep over the raw corpus: the limit of scanning without any index. Nothing to ingest.</summary>
internal sealed class RipgrepSystem(Corpus corpus) : IBenchSystem
{
    public static bool IsInstalled(out string why)
    {
        why = "rg is not installed (bench/setup.sh installs ripgrep)";
        return File.Exists("/usr/bin/rg") || File.Exists("/usr/local/bin/rg");
    }

    public Task IngestAsync(Corpus corpus) => Task.CompletedTask;

    public async Task<long?> QueryAsync(string name, QueryParameters p)
    {
        string[]? args = name switch
        {
            "needle" => ["-c", "-F", p.Needle],
            "phrase" => ["-c", "-i", "-F", p.PhraseText],
            "and_terms" => ["-c", "-i", "-P", $"^(?=.*{p.AndTerms[0]})(?=.*{p.AndTerms[1]})"],
            "field_eq" => ["-c", "-F", $"\"level\":\"{p.Level}\""],
            "wildcard" => ["-c", "-F", $"\"host\":\"{p.HostPrefix}"],
            _ => null,
        };
        if (args is null)
        {
            return null;
        }
        var info = new ProcessStartInfo("rg") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args.Append(corpus.Path))
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode > 1)
        {
            throw new InvalidOperationException($"rg failed: {error}");
        }
        return output.Trim().Length == 0 ? 0 : long.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
