using System.Diagnostics;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>The <c>logwell</c> client verbs, run as processes against a running node.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class CliTests
{
    internal static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(LogwellNode node, string? stdin, params string[] args) =>
        RunInAsync(Environment.CurrentDirectory, node, stdin, args);

    internal static Task<(int ExitCode, string Stdout, string Stderr)> RunInAsync(string workingDirectory, LogwellNode node, string? stdin, params string[] args) =>
        RunWithAsync(workingDirectory, node, stdin, null, args);

    /// <param name="env">Variables to set for the process (a HOME of its own, say).</param>
    internal static async Task<(int ExitCode, string Stdout, string Stderr)> RunWithAsync(string workingDirectory, LogwellNode node, string? stdin, IDictionary<string, string>? env, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(LogwellNode.LogwellDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["LOGWELL_URL"] = node.BaseAddress.ToString();
        foreach (var (name, value) in env ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info)!;
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task TailPrintsMatchingEventsUntilStopped()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { LogwellNode.LogwellDll, "tail", "level:ERROR" })
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["LOGWELL_URL"] = node.BaseAddress.ToString();
        using var process = Process.Start(info)!;
        try
        {
            // The tail may not be subscribed yet when the first events arrive: send until one shows.
            var line = process.StandardOutput.ReadLineAsync();
            for (var i = 0; !line.IsCompleted && i < 150; i++)
            {
                await HttpApiTests.IngestAsync(node.Http, "default", $"{{\"message\":\"disk full {i}\",\"level\":\"ERROR\",\"host\":\"db-1\"}}\n{{\"message\":\"fine\",\"level\":\"INFO\"}}\n");
                await Task.WhenAny(line, Task.Delay(200));
            }
            Assert.True(line.IsCompleted, "tail printed nothing");
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\S+Z disk full \d+ level=ERROR host=db-1$", await line);
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task IndexSetsIngestAndSearchFromTheCommandLine()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, "Production");

        var (code, stdout, stderr) = await RunAsync(node, null, "indexsets", "create", "web", "--retention-days", "14");
        Assert.True(code == 0, stderr);
        Assert.Contains("created index set web (retention 14 days)", stdout, StringComparison.Ordinal);

        var file = Path.Combine(dir.Path, "access.ndjson");
        var start = Logwell.Tests.EventTime.At("10:00:00").ToUnixTimeSeconds();
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 2500).Select(i =>
            $"{{\"ts\":{start + i},\"message\":\"GET /item/{i} {(i % 100 == 0 ? 500 : 200)}\",\"host\":\"web-{i % 7}\"}}"));
        (code, stdout, stderr) = await RunAsync(node, null, "ingest", "--index", "web", "--batch-lines", "1000", file);
        Assert.True(code == 0, stderr);
        Assert.Contains("2500 accepted, 0 rejected into web", stdout, StringComparison.Ordinal);

        (code, stdout, _) = await RunAsync(node, "plain text from stdin\nsecond line\n", "ingest", "--index", "web", "-");
        Assert.Equal(0, code);
        Assert.Contains("2 accepted", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = await RunAsync(node, null, "search", "--index", "web", "500 AND host:web-0", "--limit", "100", "--json");
        Assert.True(code == 0, stderr);
        var hits = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        // i % 100 == 0 and i % 7 == 0: i = 0, 700, 1400, 2100.
        Assert.Equal(["GET /item/2100 500", "GET /item/1400 500", "GET /item/700 500", "GET /item/0 500"], hits.Select(h => h.GetProperty("message").GetString()));

        // Ordered by a field over every match: the host names descending, ties newest first.
        (code, stdout, stderr) = await RunAsync(node, null, "search", "--index", "web", "500", "--sort", "host:desc", "--limit", "2", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(["GET /item/2400 500", "GET /item/1700 500"], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("message").GetString()));

        (code, stdout, stderr) = await RunAsync(node, null, "search", "--index", "web", "stdin", "--since", "1h");
        Assert.Equal(0, code);
        Assert.Contains("plain text from stdin", stdout, StringComparison.Ordinal);
        Assert.Contains("1 shown of 1 matching", stderr, StringComparison.Ordinal);

        // A pipe makes a table: aligned columns, numbers to the right.
        (code, stdout, stderr) = await RunAsync(node, null, "search", "--index", "web", "500 | stats count() as errors by host | sort by errors desc | head 2");
        Assert.True(code == 0, stderr);
        // 25 errors, at i = 0, 100, ..., 2400, spread over the hosts web-(i % 7).
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^host\s+errors$", lines[0]);
        var errorsByHost = Enumerable.Range(0, 25).Select(k => k * 100).GroupBy(i => $"web-{i % 7}").Select(g => (g.Key, g.Count()))
            .OrderByDescending(g => g.Item2).ThenBy(g => g.Key, StringComparer.Ordinal).Take(2).ToList();
        Assert.Equal(errorsByHost.Select(g => $"{g.Key}  {g.Item2,6}"), lines[1..]);

        (code, stdout, stderr) = await RunAsync(node, null, "fields", "--index", "web", "500");
        Assert.True(code == 0, stderr);
        // 25 events match; host has 7 values, web-0 among the most frequent.
        Assert.Matches(@"^host\s+25\s+string\s+web-\d \(4\)", stdout.Split('\n')[1]);
        Assert.Contains("from all 25 matching events", stderr, StringComparison.Ordinal);

        (code, _, stderr) = await RunAsync(node, null, "search", "--index", "web", "\"unclosed");
        Assert.Equal(1, code);
        Assert.Contains("unclosed quote", stderr, StringComparison.Ordinal);

        (code, _, stderr) = await RunAsync(node, null, "ingest", "--index", "nosuch", file);
        Assert.Equal(1, code);
        Assert.Contains("404", stderr, StringComparison.Ordinal);

        (code, stdout, _) = await RunAsync(node, null, "indexsets", "list");
        Assert.Equal(0, code);
        Assert.Matches(@"web\s+14d\s+2,502", stdout);

        (code, stdout, _) = await RunAsync(node, null, "indexsets", "delete", "web");
        Assert.Equal(0, code);
        (code, _, stderr) = await RunAsync(node, null, "indexsets", "delete", "web");
        Assert.Equal(1, code);
        Assert.Contains("does not exist", stderr, StringComparison.Ordinal);
    }
}
