using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Logwell.Storage.ClickHouse;
using Logwell.Tests;
using Xunit.Abstractions;

namespace Logwell.IntegrationTests;

/// <summary>
/// Three Logwell nodes over three ClickHouse 18.16 replicas (ZooKeeper, quorum 2), their metadata in PostgreSQL, their
/// queues and scheduler lease in Redis and their export files in one shared directory, behind HAProxy with the
/// repository's <c>deploy/haproxy.cfg</c> as <c>logwell lb haproxy-config</c> fills it in from the registry. Two clients ingest through HAProxy, sending each batch again with its
/// <c>Idempotency-Key</c> until it is acknowledged; a node and then a replica are killed with SIGKILL. Every acknowledged
/// event is stored exactly once, HAProxy takes the dead node out of rotation, a task scheduled every second keeps
/// running, and an export asked for before the kill finishes and downloads through HAProxy.
/// </summary>
public sealed class ClusterFailoverTests(ITestOutputHelper output)
{
    private static bool HaproxyInstalled => File.Exists("/usr/sbin/haproxy");

    [SkippableFact]
    public async Task KillingANodeAndAReplicaUnderIngestLosesAndDuplicatesNoAcknowledgedEvent()
    {
        Skip.If(!ClickHouseServer.Installed, ClickHouseServer.Missing);
        Skip.If(!ZooKeeperServer.Installed, ZooKeeperServer.Missing);
        Skip.If(!HaproxyInstalled, "haproxy is not installed (test.sh installs Debian's package when run as root)");
        using var dir = new TempDirectory();
        var redis = RedisServer.Address;
        var metadata = SqlServer.PostgreSql.CreateDatabase();
        await using var zooKeeper = await ZooKeeperServer.StartAsync();
        var replicas = new List<ClickHouseServer>();
        var nodes = new List<LogwellNode>();
        Process? haproxy = null;
        try
        {
            for (var r = 1; r <= 3; r++)
            {
                replicas.Add(await ClickHouseServer.StartAsync(zooKeeper: zooKeeper.Address, replica: $"r{r}"));
            }
            var settings = new Dictionary<string, string>
            {
                ["LOGWELL_LogStore"] = "clickhouse",
                ["LOGWELL_ClickHouseUrl"] = string.Join(';', replicas.Select(r => r.Endpoint)),
                ["LOGWELL_ClickHouseReplicationPath"] = "/clickhouse/tables/logwell-failover",
                ["LOGWELL_ClickHouseInsertQuorum"] = "2",
                ["LOGWELL_ClickHouseInsertQuorumTimeoutSeconds"] = "3",
                ["LOGWELL_MetadataStore"] = "postgresql",
                ["LOGWELL_MetadataConnectionString"] = metadata,
                ["LOGWELL_QueueBackend"] = "redis",
                ["LOGWELL_RedisConnection"] = redis,
                ["LOGWELL_RedisPrefix"] = $"failover-{Guid.NewGuid():N}:",
                ["LOGWELL_SchedulerLeaseSeconds"] = "3",
                ["LOGWELL_TaskLeaseSeconds"] = "5",
                ["LOGWELL_ExportDirectory"] = Path.Combine(dir.Path, "shared-exports"),
                ["LOGWELL_Schedule__tick__Task"] = "diag.noop",
                ["LOGWELL_Schedule__tick__Every"] = "00:00:01",
            };
            var ports = new List<int>();
            for (var n = 1; n <= 3; n++)
            {
                var port = ClickHouseServer.FreePort();
                ports.Add(port);
                nodes.Add(await LogwellNode.StartAsync(Path.Combine(dir.Path, $"node{n}"), env: new Dictionary<string, string>(settings) { ["LOGWELL_NodeId"] = $"node{n}" },
                    urls: $"http://127.0.0.1:{port}"));
            }

            // The shipped configuration with the registry's nodes, as `logwell lb haproxy-config` prints it from any node.
            await WorkerProcessTests.WaitForAsync(() => HttpApiTests.SendAsync(nodes[2].Http, HttpMethod.Get, "/api/v1/nodes").Result.Body.GetProperty("nodes").GetArrayLength() == 3,
                TimeSpan.FromSeconds(30), () => "three nodes registered");
            var front = ClickHouseServer.FreePort();
            var socket = Path.Combine(dir.Path, "haproxy.sock");
            var generated = await CliTests.RunWithAsync(dir.Path, nodes[2], null, null, "lb", "haproxy-config", "--bind", $"127.0.0.1:{front}", "--socket", socket);
            Assert.True(generated.ExitCode == 0, generated.Stderr);
            for (var n = 1; n <= 3; n++)
            {
                Assert.Contains($"    server node{n} 127.0.0.1:{ports[n - 1]} check\n", generated.Stdout, StringComparison.Ordinal);
            }
            Assert.Contains("retry-on all-retryable-errors", generated.Stdout, StringComparison.Ordinal);
            var configFile = Path.Combine(dir.Path, "haproxy.cfg");
            await File.WriteAllTextAsync(configFile, generated.Stdout);
            haproxy = Process.Start(new ProcessStartInfo("/usr/sbin/haproxy", ["-f", configFile, "-db"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            haproxy.OutputDataReceived += (_, _) => { };
            haproxy.ErrorDataReceived += (_, _) => { };
            haproxy.BeginOutputReadLine();
            haproxy.BeginErrorReadLine();
            await WorkerProcessTests.WaitForAsync(() => Statuses(socket).Count(s => s.Value == "UP") == 3, TimeSpan.FromSeconds(60), () => string.Join(", ", Statuses(socket)));

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{front}/"), Timeout = TimeSpan.FromSeconds(30) };
            var acknowledged = new ConcurrentBag<long>();
            var failedAttempts = new ConcurrentBag<(string Phase, string Why)>();
            var phase = "before";
            var acknowledgedInPhase = new ConcurrentDictionary<string, int>();
            var next = 0L;
            using var stop = new CancellationTokenSource();
            async Task ClientAsync()
            {
                while (!stop.IsCancellationRequested)
                {
                    var ids = Enumerable.Range(0, 20).Select(_ => Interlocked.Increment(ref next)).ToList();
                    var now = DateTimeOffset.UtcNow;
                    var body = string.Concat(ids.Select(id => FormattableString.Invariant($"{{\"@timestamp\":\"{now:O}\",\"message\":\"event {id}\",\"n\":{id}}}\n")));
                    var key = Guid.NewGuid().ToString("N");
                    for (var attempt = 1; ; attempt++)
                    {
                        var current = Volatile.Read(ref phase);
                        try
                        {
                            using var request = new HttpRequestMessage(HttpMethod.Post, "api/v1/indexsets/app/ingest") { Content = new StringContent(body, Encoding.UTF8, "application/x-ndjson") };
                            request.Headers.Add("Idempotency-Key", key);
                            using var response = await http.SendAsync(request);
                            if (response.IsSuccessStatusCode)
                            {
                                foreach (var id in ids)
                                {
                                    acknowledged.Add(id);
                                }
                                acknowledgedInPhase.AddOrUpdate(current, 1, (_, c) => c + 1);
                                break;
                            }
                            failedAttempts.Add((current, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}"));
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                        {
                            failedAttempts.Add((current, e.Message));
                        }
                        Assert.True(attempt < 50, "a batch was refused 50 times");
                        await Task.Delay(200);
                    }
                }
            }
            var clients = new[] { Task.Run(ClientAsync), Task.Run(ClientAsync) };
            async Task WaitForBatchesAsync(string name, int count) =>
                await WorkerProcessTests.WaitForAsync(() => acknowledgedInPhase.GetValueOrDefault(name) >= count || clients.Any(c => c.IsFaulted), TimeSpan.FromSeconds(90), () => $"{acknowledgedInPhase.GetValueOrDefault(name)} batches acknowledged in phase {name}");

            await WaitForBatchesAsync("before", 30);
            // An export of every event so far, queued before the kill (its task may be on the node that dies).
            var (exportStatus, export) = await HttpApiTests.SendAsync(http, HttpMethod.Post, "api/v1/exports",
                new StringContent("""{"indexset":"app","q":"*","format":"ndjson"}""", Encoding.UTF8, "application/json"));
            Assert.True(exportStatus == System.Net.HttpStatusCode.Accepted, export.ToString());
            var exportId = export.GetProperty("id").GetString();
            Volatile.Write(ref phase, "node killed");
            var killed = Stopwatch.StartNew();
            await nodes[0].KillAsync();
            await WorkerProcessTests.WaitForAsync(() => Statuses(socket).GetValueOrDefault("node1") is "DOWN", TimeSpan.FromSeconds(30), () => string.Join(", ", Statuses(socket)));
            var down = killed.Elapsed;
            await WaitForBatchesAsync("node killed", 40);

            Volatile.Write(ref phase, "replica killed");
            await replicas[0].KillAsync();
            await WaitForBatchesAsync("replica killed", 40);
            await stop.CancelAsync();
            await Task.WhenAll(clients);

            output.WriteLine($"acknowledged {acknowledged.Count} events in {acknowledgedInPhase.Values.Sum()} batches of 20 ({string.Join(", ", acknowledgedInPhase.Select(p => $"{p.Key}: {p.Value}"))})");
            output.WriteLine($"HAProxy marked the killed node DOWN after {down.TotalSeconds:0.0} s");
            output.WriteLine($"failed attempts seen by clients (each retried until acknowledged): {failedAttempts.Count}: {string.Join(" | ", failedAttempts.Select(f => $"{f.Phase}: {f.Why[..Math.Min(f.Why.Length, 120)]}").Take(10))}");

            // The scheduler's lease moved to a live node if it was on the dead one: the task scheduled every second
            // runs on (counted over the last minute, on whichever node answers).
            var ticksAfter = Stopwatch.StartNew();
            var doneBefore = await DoneAsync(http);
            await WorkerProcessTests.WaitForAsync(() => DoneAsync(http).Result >= doneBefore + 5, TimeSpan.FromSeconds(30), () => $"default queue done: {DoneAsync(http).Result}, before: {doneBefore}");
            output.WriteLine($"5 more scheduled ticks done {ticksAfter.Elapsed.TotalSeconds:0.0} s after the clients stopped");
            // The export finishes, and downloads through HAProxy whichever node wrote it.
            await WorkerProcessTests.WaitForAsync(() => HttpApiTests.SendAsync(http, HttpMethod.Get, $"api/v1/exports/{exportId}").Result.Body.GetProperty("state").GetString() is "done" or "failed",
                TimeSpan.FromSeconds(60), () => HttpApiTests.SendAsync(http, HttpMethod.Get, $"api/v1/exports/{exportId}").Result.Body.ToString());
            var (_, exported) = await HttpApiTests.SendAsync(http, HttpMethod.Get, $"api/v1/exports/{exportId}");
            Assert.Equal("done", exported.GetProperty("state").GetString());
            using (var download = await http.GetAsync(new Uri($"api/v1/exports/{exportId}/download", UriKind.Relative)))
            {
                Assert.Equal(System.Net.HttpStatusCode.OK, download.StatusCode);
                await using var gzip = new System.IO.Compression.GZipStream(await download.Content.ReadAsStreamAsync(), System.IO.Compression.CompressionMode.Decompress);
                using var reader = new StreamReader(gzip);
                var lines = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(exported.GetProperty("events_written").GetInt64(), lines.Length);
                Assert.True(lines.Length >= 30 * 20, $"{lines.Length} events exported");
                output.WriteLine($"export {exportId}: {lines.Length} events, downloaded through HAProxy");
            }

            // On each live replica, every acknowledged event exactly once.
            var expected = acknowledged.ToHashSet();
            Assert.Equal(acknowledged.Count, expected.Count);
            foreach (var replica in replicas.Skip(1))
            {
                await ClickHouseReplicationTests.AssertEachStoredOnceAsync(replica, expected);
            }
            // Through HAProxy, the nodes that live count them all (a search of any node).
            var (_, found) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "/api/v1/search?indexset=app&limit=0&track_total_hits=true");
            Assert.True(found.GetProperty("total").GetInt64() >= expected.Count);
        }
        finally
        {
            if (haproxy is not null)
            {
                haproxy.Kill(entireProcessTree: true);
                await haproxy.WaitForExitAsync();
                haproxy.Dispose();
            }
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }
        }
    }

    /// <summary>Tasks of the default queue done, from any node (the queues are Redis's).</summary>
    private static async Task<long> DoneAsync(HttpClient http)
    {
        var (_, queues) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "api/v1/queues");
        return queues.GetProperty("queues").EnumerateArray().Where(q => q.GetProperty("name").GetString() == "default").Select(q => q.GetProperty("done").GetInt64()).FirstOrDefault();
    }

    /// <summary>Each server of the <c>logwell</c> backend and its status (UP, DOWN, …), from HAProxy's stats socket.</summary>
    private static Dictionary<string, string> Statuses(string socketPath)
    {
        var statuses = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            socket.Send("show stat\n"u8);
            var text = new StringBuilder();
            var buffer = new byte[65536];
            int read;
            while ((read = socket.Receive(buffer)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
            var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var header = lines[0].TrimStart('#', ' ').Split(',');
            var status = Array.IndexOf(header, "status");
            foreach (var line in lines.Skip(1))
            {
                var cells = line.Split(',');
                if (cells.Length > status && cells[0] == "logwell" && cells[1] is not ("BACKEND" or "FRONTEND"))
                {
                    statuses[cells[1]] = cells[status].Split(' ')[0];
                }
            }
        }
        catch (SocketException)
        {
        }
        return statuses;
    }
}
