using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Querying;
using Logwell.Storage.Segments;

namespace Logwell.Tests;

public sealed class BlockQueryTests
{
    // Which searches have the kernel read blocks' postings ahead: those with a text clause on the message.
    [Theory]
    [InlineData("timeout", true)]
    [InlineData("\"connection reset by\"", true)]
    [InlineData("level:ERROR AND NOT message:retry", true)]
    [InlineData("host:web-1* OR up*", true)]
    [InlineData("message:/.*peer/", true)]
    [InlineData("level:ERROR", false)]
    [InlineData("host:web-1* AND NOT level:INFO", false)]
    [InlineData("status:[500 TO 599]", false)]
    [InlineData("*", false)]
    public void OnlyTextClausesOnTheMessageReadPostings(string query, bool reads) =>
        Assert.Equal(reads, BlockQuery.ReadsPostings(QueryParser.Parse(query)));

    // Reading ahead is advice: a file handle closed meanwhile (a segment retired during the search) is no error.
    [Fact]
    public void ReadingAheadAClosedFileIsNoError()
    {
        using var directory = new TempDirectory();
        var path = Path.Combine(directory.Path, "file");
        File.WriteAllBytes(path, new byte[8192]);
        var handle = File.OpenHandle(path);
        PageCache.WillRead(handle, 0, 8192);
        handle.Dispose();
        PageCache.WillRead(handle, 0, 8192);
    }

    // The run every match of the pattern must hold, which narrows the rows a regular expression is tested on.
    [Theory]
    [InlineData("connection", "connection")]
    [InlineData("conn[a-z]+ion", "conn")]
    [InlineData("time.*out", "time")]
    [InlineData("CONN?ection", "ection")]
    [InlineData("log+in", "log")]
    [InlineData("colou?r:", "colo")]
    [InlineData("abc{0,2}defg", "defg")]
    [InlineData("(re)?trying", "trying")]
    [InlineData("re(set|try)", null)]
    [InlineData("reset|retry", null)]
    [InlineData("[reset]+", null)]
    [InlineData("a[]|x]bcdef", "bcdef")]
    [InlineData("\\d+ ms", " ms")]
    [InlineData("took \\d+ ms", " ms")]
    [InlineData("kernel panic", null)]
    [InlineData("x.y.z", null)]
    public void ARegexNarrowsByTheRunEveryMatchHolds(string pattern, string? literal) =>
        Assert.Equal(literal, BlockQuery.RegexLiteral(pattern));

    // Words of message templates stand at one position in every row that holds them: a phrase of such words is
    // answered from those positions alone (all candidates or none), and agrees with testing each message.
    [Theory]
    [InlineData("\"for user\"", 256)]
    [InlineData("\"opened for user\"", 128)]
    [InlineData("\"user for\"", 0)]
    [InlineData("\"session for\"", 0)]
    [InlineData("\"session alpha\"", 128)]
    [InlineData("\"beta gamma\"", 128)]
    [InlineData("\"alpha beta gamma\"", 128)]
    [InlineData("\"gamma\" AND \"for user\"", 0)]
    public void PhrasesOfTemplateWordsAgreeWithTheMessages(string query, int expected)
    {
        string[] templates = ["session alpha opened for user {0}", "session beta closed for user {0}", "alpha beta gamma {0}", "beta alpha gamma {0}"];
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "seg.lws");
        var messages = Enumerable.Range(0, 512).Select(i => string.Format(System.Globalization.CultureInfo.InvariantCulture, templates[i % 4], i)).ToArray();
        using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 512, compressionLevel: 3))
        {
            for (var i = 0; i < messages.Length; i++)
            {
                writer.Add(new LogEvent(EventTime.Yesterday.UtcTicks + i, messages[i], []) { Seq = i + 1 });
            }
            writer.Complete();
        }
        var segment = Segment.Open(path);
        try
        {
            var node = QueryParser.Parse(query);
            var matcher = EventMatcher.Compile(node, EventTime.Yesterday);
            var bits = BlockQuery.Evaluate(node, segment.OpenBlock(0), segment, EventTime.Yesterday);
            var matching = Enumerable.Range(0, messages.Length).Where(row => RowBits.Contains(bits, row)).ToList();
            var expectedRows = Enumerable.Range(0, messages.Length).Where(i => matcher(new LogEvent(0, messages[i], []))).ToList();
            Assert.Equal(expectedRows, matching);
            Assert.Equal(expected, matching.Count);
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    [Fact]
    public void ACancelledSearchStopsInsideABlockNotAfterIt()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "seg.lws");
        using (var writer = new SegmentWriter(path, "2026-11-26", blockRows: 256, compressionLevel: 3))
        {
            for (var i = 0; i < 256; i++)
            {
                writer.Add(new LogEvent(EventTime.Yesterday.UtcTicks + i, $"request {i} served", [new Field("host", FieldValue.FromString($"web-{i % 7}"))]) { Seq = i + 1 });
            }
            writer.Complete();
        }
        var segment = Segment.Open(path);
        try
        {
            var rows = segment.OpenBlock(0);
            var query = QueryParser.Parse(string.Join(" OR ", Enumerable.Range(0, 100).Select(i => $"rare{i}")));
            Assert.False(RowBits.Any(BlockQuery.Evaluate(query, rows, segment, EventTime.Yesterday)));
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => BlockQuery.Evaluate(query, rows, segment, EventTime.Yesterday, cancelled.Token));
        }
        finally
        {
            segment.Retire(deleteFile: false);
        }
    }

    [Fact]
    public void AQueryWithMoreClausesThanTheLimitIsRefusedBeforeItRuns()
    {
        var atLimit = string.Join(" OR ", Enumerable.Range(0, QueryNode.MaxClauses).Select(i => $"t{i}"));
        Assert.True(QueryParser.TryParse(atLimit, out _, out var error), error?.ToString());
        Assert.False(QueryParser.TryParse(atLimit + " OR host:(a b)", out _, out error));
        Assert.Contains($"{QueryNode.MaxClauses + 2} clauses, over the limit of {QueryNode.MaxClauses}", error!.Message, StringComparison.Ordinal);
    }
}
