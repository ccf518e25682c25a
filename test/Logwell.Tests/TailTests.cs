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
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path }, TimeProvider.System);
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

public sealed class FindBySeqTests
{
    [Fact]
    public async Task EventsAreFoundByTheirIdInMemoryAndInSegments()
    {
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, BlockRows = 16, MemTableMaxEvents = 50, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        try
        {
            var store = await engine.GetOrCreateAsync("ids");
            var start = new DateTime(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc).Ticks;
            // Out of time order, so sequence numbers and block order differ.
            var events = Enumerable.Range(0, 120).Select(i => new LogEvent(start + (i * 37 % 120) * TimeSpan.TicksPerSecond, $"event {i}", [])).ToList();
            await store.AppendAsync(events[..100]);
            await store.FlushAsync();
            await store.AppendAsync(events[100..]);
            foreach (var evt in events)
            {
                Assert.Equal(evt.Message, store.FindBySeq(evt.Seq)?.Message);
            }
            Assert.Null(store.FindBySeq(events.Max(e => e.Seq) + 1));
        }
        finally
        {
            await engine.DisposeAsync();
        }
    }
}
