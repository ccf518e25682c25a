using System.Collections.Concurrent;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage;
using Logwell.Storage.ClickHouse;
using Logwell.Storage.Engine;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// The ClickHouse log store over three replicas of Debian's 18.16 coordinated by ZooKeeper, writing with a quorum of
/// two: a replica killed mid-ingest stops neither writes nor reads, every acknowledged event is there exactly once,
/// and the replica that comes back catches up.
/// </summary>
public sealed class ClickHouseReplicationTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [SkippableFact]
    public async Task KillingAReplicaMidIngestLosesAndDuplicatesNoAcknowledgedEvent()
    {
        Skip.If(!ClickHouseServer.Installed, ClickHouseServer.Missing);
        Skip.If(!ZooKeeperServer.Installed, ZooKeeperServer.Missing);
        await using var zooKeeper = await ZooKeeperServer.StartAsync();
        var replicas = new List<ClickHouseServer>();
        try
        {
            for (var r = 1; r <= 3; r++)
            {
                replicas.Add(await ClickHouseServer.StartAsync(zooKeeper: zooKeeper.Address, replica: $"r{r}"));
            }
            var options = new ClickHouseStoreOptions([.. replicas.Select(r => r.Endpoint)])
            {
                ReplicationPath = "/clickhouse/tables/logwell-test",
                InsertQuorum = 2,
                InsertQuorumTimeout = TimeSpan.FromSeconds(3),
                DefaultRetentionDays = 30,
            };
            await using var store = await ClickHouseLogStore.OpenAsync(options, TimeProvider.System);
            var set = await ((ILogStore)store).GetOrCreateAsync("app");

            var acknowledged = new ConcurrentBag<long>();
            var failed = 0;
            var next = 0L;
            var batchesAfterKill = 0;
            var killed = new TaskCompletionSource();
            async Task WriteAsync()
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
                while (DateTime.UtcNow < deadline && Volatile.Read(ref batchesAfterKill) < 40)
                {
                    var ids = Enumerable.Range(0, 50).Select(_ => Interlocked.Increment(ref next)).ToList();
                    var now = DateTimeOffset.UtcNow.UtcTicks;
                    var events = ids.Select(id => new LogEvent(now, $"event {id}", [new Field("n", FieldValue.FromLong(id))])).ToList();
                    try
                    {
                        await set.AppendAsync(events);
                        foreach (var id in ids)
                        {
                            acknowledged.Add(id);
                        }
                        if (killed.Task.IsCompleted)
                        {
                            Interlocked.Increment(ref batchesAfterKill);
                        }
                    }
                    catch (IOException)
                    {
                        // Not acknowledged: a client would send it again.
                        Interlocked.Increment(ref failed);
                    }
                }
            }
            var writers = new[] { Task.Run(WriteAsync), Task.Run(WriteAsync) };
            await WorkerProcessTests.WaitForAsync(() => acknowledged.Count >= 1_000, TimeSpan.FromSeconds(60), () => $"{acknowledged.Count} acknowledged before the kill");
            // The replica every statement goes to first.
            await replicas[0].KillAsync();
            killed.SetResult();
            await Task.WhenAll(writers);
            Assert.True(Volatile.Read(ref batchesAfterKill) >= 40, $"only {batchesAfterKill} batches acknowledged after the kill ({failed} failed)");
            output.WriteLine($"{acknowledged.Count} events acknowledged in batches of 50, {failed} batches refused (none acknowledged), {batchesAfterKill} acknowledged after the kill");

            // Reads go on with the replica down.
            var total = (await set.SearchAsync(new SearchRequest(MatchAllNode.Instance, Limit: 0, TrackTotalHitsUpTo: long.MaxValue))).Total;
            Assert.True(total >= acknowledged.Count, $"{total} events found, {acknowledged.Count} acknowledged");

            // Back, the replica catches up; on each replica every acknowledged event is there exactly once.
            await replicas[0].LaunchAsync();
            var expected = acknowledged.ToHashSet();
            foreach (var replica in replicas)
            {
                await AssertEachStoredOnceAsync(replica, expected);
            }
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Waits until the replica holds every event of <paramref name="expected"/> (their field <c>n</c>) in index set
    /// <c>app</c>, then checks that none of them is there twice.
    /// </summary>
    internal static async Task AssertEachStoredOnceAsync(ClickHouseServer replica, HashSet<long> expected)
    {
        using var client = new ClickHouseHttp(replica.Endpoint);
        Dictionary<long, long> counts = [];
        await WorkerProcessTests.WaitForAsync(() =>
        {
            counts = [];
            foreach (var row in client.QueryAsync($"SELECT field_longs[indexOf(field_names, 'n')] AS n, count() AS c FROM {ClickHouseEvents.Table("app")} GROUP BY n").ToBlockingEnumerable())
            {
                counts[row.GetProperty("n").GetInt64()] = row.GetProperty("c").GetInt64();
            }
            return expected.All(counts.ContainsKey);
        }, TimeSpan.FromSeconds(60), () => $"{replica.Endpoint}: {expected.Count(id => !counts.ContainsKey(id))} acknowledged events missing");
        var duplicated = counts.Where(c => c.Value > 1 && expected.Contains(c.Key)).Select(c => c.Key).ToList();
        Assert.True(duplicated.Count == 0, $"{replica.Endpoint}: acknowledged events stored more than once: {string.Join(", ", duplicated.Take(20))}");
    }
}
