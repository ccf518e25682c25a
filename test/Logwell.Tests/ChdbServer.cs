using System.Diagnostics;

namespace Logwell.Tests;

/// <summary>
/// A current ClickHouse engine (npm's <c>chdb</c> 3.4.0, ClickHouse 26.7 inside Node.js) behind ClickHouse's HTTP
/// interface (<c>chdb/server.js</c>), one for the test run, so the SQL Logwell sends is run against a current release as
/// well as against Debian's 18.16. Installed with <c>npm install</c> on first use; the calling test is skipped, saying why,
/// where Node.js, npm or the registry is missing.
/// </summary>
internal static class ChdbServer
{
    private static readonly Lazy<Task<(Uri? Endpoint, string Missing)>> Started = new(StartAsync);

    public static async Task<Uri> EndpointAsync()
    {
        var (endpoint, missing) = await Started.Value;
        Skip.If(endpoint is null, missing);
        return endpoint!;
    }

    private static async Task<(Uri?, string)> StartAsync()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Logwell.slnx")))
        {
            root = root.Parent;
        }
        var directory = Path.Combine(root?.FullName ?? ".", "test", "Logwell.Tests", "chdb");
        if (await ProgramRunner.RunAsync("node", ["--version"], directory, TimeSpan.FromSeconds(30)) is not (0, _))
        {
            return (null, "Node.js is not installed (test.sh installs nodejs and npm from Debian when run as root)");
        }
        if (!File.Exists(Path.Combine(directory, "node_modules", "chdb", "package.json")))
        {
            // npm install, not npm ci: npm leaves the other platforms' optional packages out of the lock file, and ci then refuses it.
            var (code, output) = await ProgramRunner.RunAsync("npm", ["install", "--no-audit", "--no-fund", "--no-save"], directory, TimeSpan.FromMinutes(10));
            if (code != 0)
            {
                return (null, $"npm could not install chdb: {output[^Math.Min(output.Length, 400)..]}");
            }
        }
        var port = ClickHouseServer.FreePort();
        var data = Directory.CreateTempSubdirectory("logwell-chdb-").FullName;
        // It ends with this process (the owner's pid), and reads no terminal (a background job that did would be stopped).
        var info = new ProcessStartInfo("node", ["server.js", port.ToString(System.Globalization.CultureInfo.InvariantCulture), data, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            WorkingDirectory = directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // Its own clock: Logwell computes every time it stores and compares.
        info.Environment.Remove("LD_PRELOAD");
        var process = ServerProcess.Launch(info, data);
        var endpoint = new Uri($"http://127.0.0.1:{port}/");
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!process.HasExited && DateTime.UtcNow < deadline)
        {
            try
            {
                if ((await probe.GetAsync(new Uri(endpoint, "ping"))).IsSuccessStatusCode)
                {
                    return (endpoint, "");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        return (null, "chdb's HTTP interface (test/Logwell.Tests/chdb/server.js) did not start");
    }
}
