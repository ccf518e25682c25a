using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Storage.Engine;
using Logwell.Storage.Wal;

namespace Logwell.Tests;

/// <summary>An index set takes a bounded number of distinct field names; the rest of an event's fields are kept in <c>_overflow</c>.</summary>
public sealed class FieldLimitTests
{
    private static LogEvent Wide(string prefix, int fields, int minute) =>
        new(EventTime.Yesterday.AddMinutes(minute).UtcTicks, $"{prefix} event", [.. Enumerable.Range(0, fields).Select(i => new Field($"{prefix}{i}", FieldValue.FromLong(i)))]);

    // The event's own fields: the pattern id the index set gives each event is outside the limit.
    private static Dictionary<string, FieldValue> FieldsOf(IndexSetStore store, string query) =>
        Assert.Single(store.Search(new SearchRequest(QueryParser.Parse(query))).Hits).Fields.Where(f => f.Name != PatternTagger.Field).ToDictionary(f => f.Name, f => f.Value);

    [Fact]
    public async Task FieldsBeyondTheLimitAreKeptTogetherAndTheLimitHoldsAfterARestart()
    {
        using var dir = new TempDirectory();
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 64, MaxFieldsPerIndexSet = 10, DefaultRetentionDays = 36500 };
        await using (var engine = LogEngine.Open(options, TimeProvider.System))
        {
            var store = await engine.GetOrCreateAsync("wide");
            await store.AppendAsync([Wide("a", 8, 0), Wide("b", 8, 1), Wide("c", 8, 2)]);

            Assert.Equal(8, FieldsOf(store, "a").Count);
            var b = FieldsOf(store, "b");
            Assert.Equal(["b0", "b1", FieldLimit.OverflowField], b.Keys);
            using (var overflow = JsonDocument.Parse(b[FieldLimit.OverflowField].Text!))
            {
                Assert.Equal(Enumerable.Range(2, 6).Select(i => ($"b{i}", (long)i)), overflow.RootElement.EnumerateObject().Select(p => (p.Name, p.Value.GetInt64())));
            }
            Assert.Equal([FieldLimit.OverflowField], FieldsOf(store, "c").Keys);
            // The pattern id is kept beside them and counts for nothing.
            Assert.True(Assert.Single(store.Search(new SearchRequest(QueryParser.Parse("c"))).Hits).TryGetField(PatternTagger.Field, out _));
            Assert.Equal(10, store.Info().Fields);
            // What overflowed is still found, by a bare term or in the overflow field.
            Assert.Equal(1, store.Search(new SearchRequest(QueryParser.Parse("c5"))).Total);
            Assert.Equal(1, store.Search(new SearchRequest(QueryParser.Parse("_overflow:b7"))).Total);
            await store.FlushAsync();
        }

        // The names already taken come back with the segments: a new name still overflows, a known one does not.
        await using (var engine = LogEngine.Open(options, TimeProvider.System))
        {
            Assert.True(engine.TryGet("wide", out var store));
            await store.AppendAsync([new LogEvent(EventTime.Yesterday.AddMinutes(3).UtcTicks, "d event", [new Field("a3", FieldValue.True), new Field("d0", FieldValue.False)])]);
            var d = FieldsOf(store, "d");
            Assert.Equal(["a3", FieldLimit.OverflowField], d.Keys);
            Assert.Equal("{\"d0\":false}", d[FieldLimit.OverflowField].Text);
        }
    }

    [Fact]
    public async Task RecoveryKeepsToTheLimitWhateverTheLogHolds()
    {
        using var dir = new TempDirectory();
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 64, DefaultRetentionDays = 36500 };
        string directory;
        await using (var engine = LogEngine.Open(options, TimeProvider.System))
        {
            directory = (await engine.GetOrCreateAsync("poisoned")).Directory;
        }
        // A log written without a limit: one event with 5,000 distinct fields.
        var evt = Wide("f", 5_000, 0);
        evt.Seq = 1_000;
        using (var wal = WriteAheadLog.Create(Path.Combine(directory, $"wal-{1_000:D20}.log")))
        {
            wal.Append([evt]);
            wal.Sync();
        }
        await using (var engine = LogEngine.Open(options with { MaxFieldsPerIndexSet = 100 }, TimeProvider.System))
        {
            Assert.True(engine.TryGet("poisoned", out var store));
            var fields = FieldsOf(store, "f");
            Assert.Equal(101, fields.Count);
            using var overflow = JsonDocument.Parse(fields[FieldLimit.OverflowField].Text!);
            Assert.Equal(4_900, overflow.RootElement.EnumerateObject().Count());
            Assert.Equal((100, 100), (store.Info().Fields, store.Info().MaxFields));
        }
    }

    [Fact]
    public async Task AWideSegmentGivesEachHitItsOwnFields()
    {
        // 40 events of 300 distinct fields each: a block of 12,000 field columns, read back row by row.
        using var dir = new TempDirectory();
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 64, MaxFieldsPerIndexSet = 100_000, DefaultRetentionDays = 36500 };
        await using var engine = LogEngine.Open(options, TimeProvider.System);
        var store = await engine.GetOrCreateAsync("wide");
        await store.AppendAsync([.. Enumerable.Range(0, 40).Select(e => Wide($"e{e}x", 300, e))]);
        await store.FlushAsync();

        var hits = store.Search(new SearchRequest(QueryParser.Parse("*"), Limit: 100)).Hits;
        Assert.Equal(40, hits.Count);
        foreach (var hit in hits)
        {
            var prefix = hit.Message.Split(' ')[0];
            Assert.Equal(Enumerable.Range(0, 300).Select(i => ($"{prefix}{i}", (long)i)), hit.Fields.Where(f => f.Name != PatternTagger.Field).Select(f => (f.Name, f.Value.Long)));
        }
        Assert.Equal(1, store.Search(new SearchRequest(QueryParser.Parse("e7x299:299"))).Total);
    }
}
