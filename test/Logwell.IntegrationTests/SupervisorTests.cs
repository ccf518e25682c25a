using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Logwell.IntegrationTests;

/// <summary><c>logwell supervise</c> running real programs from a supervisord configuration, driven by <c>logwell ctl</c>.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class SupervisorTests
{
    private sealed class Supervised : IAsyncDisposable
    {
        private Supervised(TempDirectory dir, RoleProcess process)
        {
            Dir = dir;
            Process = process;
        }

        public TempDirectory Dir { get; }
        public RoleProcess Process { get; }
        public string Data => Path.Combine(Dir.Path, "data");
        public string ConfigPath => Path.Combine(Dir.Path, "supervisor.conf");

        public static async Task<Supervised> StartAsync(string config)
        {
            var dir = new TempDirectory();
            await File.WriteAllTextAsync(Path.Combine(dir.Path, "supervisor.conf"), config);
            var process = RoleProcess.Start(["supervise", "-c", Path.Combine(dir.Path, "supervisor.conf"), "--data", Path.Combine(dir.Path, "data")]);
            var supervised = new Supervised(dir, process);
            await WorkerProcessTests.WaitForAsync(() => process.Output.Contains("control socket", StringComparison.Ordinal) || process.HasExited, TimeSpan.FromSeconds(60), () => process.Output);
            Assert.False(process.HasExited, process.Output);
            return supervised;
        }

        public async Task<(int Code, string Output)> CtlAsync(params string[] words)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in new[] { LogwellNode.LogwellDll, "ctl", "--data", Data }.Concat(words))
            {
                info.ArgumentList.Add(argument);
            }
            using var ctl = System.Diagnostics.Process.Start(info)!;
            var stdout = ctl.StandardOutput.ReadToEndAsync();
            var stderr = ctl.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await ctl.WaitForExitAsync(timeout.Token);
            return (ctl.ExitCode, await stdout + await stderr);
        }

        /// <summary>The times the supervisor logged a line matching <paramref name="pattern"/>.</summary>
        public List<DateTime> Logged(string pattern) =>
        [
            .. Process.Output.Split('\n')
                .Where(line => Regex.IsMatch(line, pattern))
                .Select(line => DateTime.ParseExact(line[..23], "yyyy-MM-dd HH:mm:ss,fff", CultureInfo.InvariantCulture)),
        ];

        public async ValueTask DisposeAsync()
        {
            await Process.DisposeAsync();
            Dir.Dispose();
        }
    }

    [Fact]
    public async Task ACrashLoopingProgramIsRetriedStartretriesTimesThenIsFatal()
    {
        await using var s = await Supervised.StartAsync("""
            [program:crash]
            command = sh -c "echo starting; exit 1"
            startsecs = 10
            startretries = 3
            """);
        // startsecs is far above what the shell takes even on a loaded machine: a run that outlived it would count as a
        // successful start, reset the retries and spawn once more (seen with startsecs = 1 under a full test run).
        await WorkerProcessTests.WaitForAsync(() => s.Process.Output.Contains("gave up: crash entered FATAL state", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => s.Process.Output);
        var spawned = s.Logged("spawned: 'crash'");
        var exited = s.Logged(@"exited: crash \(exit status 1; not expected\)");
        // One start and startretries retries.
        Assert.Equal(4, spawned.Count);
        Assert.Equal(4, exited.Count);
        // Each retry follows the exit before it (the back-off's seconds are checked on a fake clock in SupervisedProcessTests).
        for (var retry = 1; retry <= 3; retry++)
        {
            Assert.True(spawned[retry] >= exited[retry - 1], $"retry {retry} spawned before the exit it follows");
        }
        var (code, status) = await s.CtlAsync("status", "crash");
        Assert.Equal(3, code);
        Assert.Matches(@"^crash\s+FATAL\s+Exited too quickly \(process log may have details\)\n$", status);
        var (_, tail) = await s.CtlAsync("tail", "crash");
        // As supervisorctl prints it: the log, then a line break.
        Assert.Equal(string.Concat(Enumerable.Repeat("starting\n", 4)) + "\n", tail);
        // Started by hand it goes through its retries again and reports the failure.
        var (startCode, started) = await s.CtlAsync("start", "crash");
        Assert.Equal((7, "crash: ERROR (spawn error)\n"), (startCode, started));
        Assert.Equal(8, s.Logged("spawned: 'crash'").Count);
    }

    [Fact]
    public async Task AutorestartRestartsAlwaysNeverOrOnlyOnUnexpectedExitCodes()
    {
        await using var s = await Supervised.StartAsync("""
            [program:always]
            command = sh -c "sleep 1.2; exit 0"
            autorestart = true

            [program:never]
            command = sh -c "sleep 1.2; exit 1"
            autorestart = false

            [program:expected]
            command = sh -c "sleep 1.2; exit 3"
            autorestart = unexpected
            exitcodes = 0,3

            [program:unexpected]
            command = sh -c "sleep 1.2; exit 4"
            autorestart = unexpected
            exitcodes = 0,3
            """);
        await WorkerProcessTests.WaitForAsync(() => s.Logged("spawned: 'always'").Count >= 3 && s.Logged("spawned: 'unexpected'").Count >= 3, TimeSpan.FromSeconds(60), () => s.Process.Output);
        Assert.Single(s.Logged("spawned: 'never'"));
        Assert.Single(s.Logged("spawned: 'expected'"));
        Assert.Single(s.Logged(@"exited: expected \(exit status 3; expected\)"));
        Assert.NotEmpty(s.Logged(@"exited: unexpected \(exit status 4; not expected\)"));
        var (_, status) = await s.CtlAsync("status", "never", "expected");
        Assert.Matches(@"(?m)^never\s+EXITED\s+\w{3} \d\d \d\d:\d\d [AP]M$", status);
        Assert.Matches(@"(?m)^expected\s+EXITED\s+", status);
    }

    [Fact]
    public async Task AProgramThatIgnoresItsStopSignalIsKilledAfterStopwaitsecs()
    {
        await using var s = await Supervised.StartAsync("""
            [program:stubborn]
            command = sh -c "trap '' TERM; while true; do sleep 0.2; done"
            stopwaitsecs = 2
            killasgroup = true

            [program:polite]
            command = sleep 600
            """);
        await WorkerProcessTests.WaitForAsync(() => s.Logged("success: stubborn entered RUNNING").Count == 1, TimeSpan.FromSeconds(60), () => s.Process.Output);
        var (code, output) = await s.CtlAsync("stop", "stubborn");
        Assert.Equal((0, "stubborn: stopped\n"), (code, output));
        var asked = Assert.Single(s.Logged("waiting for stubborn to stop"));
        // Asked first, killed after (that the kill waits out stopwaitsecs is checked on a fake clock in SupervisedProcessTests).
        var killed = Assert.Single(s.Logged(@"killing 'stubborn' \(\d+\) with SIGKILL: not stopped within 2 s \(stopwaitsecs\)"));
        Assert.True(killed >= asked, "killed before it was asked to stop");
        Assert.Single(s.Logged(@"stopped: stubborn \(terminated by SIGKILL\)"));
        (_, output) = await s.CtlAsync("status");
        Assert.Matches(@"(?m)^polite\s+RUNNING\s+pid \d+, uptime 0:00:\d\d$", output);
        Assert.Matches(@"(?m)^stubborn\s+STOPPED\s+", output);
        // The polite one stops on SIGTERM, at once.
        (code, output) = await s.CtlAsync("stop", "all");
        Assert.Equal((0, "polite: stopped\n"), (code, output));
        Assert.Single(s.Logged(@"stopped: polite \(terminated by SIGTERM\)"));
    }

    [Fact]
    public async Task OutputIsRotatedKeepingItsBackups()
    {
        await using var s = await Supervised.StartAsync("""
            [program:chatty]
            command = sh -c "i=0; while [ $i -lt 500 ]; do echo line $i of the chatty program, padded to about sixty bytes; i=$((i+1)); done; sleep 600"
            stdout_logfile = %(here)s/chatty.log
            stdout_logfile_maxbytes = 4KB
            stdout_logfile_backups = 2
            """);
        var log = Path.Combine(s.Dir.Path, "chatty.log");
        // The file is briefly missing while it is rotated.
        static bool Holds(string path, string text)
        {
            try
            {
                return File.ReadAllText(path).Contains(text, StringComparison.Ordinal);
            }
            catch (FileNotFoundException)
            {
                return false;
            }
        }
        await WorkerProcessTests.WaitForAsync(() => Holds(log, "line 499 "), TimeSpan.FromSeconds(60), () => s.Process.Output);
        Assert.True(File.Exists(log + ".1"));
        Assert.True(File.Exists(log + ".2"));
        Assert.False(File.Exists(log + ".3"));
        foreach (var file in new[] { log, log + ".1", log + ".2" })
        {
            Assert.InRange(new FileInfo(file).Length, 1, 4096);
            Assert.EndsWith("\n", File.ReadAllText(file), StringComparison.Ordinal);
        }
        // The backups hold the lines just before the current file's, in order.
        var lines = File.ReadAllLines(log + ".2").Concat(File.ReadAllLines(log + ".1")).Concat(File.ReadAllLines(log))
            .Select(line => int.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(lines[0], lines.Count), lines);
        Assert.Equal(499, lines[^1]);
    }

    [Fact]
    public async Task CtlControlsProcessesAndRereadUpdateAppliesAChangedConfiguration()
    {
        await using var s = await Supervised.StartAsync("""
            [supervisord]
            identifier = test

            [program:web]
            command = sleep 600
            priority = 10

            [program:pool]
            command = sleep 60%(process_num)d
            process_name = pool-%(process_num)d
            numprocs = 2
            """);
        await WorkerProcessTests.WaitForAsync(() => s.Logged("entered RUNNING").Count == 3, TimeSpan.FromSeconds(60), () => s.Process.Output);
        // Only the owner can reach the control socket.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(s.Data, "run")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(s.Data, "run", "supervisor.sock")));

        var (code, status) = await s.CtlAsync("status");
        Assert.Equal(0, code);
        Assert.Matches(@"^pool:pool-0\s+RUNNING\s+pid \d+, uptime 0:00:\d\d\npool:pool-1\s+RUNNING\s+pid \d+, uptime 0:00:\d\d\nweb\s+RUNNING\s+pid \d+, uptime 0:00:\d\d\n$", status);
        Assert.Equal((0, "pool:pool-1: stopped\npool:pool-0: stopped\n"), await s.CtlAsync("stop", "pool:*"));
        Assert.Equal((0, "pool:pool-0: ERROR (not running)\n"), await s.CtlAsync("stop", "pool:pool-0"));
        Assert.Equal((0, "pool:pool-0: started\n"), await s.CtlAsync("start", "pool:pool-0"));
        var pid = int.Parse(WebPid().Match((await s.CtlAsync("status", "web")).Output).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Equal((0, "web: stopped\nweb: started\n"), await s.CtlAsync("restart", "web"));
        var newPid = int.Parse(WebPid().Match((await s.CtlAsync("status", "web")).Output).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.NotEqual(pid, newPid);
        Assert.Equal((0, "web: signalled\n"), await s.CtlAsync("signal", "HUP", "web"));
        await WorkerProcessTests.WaitForAsync(() => s.Logged(@"exited: web \(terminated by SIGHUP; not expected\)").Count == 1, TimeSpan.FromSeconds(30), () => s.Process.Output);
        Assert.Equal(4, (await s.CtlAsync("status", "nope")).Code);

        // Change web, remove pool, add jobs: reread tells, update applies.
        await File.WriteAllTextAsync(s.ConfigPath, """
            [program:web]
            command = sleep 601
            priority = 10

            [program:jobs]
            command = sleep 602
            """);
        Assert.Equal((0, "web: changed\njobs: available\npool: disappeared\n"), await s.CtlAsync("reread"));
        var (updated, update) = await s.CtlAsync("update");
        Assert.Equal(0, updated);
        Assert.Contains("pool: removed process group\n", update, StringComparison.Ordinal);
        Assert.Contains("web: updated process group\n", update, StringComparison.Ordinal);
        Assert.Contains("jobs: added process group\n", update, StringComparison.Ordinal);
        await WorkerProcessTests.WaitForAsync(() => s.CtlAsync("status").Result.Output.Split('\n').Count(l => l.Contains("RUNNING", StringComparison.Ordinal)) == 2, TimeSpan.FromSeconds(30), () => s.Process.Output);
        (_, status) = await s.CtlAsync("status");
        Assert.Matches(@"^jobs\s+RUNNING\s+pid \d+.*\nweb\s+RUNNING\s+pid \d+.*\n$", status);

        // A mistake in the file is reported, and nothing changes.
        await File.WriteAllTextAsync(s.ConfigPath, "[program:web]\ncommand = sleep 601\nautorestart = maybe\n");
        var (bad, reread) = await s.CtlAsync("reread");
        Assert.Equal(2, bad);
        Assert.Contains("supervisor.conf:3: autorestart must be true, false or unexpected, not 'maybe'", reread, StringComparison.Ordinal);

        Assert.Equal((0, "Shut down\n"), await s.CtlAsync("shutdown"));
        Assert.Equal(0, await s.Process.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("supervisor stopped", s.Process.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(s.Data, "run", "supervisor.sock")));
    }

    [Fact]
    public async Task ABadConfigurationIsRefusedWithItsFileAndLine()
    {
        using var dir = new TempDirectory();
        var config = Path.Combine(dir.Path, "bad.conf");
        await File.WriteAllTextAsync(config, "[program:web]\ncommand = sleep 1\nstartsecs = soon\n");
        await using var supervise = RoleProcess.Start(["supervise", "-c", config, "--data", dir.Path]);
        Assert.Equal(2, await supervise.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"error: {config}:3: startsecs must be a whole number of at least 0, not 'soon'", supervise.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheDefaultDeploymentRestartsAKilledStoreAndLosesNoAcknowledgedEvent()
    {
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        async Task<bool> ReadyAsync()
        {
            try
            {
                using var response = await http.GetAsync("/readyz");
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }
        await using var supervise = RoleProcess.Start(["supervise", "--data", data, "--urls", http.BaseAddress.ToString().TrimEnd('/')]);
        await WorkerProcessTests.WaitForAsync(() => ReadyAsync().Result, TimeSpan.FromSeconds(90), () => supervise.Output);
        async Task<(int Code, string Output)> CtlAsync(params string[] words)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in new[] { LogwellNode.LogwellDll, "ctl", "--data", data }.Concat(words))
            {
                info.ArgumentList.Add(argument);
            }
            using var ctl = System.Diagnostics.Process.Start(info)!;
            var output = await ctl.StandardOutput.ReadToEndAsync();
            await ctl.WaitForExitAsync();
            return (ctl.ExitCode, output);
        }
        await WorkerProcessTests.WaitForAsync(() => CtlAsync("status").Result.Code == 0, TimeSpan.FromSeconds(60), () => CtlAsync("status").Result.Output + supervise.Output);
        var (_, status) = await CtlAsync("status");
        Assert.Matches(@"^api\s+RUNNING.*\nscheduler\s+RUNNING.*\nstore\s+RUNNING.*\nworkers:worker-default\s+RUNNING.*\nworkers:worker-export\s+RUNNING.*\nworkers:worker-pipeline\s+RUNNING.*\nworkers:worker-schedule\s+RUNNING.*\n$", status);

        // Production: index sets are created first.
        using (var created = await http.PostAsync("/api/v1/indexsets", new StringContent("""{"name": "app"}""", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        }
        // Batches of 100 events go in while the store is killed and restarted; the acknowledged ones are counted.
        var acknowledged = new List<int>();
        var next = 0;
        var killed = false;
        var batchesAfterRestart = 0;
        while (batchesAfterRestart < 10)
        {
            var batch = Enumerable.Range(next, 100).ToList();
            next += 100;
            var body = string.Concat(batch.Select(n => $$"""{"message":"event {{n}}","n":{{n}}}""" + "\n"));
            try
            {
                using var response = await http.PostAsync("/api/v1/indexsets/app/ingest", new StringContent(body, System.Text.Encoding.UTF8, "application/x-ndjson"));
                if (response.IsSuccessStatusCode)
                {
                    acknowledged.AddRange(batch);
                    batchesAfterRestart += killed ? 1 : 0;
                }
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
            if (!killed && acknowledged.Count >= 2000)
            {
                var pid = int.Parse(WebPid().Match((await CtlAsync("status", "store")).Output).Groups[1].Value, CultureInfo.InvariantCulture);
                RoleProcess.Signal(pid, "KILL");
                killed = true;
            }
        }
        Assert.Equal(2, StoreSpawns(supervise.Output));
        // /metrics (the store's, through the API) counts the supervisor's restarts and the API master's workers.
        await WorkerProcessTests.WaitForAsync(() => http.GetStringAsync("/metrics").Result.Contains("logwell_supervisor_process_spawns{process=\"store\"} 2\n", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), () => http.GetStringAsync("/metrics").Result);
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("logwell_supervisor_process_running{process=\"workers:worker-export\",state=\"RUNNING\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("logwell_api_workers{kind=\"serving\"} 4\n", metrics, StringComparison.Ordinal);
        using var export = await http.GetAsync("/api/v1/export?indexset=app&fields=n&format=csv");
        Assert.Equal(System.Net.HttpStatusCode.OK, export.StatusCode);
        var stored = (await export.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToHashSet();
        var lost = acknowledged.Where(n => !stored.Contains(n)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged events lost, the first {string.Join(", ", lost.Take(10))}");

        // The export worker of the deployment runs exports through the store's API.
        using var started = await http.PostAsync("/api/v1/exports", new StringContent("""{"indexset": "app", "q": "n:[0 TO 99]", "format": "ndjson"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.Accepted, started.StatusCode);
        var id = System.Text.Json.JsonDocument.Parse(await started.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        await WorkerProcessTests.WaitForAsync(() => http.GetStringAsync($"/api/v1/exports/{id}").Result.Contains("\"state\":\"done\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => supervise.Output);

        // The operations page's view of the supervisor: every process with its state, and the API master's workers.
        System.Text.Json.JsonElement Supervisor() => System.Text.Json.JsonDocument.Parse(http.GetStringAsync("/api/v1/supervisor").Result).RootElement;
        System.Text.Json.JsonElement Store() => Supervisor().GetProperty("processes").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "store");
        await WorkerProcessTests.WaitForAsync(() => Store().GetProperty("state").GetString() == "RUNNING", TimeSpan.FromSeconds(30), () => Store().ToString());
        var supervisor = Supervisor();
        var store = Store();
        Assert.Equal(2, store.GetProperty("spawns").GetInt32());
        Assert.StartsWith($"pid {store.GetProperty("pid").GetInt32()}, uptime ", store.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.Equal(7, supervisor.GetProperty("processes").GetArrayLength());
        Assert.Equal(4, supervisor.GetProperty("api_master").GetProperty("workers").GetInt32());
        // The web UI, through the API master's workers.
        using (var page = new HttpRequestMessage(HttpMethod.Get, "/"))
        {
            page.Headers.Accept.ParseAdd("text/html");
            using var response = await http.SendAsync(page);
            Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("<title>Logwell</title>", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal((0, "Shut down\n"), await CtlAsync("shutdown"));
        Assert.Equal(0, await supervise.WaitAsync(TimeSpan.FromSeconds(120)));
    }

    private static int StoreSpawns(string output) => output.Split('\n').Count(line => line.Contains("spawned: 'store'", StringComparison.Ordinal));

    [GeneratedRegex(@"pid (\d+)")]
    private static partial Regex WebPid();
}
