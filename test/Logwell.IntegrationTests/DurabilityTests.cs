using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>Acknowledged means durable: kill -9, graceful stops, restarts.</summary>
public sealed class DurabilityTests
{
    /// <summary>Memory tables written out every 3,000 events: segments and logs change hands while a test runs.</summary>
    internal static readonly Dictionary<string, string> SmallMemTables = new() { ["LOGWELL_MEMTABLEMAXEVENTS"] = "3000", ["LOGWELL_BLOCKROWS"] = "512" };

    [Fact]
    public async Task KilledNodeLosesNoAcknowledgedEventAndDuplicatesNone()
    {
        using var dir = new TempDirectory();
        var acknowledged = new ConcurrentBag<long>();
        await using (var node = await LogwellNode.StartAsync(dir.Path, env: SmallMemTables))
        {
            using var stop = new CancellationTokenSource();
            var clients = Enumerable.Range(0, 3).Select(client => Task.Run(async () =>
            {
                for (var batch = 0; batch < 2000 && !stop.IsCancellationRequested; batch++)
                {
                    var first = (client * 1_000_000L) + (batch * 100L);
                    var body = string.Concat(Enumerable.Range(0, 100).Select(i => $"{{\"message\":\"durable event {first + i}\",\"n\":{first + i}}}\n"));
                    try
                    {
                        using var content = new StringContent(body, Encoding.UTF8, "application/x-ndjson");
                        using var response = await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content);
                        if (response.StatusCode != HttpStatusCode.OK)
                        {
                            continue;
                        }
                        using var result = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                        Assert.Equal(100, result.RootElement.GetProperty("accepted").GetInt32());
                        for (var i = 0; i < 100; i++)
                        {
                            acknowledged.Add(first + i);
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                    {
                        return; // The node is gone; this batch was never acknowledged.
                    }
                }
            })).ToList();

            // Let ingest run through several memory-table flushes, then pull the plug mid-stream.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (acknowledged.Count < 20_000 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
            await node.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(clients);
        }
        Assert.True(acknowledged.Count >= 1000, $"only {acknowledged.Count} events were acknowledged before the kill");

        await using var restarted = await LogwellNode.StartAsync(dir.Path);
        var found = await AllValuesOfN(restarted.Http, "durable");
        Assert.Equal(found.Count, found.Distinct().Count());
        var missing = acknowledged.Except(found).Take(5).ToList();
        Assert.True(missing.Count == 0, $"acknowledged events missing after kill -9: {string.Join(", ", missing)} (of {acknowledged.Count} acknowledged, {found.Count} found)");
    }

    [Fact]
    public async Task AStoreThatCannotKeepUpAnswers429AndKeepsExactlyWhatItAcknowledged()
    {
        using var dir = new TempDirectory();
        // Tiny memory tables make every request wait for a flush; a small queue bound makes waiting requests visible.
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string>
        {
            ["LOGWELL_MEMTABLEMAXEVENTS"] = "64",
            ["LOGWELL_BLOCKROWS"] = "64",
            ["LOGWELL_MAXQUEUEDEVENTS"] = "2000",
        });
        var acknowledged = new ConcurrentBag<long>();
        var refused = 0;
        var retryAfter = new ConcurrentBag<string>();
        await Parallel.ForAsync(0, 6, async (sender, ct) =>
        {
            for (var batch = 0; batch < 15; batch++)
            {
                var first = (sender * 100 + batch) * 3000L;
                using var content = new StringContent(string.Concat(Enumerable.Range(0, 3000).Select(i => $"{{\"message\":\"pressure event\",\"n\":{first + i}}}\n")), Encoding.UTF8, "application/x-ndjson");
                using var response = await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content, ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    for (var i = 0; i < 3000; i++)
                    {
                        acknowledged.Add(first + i);
                    }
                }
                else
                {
                    Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                    Interlocked.Increment(ref refused);
                    retryAfter.Add(response.Headers.RetryAfter?.ToString() ?? "");
                }
            }
        });
        Assert.True(refused > 0, "no request was refused: the store kept up");
        Assert.All(retryAfter, value => Assert.Equal("1", value));
        Assert.NotEmpty(acknowledged);
        var found = await AllValuesOfN(node.Http, "pressure");
        Assert.Equal(acknowledged.Order(), found.Order());
    }

    [Fact]
    public async Task GracefulStopFlushesAndRestartKeepsEverything()
    {
        using var dir = new TempDirectory();
        await using (var node = await LogwellNode.StartAsync(dir.Path, env: SmallMemTables))
        {
            for (var batch = 0; batch < 10; batch++)
            {
                await HttpApiTests.IngestAsync(node.Http, "default", string.Concat(Enumerable.Range(0, 1000).Select(i => $"{{\"message\":\"kept event\",\"n\":{batch * 1000 + i}}}\n")));
            }
            Assert.Equal(0, await node.StopAsync());
            Assert.Contains("stopped", node.Output, StringComparison.Ordinal);
        }
        var indexDir = Path.Combine(dir.Path, "indexsets", "default");
        Assert.Empty(Directory.GetFiles(indexDir, "wal-*.log"));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(indexDir, "segments"), "*.lws"));

        await using var restarted = await LogwellNode.StartAsync(dir.Path);
        var found = await AllValuesOfN(restarted.Http, "kept");
        Assert.Equal(Enumerable.Range(0, 10_000).Select(i => (long)i).ToHashSet(), found.ToHashSet());
        Assert.Equal(10_000, found.Count);
    }

    [Fact]
    public async Task TornWriteAheadLogTailIsCutAndAcknowledgedEventsStay()
    {
        using var dir = new TempDirectory();
        await using (var node = await LogwellNode.StartAsync(dir.Path))
        {
            await HttpApiTests.IngestAsync(node.Http, "default", string.Concat(Enumerable.Range(0, 50).Select(i => $"{{\"message\":\"wal event\",\"n\":{i}}}\n")));
            await node.KillAsync();
        }
        var wal = Directory.GetFiles(Path.Combine(dir.Path, "indexsets", "default"), "wal-*.log").Single(f => new FileInfo(f).Length > 8);
        await using (var stream = new FileStream(wal, FileMode.Append))
        {
            stream.Write([0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
        }
        await using var restarted = await LogwellNode.StartAsync(dir.Path);
        Assert.Contains("torn or corrupt tail", restarted.Output, StringComparison.Ordinal);
        var found = await AllValuesOfN(restarted.Http, "wal");
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), found.Order());
    }

    /// <summary>Every value of field n among events matching the query, paging with the cursor over NDJSON.</summary>
    internal static async Task<List<long>> AllValuesOfN(HttpClient http, string query)
    {
        var values = new List<long>();
        string? cursor = null;
        do
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/search?q={query}&limit=10000" + (cursor is null ? "" : "&cursor=" + cursor));
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var hit = JsonDocument.Parse(line);
                values.Add(hit.RootElement.GetProperty("fields").GetProperty("n").GetInt64());
            }
            cursor = response.Headers.TryGetValues("X-Logwell-Next-Cursor", out var next) ? next.Single() : null;
        }
        while (cursor is not null);
        return values;
    }
}
