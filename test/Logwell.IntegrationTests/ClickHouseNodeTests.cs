using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Logwell.Storage.ClickHouse;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// <c>logwell serve</c> with its events in ClickHouse (Debian's 18.16): two nodes over one server answer alike, a
/// change on one reaches the other, and a node whose server does not answer is not ready and acknowledges nothing
/// until it does.
/// </summary>
public sealed class ClickHouseNodeTests(ClickHouseFixture fixture, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<ClickHouseFixture>
{
    private static Dictionary<string, string> Settings(Uri clickHouse, string database) => new()
    {
        ["LOGWELL_LogStore"] = "clickhouse",
        ["LOGWELL_ClickHouseUrl"] = clickHouse.ToString(),
        ["LOGWELL_ClickHouseDatabase"] = database,
    };

    private static async Task<string> DatabaseAsync(Uri clickHouse)
    {
        var database = "logwell_" + Guid.NewGuid().ToString("N");
        using var admin = new ClickHouseHttp(clickHouse);
        await admin.ExecuteAsync($"CREATE DATABASE {database}");
        return database;
    }

    private static Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient http, HttpMethod method, string url, HttpContent? content = null) =>
        HttpApiTests.SendAsync(http, method, url, content);

    private static async Task<long> TotalAsync(LogwellNode node, string indexSet, string query = "")
    {
        var (status, body) = await SendAsync(node.Http, HttpMethod.Get, $"/api/v1/search?indexset={indexSet}&q={Uri.EscapeDataString(query)}&limit=0&track_total_hits=true");
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("total").GetInt64();
    }

    private static async Task WaitReadyAsync(LogwellNode node) =>
        await WorkerProcessTests.WaitForAsync(() => node.Http.GetAsync("/readyz").Result.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), () => node.Http.GetStringAsync("/readyz").Result);

    [SkippableFact]
    public async Task TwoNodesOverOneClickHouseServeTheSameEventsAndIndexSets()
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        var database = await DatabaseAsync(fixture.Server!.Endpoint);
        using var dirA = new TempDirectory();
        using var dirB = new TempDirectory();
        await using var a = await LogwellNode.StartAsync(dirA.Path, env: Settings(fixture.Server.Endpoint, database));
        await using var b = await LogwellNode.StartAsync(dirB.Path, env: Settings(fixture.Server.Endpoint, database));
        await WaitReadyAsync(a);
        await WaitReadyAsync(b);

        // An index set made on one node is there on the other within the catalog's refresh.
        var (status, _) = await SendAsync(a.Http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("""{"name":"app","retention_days":30}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, status);
        await WorkerProcessTests.WaitForAsync(() => SendAsync(b.Http, HttpMethod.Get, "/api/v1/indexsets").Result.Body.GetProperty("indexsets").EnumerateArray().Any(s => s.GetProperty("name").GetString() == "app"),
            TimeSpan.FromSeconds(5), () => "index set app on node B");

        // Native lines on A, Elasticsearch bulk on B: both nodes count every event, and search them alike.
        var now = DateTimeOffset.UtcNow;
        var lines = new StringBuilder();
        for (var i = 0; i < 600; i++)
        {
            lines.Append(CultureInfo($"{{\"@timestamp\":\"{now.AddSeconds(-i):O}\",\"message\":\"request {i} {(i % 3 == 0 ? "failed" : "ok")}\",\"host\":\"web-{i % 4}\",\"status\":{(i % 3 == 0 ? 500 : 200)}}}\n"));
        }
        (status, var ingested) = await SendAsync(a.Http, HttpMethod.Post, "/api/v1/indexsets/app/ingest", new StringContent(lines.ToString(), Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, status);
        var bulk = new StringBuilder();
        for (var i = 0; i < 300; i++)
        {
            bulk.Append("{\"index\":{}}\n").Append(CultureInfo($"{{\"@timestamp\":\"{now.AddSeconds(-i):O}\",\"message\":\"bulk {i} failed\",\"host\":\"db-1\",\"status\":503}}\n"));
        }
        (status, var bulked) = await SendAsync(b.Http, HttpMethod.Post, "/app/_bulk", new StringContent(bulk.ToString(), Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(bulked.GetProperty("errors").GetBoolean(), bulked.ToString());
        foreach (var node in new[] { a, b })
        {
            Assert.Equal(900, await TotalAsync(node, "app"));
            Assert.Equal(500, await TotalAsync(node, "app", "failed"));
            Assert.Equal(200, await TotalAsync(node, "app", "failed AND status:500"));
            Assert.Equal(150, await TotalAsync(node, "app", "host:web-1"));
            Assert.Equal(300, await TotalAsync(node, "app", "status:>=503"));
        }

        // The newest page, then the next one through the cursor taken from the other node.
        (status, var first) = await SendAsync(a.Http, HttpMethod.Get, "/api/v1/search?indexset=app&q=failed&limit=100");
        Assert.Equal(HttpStatusCode.OK, status);
        var cursor = first.GetProperty("next_cursor").GetString();
        (status, var second) = await SendAsync(b.Http, HttpMethod.Get, $"/api/v1/search?indexset=app&q=failed&limit=1000&cursor={Uri.EscapeDataString(cursor!)}");
        Assert.Equal(HttpStatusCode.OK, status);
        var seen = first.GetProperty("hits").EnumerateArray().Concat(second.GetProperty("hits").EnumerateArray()).Select(h => h.GetProperty("message").GetString()).ToList();
        Assert.Equal(500, seen.Count);
        Assert.Equal(500, seen.Distinct().Count());

        // Pipes aggregate over ClickHouse's rows too.
        (status, var table) = await SendAsync(b.Http, HttpMethod.Get, "/api/v1/search?indexset=app&q=" + Uri.EscapeDataString("* | stats count() by host"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["db-1=300", "web-0=150", "web-1=150", "web-2=150", "web-3=150"], table.GetProperty("rows").EnumerateArray().Select(r => $"{r[0].GetString()}={r[1].GetInt64()}"));

        // Deleted on B, gone on A.
        (status, _) = await SendAsync(b.Http, HttpMethod.Delete, "/api/v1/indexsets/app");
        Assert.True(status is HttpStatusCode.OK or HttpStatusCode.NoContent, status.ToString());
        await WorkerProcessTests.WaitForAsync(() => SendAsync(a.Http, HttpMethod.Get, "/api/v1/search?indexset=app").Result.Status == HttpStatusCode.NotFound, TimeSpan.FromSeconds(5), () => "index set app gone on node A");
    }

    [SkippableFact]
    public async Task AnApiMastersWorkersServeEveryEndpointOverClickHouseWithoutAStoreProcess()
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        var database = await DatabaseAsync(fixture.Server!.Endpoint);
        using var dir = new TempDirectory();
        var port = ClickHouseServer.FreePort();
        // No store process: over the embedded engine the workers would answer 502 for want of one.
        await using var master = RoleProcess.Start(["api", "--data", dir.Path, "--urls", $"http://127.0.0.1:{port}", "--workers", "2", "--cheaper", "2", "--cheaper-initial", "2",
            "--max-requests", "0", "--access-log-format", "%(p)s %(r)s %(s)s"], Settings(fixture.Server.Endpoint, database));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        await WorkerProcessTests.WaitForAsync(() =>
        {
            try
            {
                return http.GetAsync("/readyz").Result.StatusCode == HttpStatusCode.OK;
            }
            catch (AggregateException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), () => master.Output);

        var now = DateTimeOffset.UtcNow;
        var lines = string.Concat(Enumerable.Range(0, 300).Select(i => CultureInfo($"{{\"@timestamp\":\"{now.AddSeconds(-i):O}\",\"message\":\"call {i} {(i % 2 == 0 ? "failed" : "ok")}\",\"host\":\"web-{i % 3}\"}}\n")));
        var (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/app/ingest", new StringContent(lines, Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, status);
        var bulk = "{\"index\":{}}\n" + CultureInfo($"{{\"@timestamp\":\"{now:O}\",\"message\":\"bulk failed\",\"host\":\"db-1\"}}\n");
        (status, _) = await SendAsync(http, HttpMethod.Post, "/app/_bulk", new StringContent(bulk, Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, status);
        // The index set the ingest made is in every worker's catalog within its refresh (a second): until then a worker
        // that has not read it answers 404, as another node would. Which worker takes a connection is the kernel's
        // choice, so the probes are many: 6 could all land on one worker.
        await WorkerProcessTests.WaitForAsync(() => Enumerable.Range(0, 30).All(_ =>
        {
            using var probe = new HttpRequestMessage(HttpMethod.Get, "/api/v1/search?indexset=app&limit=0");
            probe.Headers.ConnectionClose = true;
            return http.SendAsync(probe).Result.StatusCode == HttpStatusCode.OK;
        }), TimeSpan.FromSeconds(10), () => master.Output);
        // Each request on a connection of its own, so that both workers take some.
        for (var i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/search?indexset=app&q=failed&limit=0&track_total_hits=true");
            request.Headers.ConnectionClose = true;
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(151, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("total").GetInt64());
        }
        (status, var table) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?indexset=app&q=" + Uri.EscapeDataString("failed | stats count() by host"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["db-1=1", "web-0=50", "web-1=50", "web-2=50"], table.GetProperty("rows").EnumerateArray().Select(r => $"{r[0].GetString()}={r[1].GetInt64()}").Order(StringComparer.Ordinal));
        // The searches were answered in the workers, each a process of its own (the access log names the pid).
        var servedBy = System.Text.RegularExpressions.Regex.Matches(master.Output, @"<(\d+)> GET /api/v1/search\S* HTTP/1\.1 200").Select(m => m.Groups[1].Value).ToHashSet();
        Assert.NotEmpty(servedBy);
        Assert.DoesNotContain(master.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), servedBy);
        output.WriteLine($"searches answered by worker processes {string.Join(", ", servedBy)}");
    }

    [SkippableFact]
    public async Task ATailOnOneNodeShowsWhatAnotherNodeStoresThroughRedis()
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        var redis = RedisServer.Address;
        var database = await DatabaseAsync(fixture.Server!.Endpoint);
        var settings = new Dictionary<string, string>(Settings(fixture.Server.Endpoint, database))
        {
            ["LOGWELL_QueueBackend"] = "redis",
            ["LOGWELL_RedisConnection"] = redis,
            ["LOGWELL_RedisPrefix"] = $"tail-{Guid.NewGuid():N}:",
        };
        using var dirA = new TempDirectory();
        using var dirB = new TempDirectory();
        await using var a = await LogwellNode.StartAsync(dirA.Path, env: settings);
        await using var b = await LogwellNode.StartAsync(dirB.Path, env: settings);
        await WaitReadyAsync(a);
        await WaitReadyAsync(b);

        using var tailClient = new HttpClient { BaseAddress = b.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        using var response = await tailClient.GetAsync("/api/v1/tail?q=" + Uri.EscapeDataString("from-a"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith(": tailing default", await reader.ReadLineAsync());

        // Node A stores a numbered event every quarter second until node B's tail shows one.
        using var stop = new CancellationTokenSource();
        var sent = new ConcurrentDictionary<int, DateTimeOffset>();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                sent[i] = DateTimeOffset.UtcNow;
                var (status, _) = await SendAsync(a.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new StringContent($"{{\"message\":\"from-a {i}\"}}\n", Encoding.UTF8, "application/x-ndjson"));
                Assert.Equal(HttpStatusCode.OK, status);
                await Task.Delay(250);
            }
        });
        var seen = new List<int>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (seen.Count < 3)
        {
            var line = await reader.ReadLineAsync(deadline.Token);
            Assert.NotNull(line);
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var message = JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("message").GetString()!;
                seen.Add(int.Parse(message["from-a ".Length..], System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        var lag = DateTimeOffset.UtcNow - sent[seen[^1]];
        await stop.CancelAsync();
        await writer;
        // In the order node A stored them, each once.
        Assert.Equal(seen.Order(), seen);
        Assert.Equal(seen.Distinct().Count(), seen.Count);
        output.WriteLine($"node B's tail showed node A's events {string.Join(", ", seen)}; the last {lag.TotalMilliseconds:0} ms after it was sent");
    }

    [SkippableFact]
    public async Task ANodeWhoseClickHouseDoesNotAnswerIsNotReadyAndAcknowledgesNothingUntilItDoes()
    {
        Skip.If(!ClickHouseServer.Installed, ClickHouseServer.Missing);
        var port = ClickHouseServer.FreePort();
        var endpoint = new Uri($"http://127.0.0.1:{port}/");
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, env: Settings(endpoint, "default"));

        using (var ready = await node.Http.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains($"ClickHouse at {endpoint}", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var (status, refused) = await SendAsync(node.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new StringContent("{\"message\":\"early\"}\n", Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("no event of this request was stored", refused.ToString(), StringComparison.Ordinal);
        Assert.Contains("does not answer", node.Output, StringComparison.Ordinal);

        await using var server = await ClickHouseServer.StartAsync(port);
        await WaitReadyAsync(node);
        (status, _) = await SendAsync(node.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new StringContent("{\"message\":\"late\"}\n", Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, await TotalAsync(node, "default", "late"));
        Assert.Equal(0, await TotalAsync(node, "default", "early"));
    }

    private static string CultureInfo(FormattableString text) => FormattableString.Invariant(text);
}
