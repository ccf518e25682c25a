using System.Text.RegularExpressions;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Storage;
using Logwell.Storage.Engine;
using Logwell.Storage.Querying;

namespace Logwell.Tests;

/// <summary>
/// Random events and random queries: the engine (segments, token index, block pruning, memory tables, merges,
/// cursors, recovery) must return exactly what a brute-force filter over the same events returns.
/// </summary>
public sealed partial class EnginePropertyTests
{
    private static readonly string[] Words = ["error", "warn", "timeout", "connection", "reset", "user_id", "svc.auth", "disk", "full", "login", "failed", "retry", "10.0.0.1", "peer", "Gateway",
        "a.user_id", "x_user_id", "user_id.b", "svc.auth.token", "auth_svc", "_id", "id."];
    private static readonly string[] Separators = [" ", ", ", ": ", " - ", "=", "_", "."];
    private static readonly string[] Levels = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"];
    private static readonly DateTime Start = new(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc);

    // Small blocks hold few tokens frequent enough for row postings, so most clauses are tested row by row; blocks of
    // 256 rows answer most from the postings.
    // In order: events arrive as a stream does, in time order but for a few late ones, so most merges copy blocks
    // whole and rewrite only where inputs overlap; otherwise their times are random and nearly every merge rewrites.
    [Theory]
    [InlineData(1, 32, false)]
    [InlineData(2, 32, false)]
    [InlineData(3, 32, false)]
    [InlineData(4, 256, false)]
    [InlineData(5, 256, false)]
    [InlineData(6, 32, true)]
    [InlineData(7, 32, true)]
    [InlineData(8, 256, true)]
    // A clock whose every reading is a millisecond later: each block's evaluation looks slow, so searches evaluate
    // blocks two at a time from the first.
    [InlineData(9, 32, false, true)]
    [InlineData(10, 256, true, true)]
    public async Task EngineAnswersEqualABruteForceFilter(int seed, int blockRows, bool inOrder, bool slowClock = false)
    {
        var random = new Random(seed);
        TimeProvider clock = slowClock ? new SlowTimestamps() : TimeProvider.System;
        using var dir = new TempDirectory();
        var options = new EngineOptions
        {
            DataDirectory = dir.Path,
            BlockRows = blockRows,
            MemTableMaxEvents = blockRows * 5,
            MergeMinSegments = 3,
            DefaultRetentionDays = 36_500,
        };
        var events = new List<LogEvent>();
        var engine = LogEngine.Open(options, clock);
        try
        {
            var store = await engine.GetOrCreateAsync("prop");
            var queries = await AppendRandomAsync(store, events, random, blockRows / 2 + 9, inOrder: inOrder);
            await CheckAllAsync(store, events, queries, random);

            await engine.DisposeAsync();
            engine = LogEngine.Open(options, clock);
            Assert.True(engine.TryGet("prop", out store));
            await CheckAllAsync(store, events, queries, random);
        }
        finally
        {
            await engine.DisposeAsync();
        }
    }

    /// <summary>The system's time, but timestamps that advance a millisecond at every reading.</summary>
    private sealed class SlowTimestamps : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Add(ref _ticks, TimeSpan.TicksPerMillisecond);
    }

    /// <summary>The same random events and queries on ClickHouse (18.16, and 26.7 through chdb): the same hits, totals, orders, counts and pipes.</summary>
    /// <remarks>Fewer queries than on the engine: each page of a query ClickHouse cannot count is a round trip that
    /// reads every candidate after the cursor to count the total.</remarks>
    [SkippableTheory]
    [InlineData(TestLogStore.ClickHouse, 1)]
    [InlineData(TestLogStore.ClickHouse, 4)]
    [InlineData(TestLogStore.Chdb, 2)]
    public async Task ClickHouseAnswersEqualABruteForceFilter(string kind, int seed)
    {
        var random = new Random(seed);
        await using var store = await TestLogStore.OpenAsync(kind, "prop");
        var events = new List<LogEvent>();
        var queries = await AppendRandomAsync(store.Set, events, random, 20, 30);
        await CheckAllAsync(store.Set, events, queries, random);
    }

    /// <summary>Appends <paramref name="batches"/> batches of random events and answers as many random queries as asked.</summary>
    private static async Task<List<string>> AppendRandomAsync(ILogIndexSet store, List<LogEvent> events, Random random, int batches, int queries = 80, bool inOrder = false)
    {
        var clock = Start.Ticks;
        for (var batch = 0; batch < batches; batch++)
        {
            var size = random.Next(1, 90);
            var list = Enumerable.Range(0, size).Select(_ => RandomEvent(random)).ToList();
            if (inOrder)
            {
                // Seconds apart or in the same second; one in twenty up to ten minutes late.
                for (var i = 0; i < list.Count; i++)
                {
                    clock += random.Next(0, 4) * TimeSpan.TicksPerSecond * random.Next(0, 40);
                    var late = random.Next(20) == 0 ? random.Next(1, 600) * TimeSpan.TicksPerSecond : 0;
                    list[i] = new LogEvent(clock - late, list[i].Message, list[i].Fields.ToArray());
                }
            }
            await store.AppendAsync(list);
            events.AddRange(list);
        }
        return [.. Enumerable.Range(0, queries).Select(_ => RandomQuery(random, 3))];
    }

    [Fact]
    public async Task ThePatternsPipeCountsTemplatesAndComparesThemWithTheDayBefore()
    {
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        await using (engine)
        {
            var store = await engine.GetOrCreateAsync("patterned");
            var today = Start.AddDays(1);
            LogEvent At(DateTime day, int second, string message) => new(day.AddSeconds(second).Ticks, message, []);
            var events = new List<LogEvent>();
            for (var i = 0; i < 30; i++)
            {
                events.Add(At(today, i, $"Received block blk_{4000 + i * 17} of size {i * 512} from /10.0.{i % 4}.{i + 1}"));
                events.Add(At(today.AddDays(-1), i, $"Connection closed by 10.1.{i % 3}.{i} [preauth]"));
                if (i < 20)
                {
                    events.Add(At(today, 100 + i, $"Connection closed by 10.2.{i % 5}.{i} [preauth]"));
                }
                if (i < 10)
                {
                    events.Add(At(today.AddDays(-1), 200 + i, $"Received block blk_{9000 + i} of size {i} from /10.9.0.{i}"));
                }
                if (i < 5)
                {
                    events.Add(At(today, 300 + i, $"disk full on /dev/sd{(char)('a' + i)}{i}"));
                }
            }
            await store.AppendAsync(events);
            var window = (today.Ticks, today.AddHours(1).Ticks);
            var table = PipelineRunner.Run(store, Parse("* | patterns compare=1d"), window.Item1, window.Item2, CancellationToken.None);
            Assert.Equal(["pattern", "template", "count", "percent", "first_seen", "last_seen", "example", "previous", "change", "new", "trend", "stored_ids"], table.Columns);
            var rows = table.Rows.Select(r => (Template: (string)r[1]!, Count: (long)r[2]!, Previous: (long)r[7]!, Change: (double?)r[8], New: (bool)r[9]!)).ToList();
            Assert.Equal([
                ("Received block blk_<*> of size <*> from /<*>", 30L, 10L, (double?)200.0, false),
                ("Connection closed by <*> [preauth]", 20L, 30L, -33.3, false),
                ("disk full on /dev/<*>", 5L, 0L, null, true),
            ], rows);
            var received = table.Rows[0];
            Assert.Equal(TemplateMiner.Id((string)received[1]!), received[0]);
            Assert.Equal(54.55, received[3]);
            Assert.Equal(today, received[4]);
            Assert.Equal(today.AddSeconds(29), received[5]);
            Assert.StartsWith("Received block blk_4493 ", (string)received[6]!);
            // A window longer than the comparison's span would overlap the earlier one.
            Assert.Throws<ArgumentException>(() => PipelineRunner.Run(store, Parse("* | patterns compare=1h"), window.Item1, window.Item1 + TimeSpan.TicksPerDay, CancellationToken.None));
            // Without compare: the window alone; a query narrows what is mined.
            var errors = PipelineRunner.Run(store, Parse("disk | patterns 5"), window.Item1, window.Item2, CancellationToken.None);
            Assert.Equal(9, errors.Columns.Count);
            var disk = Assert.Single(errors.Rows);
            Assert.Equal("disk full on /dev/<*>", disk[1]);
            // Its events over the window in 24 slices of 150 s: all 5 at 300–304 s, in the third.
            Assert.Equal(string.Join(',', Enumerable.Range(0, 24).Select(i => i == 2 ? 5 : 0)), disk[7]);
        }
    }

    [Fact]
    public async Task AFirstSortPipeOrdersEveryMatchNotOnlyTheNewestPage()
    {
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, BlockRows = 1024, MemTableMaxEvents = 4096, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        await using (engine)
        {
            var store = await engine.GetOrCreateAsync("sorted");
            // The slowest request is the oldest of more events than a table holds.
            var events = Enumerable.Range(0, PipelineParser.MaxRows + 500)
                .Select(i => new LogEvent(Start.AddSeconds(i).Ticks, $"request {i}", [new Field("latency", FieldValue.FromLong(i == 0 ? 99_999 : i % 1000))]))
                .ToList();
            await store.AppendAsync(events);
            var table = PipelineRunner.Run(store, Parse("* | sort by latency desc | head 3 | fields message, latency"), null, null, CancellationToken.None);
            // Ties come newest first.
            Assert.Equal(["request 0=99999", "request 9999=999", "request 8999=999"], table.Rows.Select(r => $"{r[0]}={r[1]}"));
            var fastest = PipelineRunner.Run(store, Parse("* | sort by latency asc | fields message"), null, null, CancellationToken.None);
            Assert.Equal(PipelineParser.MaxRows, fastest.Rows.Count);
            Assert.True(fastest.Truncated);
            Assert.Equal(["request 10000", "request 9000"], fastest.Rows.Take(2).Select(r => (string)r[0]!));
        }
    }

    /// <summary>
    /// Regular expressions whose matches are at most 64 characters with at most 2 digits are answered from the term
    /// dictionary where every text of a block is longer than their longest match, and by reading the texts elsewhere:
    /// both give what a brute-force filter gives, whole-text matches (a short message, a short plain value) included.
    /// </summary>
    [Fact]
    public async Task RegularExpressionsFromTheTermDictionaryEqualABruteForceFilter()
    {
        var random = new Random(21);
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, BlockRows = 128, MemTableMaxEvents = 600, MergeMinSegments = 3, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        await using (engine)
        {
            var store = await engine.GetOrCreateAsync("regex");
            string[] words = ["upstream", "UpStream", "upstreams", "upstre4m", "reset", "retry", "peer", "timeout", "e12x", "e123x", "a_b.c", "stream"];
            var events = new List<LogEvent>();
            for (var i = 0; i < 3000; i++)
            {
                // Blocks past the first thousand events hold only long messages; before them a few are short.
                var message = i < 1000 && random.Next(25) == 0
                    ? new[] { "up stream", "upstream", "re-set", "e12x" }[random.Next(4)]
                    : $"request {random.Next(100000)} from host-{random.Next(9)} " + string.Join(' ', Enumerable.Range(0, random.Next(1, 4)).Select(_ => words[random.Next(words.Length)]));
                var fields = new List<Field> { new("host", FieldValue.FromString($"host-{random.Next(9)}")) };
                if (random.Next(3) > 0)
                {
                    // Mostly distinct (a plain column), sometimes a short value that a pattern matches whole.
                    fields.Add(new Field("code", FieldValue.FromString(i >= 2000 && random.Next(40) == 0 ? "up-stream" : $"c{i:d5}-{words[random.Next(words.Length)]}")));
                }
                events.Add(new LogEvent(Start.AddSeconds(i).Ticks, message, [.. fields]));
            }
            foreach (var chunk in events.Chunk(200))
            {
                await store.AppendAsync([.. chunk]);
            }
            string[] patterns = ["/upstre.m/", "/up.stream/", "/re.set/", "/re(set|try)/", "/e\\d{2}x/", "/e\\d+x/", "/[a-z]{2}stream/", "/host-[0-9]/", "message:/up.?stream/", "code:/up.stream/", "code:/c0[0-9]{4}.+/", "/.*peer/", "/a_b\\.c/"];
            foreach (var text in patterns)
            {
                var query = QueryParser.Parse(text);
                var expected = events.Where(e => Reference(query, e)).Select(e => e.Seq).OrderDescending().ToList();
                var result = store.Search(new SearchRequest(query, Limit: 5000));
                Assert.True(expected.SequenceEqual(result.Hits.Select(h => h.Seq)), $"{text}: expected {expected.Count} hits, got {result.Hits.Count}");
                Assert.Equal(expected.Count, result.Total);
            }
        }
    }

    /// <summary>
    /// A field of mostly distinct strings is stored as plain text, whose rows a field order compares as UTF-8 in place
    /// and whose blocks it skips by their bounds (as it does the message's): the order must still be UTF-16 ordinal
    /// order (which differs from UTF-8's between U+E000–U+FFFF and characters past U+FFFF), with empty strings, nulls,
    /// rows without the field, bounds cut at 64 bytes and, in a few blocks, numbers in the same column.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public async Task AFieldOrderOverPlainTextEqualsOrdinalOrder(int seed)
    {
        var random = new Random(seed);
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, BlockRows = 64, MemTableMaxEvents = 400, MergeMinSegments = 3, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        await using (engine)
        {
            var store = await engine.GetOrCreateAsync("text");
            string[] pieces = ["a", "b", "Z", "0", "é", "\u00ff", "\ue000", "\uffee", "\U0001F600", "\U00010000"];
            var events = new List<LogEvent>();
            for (var i = 0; i < 2500; i++)
            {
                var fields = new List<Field>();
                var pick = random.Next(40);
                if (pick == 0 || (i is >= 1200 and < 1300 && pick < 8))
                {
                    fields.Add(new Field("ref", FieldValue.FromLong(random.Next(-5, 5))));
                }
                else if (pick == 1)
                {
                    fields.Add(new Field("ref", FieldValue.Null));
                }
                else if (pick == 2)
                {
                    fields.Add(new Field("ref", FieldValue.FromString("")));
                }
                else if (pick > 5)
                {
                    fields.Add(new Field("ref", FieldValue.FromString(string.Concat(Enumerable.Range(0, random.Next(1, 6)).Select(_ => pieces[random.Next(pieces.Length)])))));
                }
                // Many events share a time, so equal values fall back on the newest-first tie order. Messages share
                // long prefixes, so blocks' message bounds are cut (before a character of 2 to 4 bytes, some of them).
                var message = random.Next(4) == 0
                    ? $"event {i}"
                    : new string('p', 61 + random.Next(3)) + string.Concat(Enumerable.Range(0, 3).Select(_ => pieces[random.Next(pieces.Length)])) + i;
                events.Add(new LogEvent(Start.AddSeconds(random.Next(0, 600)).Ticks, message, [.. fields]));
            }
            foreach (var chunk in events.Chunk(150))
            {
                await store.AppendAsync([.. chunk]);
            }
            foreach (var query in new[] { "*", "event", "NOT ref:a*" })
            {
                var node = QueryParser.Parse(query);
                var matching = events.Where(e => Reference(node, e)).ToList();
                foreach (var field in new[] { "ref", "message" })
                {
                    foreach (var descending in new[] { false, true })
                    {
                        foreach (var limit in new[] { 5, 60, 1000 })
                        {
                            await CheckFieldOrderAsync(store, node, null, null, matching, limit, random, field, descending);
                        }
                    }
                }
            }
            // Hits spread over many blocks are read row by row: each is the event as it was stored, nulls included.
            static string Describe(LogEvent e) => $"{e.Timestamp} {e.Message} " + string.Join(";", e.Fields.Select(f => $"{f.Name}={f.Value.Kind}:{f.Value.SearchText}"));
            var bySeq = events.ToDictionary(e => e.Seq);
            var page = store.Search(new SearchRequest(new MatchAllNode(), Limit: 3000) { OrderBy = new FieldOrder("ref", Descending: true) });
            Assert.Equal(events.Count, page.Hits.Count);
            Assert.All(page.Hits, hit => Assert.Equal(Describe(bySeq[hit.Seq]), Describe(hit)));
        }
    }

    [Fact]
    public async Task FieldOrderTiesGoNewestFirstAcrossSegmentsWithTheSameTimes()
    {
        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, BlockRows = 16, MemTableMaxEvents = 1000, MergeMinSegments = 100, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        await using (engine)
        {
            var store = await engine.GetOrCreateAsync("ties");
            // Three segments of events at one instant with one host: only the sequence numbers tell them apart.
            for (var segment = 0; segment < 3; segment++)
            {
                await store.AppendAsync([.. Enumerable.Range(0, 40).Select(i => new LogEvent(Start.Ticks, $"event {segment}-{i}", [new Field("host", FieldValue.FromString("web-1"))]))]);
                await store.FlushAsync();
            }
            var result = store.Search(new SearchRequest(new MatchAllNode(), Limit: 5) { OrderBy = new FieldOrder("host", Descending: false) });
            Assert.Equal(["event 2-39", "event 2-38", "event 2-37", "event 2-36", "event 2-35"], result.Hits.Select(h => h.Message));
            Assert.Equal(120, result.Total);
        }
    }

    private static async Task CheckAllAsync(ILogIndexSet store, List<LogEvent> events, List<string> queries, Random random)
    {
        foreach (var text in queries)
        {
            var query = QueryParser.Parse(text);
            long? from = null, to = null;
            if (random.Next(3) == 0)
            {
                from = Start.AddHours(random.Next(0, 72)).Ticks;
                to = from + TimeSpan.FromHours(random.Next(1, 30)).Ticks;
            }
            var expected = events
                .Where(e => (from is null || e.Timestamp >= from) && (to is null || e.Timestamp < to) && Reference(query, e))
                .OrderByDescending(e => e.Timestamp).ThenByDescending(e => e.Seq)
                .Select(e => e.Seq).ToList();

            var limit = random.Next(1, 60);
            var actual = new List<long>();
            EventPosition? after = null;
            var first = true;
            while (true)
            {
                var result = await store.SearchAsync(new SearchRequest(query, from, to, after, limit));
                if (first)
                {
                    Assert.True(result.TotalIsExact);
                    Assert.True(expected.Count == result.Total, $"total for '{text}': expected {expected.Count}, got {result.Total}");
                    first = false;
                }
                actual.AddRange(result.Hits.Select(h => h.Seq));
                if (result.NextCursor is null)
                {
                    break;
                }
                after = result.NextCursor;
            }
            Assert.True(expected.SequenceEqual(actual), $"hits for '{text}' (limit {limit}) differ: expected {expected.Count}, got {actual.Count}");

            // Oldest first, paged the same way, finds the same events in the opposite order.
            var oldest = new List<long>();
            after = null;
            while (true)
            {
                var result = await store.SearchAsync(new SearchRequest(query, from, to, after, limit) { OldestFirst = true });
                oldest.AddRange(result.Hits.Select(h => h.Seq));
                if (result.NextCursor is null)
                {
                    break;
                }
                after = result.NextCursor;
            }
            Assert.True(Enumerable.Reverse(expected).SequenceEqual(oldest), $"oldest-first hits for '{text}' (limit {limit}) differ: expected {expected.Count}, got {oldest.Count}");

            var matching = events.Where(e => (from is null || e.Timestamp >= from) && (to is null || e.Timestamp < to) && Reference(query, e)).ToList();
            await CheckFieldOrderAsync(store, query, from, to, matching, random.Next(30, 200), random);
            var expectedLevels = matching.Where(e => e.TryGetField("level", out _))
                .GroupBy(e => { e.TryGetField("level", out var v); return v.Text!; })
                .ToDictionary(g => g.Key, g => (long)g.Count());
            var levels = ((IPipelineSource)store).CountBy(new SearchRequest(query, from, to), "level", CancellationToken.None);
            Assert.Equal(expectedLevels.OrderBy(p => p.Key), levels.Counts.OrderBy(p => p.Key));
            // status holds numbers; detail holds strings and sometimes a number.
            foreach (var field in new[] { "status", "detail" })
            {
                var expectedValues = matching.Where(e => e.TryGetField(field, out _))
                    .GroupBy(e => { e.TryGetField(field, out var v); return v.SearchText!; })
                    .ToDictionary(g => g.Key, g => (long)g.Count());
                Assert.Equal(expectedValues.OrderBy(p => p.Key), ((IPipelineSource)store).CountBy(new SearchRequest(query, from, to), field, CancellationToken.None).Counts.OrderBy(p => p.Key));
            }
            await CheckPipesAsync(store, query, from, to, matching);

            var hour = TimeSpan.TicksPerHour;
            var expectedHours = matching.GroupBy(e => e.Timestamp / hour * hour).ToDictionary(g => g.Key, g => (long)g.Count());
            var hours = await store.HistogramAsync(new SearchRequest(query, from, to), hour);
            Assert.Equal(expectedHours.OrderBy(p => p.Key), hours.Counts.OrderBy(p => p.Key));
        }
    }

    /// <summary>
    /// Pages through the matches ordered by a field and compares with a LINQ ordering of the reference (pages are larger
    /// than the time-ordered ones: every page reads all matches).
    /// </summary>
    private static async Task CheckFieldOrderAsync(ILogIndexSet store, QueryNode query, long? from, long? to, List<LogEvent> matching, int limit, Random random, string? field = null, bool? descending = null)
    {
        field ??= new[] { "status", "detail", "host", "message" }[random.Next(4)];
        descending ??= random.Next(2) == 0;
        (int Missing, int Text, double Number, string Value) Key(LogEvent e)
        {
            if (field == "message")
            {
                return (0, 1, 0, e.Message);
            }
            if (!e.TryGetField(field, out var v) || v.Kind == FieldKind.Null)
            {
                return (1, 0, 0, "");
            }
            return v.Kind == FieldKind.Long ? (0, 0, v.Long, "") : (0, 1, 0, v.SearchText!);
        }
        var keyed = matching.Select(e => (Event: e, Key: Key(e))).OrderBy(p => p.Key.Missing);
        var ordered = descending.Value
            ? keyed.ThenByDescending(p => p.Key.Text).ThenByDescending(p => p.Key.Number).ThenByDescending(p => p.Key.Value, StringComparer.Ordinal)
            : keyed.ThenBy(p => p.Key.Text).ThenBy(p => p.Key.Number).ThenBy(p => p.Key.Value, StringComparer.Ordinal);
        var expected = ordered.ThenByDescending(p => p.Event.Timestamp).ThenByDescending(p => p.Event.Seq).Select(p => p.Event.Seq).ToList();

        var actual = new List<long>();
        OrderKey? after = null;
        var order = new FieldOrder(field, descending.Value);
        while (true)
        {
            var result = await store.SearchAsync(new SearchRequest(query, from, to, null, limit) { OrderBy = order, AfterKey = after });
            Assert.True(result.TotalIsExact);
            Assert.Equal(expected.Count - actual.Count, result.Total);
            actual.AddRange(result.Hits.Select(h => h.Seq));
            if (result.NextOrderKey is null)
            {
                break;
            }
            after = result.NextOrderKey;
        }
        Assert.True(expected.SequenceEqual(actual), $"hits ordered by {field} {(descending.Value ? "desc" : "asc")} (limit {limit}) differ: expected {string.Join(",", expected.Take(20))}, got {string.Join(",", actual.Take(20))}");
    }

    private static async Task CheckPipesAsync(ILogIndexSet store, QueryNode query, long? from, long? to, List<LogEvent> matching)
    {
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        double? Status(LogEvent e) => e.TryGetField("status", out var v) && v.Kind == FieldKind.Long ? v.Long : null;
        var stats = Assert.IsType<StatsStage>(Assert.Single(Parse("| stats count() as n, sum(status), min(status), max(status), p50(status), count_distinct(host) by level").Stages));
        var table = await store.RunPipelineAsync(new Pipeline(query, [stats]), from, to);
        Assert.Equal(["level", "n", "sum(status)", "min(status)", "max(status)", "p50(status)", "count_distinct(host)"], table.Columns);
        var expected = matching.Where(e => e.TryGetField("level", out _))
            .GroupBy(e => { e.TryGetField("level", out var v); return v.Text!; })
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var statuses = g.Select(Status).Where(s => s is not null).Select(s => s!.Value).Order().ToList();
                object? Or(Func<double> f) => statuses.Count == 0 ? null : f();
                return new object?[]
                {
                    g.Key, (long)g.Count(), Or(statuses.Sum), Or(statuses.Min), Or(statuses.Max),
                    Or(() => statuses[(int)Math.Ceiling(statuses.Count * 0.5) - 1]),
                    (long)g.Select(e => e.TryGetField("host", out var h) ? h.Text : null).Where(h => h is not null).Distinct().Count(),
                };
            }).ToList();
        Assert.Equal(expected.Select(r => string.Join("|", r.Select(c => Convert.ToString(c, culture)))), table.Rows.Select(r => string.Join("|", r.Select(c => Convert.ToString(c, culture)))));

        // Counts by one field take the engine's CountBy: the same groups as the general path.
        var counts = await store.RunPipelineAsync(new Pipeline(query, Parse("| stats count() by level").Stages), from, to);
        Assert.Equal(expected.Select(r => $"{r[0]}={r[1]}"), counts.Rows.Select(r => $"{r[0]}={r[1]}"));

        // Two by fields (dictionary codes combined per block), and a field holding strings and numbers.
        foreach (var (by, text) in new[] { (new[] { "level", "host" }, "| stats count() as n by level, host"), (["detail", "level"], "| stats count() as n, count_distinct(status) by detail, level") })
        {
            var grouped = await store.RunPipelineAsync(new Pipeline(query, Parse(text).Stages), from, to);
            string? Text(LogEvent e, string field) => e.TryGetField(field, out var v) ? v.SearchText : null;
            var expectedGroups = matching.Where(e => by.All(f => Text(e, f) is not null))
                .GroupBy(e => string.Join('\u0001', by.Select(f => Text(e, f))))
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => $"{g.Key.Replace('\u0001', '/')}={g.Count()}" + (by[0] == "detail" ? $",{g.Select(e => Text(e, "status")).Where(v => v is not null).Distinct().Count()}" : ""));
            Assert.Equal(expectedGroups, grouped.Rows.Select(r => $"{r[0]}/{r[1]}={r[2]}" + (by[0] == "detail" ? $",{r[3]}" : "")));
        }

        // count_distinct of dictionary-coded columns, one of them holding numbers in some rows too, with and without groups.
        foreach (var text in new[] { "| stats count_distinct(detail) as d, count_distinct(host) as h", "| stats count_distinct(detail) as d, count() as n, count_distinct(host) as h by level" })
        {
            var distinct = await store.RunPipelineAsync(new Pipeline(query, Parse(text).Stages), from, to);
            string? Text(LogEvent e, string field) => e.TryGetField(field, out var v) ? v.SearchText : null;
            var grouped = text.EndsWith("by level", StringComparison.Ordinal);
            var expectedDistinct = matching.Where(e => !grouped || Text(e, "level") is not null)
                .GroupBy(e => grouped ? Text(e, "level")! : "")
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => (grouped ? g.Key + "|" : "") + $"{g.Select(e => Text(e, "detail")).Where(v => v is not null).Distinct().Count()}"
                    + (grouped ? $"|{g.Count()}" : "") + $"|{g.Select(e => Text(e, "host")).Where(v => v is not null).Distinct().Count()}");
            Assert.Equal(grouped || matching.Count > 0 ? expectedDistinct : ["0|0"], distinct.Rows.Select(r => string.Join("|", r.Select(c => Convert.ToString(c, culture)))));
        }

        var busy = await store.RunPipelineAsync(new Pipeline(query, Parse("| stats count() as n by host | where n >= 3 AND NOT host = web-1 | fields host").Stages), from, to);
        var expectedBusy = matching.Where(e => e.TryGetField("host", out _)).GroupBy(e => { e.TryGetField("host", out var v); return v.Text!; })
            .Where(g => g.Count() >= 3 && g.Key != "web-1").Select(g => g.Key).Order(StringComparer.Ordinal);
        Assert.Equal(expectedBusy, busy.Rows.Select(r => (string)r[0]!));

        var top = await store.RunPipelineAsync(new Pipeline(query, Parse("| top 3 host | sort by host asc").Stages), from, to);
        var expectedTop = matching.Where(e => e.TryGetField("host", out _)).GroupBy(e => { e.TryGetField("host", out var v); return v.Text!; })
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Take(3).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key}={g.Count()}");
        Assert.Equal(expectedTop, top.Rows.Select(r => $"{r[0]}={r[1]}"));

        if (from is not null)
        {
            var chart = await store.RunPipelineAsync(new Pipeline(query, Parse("| timechart span=1h count()").Stages), from, to);
            var hour = TimeSpan.TicksPerHour;
            var byHour = matching.GroupBy(e => e.Timestamp - e.Timestamp % hour).ToDictionary(g => g.Key, g => (long)g.Count());
            foreach (var row in chart.Rows)
            {
                Assert.Equal(byHour.GetValueOrDefault(((DateTime)row[0]!).Ticks), (long)row[1]!);
            }
            Assert.Equal(matching.Count, chart.Rows.Sum(r => (long)r[1]!));

            var byLevel = await store.RunPipelineAsync(new Pipeline(query, Parse("| timechart span=1h count() by level").Stages), from, to);
            var levelHours = matching.Where(e => e.TryGetField("level", out _))
                .GroupBy(e => (e.Timestamp - e.Timestamp % hour, e.Fields.First(f => f.Name == "level").Value.Text!))
                .ToDictionary(g => g.Key, g => (long)g.Count());
            foreach (var row in byLevel.Rows)
            {
                for (var c = 1; c < byLevel.Columns.Count; c++)
                {
                    Assert.Equal(levelHours.GetValueOrDefault((((DateTime)row[0]!).Ticks, byLevel.Columns[c])), (long)row[c]!);
                }
            }
            Assert.Equal(levelHours.Values.Sum(), byLevel.Rows.Sum(r => r.Skip(1).Sum(c => (long)c!)));
        }
    }

    private static Pipeline Parse(string text) => PipelineParser.TryParse(text, out var pipeline, out var error) ? pipeline : throw new ArgumentException(error!.ToString());

    private static LogEvent RandomEvent(Random random)
    {
        var words = Enumerable.Range(0, random.Next(2, 8)).Select(_ => Words[random.Next(Words.Length)]);
        var message = string.Join(Separators[random.Next(Separators.Length)], words);
        var fields = new List<Field>();
        if (random.Next(10) > 0)
        {
            fields.Add(new Field("host", FieldValue.FromString($"{(random.Next(4) == 0 ? "db" : "web")}-{random.Next(1, 13)}")));
        }
        fields.Add(new Field("level", FieldValue.FromString(Levels[random.Next(Levels.Length)])));
        if (random.Next(2) == 0)
        {
            fields.Add(new Field("status", FieldValue.FromLong(random.Next(2) == 0 ? 200 : 500 + random.Next(4))));
        }
        if (random.Next(5) == 0)
        {
            // Mostly strings (dictionary-coded), sometimes a number in the same column.
            fields.Add(new Field("detail", random.Next(6) == 0 ? FieldValue.FromLong(500) : FieldValue.FromString(Words[random.Next(Words.Length)])));
        }
        var t = Start.AddSeconds(random.Next(0, 3 * 24 * 3600 / 600) * 600).Ticks;
        return new LogEvent(t, message, [.. fields]);
    }

    private static string RandomQuery(Random random, int depth)
    {
        var pick = depth <= 0 ? random.Next(6) : random.Next(10);
        return pick switch
        {
            5 => RandomRangeOrExists(random),
            0 => random.Next(3) == 0 ? new[] { "user_id", "auth", "svc.auth", "user", "id", "token", "auth.token", "svc" }[random.Next(8)] : Words[random.Next(Words.Length)],
            1 => $"{new[] { "host", "level", "message", "detail", "status" }[random.Next(5)]}:{new[] { "web-3", "ERROR", "info", "timeout", "500", "user_id", "db-1", "auth" }[random.Next(8)]}",
            2 => $"\"{Words[random.Next(Words.Length)]} {Words[random.Next(Words.Length)]}\"",
            3 => new[] { "web-1*", "host:web-*", "host:db-1*", "time*", "10.0*", "level:WA*", "svc.*", "*out", "t?me*", "host:*-1?", "c*n*", "/re(set|try)/", "host:/(web|db)-[0-9]/", "/[a-z]+_id/", "message:/.*peer/", "/log+in/", "/CONN?ection/", "/(re)?tr(y|ied)/" }[random.Next(18)],
            4 => random.Next(10) == 0 ? "*" : "connection reset",
            6 => $"{RandomQuery(random, depth - 1)} AND {RandomQuery(random, depth - 1)}",
            7 => $"({RandomQuery(random, depth - 1)} OR {RandomQuery(random, depth - 1)})",
            8 => $"NOT ({RandomQuery(random, depth - 1)})",
            _ => $"{RandomQuery(random, depth - 1)} -{Words[random.Next(Words.Length)]}",
        };
    }

    private static string RandomRangeOrExists(Random random)
    {
        string Time() => Start.AddMinutes(random.Next(0, 3 * 24 * 60)).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        string Open() => random.Next(2) == 0 ? "[" : "{";
        string Close() => random.Next(2) == 0 ? "]" : "}";
        return random.Next(11) switch
        {
            // Equality: the whole value, which the token index narrows unless the value is a number.
            10 => $"{new[] { "host", "level", "detail", "status" }[random.Next(4)]}:={new[] { "web-1", "web-12", "db-1", "ERROR", "error", "timeout", "500", "\"500\"", "\"web-3\"" }[random.Next(9)]}",
            0 => $"status:{Open()}{500 + random.Next(4)} TO {(random.Next(4) == 0 ? "*" : (501 + random.Next(4)).ToString(System.Globalization.CultureInfo.InvariantCulture))}{Close()}",
            1 => $"status:{new[] { ">", ">=", "<", "<=" }[random.Next(4)]}{new[] { "200", "500", "502", "250.5" }[random.Next(4)]}",
            2 => $"detail:{new[] { ">", "<=" }[random.Next(2)]}{new[] { "400", "timeout", "m" }[random.Next(3)]}",
            3 => $"host:{Open()}{new[] { "db-1", "db-5", "web-1" }[random.Next(3)]} TO {new[] { "web-2", "web-9", "*" }[random.Next(3)]}{Close()}",
            4 => $"{new[] { "t", "@timestamp" }[random.Next(2)]}:{Open()}{Time()} TO {Time()}{Close()}",
            5 => $"t:{new[] { ">", "<=" }[random.Next(2)]}{Time()}",
            6 => $"_exists_:{new[] { "detail", "status", "host", "message", "nothere" }[random.Next(5)]}",
            7 => $"level:({Levels[random.Next(Levels.Length)]} OR {Levels[random.Next(Levels.Length)]})",
            8 => $"detail:(\"{Words[random.Next(Words.Length)]}\" OR 500)",
            _ => $"host:(web* -{Words[random.Next(Words.Length)]})",
        };
    }

    // The reference: independent, slow, obviously right.
    private static bool Reference(QueryNode node, LogEvent e) => node switch
    {
        MatchAllNode => true,
        TermNode t => Texts(t.Field, e).Any(text => ReferenceTokens(text).Contains(t.Token)),
        PhraseNode p => Texts(p.Field, e).Any(text => ContainsSequence(BaseTokens(text), p.Tokens)),
        PrefixNode p => Texts(p.Field, e).Any(text => Regex.IsMatch(text, @"(?<![\p{L}\p{N}])" + Regex.Escape(p.Prefix), RegexOptions.IgnoreCase)),
        WildcardNode w => Texts(w.Field, e).Any(text => Candidates(text).Any(c => Glob(w.Pattern, c.ToLowerInvariant()))),
        RegexNode r => Texts(r.Field, e).Any(text => Candidates(text).Any(c => Regex.IsMatch(c, $"^(?:{r.Pattern})$", RegexOptions.IgnoreCase | RegexOptions.Singleline))),
        ExistsNode x => (x.Field == "message" && e.Message.Length > 0) || e.Fields.Any(f => f.Name == x.Field && f.Value.Kind != FieldKind.Null),
        RangeNode r => ReferenceRange(r, e),
        AndNode a => a.Children.All(c => Reference(c, e)),
        OrNode o => o.Children.Any(c => Reference(c, e)),
        NotNode n => !Reference(n.Child, e),
        _ => throw new NotSupportedException(),
    };

    private static bool ReferenceRange(RangeNode r, LogEvent e)
    {
        static bool Inside(int low, int high, bool includeLower, bool includeUpper) =>
            (low < 0 || (low == 0 && includeLower)) && (high > 0 || (high == 0 && includeUpper));
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        if (r.Field is "t" or "@timestamp")
        {
            var t = e.Timestamp;
            var low = r.Lower is null ? -1 : DateTimeOffset.Parse(r.Lower, culture).UtcTicks.CompareTo(t);
            var high = r.Upper is null ? 1 : DateTimeOffset.Parse(r.Upper, culture).UtcTicks.CompareTo(t);
            return Inside(low, high, r.IncludeLower, r.IncludeUpper);
        }
        var value = e.Fields.FirstOrDefault(f => f.Name == r.Field).Value;
        bool IsNumber(string? s) => s is null || double.TryParse(s, System.Globalization.NumberStyles.Float, culture, out _);
        if (IsNumber(r.Lower) && IsNumber(r.Upper))
        {
            double? number = value.Kind switch
            {
                FieldKind.Long => value.Long,
                FieldKind.Double => value.Double,
                FieldKind.String when double.TryParse(value.Text, System.Globalization.NumberStyles.Float, culture, out var d) => d,
                _ => null,
            };
            return number is { } n && Inside(
                r.Lower is null ? -1 : double.Parse(r.Lower, culture).CompareTo(n),
                r.Upper is null ? 1 : double.Parse(r.Upper, culture).CompareTo(n),
                r.IncludeLower, r.IncludeUpper);
        }
        return value.Kind == FieldKind.String && Inside(
            r.Lower is null ? -1 : string.CompareOrdinal(r.Lower, value.Text),
            r.Upper is null ? 1 : string.CompareOrdinal(r.Upper, value.Text),
            r.IncludeLower, r.IncludeUpper);
    }

    private static IEnumerable<string> Texts(string? field, LogEvent e)
    {
        if (field is null || field == "message")
        {
            yield return e.Message;
        }
        foreach (var f in e.Fields.ToArray())
        {
            if ((field is null || f.Name == field) && f.Value.SearchText is { } text)
            {
                yield return text;
            }
        }
    }

    // A wildcard or regex clause may match the whole text or any one of its tokens.
    private static IEnumerable<string> Candidates(string text) => ReferenceTokens(text).Prepend(text);

    private static bool Glob(string pattern, string text)
    {
        if (pattern.Length == 0)
        {
            return text.Length == 0;
        }
        return pattern[0] switch
        {
            '*' => Enumerable.Range(0, text.Length + 1).Any(i => Glob(pattern[1..], text[i..])),
            '?' => text.Length > 0 && Glob(pattern[1..], text[1..]),
            _ => text.Length > 0 && text[0] == pattern[0] && Glob(pattern[1..], text[1..]),
        };
    }

    private static HashSet<string> ReferenceTokens(string text)
    {
        var set = new HashSet<string>();
        foreach (Match run in RunPattern().Matches(text))
        {
            var value = run.Value.ToLowerInvariant();
            set.Add(value);
            foreach (var piece in value.Split('.'))
            {
                set.Add(piece);
                foreach (var part in piece.Split('_'))
                {
                    set.Add(part);
                }
            }
        }
        return set;
    }

    private static List<string> BaseTokens(string text) => [.. WordPattern().Matches(text).Select(m => m.Value.ToLowerInvariant())];

    private static bool ContainsSequence(List<string> tokens, IReadOnlyList<string> phrase)
    {
        for (var i = 0; i + phrase.Count <= tokens.Count; i++)
        {
            if (phrase.Select((p, j) => tokens[i + j] == p).All(x => x))
            {
                return true;
            }
        }
        return false;
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+(?:[._][\p{L}\p{N}]+)*")]
    private static partial Regex RunPattern();

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex WordPattern();
}
