using System.Net;
using Logwell.Jobs;
using static Logwell.IntegrationTests.HttpApiTests;

namespace Logwell.IntegrationTests;

/// <summary>The node's task queues, filled by another process (this one) through the shared queue file.</summary>
public sealed class QueueTests
{
    [Fact]
    public async Task QueuesShowWhatOtherProcessesEnqueuedAndDeadTasksCanBeRetriedOrPurged()
    {
        using var dir = new TempDirectory();
        // No worker in the node: the tasks stay where this test puts them.
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string> { ["LOGWELL_ServeWorkerQueues"] = "" });
        await using (var queue = new SqliteTaskQueue(Path.Combine(dir.Path, "tasks.db"), TimeProvider.System))
        {
            for (var i = 0; i < 3; i++)
            {
                await queue.EnqueueAsync(new TaskRequest("export", $"{{\"n\":{i}}}", "export") { MaxRetries = 0 });
            }
            await queue.EnqueueAsync(new TaskRequest("report", "{}") { RunAt = DateTimeOffset.UtcNow.AddHours(1) });
            var leased = Assert.Single(await queue.LeaseAsync(["export"], "test", 1, TimeSpan.FromSeconds(30)));
            Assert.True(await queue.FailAsync(leased, "disk full"));
        }

        var (status, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/queues");
        Assert.Equal(HttpStatusCode.OK, status);
        var queues = found.GetProperty("queues").EnumerateArray().ToDictionary(q => q.GetProperty("name").GetString()!);
        Assert.Equal((2, 1, 0), (queues["export"].GetProperty("pending").GetInt32(), queues["export"].GetProperty("dead").GetInt32(), queues["export"].GetProperty("running").GetInt32()));
        Assert.Equal(1, queues["default"].GetProperty("delayed").GetInt32());
        Assert.True(queues["export"].GetProperty("oldest_pending_seconds").GetDouble() >= 0);

        var (code, stdout, stderr) = await CliTests.RunAsync(node, null, "queues");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"(?m)^export\s+2\s+0\s+0\s+0\s+1\s+0\s+0\s+\S+s$", stdout);
        // The node's own scheduler holds the lease.
        Assert.Matches(@"(?m)^scheduler: serve@\S+ \(lease token 1\)$", stdout);
        (code, stdout, _) = await CliTests.RunAsync(node, null, "queues", "retry-dead", "export");
        Assert.Equal(0, code);
        Assert.Contains("1 dead tasks of export retried", stdout, StringComparison.Ordinal);
        (_, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/queues");
        var export = found.GetProperty("queues").EnumerateArray().Single(q => q.GetProperty("name").GetString() == "export");
        Assert.Equal((3, 0), (export.GetProperty("pending").GetInt32(), export.GetProperty("dead").GetInt32()));
        (code, stdout, _) = await CliTests.RunAsync(node, null, "queues", "purge-dead", "export");
        Assert.Contains("0 dead tasks of export purged", stdout, StringComparison.Ordinal);
    }
}
