using System.Diagnostics;
using System.Reflection;

namespace Logwell.Bench;

/// <summary>
/// Logwell as a node runs when deployed: <c>dotnet publish</c> of <c>src/Logwell</c>, whose project compiles it ahead
/// of time (ReadyToRun), and of this harness, with the same setting, for the in-process workers (logwell's engine and
/// the .NET peers, SQLite FTS5 and Lucene.NET, under the same conditions). A process started from the build output
/// instead spends its first queries in the JIT; <c>--no-publish</c> measures that.
/// </summary>
internal static class Published
{
    /// <summary>The published <c>logwell.dll</c>, once <see cref="PrepareAsync"/> ran; else null.</summary>
    public static string? LogwellDll { get; private set; }

    /// <summary>The published harness that in-process workers run from, once <see cref="PrepareAsync"/> ran; else null.</summary>
    public static string? WorkerDll { get; private set; }

    public static async Task PrepareAsync(string outDirectory)
    {
        var root = RepositoryRoot();
        var target = Path.GetFullPath(Path.Combine(outDirectory, "publish"));
        await PublishAsync(Path.Combine(root, "src", "Logwell", "Logwell.csproj"), Path.Combine(target, "logwell"), []);
        await PublishAsync(Path.Combine(root, "bench", "Logwell.Bench", "Logwell.Bench.csproj"), Path.Combine(target, "bench"), ["-p:PublishReadyToRun=true"]);
        LogwellDll = Path.Combine(target, "logwell", "logwell.dll");
        WorkerDll = Path.Combine(target, "bench", "Logwell.Bench.dll");
        Console.WriteLine($"published (ReadyToRun): {LogwellDll}, {WorkerDll}");
    }

    private static async Task PublishAsync(string project, string output, string[] extra)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in (string[])["publish", project, "-c", "Release", "-o", output, "--nologo", .. extra])
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish {project} failed ({process.ExitCode}): {await error}{await stdout}");
        }
    }

    /// <summary>The directory holding <c>Logwell.slnx</c>, above the harness's own files.</summary>
    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Logwell.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new DirectoryNotFoundException($"no Logwell.slnx above {AppContext.BaseDirectory}");
    }

    /// <summary>The configuration the harness was built in (Release for figures worth keeping).</summary>
    public static string Configuration() =>
        typeof(Published).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "Configuration").Value!;
}
