using Logwell.Core.Events;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

public sealed class TailTests
{
    private static List<LogEvent> Batch(string message) => [new LogEvent(DateTime.UtcNow.Ticks, message, [])];

    [Fact]
    public async Task SubscribersGetAcknowledgedBatchesInOrderAndASlowOneIsCutOff()
    {
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path });
        try
        {
            var store = await engine.GetOrCreateAsync("tail");
            using var reader = store.Tail(capacity: 100);
            using var slow = store.Tail(capacity: 2);
            for (var i = 0; i < 5; i++)
            {
                await store.AppendAsync(Batch($"event {i}"));
            }

            var seen = new List<string>();
            while (seen.Count < 5 && reader.Batches.TryRead(out var batch))
            {
                seen.AddRange(batch.Select(e => e.Message));
            }
            Assert.Equal(Enumerable.Range(0, 5).Select(i => $"event {i}"), seen);
            Assert.False(reader.Overflowed);

            // The slow subscriber kept what fitted, then was cut off: its queue ends instead of growing.
            Assert.True(slow.Overflowed);
            var kept = new List<string>();
            await foreach (var batch in slow.Batches.ReadAllAsync())
            {
                kept.AddRange(batch.Select(e => e.Message));
            }
            Assert.Equal(["event 0", "event 1"], kept);

            // A closed index set ends every tail.
            await engine.DisposeAsync();
            Assert.False(await reader.Batches.WaitToReadAsync());
        }
        finally
        {
            await engine.DisposeAsync();
        }
    }
}
