using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage.Encoding;
using Logwell.Storage.Querying;
using Logwell.Storage.Segments;

namespace Logwell.Tests;

public sealed class SegmentTests
{
    private static LogEvent Event(long seq, string message, params Field[] fields) =>
        new(new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc).Ticks + seq * TimeSpan.TicksPerSecond, message, fields) { Seq = seq };

    [Fact]
    public void TheTermDictionaryNamesTheTokensWithinAFuzzyTermsEditsInTheScopesItAsks()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "seg.lws");
        using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 4, compressionLevel: 3))
        {
            var messages = new[] { "connection refused", "Connections dropped", "conection reset", "id 12345 at 10.0.0.1", "retry in 5 s", "collection done", "svc.user_id gone" };
            for (var i = 0; i < messages.Length; i++)
            {
                writer.Add(Event(i + 1, messages[i], new Field("host", FieldValue.FromString(i % 2 == 0 ? "connector" : "web-1")), new Field("status", FieldValue.FromLong(500 + i))));
            }
            writer.Complete();
        }
        var segment = Segment.Open(path);
        try
        {
            Assert.Equal(["collection", "conection", "connection", "connections", "connector"], segment.FuzzyTerms(new FuzzyNode(null, "connection", 2))!);
            Assert.Equal(["conection", "connection", "connections"], segment.FuzzyTerms(new FuzzyNode("message", "connection", 1))!);
            Assert.Equal(["connector"], segment.FuzzyTerms(new FuzzyNode("host", "connection", 2))!);
            Assert.Empty(segment.FuzzyTerms(new FuzzyNode("status", "connection", 2))!);
            Assert.Empty(segment.FuzzyTerms(new FuzzyNode("nosuch", "connection", 2))!);
            Assert.Equal(["user_id"], segment.FuzzyTerms(new FuzzyNode(null, "user_ix", 1))!);
            // Numbers with more than 2 digits are not in the dictionary: a term that could reach one is answered by the texts.
            Assert.Null(segment.FuzzyTerms(new FuzzyNode(null, "12346", 1)));
            Assert.Null(segment.FuzzyTerms(new FuzzyNode(null, "ab1", 2)));
            Assert.NotNull(segment.FuzzyTerms(new FuzzyNode(null, "ab1", 1)));
            // Nor is a term that is not one token.
            Assert.Null(segment.FuzzyTerms(new FuzzyNode("host", "web-1", 1)));
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    /// <summary>
    /// A plain column of strings gets the bounds of its block's values (UTF-16 ordinal order, nulls and absent rows left
    /// out, cut at 64 bytes) and their fewest characters, as does the message column; a dictionary column gets its
    /// fewest characters alone, and the rows of each value when it holds only strings, a column holding another kind
    /// nothing; a block, its rows per minute. A copied block keeps them.
    /// </summary>
    [Fact]
    public void ColumnsCarryTheirBoundsAndValueCountsAndCopiedBlocksKeepThem()
    {
        using var dir = new TempDirectory();
        static string Verb(int i) => new[] { "get", "put", "delete" }[i % 3];
        string Trace(int i) => i % 7 == 0 ? $"\U0001F600{i:x4}" : i % 5 == 0 ? $"\uE000{i:x4}" : $"t-{i:x4}";
        LogEvent Row(int i)
        {
            var fields = new List<Field>
            {
                new("trace", FieldValue.FromString(Trace(i))),
                new("level", FieldValue.FromString(i % 2 == 0 ? "INFO" : "WARN")),
                new("mixed", i == 130 ? FieldValue.FromLong(1) : FieldValue.FromString($"m{i}")),
                new("long", FieldValue.FromString(new string('x', i == 3 ? 65 : 10) + i)),
            };
            if (i % 3 != 0)
            {
                fields.Add(new Field("sparse", i % 9 != 2 ? FieldValue.FromString($"s{i:d4}") : FieldValue.Null));
            }
            if (i % 4 != 1)
            {
                fields.Add(new Field("verb", i == 200 ? FieldValue.Null : FieldValue.FromString(Verb(i))));
            }
            return Event(i + 1, $"row {i}", [.. fields]);
        }
        Segment Write(string name, IEnumerable<int> rows)
        {
            var path = Path.Combine(dir.Path, name);
            using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 128, compressionLevel: 3))
            {
                foreach (var i in rows)
                {
                    writer.Add(Row(i));
                }
                writer.Complete();
            }
            return Segment.Open(path);
        }
        static string? Text(byte[]? utf8) => utf8 is null ? null : System.Text.Encoding.UTF8.GetString(utf8);
        void Check(Segment segment, int block, IReadOnlyList<int> rows)
        {
            var traces = rows.Select(Trace).Order(StringComparer.Ordinal).ToList();
            var bounds = segment.Bounds(block, "trace");
            Assert.Equal((traces[0], traces[^1]), (Text(bounds?.Low), Text(bounds?.High)));
            var sparse = rows.Where(i => i % 3 != 0 && i % 9 != 2).Select(i => $"s{i:d4}").Order(StringComparer.Ordinal).ToList();
            Assert.Equal((sparse[0], sparse[^1]), (Text(segment.Bounds(block, "sparse")?.Low), Text(segment.Bounds(block, "sparse")?.High)));
            // A dictionary-coded column: the fewest characters alone.
            Assert.Equal(((byte[]?)null, (byte[]?)null, (int?)4), (segment.Bounds(block, "level")?.Low, segment.Bounds(block, "level")?.High, segment.Bounds(block, "level")?.MinLength));
            Assert.Equal(rows.Contains(130), segment.Bounds(block, "mixed") is null);
            // Values past 64 bytes are cut at a character: a cut greatest value ends with 0xFF.
            var longs = rows.Select(i => new string('x', i == 3 ? 65 : 10) + i).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(System.Text.Encoding.UTF8.GetBytes(longs[0]), segment.Bounds(block, "long")?.Low);
            Assert.Equal(rows.Contains(3) ? [.. System.Text.Encoding.UTF8.GetBytes(new string('x', 64)), 0xFF] : System.Text.Encoding.UTF8.GetBytes(longs[^1]), segment.Bounds(block, "long")?.High);
            Assert.Equal(rows.Min(i => 10 + i.ToString(System.Globalization.CultureInfo.InvariantCulture).Length), segment.Bounds(block, "long")?.MinLength);
            Assert.Equal(rows.Min(i => Trace(i).Length), bounds?.MinLength);
            var messages = rows.Select(i => $"row {i}").Order(StringComparer.Ordinal).ToList();
            Assert.Equal((messages[0], messages[^1], messages.Min(m => m.Length)), (Text(segment.ColumnBounds(block, SegmentFormat.MessageColumn)?.Low), Text(segment.ColumnBounds(block, SegmentFormat.MessageColumn)?.High), segment.ColumnBounds(block, SegmentFormat.MessageColumn)?.MinLength));
            Assert.Null(segment.Bounds(block, "nosuch"));
            // Value counts: of a small dictionary of strings; not where a row holds null or the column is plain.
            static Dictionary<string, int>? Counts(ValueCounts? counts) => counts?.Values.Zip(counts.Rows).ToDictionary(p => p.First, p => p.Second);
            Assert.Equal(rows.GroupBy(i => i % 2 == 0 ? "INFO" : "WARN").ToDictionary(g => g.Key, g => g.Count()), Counts(segment.FieldCounts(block, "level")));
            Assert.Equal(rows.Contains(200) ? null : rows.Where(i => i % 4 != 1).GroupBy(Verb).ToDictionary(g => g.Key, g => g.Count()), Counts(segment.FieldCounts(block, "verb")));
            Assert.Null(segment.FieldCounts(block, "trace"));
            Assert.Null(segment.FieldCounts(block, "sparse"));
            Assert.Null(segment.FieldCounts(block, "nosuch"));
            // Rows per minute, from the minute of the block's first row (a row a second) to that of its last.
            var minutes = rows.Select(i => (i + 1) / 60).ToList();
            Assert.Equal(Enumerable.Range(minutes[0], minutes[^1] - minutes[0] + 1).Select(m => minutes.Count(x => x == m)), segment.Blocks[block].MinuteRows!);
            Assert.Equal(segment.Bounds(block, "trace"), segment.OpenBlock(block).Bounds("trace"));
        }
        var first = Write("a.lws", Enumerable.Range(0, 256));
        var second = Write("b.lws", Enumerable.Range(256, 128));
        var mergedPath = Path.Combine(dir.Path, "merged.lws");
        using (var writer = new SegmentWriter(mergedPath, "2026-11-26", blockRows: 128, compressionLevel: 6))
        {
            Assert.Equal(3, SegmentMerge.Write([second, first], writer, 128, CancellationToken.None).CopiedBlocks);
            writer.Complete();
        }
        var merged = Segment.Open(mergedPath);
        try
        {
            foreach (var segment in new[] { first, merged })
            {
                Check(segment, 0, [.. Enumerable.Range(0, 128)]);
                Check(segment, 1, [.. Enumerable.Range(128, 128)]);
            }
            Check(second, 0, [.. Enumerable.Range(256, 128)]);
            Check(merged, 2, [.. Enumerable.Range(256, 128)]);
        }
        finally
        {
            foreach (var segment in new[] { first, second, merged })
            {
                segment.Retire(deleteFile: false);
            }
        }
    }

    /// <summary>Skipping varints lands where reading them one by one does, for every count and width, and not past the end.</summary>
    [Fact]
    public void SkippingVarintsLandsWhereReadingThemDoes()
    {
        var random = new Random(7);
        var values = new ulong[300];
        var output = new ByteWriter();
        for (var i = 0; i < values.Length; i++)
        {
            // Widths from one byte to ten, in runs, as row deltas and positions come.
            values[i] = random.Next(4) switch { 0 => (ulong)random.Next(128), 1 => (ulong)random.Next(1 << 14), 2 => (ulong)random.NextInt64(), _ => ulong.MaxValue - (ulong)random.Next(5) };
            output.WriteVarUInt(values[i]);
        }
        output.WriteByte(0xAB);
        var bytes = output.WrittenSpan.ToArray();
        for (var skip = 0; skip <= values.Length; skip++)
        {
            var skipping = new ByteReader(bytes);
            skipping.SkipVarUInts(skip);
            var reading = new ByteReader(bytes);
            for (var i = 0; i < skip; i++)
            {
                reading.ReadVarUInt();
            }
            Assert.Equal(reading.Position, skipping.Position);
            Assert.Equal(skip < values.Length ? values[skip] : 0xAB, skip < values.Length ? skipping.ReadVarUInt() : skipping.ReadByte());
        }
        // More varints than the data holds: the end is reported, from the vector loop and from the tail alike.
        Assert.Throws<InvalidDataException>(() => new ByteReader(bytes).SkipVarUInts(values.Length + 2));
        Assert.Throws<InvalidDataException>(() => new ByteReader(bytes.AsSpan(0, 20)).SkipVarUInts(21));
    }

    /// <summary>Footer counts that a block could not hold read as damage (InvalidDataException), whatever the numbers.</summary>
    [Fact]
    public void FooterCountsThatABlockCannotHoldAreDamage()
    {
        static byte[] Counts(params int[] rows)
        {
            var output = new ByteWriter();
            ValueCounts.Write(output, new ValueCounts([.. rows.Select((_, i) => $"v{i}")], rows));
            return output.WrittenSpan.ToArray();
        }
        static int? ReadCounts(byte[] bytes, int blockRows)
        {
            var reader = new ByteReader(bytes);
            return ValueCounts.Read(ref reader, [], blockRows)?.Rows.Sum();
        }
        Assert.Equal(16, ReadCounts(Counts(10, 6), 16));
        Assert.Throws<InvalidDataException>(() => ReadCounts(Counts(10, 7), 16));
        // A count past int's range is damage too, not an overflow.
        var huge = new ByteWriter();
        huge.WriteVarUInt(2);
        huge.WriteString("v0");
        huge.WriteVarUInt(ulong.MaxValue);
        Assert.Throws<InvalidDataException>(() => ReadCounts(huge.WrittenSpan.ToArray(), 16));

        var minute = TimeSpan.TicksPerMinute;
        static byte[] Minutes(params int[] rows)
        {
            var output = new ByteWriter();
            MinuteRows.Write(output, rows);
            return output.WrittenSpan.ToArray();
        }
        static int? ReadMinutes(byte[] bytes, long minTime, long maxTime, int blockRows)
        {
            var reader = new ByteReader(bytes);
            return MinuteRows.Read(ref reader, minTime, maxTime, blockRows)?.Length;
        }
        // Before the epoch of ticks as well: minutes are floored.
        Assert.Equal(2, ReadMinutes(Minutes(3, 4), -minute - 1, -minute + 1, 7));
        Assert.Throws<InvalidDataException>(() => ReadMinutes(Minutes(3, 4), 0, minute, 8));
        Assert.Throws<InvalidDataException>(() => ReadMinutes(Minutes(3, 4), 0, 2 * minute, 7));
        Assert.Throws<InvalidDataException>(() => ReadMinutes(Minutes(7), minute, 0, 7));
        Assert.Equal([60, 60, 8], MinuteRows.Of([.. Enumerable.Range(0, 128).Select(i => i * TimeSpan.TicksPerSecond)])!);
        Assert.Null(MinuteRows.Of([0, (MinuteRows.MaxMinutes + 1) * minute]));
    }

    [Fact]
    public void AMergeCopiesTheBlocksNoOtherInputOverlapsAndRewritesOnlyTheRest()
    {
        using var dir = new TempDirectory();
        var day = new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc).Ticks;
        LogEvent At(long second, long seq, string message, params Field[] fields) => new(day + second * TimeSpan.TicksPerSecond, message, fields) { Seq = seq };
        Segment Write(string name, IEnumerable<LogEvent> events)
        {
            var path = Path.Combine(dir.Path, name);
            using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 16, compressionLevel: 3))
            {
                foreach (var evt in events)
                {
                    writer.Add(evt);
                }
                writer.Complete();
            }
            return Segment.Open(path);
        }
        // a and b follow one another (b names its fields in another order and has one a lacks); c arrives late, into
        // the time of b's last rows; b's last block is short. Two rows of c share a second with rows of b.
        var a = Enumerable.Range(0, 64).Select(i => At(i, i + 1, $"accepted session {i} for alice",
            new Field("host", FieldValue.FromString($"web-{i % 3}")), new Field("level", FieldValue.FromString("INFO")))).ToList();
        var b = Enumerable.Range(64, 66).Select(i => At(i, i + 1, $"cache warmed in {i} ms",
            new Field("region", FieldValue.FromString(i % 2 == 0 ? "europe" : "asia")), new Field("level", FieldValue.FromString("DEBUG")),
            new Field("host", FieldValue.FromString("db-1")))).ToList();
        var c = Enumerable.Range(0, 10).Select(i => At(120 + i, 500 + i, $"late connection reset {i}", new Field("status", FieldValue.FromLong(500 + i)))).ToList();
        var inputs = new[] { Write("b.lws", b), Write("c.lws", c), Write("a.lws", a) };
        var mergedPath = Path.Combine(dir.Path, "merged.lws");
        SegmentMerge.Counts counts;
        using (var writer = new SegmentWriter(mergedPath, "2026-11-26", blockRows: 16, compressionLevel: 6))
        {
            counts = SegmentMerge.Write(inputs, writer, 16, CancellationToken.None);
            writer.Complete();
        }
        foreach (var input in inputs)
        {
            input.Retire(deleteFile: false);
        }
        // a's 4 blocks and b's first 3 are copied; b's 4th and short 5th block and c's block are decoded and interleaved.
        Assert.Equal(7, counts.CopiedBlocks);
        Assert.Equal(3, counts.DecodedBlocks);

        var merged = Segment.Open(mergedPath);
        try
        {
            Assert.Null(merged.Verify());
            var expected = a.Concat(b).Concat(c).OrderBy(e => new EventPosition(e.Timestamp, e.Seq)).ToList();
            var actual = Enumerable.Range(0, merged.Blocks.Length).SelectMany(merged.ReadBlock).ToList();
            Assert.Equal(expected.Select(Describe), actual.Select(Describe));
            Assert.Equal(expected.Count, merged.Info.Events);
            Assert.Equal((1, 509), (merged.Info.MinSeq, merged.Info.MaxSeq));
            Assert.All(merged.Blocks.SkipLast(1), block => Assert.InRange(block.Rows, 8, 24));
            // The words of copied and rewritten blocks alike, under the merged segment's own field ids.
            Assert.Equal(["europe"], merged.FuzzyTerms(new FuzzyNode("region", "europa", 1))!);
            Assert.Equal(["alice"], merged.FuzzyTerms(new FuzzyNode(null, "alise", 1))!);
            Assert.Equal(["reset"], merged.FuzzyTerms(new FuzzyNode("message", "resets", 1))!);
            Assert.Empty(merged.FuzzyTerms(new FuzzyNode("host", "europa", 1))!);
            // Token filters and postings travel with their blocks.
            Assert.All(Enumerable.Range(0, 4), i => Assert.True(merged.MayHaveToken(TokenHash.Of("level", "info"), i)));
            Assert.All(Enumerable.Range(4, 3), i => Assert.True(merged.MayHaveToken(TokenHash.Of("region", "europe"), i)));
            Assert.Equal(Enumerable.Range(4, 3).Select(i => 16), Enumerable.Range(4, 3).Select(i => merged.OpenBlock(i).Postings!.Rows(TokenHash.Of("cache"))!.Sum(word => System.Numerics.BitOperations.PopCount(word))));
        }
        finally
        {
            merged.Retire(deleteFile: false);
        }

        static string Describe(LogEvent e) =>
            $"{e.Timestamp} {e.Seq} {e.Message} " + string.Join(",", e.Fields.AsSpan().ToArray().OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => $"{f.Name}={f.Value}"));
    }

    [Fact]
    public void AFuzzyTermWithTooManyWordsOrAnIncompleteDictionaryReadsTheTexts()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "seg.lws");
        using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 64, compressionLevel: 3))
        {
            // 76 words within one edit of "aaa".
            var words = Enumerable.Range('a', 26).SelectMany(c => new[] { $"aa{(char)c}", $"a{(char)c}a", $"{(char)c}aa" }).Distinct().ToList();
            for (var i = 0; i < words.Count; i++)
            {
                writer.Add(Event(i + 1, words[i]));
            }
            writer.Complete();
        }
        var segment = Segment.Open(path);
        try
        {
            Assert.Null(segment.FuzzyTerms(new FuzzyNode(null, "aaa", 1)));
            Assert.Equal(["aab", "baa"], segment.FuzzyTerms(new FuzzyNode(null, "bab", 1))!);
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }

        var builder = new TermDictionaryBuilder();
        for (var i = 0; i <= TermDictionaryBuilder.MaxTerms; i++)
        {
            var word = $"w{i:x}".Replace('0', 'g').Replace('1', 'h').Replace('2', 'i').Replace('3', 'j').Replace('4', 'k').Replace('5', 'l').Replace('6', 'm').Replace('7', 'n').Replace('8', 'o').Replace('9', 'p');
            builder.Add(TokenHash.Of(word), 0, word);
        }
        var output = new Logwell.Storage.Encoding.ByteWriter(1024);
        builder.Write(output);
        Assert.False(new TermDictionary(output.WrittenSpan.ToArray()).Complete);
    }

    [Fact]
    public void BlocksRoundTripEveryFieldTypeAndTheIndexNamesTheRightBlocks()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "seg.lws");
        var events = new List<LogEvent>();
        for (var i = 1; i <= 100; i++)
        {
            events.Add(Event(i, i == 77 ? "needle in a haystack" : $"ordinary line {i % 5}",
                new Field("host", FieldValue.FromString($"web-{i % 3}")),
                new Field("status", FieldValue.FromLong(200 + i)),
                new Field("ratio", FieldValue.FromDouble(i / 4.0)),
                new Field("ok", FieldValue.FromBool(i % 2 == 0)),
                new Field("tags", FieldValue.FromJson("[1,2]")),
                new Field("gone", FieldValue.Null)));
        }
        using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 16, compressionLevel: 3))
        {
            foreach (var evt in events)
            {
                writer.Add(evt);
            }
            writer.Complete();
        }
        var segment = Segment.Open(path);
        try
        {
            Assert.Equal(100, segment.Info.Events);
            Assert.Equal(7, segment.Blocks.Length);
            var read = Enumerable.Range(0, segment.Blocks.Length).SelectMany(segment.ReadBlock).ToList();
            Assert.Equal(events.Select(e => (e.Timestamp, e.Seq, e.Message)), read.Select(e => (e.Timestamp, e.Seq, e.Message)));
            for (var i = 0; i < events.Count; i++)
            {
                Assert.Equal(events[i].Fields, read[i].Fields);
            }
            // Event 77 is the 13th row of block 4 (rows 65..80).
            Assert.Equal([4], segment.BlocksWithToken(TokenHash.Of("needle")));
            Assert.Equal(7, segment.BlocksWithToken(TokenHash.Of("host", "web")).Count);
            Assert.Empty(segment.BlocksWithToken(TokenHash.Of("host", "needle")));
            // Field tokens are indexed under their field only.
            Assert.Empty(segment.BlocksWithToken(TokenHash.Of("web")));
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    [Fact]
    public void VersionTwoSegmentsWithoutPostingsAreStillSearched()
    {
        // Written by the version 2 writer: 40 events in blocks of 16, no row postings.
        var segment = Segment.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "segment-v2.lws"));
        try
        {
            Assert.Equal(40, segment.Info.Events);
            foreach (var text in new[] { "reset", "\"reset by peer\"", "level:ERROR", "level:ERR*", "status:201 AND served", "NOT connection", "peer -level:info" })
            {
                var query = QueryParser.Parse(text);
                var matcher = EventMatcher.Compile(query, DateTimeOffset.UtcNow);
                var matched = 0;
                for (var b = 0; b < segment.Blocks.Length; b++)
                {
                    var rows = segment.OpenBlock(b);
                    Assert.Null(rows.Postings);
                    var events = segment.ReadBlock(b);
                    var expected = Enumerable.Range(0, events.Length).Where(r => matcher(events[r])).ToList();
                    matched += expected.Count;
                    var bits = BlockQuery.Evaluate(query, rows, segment, DateTimeOffset.UtcNow);
                    Assert.Equal(expected, Enumerable.Range(0, rows.Count).Where(r => (bits[r >> 6] & (1UL << r)) != 0));
                }
                Assert.InRange(matched, 1, 39);
            }
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    [Fact]
    public void FrequentTokensGetRowPostingsAndRareOnesOnlyTheBlockIndex()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "seg.lws");
        using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 64, compressionLevel: 3))
        {
            for (var i = 0; i < 64; i++)
            {
                // "reset" in every third row, "timeout" in rows 0-9, "needle" once; trace ids unique.
                var message = (i % 3 == 0 ? "connection reset by peer" : "request served") + (i < 10 ? " after timeout" : "") + (i == 41 ? " needle" : "");
                writer.Add(Event(i + 1, message, new Field("trace", FieldValue.FromString($"t{i:x4}")), new Field("level", FieldValue.FromString(i % 8 == 0 ? "ERROR" : "INFO"))));
            }
            writer.Complete();
        }
        var segment = Segment.Open(path);
        try
        {
            var rows = segment.OpenBlock(0);
            var postings = rows.Postings!;
            int[] Rows(ulong hash) => postings.Rows(hash) is { } bits ? [.. Enumerable.Range(0, 64).Where(r => (bits[r >> 6] & (1UL << r)) != 0)] : [];

            Assert.Equal(Enumerable.Range(0, 64).Where(r => r % 3 == 0), Rows(TokenHash.Of("reset")));
            // "connection", "reset", "by" and "peer" share one list; "timeout" is in 10 rows, over the threshold of 8.
            Assert.Equal(Rows(TokenHash.Of("reset")), Rows(TokenHash.Of("PEER")));
            Assert.Equal(Enumerable.Range(0, 10), Rows(TokenHash.Of("timeout")));
            // A token in one row, and the values of a dictionary-coded field, are only in the token filter.
            Assert.Null(postings.Rows(TokenHash.Of("needle")));
            Assert.Null(postings.Rows(TokenHash.Of("level", "info")));
            Assert.Null(postings.Rows(TokenHash.Of("trace", "t0001")));
            Assert.True(segment.MayHaveToken(TokenHash.Of("needle"), 0));
            Assert.True(segment.MayHaveToken(TokenHash.Of("level", "error"), 0));
            Assert.True(segment.MayHaveToken(TokenHash.Of("trace", "t0001"), 0));
            // Positions count base tokens: "reset" is second wherever it stands; "timeout" follows a varying prefix.
            var reset = postings.Positions(TokenHash.Of("reset"))!;
            Assert.True(reset.Shared);
            Assert.Equal([1], reset.Of(0).ToArray());
            var timeout = postings.Positions(TokenHash.Of("timeout"))!;
            Assert.Equal(Enumerable.Range(0, 10), timeout.Rows);
            Assert.Equal([5, 3, 3], new[] { 0, 1, 2 }.Select(k => timeout.Of(k)[0]));
            var levels = rows.FieldCodes("level")!;
            Assert.Equal(Enumerable.Range(0, 8).Select(k => k * 8), levels.RowsOf(Array.IndexOf(levels.Values, "ERROR")).ToArray());
            Assert.Null(rows.FieldCodes("trace"));
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    /// <summary>Writes events 1 to 40 ("line N") in blocks of 16.</summary>
    private static string WriteFortyLines(TempDirectory dir)
    {
        var path = Path.Combine(dir.Path, "seg.lws");
        using var writer = new SegmentWriter(path, "2026-11-26", 16, 3);
        for (var i = 1; i <= 40; i++)
        {
            writer.Add(Event(i, $"line {i}"));
        }
        writer.Complete();
        return path;
    }

    [Fact]
    public void CorruptByteInABlockIsDetectedByItsChecksum()
    {
        using var dir = new TempDirectory();
        var path = WriteFortyLines(dir);
        var bytes = File.ReadAllBytes(path);
        bytes[12] ^= 0x55;
        File.WriteAllBytes(path, bytes);
        var segment = Segment.Open(path);
        try
        {
            Assert.Null(segment.Damage);
            var error = Assert.Throws<SegmentDamagedException>(() => segment.ReadBlock(0));
            Assert.Contains("checksum", error.Message, StringComparison.Ordinal);
            Assert.Contains("segment seg", error.Message, StringComparison.Ordinal);
            Assert.Equal(16, segment.ReadBlock(1).Length);
            // Recorded for health and merges; a full check finds it too.
            Assert.StartsWith("block 0 column", segment.Damage, StringComparison.Ordinal);
            Assert.StartsWith("block 0 column", segment.Verify(), StringComparison.Ordinal);
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    [Fact]
    public void AWholeSegmentVerifiesAndEveryCorruptByteIsFoundByVerify()
    {
        using var dir = new TempDirectory();
        var path = WriteFortyLines(dir);
        var whole = Segment.Open(path);
        Assert.Null(whole.Verify());
        whole.Retire(deleteFile: false);
        var original = File.ReadAllBytes(path);
        // Every byte of the blocks (before the footer) is under some checksum Verify reads.
        var end = original.Length - SegmentFormat.TrailerSize;
        for (var at = SegmentFormat.HeaderSize; at < end; at += 7)
        {
            var bytes = (byte[])original.Clone();
            bytes[at] ^= 0x20;
            File.WriteAllBytes(path, bytes);
            try
            {
                var segment = Segment.Open(path);
                try
                {
                    Assert.True(segment.Verify() is not null, $"a flipped byte at {at} of {original.Length} went unnoticed");
                }
                finally
                {
                    segment.Retire(deleteFile: false);
                }
            }
            catch (SegmentDamagedException)
            {
                // found at open
            }
            catch (InvalidDataException)
            {
                // found at open, by a decoder after a checksum over its input passed
            }
        }
    }

    [Fact]
    public void CorruptTokenFilterIsDetectedWhenTheSegmentOpens()
    {
        using var dir = new TempDirectory();
        var path = WriteFortyLines(dir);
        var segment = Segment.Open(path);
        var filter = segment.Blocks[1].Filter!.Value;
        var at = segment.Blocks[1].Offset + filter.Offset + 3;
        segment.Retire(deleteFile: false);
        var bytes = File.ReadAllBytes(path);
        bytes[at] ^= 0x01;
        File.WriteAllBytes(path, bytes);
        // A flipped filter bit could hide a block from a search: the segment is refused instead.
        var error = Assert.Throws<SegmentDamagedException>(() => Segment.Open(path));
        Assert.Contains("block 1 token filter checksum", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EventsOutOfOrderAreRefused()
    {
        using var dir = new TempDirectory();
        using var writer = new SegmentWriter(Path.Combine(dir.Path, "seg.lws"), "2026-11-26", 16, 3);
        writer.Add(Event(5, "b"));
        Assert.Throws<InvalidOperationException>(() => writer.Add(Event(4, "a")));
    }
}
