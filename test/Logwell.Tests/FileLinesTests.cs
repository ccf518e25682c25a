using System.Text;
using System.Text.RegularExpressions;
using Logwell.Core.Ingest;

namespace Logwell.Tests;

/// <summary>Bytes of log files into lines and events: encodings, partial reads, byte counts for checkpoints, multiline rules and filters.</summary>
public sealed class FileLinesTests
{
    private static List<(string Line, int Bytes)> Split(Encoding encoding, byte[] bytes, int chunk, out (string Line, int Bytes)? rest)
    {
        var splitter = new LineSplitter(encoding);
        var lines = new List<(string, int)>();
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            splitter.Add(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)), lines);
        }
        rest = splitter.Flush();
        return lines;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(64)]
    public void Utf8LinesComeWholeWhateverTheReadsCutAndCountTheirBytes(int chunk)
    {
        var bytes = Encoding.UTF8.GetBytes("héllo\nwörld\r\n\npartial");
        var lines = Split(FileEncodings.ForName("utf-8"), bytes, chunk, out var rest);
        Assert.Equal([("héllo", 7), ("wörld", 8), ("", 1)], lines);
        Assert.Equal(("partial", 7), rest);
        Assert.Equal(bytes.Length, lines.Sum(l => l.Bytes) + rest!.Value.Bytes);
    }

    [Fact]
    public void GbkAndGb18030FilesArriveAsTheirText()
    {
        foreach (var name in new[] { "gbk", "GB18030" })
        {
            var encoding = FileEncodings.ForName(name);
            var text = "应用日志 错误: 连接超时\n第二行\n";
            var lines = Split(encoding, encoding.GetBytes(text), 3, out var rest);
            Assert.Equal(["应用日志 错误: 连接超时", "第二行"], lines.Select(l => l.Line));
            Assert.Null(rest);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Utf16FilesSplitOnlyAtTheirNewlineCodeUnit(bool bigEndian)
    {
        // U+010A and U+0A00 hold a 0x0A byte that is no newline.
        var encoding = new UnicodeEncoding(bigEndian, byteOrderMark: false);
        var bom = bigEndian ? new byte[] { 0xFE, 0xFF } : [0xFF, 0xFE];
        var bytes = bom.Concat(encoding.GetBytes("Ċ first \u0A00\r\nsecond\n")).ToArray();
        var (declared, length) = FileEncodings.FromByteOrderMark(bytes);
        Assert.Equal(2, length);
        var lines = Split(declared!, bytes[length..], 1, out var rest);
        Assert.Equal([("Ċ first \u0A00", 22), ("second", 14)], lines);
        Assert.Null(rest);
    }

    [Fact]
    public void ALineWithoutANewlineIsCutAtItsLimit()
    {
        var splitter = new LineSplitter(Encoding.UTF8);
        var lines = new List<(string, int)>();
        splitter.Add(Encoding.UTF8.GetBytes(new string('x', 2500) + "\n"), lines, maxLineBytes: 1000);
        Assert.Equal([1000, 1000, 501], lines.Select(l => l.Item2));
        Assert.Equal(0, splitter.Pending);
    }

    [Fact]
    public void AJavaStackTraceIsOneEventByItsStartPattern()
    {
        var assembler = new LineAssembler(new MultilineRule(new Regex(@"^\d{4}-\d{2}-\d{2} "), false));
        var events = new List<(string, long)>();
        string[] lines =
        [
            "2026-12-07 10:00:01 ERROR request failed",
            "java.lang.IllegalStateException: boom",
            "\tat com.example.Orders.pay(Orders.java:42)",
            "\tat com.example.Api.handle(Api.java:7)",
            "2026-12-07 10:00:02 INFO next",
        ];
        foreach (var line in lines)
        {
            assembler.Add(line, Encoding.UTF8.GetByteCount(line) + 1, events);
        }
        var (text, bytes) = Assert.Single(events);
        Assert.Equal(string.Join('\n', lines[..4]), text);
        Assert.Equal(lines[..4].Sum(l => l.Length + 1), bytes);
        Assert.Equal(("2026-12-07 10:00:02 INFO next", 30L), assembler.Flush());
        Assert.Null(assembler.Flush());
    }

    [Fact]
    public void IndentedLinesContinueAndAnEventStopsAtItsLineLimit()
    {
        var assembler = new LineAssembler(new MultilineRule(null, IndentContinues: true, MaxLines: 3));
        var events = new List<(string Event, long Bytes)>();
        foreach (var line in new[] { "Traceback (most recent call last):", "  File \"app.py\", line 3", "    main()", "  File \"x.py\"", "next" })
        {
            assembler.Add(line, line.Length + 1, events);
        }
        Assert.Equal(["Traceback (most recent call last):\n  File \"app.py\", line 3\n    main()", "  File \"x.py\""], events.Select(e => e.Event));
        Assert.Equal("next", assembler.Flush()!.Value.Event);

        // Without a rule each line is an event at once.
        var single = new LineAssembler(MultilineRule.None);
        single.Add("one", 4, events);
        Assert.Equal(("one", 4L), events[^1]);
        Assert.Null(single.Flush());
    }

    [Fact]
    public void ALineLongerThanAnEventMayBeIsShippedWholeInPieces()
    {
        var assembler = new LineAssembler(new MultilineRule(null, IndentContinues: true, MaxBytes: 10));
        var events = new List<(string Event, long Bytes)>();
        var lines = new[] { "start", "012345678\U0001F600abcdefghijAB", "  mo", "next" };
        foreach (var line in lines)
        {
            assembler.Add(line, line.Length + 1, events);
        }
        events.Add(assembler.Flush()!.Value);
        // Every character arrives, in pieces no longer than the limit that do not split a surrogate pair.
        Assert.Equal(["start", "012345678", "\U0001F600abcdefgh", "ijAB\n  mo", "next"], events.Select(e => e.Event));
        // The file's bytes of the long line go with its last piece: a checkpoint is never inside it.
        Assert.Equal([6L, 0, 0, 24 + 5, 5], events.Select(e => e.Bytes));
        Assert.Equal(lines.Sum(l => l.Length + 1), events.Sum(e => e.Bytes));
    }

    [Fact]
    public void FiltersKeepIncludedLinesThatNoExcludeMatches()
    {
        var filter = new LineFilter([new Regex("ERROR|WARN")], [new Regex("healthcheck")]);
        Assert.True(filter.Keeps("ERROR db down"));
        Assert.False(filter.Keeps("INFO fine"));
        Assert.False(filter.Keeps("WARN healthcheck slow"));
        Assert.True(LineFilter.All.Keeps("anything"));
        Assert.Throws<ArgumentException>(() => FileEncodings.ForName("latin-9"));
    }
}
