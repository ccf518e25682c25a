using Microsoft.Extensions.Time.Testing;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>
/// The engine's side of the archive: which days are due, dropping them only while they are the live segments, and an
/// index set made of archived segments that serves and deletes itself when its time is over.
/// </summary>
public sealed class ArchiveEngineTests
{
    [Fact]
    public async Task DueDaysAreDroppedWholeAndARestoredIndexSetServesUntilItExpires()
    {
        using var dir = new TempDirectory();
        var first = new DateTime(2026, 11, 10, 0, 0, 0, DateTimeKind.Utc);
        var time = new FakeTimeProvider(new DateTimeOffset(first.AddDays(6).AddHours(3)));
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 16, MemTableMaxEvents = 1_000, RetentionInterval = TimeSpan.FromDays(1) };
        await using var engine = LogEngine.Open(options, time);
        var store = await engine.GetOrCreateAsync("app");
        // 100 events on each of the six days before "now".
        for (var day = 0; day < 6; day++)
        {
            await store.AppendAsync([.. Enumerable.Range(0, 100).Select(i => new LogEvent(first.AddDays(day).AddMinutes(i).Ticks, $"ev {(day * 100) + i}", []))]);
        }
        await store.FlushAsync();
        Assert.Empty(store.DaysToArchive());

        Assert.Equal("archive_after_days must be at least 1 and less than the index set's retention_days (7), not 7", (await engine.ChangeAsync("app", null, true, 7)).Error);
        var (found, error, info) = await engine.ChangeAsync("app", null, true, 3);
        Assert.True(found);
        Assert.Null(error);
        Assert.Equal(3, info!.ArchiveAfterDays);
        // Retention may not come down to the archive's days; both at once are checked against each other.
        Assert.Equal("retention_days must be more than archive_after_days (3): lower that first, or stop archiving", (await engine.SetRetentionAsync("app", 3)).Error);
        Assert.Null((await engine.ChangeAsync("app", 30, true, 10)).Error);
        Assert.Null((await engine.ChangeAsync("app", 7, true, 3)).Error);
        // Whole days ending at least three days ago: the 10th, 11th and 12th (the 13th ends 2 days 3 hours ago).
        Assert.Equal(["2026-11-10", "2026-11-11", "2026-11-12"], store.DaysToArchive());

        var (files, entries) = await store.OpenDayAsync("2026-11-11");
        var staging = engine.RestoreStaging("copy");
        Directory.CreateDirectory(Path.Combine(staging, "segments"));
        using (files)
        {
            foreach (var (path, content, length) in files.Files)
            {
                await using var output = File.Create(Path.Combine(staging, path));
                var buffer = new byte[length ?? content.Length];
                await content.ReadExactlyAsync(buffer);
                await output.WriteAsync(buffer);
            }
        }
        // Only while every named segment is live: a name that is not (merged away meanwhile) drops nothing.
        Assert.False(await store.DropArchivedAsync([.. entries.Keys, "seg-9999999999.lws"]));
        Assert.True(await store.DropArchivedAsync([.. entries.Keys]));
        Assert.Equal(["2026-11-10", "2026-11-12"], store.DaysToArchive());
        var left = store.Search(new SearchRequest(QueryParser.Parse("ev"), Limit: 10_000)).Hits;
        Assert.Equal(500, left.Count);
        Assert.DoesNotContain(left, h => h.Timestamp >= first.AddDays(1).Ticks && h.Timestamp < first.AddDays(2).Ticks);

        var expires = time.GetUtcNow().AddDays(2);
        var (outcome, _) = await engine.AdoptRestoredAsync("copy", [.. entries.Values], new RestoredRange("app", new DateOnly(2026, 11, 11), new DateOnly(2026, 11, 11), expires));
        Assert.Equal(CreateOutcome.Created, outcome);
        Assert.False(Directory.Exists(staging));
        Assert.True(engine.TryGet("copy", out var copy));
        var restored = copy.Search(new SearchRequest(QueryParser.Parse("ev"), Limit: 10_000)).Hits;
        Assert.Equal(Enumerable.Range(100, 100).Select(i => $"ev {i}"), restored.Select(h => h.Message).Order(StringComparer.Ordinal).OrderBy(m => m.Length));
        Assert.Equal("app", copy.Restored!.From);
        Assert.Equal(CreateOutcome.AlreadyExists, (await engine.AdoptRestoredAsync("copy", [], copy.Restored)).Outcome);
        Assert.NotNull((await engine.ChangeAsync("copy", null, true, 1)).Error);

        // Kept across a restart, deleted by the retention pass once its time is over.
        await engine.ApplyRetentionAsync();
        Assert.True(engine.TryGet("copy", out _));
        time.Advance(TimeSpan.FromDays(2));
        await engine.ApplyRetentionAsync();
        Assert.False(engine.TryGet("copy", out _));
        // (The engine's own retention loop, woken by the clock, may be the one still deleting it.)
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (Directory.Exists(Path.Combine(dir.Path, "indexsets", "copy")))
        {
            await Task.Delay(10, timeout.Token);
        }
    }

    [Fact]
    public async Task ARestoreCutShortIsDiscardedWhenTheEngineOpens()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 20, 0, 0, 0, TimeSpan.Zero));
        var options = new EngineOptions { DataDirectory = dir.Path };
        string staging;
        await using (var engine = LogEngine.Open(options, time))
        {
            staging = engine.RestoreStaging("half");
            Directory.CreateDirectory(Path.Combine(staging, "segments"));
            await File.WriteAllTextAsync(Path.Combine(staging, "segments", "seg-0000000001.lws"), "part of a segment");
        }
        await using (var engine = LogEngine.Open(options, time))
        {
            Assert.False(Directory.Exists(staging));
            Assert.Equal(["default"], engine.Names());
        }
    }
}
