using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Storage.Engine;
using Logwell.Storage.Querying;

namespace Logwell.Tests;

/// <summary>
/// A data directory written by an earlier release, checked in under <c>Fixtures/</c>, opens and answers as it did: the
/// on-disk formats change only with a version, and what an earlier version wrote is read or upgraded.
/// </summary>
public sealed class DataDirectoryUpgradeTests
{
    /// <summary>
    /// Each fixture holds the index set <c>app</c> with merged and unmerged segments over two days, and the events after
    /// them in its write-ahead log only: <c>datadir-v4</c> written by segment format 4 and write-ahead log
    /// <c>LWWAL001</c> (2026-12-07), <c>datadir-v6</c> by segment format 6 (blocks with their text bounds) and the same log.
    /// </summary>
    public static TheoryData<string> Fixtures => new() { "datadir-v4", "datadir-v6" };

    // A fixed day: the checked-in fixture holds these very events, and its index set keeps them for 100 years.
    private static readonly DateTimeOffset Day = new(2026, 11, 20, 0, 0, 0, TimeSpan.Zero);

    /// <summary>The events of the fixture, in the order they were appended: the first 1,500 in segments, the rest in the log.</summary>
    internal static List<LogEvent> Events()
    {
        string[] levels = ["INFO", "INFO", "INFO", "WARN", "ERROR"];
        string[] users = ["alice", "bob", "carol", "dave", "erin"];
        var events = new List<LogEvent>();
        for (var i = 0; i < 1_800; i++)
        {
            var message = (i % 4) switch
            {
                0 => $"GET /api/orders/{i % 97} answered {(i % 5 == 4 ? 502 : 200)} in {i % 250 + 3} ms",
                1 => $"Accepted password for {users[i % users.Length]} from 10.0.{i % 7}.{i % 250} port {40000 + i} ssh2",
                2 => $"connection reset by peer while calling bank gateway attempt {i % 3}",
                _ => $"disk /dev/sd{(char)('a' + i % 4)} is {80 + i % 20}% full",
            };
            Field[] fields =
            [
                new("level", FieldValue.FromString(levels[i % levels.Length])),
                new("host", FieldValue.FromString($"web-{i % 3}")),
                new("latency", FieldValue.FromLong(i % 250 + 3)),
                .. i % 10 == 0 ? [new Field("retry", FieldValue.True)] : Array.Empty<Field>(),
            ];
            events.Add(new LogEvent(Day.AddDays(i < 900 ? 0 : 1).AddSeconds(i % 900 * 60).UtcTicks, message, fields));
        }
        return events;
    }

    /// <summary>
    /// How the fixture was written: with LOGWELL_WRITE_FIXTURE=DIR it is written there (to check in before a format
    /// changes); otherwise into a scratch directory, which today's code must read as it reads the checked-in one.
    /// </summary>
    [Fact]
    public async Task TheFixturesWriterMakesWhatTodaysCodeReads()
    {
        using var scratch = new TempDirectory();
        var target = Environment.GetEnvironmentVariable("LOGWELL_WRITE_FIXTURE") is { Length: > 0 } named ? named : scratch.Path;
        using (var dir = new TempDirectory())
        {
            var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 128, MergeMinSegments = 2, DefaultRetentionDays = 36_500 };
            await using var engine = LogEngine.Open(options, TimeProvider.System);
            var store = await engine.GetOrCreateAsync("app");
            var events = Events();
            for (var start = 0; start < 1_500; start += 250)
            {
                await store.AppendAsync(events[start..(start + 250)]);
                await store.FlushAsync();
            }
            store.RequestMerge();
            for (var waited = 0; store.Info().Segments > 4 && waited < 300; waited++)
            {
                await Task.Delay(100);
            }
            Assert.True(store.Info().Segments <= 4, "the merges did not run");
            await store.AppendAsync(events[1_500..]);
            // Copied while open: segments never change once written, the log is fsynced, the manifest replaced whole.
            CopyDirectory(dir.Path, target);
        }
        // Read from a copy: opening replays the log, which would change what is checked in.
        using var copy = new TempDirectory();
        CopyDirectory(target, copy.Path);
        await using (var engine = LogEngine.Open(new EngineOptions { DataDirectory = copy.Path, DefaultRetentionDays = 36_500 }, TimeProvider.System))
        {
            Assert.True(engine.TryGet("app", out var store));
            Check(store, Events());
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public async Task ADataDirectoryOfAnEarlierFormatOpensAnswersAsItDidAndTakesMore(string fixture)
    {
        using var dir = new TempDirectory();
        CopyDirectory(Path.Combine(AppContext.BaseDirectory, "Fixtures", fixture), dir.Path);
        var events = Events();
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 128, DefaultRetentionDays = 36_500 };
        await using (var engine = LogEngine.Open(options, TimeProvider.System))
        {
            Assert.True(engine.TryGet("app", out var store));
            Assert.True(store.Info().Segments >= 2, "the fixture has segments");
            Check(store, events);

            // It takes more, flushes and merges everything into the formats of today, and reopens.
            var more = events.Select(e => new LogEvent(e.Timestamp + TimeSpan.TicksPerDay * 2, e.Message, e.Fields.ToArray())).Take(300).ToList();
            await store.AppendAsync(more);
            await store.FlushAsync();
            events.AddRange(more);
            Check(store, events);
        }
        await using (var engine = LogEngine.Open(options, TimeProvider.System))
        {
            Assert.True(engine.TryGet("app", out var store));
            Check(store, events);
        }
    }

    /// <summary>Each query finds what a brute-force filter over the events finds, and every event is found by its id.</summary>
    private static void Check(IndexSetStore store, List<LogEvent> events)
    {
        Assert.Equal(events.Count, store.Info().Events);
        var now = DateTimeOffset.UtcNow;
        foreach (var text in new[] { "*", "level:ERROR", "\"reset by peer\"", "host:web-1 AND latency:[100 TO 200]", "retry:true", "alice OR dave", "NOT level:INFO", "disk*" })
        {
            var query = QueryParser.Parse(text);
            var matcher = EventMatcher.Compile(query, now);
            var found = store.Search(new SearchRequest(query, Limit: 10_000, TrackTotalHitsUpTo: long.MaxValue)).Hits.Select(h => (h.Timestamp, h.Message)).Order().ToList();
            var expected = events.Where(matcher).Select(e => (e.Timestamp, e.Message)).Order().ToList();
            Assert.True(expected.SequenceEqual(found), $"{text}: {expected.Count} expected, {found.Count} found");
        }
        // Every event carries the pattern id it was given, whichever store part it was read from.
        var ids = store.Search(new SearchRequest(QueryParser.Parse("*"), Limit: 10_000)).Hits.Select(PatternTagger.IdOf).ToList();
        Assert.All(ids, id => Assert.NotNull(id));
    }

    private static void CopyDirectory(string from, string to)
    {
        // The engine's lock file is the running process's, not data.
        foreach (var path in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories).Where(p => !p.EndsWith(".lock", StringComparison.Ordinal)))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, path));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(path, target, overwrite: true);
        }
    }
}
