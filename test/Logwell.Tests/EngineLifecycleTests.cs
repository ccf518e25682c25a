using Microsoft.Extensions.Time.Testing;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

public sealed class EngineLifecycleTests
{
    private static List<LogEvent> Day(DateTime day, int count, string word) =>
        [.. Enumerable.Range(0, count).Select(i => new LogEvent(day.AddMinutes(i).Ticks, $"{word} event {i}", []))];

    [Fact]
    public async Task RetentionDropsWholeExpiredDaysAndKeepsTheRest()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        // Moving the fake clock on may also wake the engine's own retention pass: the test checks what is left, not who dropped it.
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 64, RetentionInterval = TimeSpan.FromDays(1) };
        await using var engine = LogEngine.Open(options, time: time);
        var (_, _, store) = await engine.CreateAsync("short", 2);
        Assert.NotNull(store);
        await store.AppendAsync(Day(new DateTime(2026, 11, 22, 0, 0, 0, DateTimeKind.Utc), 100, "old"));
        await store.AppendAsync(Day(new DateTime(2026, 11, 25, 0, 0, 0, DateTimeKind.Utc), 100, "recent"));
        await store.FlushAsync();
        Assert.Equal(2, store.Info().Segments);
        Assert.Equal(0, await store.ApplyRetentionAsync());

        // On the 26th with two days of retention, the 22nd has expired and the 25th has not.
        time.SetUtcNow(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        await store.ApplyRetentionAsync();
        Assert.Equal(1, store.Info().Segments);
        Assert.Equal(0, store.Search(new SearchRequest(QueryParser.Parse("old"))).Total);
        Assert.Equal(100, store.Search(new SearchRequest(QueryParser.Parse("recent"))).Total);
        Assert.Single(Directory.GetFiles(Path.Combine(store.Directory, "segments"), "*.lws"));

        // Three days on, the recent day has expired too.
        time.Advance(TimeSpan.FromDays(3));
        await store.ApplyRetentionAsync();
        Assert.Equal((0, 0L), (store.Info().Segments, store.Info().Events));

        // Events already past retention when they arrive are not written to segments at all.
        await store.AppendAsync(Day(new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc), 10, "ancient"));
        await store.FlushAsync();
        Assert.Equal(0, store.Info().Segments);
    }

    [Fact]
    public async Task AnExpiredDayIsGoneForReadsAtOnceWhetherFlushedOrNot()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        await using var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, BlockRows = 64 }, time);
        var (_, _, store) = await engine.CreateAsync("short", 2);
        Assert.NotNull(store);
        // One day in a segment, the next still in the memory table.
        await store.AppendAsync(Day(new DateTime(2026, 11, 22, 0, 0, 0, DateTimeKind.Utc), 10, "flushed"));
        await store.FlushAsync();
        await store.AppendAsync(Day(new DateTime(2026, 11, 23, 0, 0, 0, DateTimeKind.Utc), 10, "unflushed"));
        var seq = store.Search(new SearchRequest(QueryParser.Parse("unflushed"), Limit: 1)).Hits[0].Seq;
        Assert.Equal(20, store.Search(new SearchRequest(MatchAllNode.Instance, Limit: 100)).Total);

        // Two days of retention on the 25th: the 22nd has expired, the 23rd has not.
        time.SetUtcNow(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        Assert.Equal(["unflushed"], store.Search(new SearchRequest(MatchAllNode.Instance, Limit: 100)).Hits.Select(h => h.Message.Split(' ')[0]).Distinct());
        Assert.Equal(new DateTime(2026, 11, 23, 0, 0, 0, DateTimeKind.Utc).Ticks, store.TimeBounds()!.Value.Min);

        // On the 26th the 23rd has expired too, though no flush or retention pass has run since.
        time.SetUtcNow(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        Assert.Equal(0, store.Search(new SearchRequest(MatchAllNode.Instance, Limit: 100)).Total);
        Assert.Equal(0, store.Search(new SearchRequest(QueryParser.Parse("unflushed"), From: new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc).Ticks)).Total);
        Assert.Null(store.TimeBounds());
        Assert.Null(store.FindBySeq(seq));
    }

    [Fact]
    public async Task SmallSegmentsOfADayAreMergedIntoOneAndStaySearchable()
    {
        using var dir = new TempDirectory();
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 64, MergeMinSegments = 4 };
        await using var engine = LogEngine.Open(options, time: new FakeTimeProvider(new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero)));
        var store = await engine.GetOrCreateAsync("merge");
        var day = new DateTime(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc);
        for (var i = 0; i < 4; i++)
        {
            await store.AppendAsync(Day(day.AddHours(i), 50, $"batch{i}"));
            await store.FlushAsync();
        }
        Assert.Equal(1, store.Info().Segments);
        Assert.Equal(200, store.Info().Events);
        Assert.Single(Directory.GetFiles(Path.Combine(store.Directory, "segments"), "*.lws"));
        var all = store.Search(new SearchRequest(MatchAllNode.Instance, Limit: 1000));
        Assert.Equal(200, all.Hits.Count);
        Assert.Equal(50, store.Search(new SearchRequest(QueryParser.Parse("batch2"))).Total);
    }

    [Fact]
    public async Task OrphanedSegmentFilesFromACutShortFlushAreRemovedOnOpen()
    {
        using var dir = new TempDirectory();
        var options = new EngineOptions { DataDirectory = dir.Path };
        // The day after the events: inside the default retention, whatever the date of the run.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero));
        await using (var engine = LogEngine.Open(options, time: time))
        {
            var store = await engine.GetOrCreateAsync("orphans");
            await store.AppendAsync(Day(new DateTime(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc), 10, "kept"));
        }
        var segments = Path.Combine(dir.Path, "indexsets", "orphans", "segments");
        await File.WriteAllTextAsync(Path.Combine(segments, "seg-9999999999.lws.tmp"), "half written");
        await File.WriteAllTextAsync(Path.Combine(segments, "seg-9999999998.lws"), "never in the manifest");
        await using (var engine = LogEngine.Open(options, time: time))
        {
            Assert.True(engine.TryGet("orphans", out var store));
            Assert.Equal(10, store.Search(new SearchRequest(QueryParser.Parse("kept"))).Total);
        }
        Assert.DoesNotContain(Directory.GetFiles(segments), f => f.Contains("99999999", StringComparison.Ordinal));
    }
}
