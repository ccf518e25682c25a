using System.Net;
using System.Text.Json;
using Logwell.Jobs;

namespace Logwell.IntegrationTests;

/// <summary><c>/livez</c>, <c>/readyz</c> and <c>/healthz</c> of a real node, with a component made to fail and recover.</summary>
public sealed class HealthTests
{
    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, string url, string? accept = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (accept is not null)
        {
            request.Headers.Accept.ParseAdd(accept);
        }
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HealthzTurns503WhenAQueueIsOverItsBacklogAndBackTo200WhenItDrains()
    {
        using var dir = new TempDirectory();
        // No worker in the node, so the test decides the backlog; a backlog of 5 tasks is too many.
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string>
        {
            ["LOGWELL_ServeWorkerQueues"] = "",
            ["LOGWELL_HealthQueueBacklog"] = "5",
        });
        Assert.Equal((HttpStatusCode.OK, "[+]process ok: answering\nlivez check passed\n"), await GetAsync(node.Http, "/livez"));
        var (readyStatus, ready) = await GetAsync(node.Http, "/readyz");
        Assert.Equal(HttpStatusCode.OK, readyStatus);
        Assert.Matches(@"^\[\+\]log-store ok: .*\n\[\+\]metadata ok: .*\n\[\+\]queues ok: .*\nreadyz check passed\n$", ready);
        await WorkerProcessTests.WaitForAsync(() => GetAsync(node.Http, "/healthz").Result.Status == HttpStatusCode.OK, TimeSpan.FromSeconds(30), () => GetAsync(node.Http, "/healthz").Result.Body);
        var (_, healthy) = await GetAsync(node.Http, "/healthz");
        Assert.Matches(@"^\[\+\]log-store ok: \d+ MiB free, no write-ahead log backlog\n\[\+\]metadata ok: 0 exports in progress\n\[\+\]queues ok: .*\n\[\+\]registry ok: registered as \S+:\d+\n\[\+\]scheduler ok: active: serve@\S+\nhealthz check passed\n$", healthy);

        await using var queue = new SqliteTaskQueue(Path.Combine(dir.Path, "tasks.db"), TimeProvider.System);
        for (var i = 0; i < 5; i++)
        {
            await queue.EnqueueAsync(new TaskRequest("diag.noop", "{}", "export"));
        }
        var (status, body) = await GetAsync(node.Http, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("[-]queues failed: export has 5 pending (threshold 5)\n", body, StringComparison.Ordinal);
        Assert.EndsWith("healthz check failed\n", body, StringComparison.Ordinal);
        // Leaving the failing component out, or asking for the others only, passes.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(node.Http, "/healthz?exclude=queues")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(node.Http, "/healthz?include=log-store&include=metadata")).Status);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(node.Http, "/healthz?include=queues,scheduler")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await GetAsync(node.Http, "/healthz?exclude=etcd")).Status);
        // Ready still: the queues answer, they are only behind.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(node.Http, "/readyz")).Status);

        var (jsonStatus, json) = await GetAsync(node.Http, "/healthz", "application/json");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, jsonStatus);
        var root = JsonDocument.Parse(json).RootElement;
        Assert.Equal("unhealthy", root.GetProperty("status").GetString());
        var components = root.GetProperty("components").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("status").GetString());
        Assert.Equal(new Dictionary<string, string?> { ["log-store"] = "healthy", ["metadata"] = "healthy", ["queues"] = "unhealthy", ["registry"] = "healthy", ["scheduler"] = "healthy" }, components);

        // The backlog drains: healthy again.
        while (await queue.LeaseAsync(["export"], "test", 10, TimeSpan.FromMinutes(1)) is { Count: > 0 } leased)
        {
            foreach (var task in leased)
            {
                Assert.True(await queue.CompleteAsync(task));
            }
        }
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(node.Http, "/healthz")).Status);
    }

    [Fact]
    public async Task MetricsCountIngestQueriesTasksAndQueuesInPrometheusText()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var lines = string.Concat(Enumerable.Range(0, 250).Select(i => $$"""{"message":"event {{i}}","level":"{{(i % 5 == 0 ? "ERROR" : "INFO")}}"}""" + "\n"));
        await HttpApiTests.IngestAsync(node.Http, "metered", lines);
        await HttpApiTests.IngestAsync(node.Http, "metered", lines);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(node.Http, "/api/v1/search?indexset=metered&q=level:ERROR")).Status);
        var (created, export) = await HttpApiTests.SendAsync(node.Http, HttpMethod.Post, "/api/v1/exports", new StringContent("""{"indexset": "metered"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, created);
        await WorkerProcessTests.WaitForAsync(() => HttpApiTests.SendAsync(node.Http, HttpMethod.Get, $"/api/v1/exports/{export.GetProperty("id").GetString()}").Result.Body.GetProperty("state").GetString() == "done", TimeSpan.FromSeconds(60), () => node.Output);

        var (status, metrics) = await GetAsync(node.Http, "/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("logwell_storage_ingest_events{indexset=\"metered\"} 500\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"logwell_server_ingest_bytes{{indexset=\"metered\"}} {2 * System.Text.Encoding.UTF8.GetByteCount(lines)}\n", metrics, StringComparison.Ordinal);
        Assert.Matches(@"logwell_server_query_duration_count\{kind=""search""\} [1-9]", metrics);
        Assert.Contains("logwell_jobs_tasks{name=\"export.run\",outcome=\"completed\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("logwell_queue_tasks{queue=\"export\",state=\"done\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Matches(@"http_request_duration_seconds_count\{code=""200"",method=""GET"",controller="""",action="""",endpoint=""/api/v1/search""\} 1", metrics);
        Assert.Matches(@"(?m)^dotnet_total_memory_bytes \d", metrics);
        Assert.Matches(@"(?m)^dotnet_collection_count_total\{generation=""0""\} \d", metrics);
        Assert.Matches(@"(?m)^process_cpu_seconds_total \d", metrics);
    }

    [Fact]
    public async Task NodesRegisterWhenReadyTurnCriticalWhenSilentAndAreRemovedOrDeregistered()
    {
        using var dir = new TempDirectory();
        // Two nodes of one machine sharing a registry, with heartbeats every second.
        var settings = new Dictionary<string, string>
        {
            ["LOGWELL_RegistryFile"] = Path.Combine(dir.Path, "registry.db"),
            ["LOGWELL_RegistryHeartbeatSeconds"] = "1",
            ["LOGWELL_RegistryCriticalSeconds"] = "3",
            ["LOGWELL_RegistryRemoveSeconds"] = "6",
        };
        await using var first = await LogwellNode.StartAsync(Path.Combine(dir.Path, "a"), env: new Dictionary<string, string>(settings) { ["LOGWELL_NodeId"] = "node-a", ["LOGWELL_NodeTags__0"] = "eu" });
        await using var second = await LogwellNode.StartAsync(Path.Combine(dir.Path, "b"), env: new Dictionary<string, string>(settings) { ["LOGWELL_NodeId"] = "node-b" });
        async Task<Dictionary<string, JsonElement>> NodesAsync()
        {
            var (status, body) = await HttpApiTests.SendAsync(first.Http, HttpMethod.Get, "/api/v1/nodes");
            Assert.Equal(HttpStatusCode.OK, status);
            return body.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("id").GetString()!);
        }
        await WorkerProcessTests.WaitForAsync(() => NodesAsync().Result.Count == 2, TimeSpan.FromSeconds(30), () => "");
        var nodes = await NodesAsync();
        Assert.Equal(("127.0.0.1", first.BaseAddress.Port, "serve", "passing"), (nodes["node-a"].GetProperty("address").GetString(), nodes["node-a"].GetProperty("port").GetInt32(), nodes["node-a"].GetProperty("role").GetString(), nodes["node-a"].GetProperty("health").GetString()));
        Assert.Equal(["eu"], nodes["node-a"].GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("passing", nodes["node-b"].GetProperty("health").GetString());
        // Each node's health components come with its heartbeats: node-a sees node-b's.
        await WorkerProcessTests.WaitForAsync(() => NodesAsync().Result["node-b"].GetProperty("checks").GetArrayLength() > 0, TimeSpan.FromSeconds(30), () => "");
        var components = (await NodesAsync())["node-b"].GetProperty("checks").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("status").GetString());
        Assert.Equal(["log-store", "metadata", "queues", "registry", "scheduler"], components.Keys.Order());
        Assert.Equal("healthy", components["log-store"]);
        var (code, stdout, _) = await CliTests.RunAsync(first, null, "nodes");
        Assert.Equal(0, code);
        Assert.Matches(@"(?m)^node-b\s+127\.0\.0\.1:\d+\s+serve\s+\S+\s+passing\s+\S+$", stdout);

        // Killed: no deregistration, so its heartbeats just stop.
        await second.KillAsync();
        await WorkerProcessTests.WaitForAsync(() => NodesAsync().Result.GetValueOrDefault("node-b").ValueKind == JsonValueKind.Object && NodesAsync().Result["node-b"].GetProperty("health").GetString() == "critical",
            TimeSpan.FromSeconds(30), () => "");
        await WorkerProcessTests.WaitForAsync(() => !NodesAsync().Result.ContainsKey("node-b"), TimeSpan.FromSeconds(30), () => first.Output);
        Assert.Contains("Registry: removed node node-b", first.Output, StringComparison.Ordinal);

        // Stopped: it deregisters on the way out.
        await using var third = await LogwellNode.StartAsync(Path.Combine(dir.Path, "c"), env: new Dictionary<string, string>(settings) { ["LOGWELL_NodeId"] = "node-c" });
        await WorkerProcessTests.WaitForAsync(() => NodesAsync().Result.ContainsKey("node-c"), TimeSpan.FromSeconds(30), () => "");
        Assert.Equal(0, await third.StopAsync());
        Assert.False((await NodesAsync()).ContainsKey("node-c"));
    }
}
