using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.IntegrationTests;

/// <summary><c>logwell api</c> in front of a <c>logwell store</c>: worker processes recycled, reloaded, killed and scaled under load.</summary>
public sealed partial class ApiMasterTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private sealed class Deployment : IAsyncDisposable
    {
        public required TempDirectory Dir { get; init; }
        public required RoleProcess Store { get; init; }
        public required RoleProcess Master { get; init; }
        public required HttpClient Http { get; init; }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await Master.DisposeAsync();
            await Store.DisposeAsync();
            Dir.Dispose();
        }

        /// <summary>When the master logged each line matching <paramref name="pattern"/>, with the match.</summary>
        public List<(DateTime At, Match Match)> Logged(string pattern) =>
        [
            .. Master.Output.Split('\n')
                .Select(line => (Line: line, Match: Regex.Match(line, pattern)))
                .Where(x => x.Match.Success && x.Line.Contains("[master ", StringComparison.Ordinal))
                .Select(x => (DateTime.ParseExact(x.Line[..23], "yyyy-MM-dd HH:mm:ss,fff", CultureInfo.InvariantCulture), x.Match)),
        ];
    }

    private static async Task<Deployment> StartAsync(params string[] apiArguments)
    {
        var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var socket = Path.Combine(data, "run", "store.sock");
        var store = RoleProcess.Start(["store", "--data", data, "--urls", $"http://unix:{socket}"]);
        await WorkerProcessTests.WaitForAsync(() => store.Output.Contains("Logwell listening", StringComparison.Ordinal) || store.HasExited, TimeSpan.FromSeconds(60), () => store.Output);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var master = RoleProcess.Start(["api", "--data", data, "--urls", $"http://127.0.0.1:{port}", .. apiArguments]);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        await WorkerProcessTests.WaitForAsync(() =>
        {
            try
            {
                return http.GetAsync("/readyz").Result.IsSuccessStatusCode;
            }
            catch (AggregateException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), () => master.Output + store.Output);
        return new Deployment { Dir = dir, Store = store, Master = master, Http = http };
    }

    /// <summary>A logwell CLI verb on the deployment's data directory, to its end.</summary>
    private static async Task<string> CliAsync(Deployment d, params string[] arguments)
    {
        await using var cli = RoleProcess.Start([.. arguments, "--data", Path.Combine(d.Dir.Path, "data")]);
        Assert.True(await cli.WaitAsync(TimeSpan.FromSeconds(60)) == 0, cli.Output);
        return cli.Output;
    }

    [Fact]
    public async Task AKeyRevokedWithTheCliIsRefusedThroughEveryApiWorkerWithinASecond()
    {
        await using var d = await StartAsync("--cheaper", "3", "--cheaper-initial", "3", "--workers", "3", "--max-requests", "0");
        await CliAsync(d, "users", "create", "alice", "--role", "admin", "--password", "a long password");
        var made = await CliAsync(d, "keys", "create", "reader", "--role", "viewer");
        var key = made.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("lw_", StringComparison.Ordinal));
        var id = Regex.Match(made, @"\(id ([0-9a-f]+)\)").Groups[1].Value;
        async Task<HttpStatusCode> AsReaderAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/indexsets");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            using var response = await d.Http.SendAsync(request);
            return response.StatusCode;
        }
        // Spread over the three workers (new connections each time): every one lets the key through.
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await AsReaderAsync());
        }
        await CliAsync(d, "keys", "revoke", id);
        var revoked = Stopwatch.StartNew();
        // The store rereads the rules at most 250 ms after a change (on a fake clock in AccessTests); here, whichever
        // worker answers, the key is refused once it has.
        await WorkerProcessTests.WaitForAsync(() => AsReaderAsync().Result == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(30), () => d.Store.Output);
        output.WriteLine($"refused through the API master {revoked.ElapsedMilliseconds} ms after the CLI exited");
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, await AsReaderAsync());
        }
    }

    [Fact]
    public async Task RecyclingByMaxRequestsAndAReloadUnderLoadFailNoRequest()
    {
        await using var d = await StartAsync("--cheaper", "2", "--cheaper-initial", "2", "--max-requests", "40", "--max-requests-jitter", "10");
        Assert.Equal(HttpStatusCode.Created, (await d.Http.PostAsync("/api/v1/indexsets", new StringContent("""{"name": "app"}""", Encoding.UTF8, "application/json"))).StatusCode);
        var failures = new List<string>();
        var succeeded = 0;
        var acknowledged = 0;
        using var stop = new CancellationTokenSource();
        async Task ClientAsync(int client)
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    using var response = i % 3 == 0
                        ? await d.Http.PostAsync("/api/v1/indexsets/app/ingest", new StringContent($$"""{"message":"client {{client}} request {{i}}","n":{{i}}}""" + "\n", Encoding.UTF8, "application/x-ndjson"))
                        : await d.Http.GetAsync("/api/v1/search?indexset=app&q=request&limit=5");
                    if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref succeeded);
                        if (i % 3 == 0)
                        {
                            Interlocked.Increment(ref acknowledged);
                        }
                    }
                    else
                    {
                        var text = await response.Content.ReadAsStringAsync();
                        lock (failures)
                        {
                            failures.Add($"{(int)response.StatusCode}: {text}");
                        }
                    }
                }
                catch (HttpRequestException e)
                {
                    lock (failures)
                    {
                        failures.Add($"{(i % 3 == 0 ? "POST" : "GET")} {e.Message} {e.InnerException?.Message}");
                    }
                }
            }
        }
        var clients = Enumerable.Range(0, 3).Select(c => Task.Run(() => ClientAsync(c))).ToList();
        await WorkerProcessTests.WaitForAsync(() => d.Logged("served its requests").Count >= 3, TimeSpan.FromSeconds(60), () => d.Master.Output);
        RoleProcess.Signal(d.Master.Id, "HUP");
        await WorkerProcessTests.WaitForAsync(() => d.Logged("reload done").Count == 1, TimeSpan.FromSeconds(60), () => d.Master.Output);
        await WorkerProcessTests.WaitForAsync(() => d.Logged("served its requests").Count >= 6, TimeSpan.FromSeconds(60), () => d.Master.Output);
        await stop.CancelAsync();
        await Task.WhenAll(clients);

        Assert.True(failures.Count == 0, $"{failures.Count} of {succeeded + failures.Count} requests failed: {string.Join(" | ", failures.Take(5))}");
        Assert.True(succeeded > 300, $"{succeeded} requests");
        // The access log, in gunicorn's default format with the duration.
        Assert.Matches(@"(?m)^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ""GET /api/v1/search\?indexset=app&q=request&limit=5 HTTP/1\.1"" 200 \d+ ""-"" ""-"" \d+ms$", d.Master.Output);
        Assert.Matches(@"(?m)^127\.0\.0\.1 - - \[[^]]+\] ""POST /api/v1/indexsets/app/ingest HTTP/1\.1"" 200 \d+ ""-"" ""-"" \d+ms$", d.Master.Output);
        // Every acknowledged event is in the store.
        using var search = await d.Http.GetAsync("/api/v1/search?indexset=app&limit=0&track_total_hits=true");
        var total = System.Text.Json.JsonDocument.Parse(await search.Content.ReadAsStringAsync()).RootElement.GetProperty("total").GetInt32();
        Assert.Equal(acknowledged, total);
    }

    [Fact]
    public async Task AKilledWorkerIsReplacedAndSignalsScaleAndStopTheMaster()
    {
        // The busyness algorithm is kept out of it (busyness is never above 100% or below 0%): the test's own load must not
        // add or remove workers while it counts the ones the kill and the signals start and stop.
        await using var d = await StartAsync("--cheaper", "1", "--cheaper-initial", "2", "--workers", "4", "--max-requests", "0", "--graceful-timeout", "4",
            "--cheaper-busyness-max", "100", "--cheaper-busyness-min", "0");
        var first = d.Logged(@"worker (\d+) started \(pid (\d+),");
        Assert.Equal(2, first.Count);
        var pid = int.Parse(first[0].Match.Groups[2].Value, CultureInfo.InvariantCulture);
        // Two clients keep a request going each; only a request the killed worker held can fail.
        var failed = 0;
        var served = 0;
        using var stopClients = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stopClients.IsCancellationRequested)
            {
                try
                {
                    using var response = await d.Http.GetAsync("/api/v1/indexsets");
                    Interlocked.Increment(ref response.IsSuccessStatusCode ? ref served : ref failed);
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref failed);
                }
            }
        })).ToList();
        await WorkerProcessTests.WaitForAsync(() => Volatile.Read(ref served) > 50, TimeSpan.FromSeconds(30), () => d.Master.Output);
        RoleProcess.Signal(pid, "KILL");
        await WorkerProcessTests.WaitForAsync(() => d.Logged(@"worker (\d+) started").Count == 3, TimeSpan.FromSeconds(30), () => d.Master.Output);
        var died = Assert.Single(d.Logged($@"\(pid {pid}\) died \(signal 9\); replacing it")).At;
        Assert.True(d.Logged(@"worker 3 started")[0].At >= died, "the replacement started before the death was noticed");
        var servedAtReplacement = Volatile.Read(ref served);
        await WorkerProcessTests.WaitForAsync(() => Volatile.Read(ref served) > servedAtReplacement + 50, TimeSpan.FromSeconds(30), () => d.Master.Output);
        await stopClients.CancelAsync();
        await Task.WhenAll(clients);
        Assert.InRange(failed, 0, 2);
        Assert.Equal(HttpStatusCode.OK, (await d.Http.GetAsync("/livez")).StatusCode);
        // The master registered the node with its address and the role api; the store registered itself as store.
        var (_, nodes) = await HttpApiTests.SendAsync(d.Http, HttpMethod.Get, "/api/v1/nodes");
        var roles = nodes.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("role").GetString()!, n => (n.GetProperty("address").GetString(), n.GetProperty("port").GetInt32(), n.GetProperty("health").GetString()));
        Assert.Equal(("127.0.0.1", d.Http.BaseAddress!.Port, "passing"), roles["api"]);
        Assert.Equal(0, roles["store"].Item2);
        await WorkerProcessTests.WaitForAsync(() => d.Http.GetStringAsync("/metrics").Result.Contains("logwell_api_worker_ends{reason=\"died\"} 1\n", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), () => d.Http.GetStringAsync("/metrics").Result);
        Assert.StartsWith("unix:", roles["store"].Item1, StringComparison.Ordinal);

        // SIGTTIN adds a worker, up to --workers; SIGTTOU removes one.
        RoleProcess.Signal(d.Master.Id, "TTIN");
        await WorkerProcessTests.WaitForAsync(() => d.Logged(@"worker (\d+) started").Count == 4, TimeSpan.FromSeconds(30), () => d.Master.Output);
        RoleProcess.Signal(d.Master.Id, "TTOU");
        await WorkerProcessTests.WaitForAsync(() => d.Logged("removing worker").Count == 1, TimeSpan.FromSeconds(30), () => d.Master.Output);

        RoleProcess.Signal(d.Master.Id, "TERM");
        Assert.Equal(0, await d.Master.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Single(d.Logged("stopped$"));
        Assert.Single(d.Logged(@"registry: deregistered node \S+:\d+$"));
    }

    /// <summary>A body that sends a first line, then nothing for a long time: a request that does not end.</summary>
    private sealed class StalledContent : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync("{\"message\":\"first\"}\n"u8.ToArray(), cancellationToken);
            await stream.FlushAsync(cancellationToken);
            await Task.Delay(TimeSpan.FromSeconds(60), cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task ARequestPastTheTimeoutGetsItsWorkerKilledAndReplacedWithTheRequestLogged()
    {
        await using var d = await StartAsync("--cheaper", "1", "--cheaper-initial", "1", "--max-requests", "0", "--timeout", "2");
        // On a loaded machine this request itself may run past the 2 s and have its worker killed: then it is sent again.
        await WorkerProcessTests.WaitForAsync(() =>
        {
            try
            {
                using var created = d.Http.PostAsync("/api/v1/indexsets", new StringContent("""{"name": "app"}""", Encoding.UTF8, "application/json")).Result;
                return created.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict;
            }
            catch (AggregateException e) when (e.InnerException is HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), () => d.Master.Output);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/indexsets/app/ingest?source=stalled") { Content = new StalledContent() };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-ndjson");
        using var giveUp = new CancellationTokenSource();
        var sending = d.Http.SendAsync(request, giveUp.Token);
        // The worker that had the request: the first, unless on a busy machine an earlier request (a readiness probe of
        // the start) also ran past the timeout and had the master replace it.
        const string stalled = @"worker (\d+) \(pid \d+\) killed: 'POST /api/v1/indexsets/app/ingest\?source=stalled' has run for (\d+\.\d) s \(timeout 2 s\)";
        await WorkerProcessTests.WaitForAsync(() => d.Logged(stalled).Count >= 1, TimeSpan.FromSeconds(30), () => d.Master.Output);
        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => sending);
        var killedLines = d.Logged(stalled);
        Assert.True(killedLines.Count == 1, d.Master.Output);
        var killed = killedLines[0];
        Assert.True(double.Parse(killed.Match.Groups[2].Value, CultureInfo.InvariantCulture) >= 2);
        var worker = int.Parse(killed.Match.Groups[1].Value, CultureInfo.InvariantCulture);
        await WorkerProcessTests.WaitForAsync(() => d.Logged($"worker {worker + 1} started").Count == 1, TimeSpan.FromSeconds(30), () => d.Master.Output);
        // Waited for rather than read at once: once, under load, this line had not been read yet when the next worker's
        // had; if it never comes, the master's output is shown.
        await WorkerProcessTests.WaitForAsync(() => d.Logged($@"worker {worker} \(pid \d+\) died \(signal 9\); replacing it").Count == 1, TimeSpan.FromSeconds(30), () => d.Master.Output);
        // The replacement serves.
        await WorkerProcessTests.WaitForAsync(() => d.Http.GetAsync("/api/v1/indexsets").Result.IsSuccessStatusCode, TimeSpan.FromSeconds(30), () => d.Master.Output);
    }

    [Fact]
    public async Task TheBusynessAlgorithmGrowsTheWorkersUnderLoadAndShrinksThemWhenIdle()
    {
        await using var d = await StartAsync("--cheaper", "1", "--cheaper-initial", "1", "--workers", "3", "--cheaper-step", "1", "--cheaper-overload", "1",
            "--cheaper-busyness-multiplier", "2", "--max-requests", "0", "--no-access-log");
        Assert.Equal(HttpStatusCode.Created, (await d.Http.PostAsync("/api/v1/indexsets", new StringContent("""{"name": "app"}""", Encoding.UTF8, "application/json"))).StatusCode);
        // Clients that always have a request in flight keep the workers busy all the time.
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await d.Http.PostAsync("/api/v1/indexsets/app/ingest", new StringContent($$"""{"message":"load {{c}}"}""" + "\n", Encoding.UTF8, "application/x-ndjson"));
                }
                catch (HttpRequestException)
                {
                }
            }
        })).ToList();
        await WorkerProcessTests.WaitForAsync(() => d.Logged(@"cheaper: .*; workers 2 -> 3").Count == 1, TimeSpan.FromSeconds(60), () => d.Master.Output);
        Assert.Single(d.Logged(@"cheaper: busyness \d+% over 1 s is above 50%; workers 1 -> 2"));
        // The third worker starts right after the decision is logged.
        await WorkerProcessTests.WaitForAsync(() => d.Logged(@"worker \d+ started").Count == 3, TimeSpan.FromSeconds(10), () => d.Master.Output);
        await stop.CancelAsync();
        await Task.WhenAll(clients);
        // Idle: one worker goes per two quiet checks, down to --cheaper.
        await WorkerProcessTests.WaitForAsync(() => d.Logged(@"cheaper: busyness \d+% is below 25% for 2 checks; workers 2 -> 1").Count == 1, TimeSpan.FromSeconds(60), () => d.Master.Output);
        Assert.Single(d.Logged(@"workers 3 -> 2$"));
        Assert.Equal(2, d.Logged("removing worker").Count);
    }
}
