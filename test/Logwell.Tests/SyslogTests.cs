using System.Buffers;
using System.Text;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Server.Hosting;

namespace Logwell.Tests;

public sealed class SyslogTests
{
    private static readonly DateTimeOffset Received = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    private static string Describe(LogEvent evt) =>
        $"{new DateTime(evt.Timestamp, DateTimeKind.Utc):yyyy-MM-ddTHH:mm:ss.fffZ} {string.Join(" ", evt.Fields.Select(f => $"{f.Name}={f.Value.SearchText}"))} | {evt.Message}";

    [Theory]
    // RFC 5424, with structured data (escapes inside values) and a byte order mark before the message.
    [InlineData("<165>1 2026-11-26T10:15:03.003Z web-1 shop 8710 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"lication\"][meta x=\"a\\]b\"] \uFEFForder 42 paid",
        "2026-11-26T10:15:03.003Z facility=local4 level=notice host=web-1 app=shop procid=8710 msgid=ID47 sd.exampleSDID@32473.iut=3 sd.exampleSDID@32473.eventSource=App\"lication sd.meta.x=a]b | order 42 paid")]
    // Nil values and no structured data; an offset in the timestamp.
    [InlineData("<11>1 2026-11-26T11:15:03+01:00 - - - - - disk full",
        "2026-11-26T10:15:03.000Z facility=user level=err | disk full")]
    // RFC 3164: no year or zone (read in the node's zone, here UTC), a tag with a pid.
    [InlineData("<34>Nov 26 09:05:07 db-1 sshd[4242]: Failed password for root from 10.0.0.9",
        "2026-11-26T09:05:07.000Z facility=auth level=crit host=db-1 app=sshd procid=4242 | Failed password for root from 10.0.0.9")]
    // A single-digit day is padded with a space; a date ahead of the clock is last year's.
    [InlineData("<13>Dec  3 08:00:00 web-2 cron: job done",
        "2025-12-03T08:00:00.000Z facility=user level=notice host=web-2 app=cron | job done")]
    // What cannot be read is kept whole, with the reason.
    [InlineData("no priority here", "2026-11-26T12:00:00.000Z syslog_error=no <PRI> at the start | no priority here")]
    [InlineData("<999>1 - - - - - x", "2026-11-26T12:00:00.000Z syslog_error=no <PRI> at the start | <999>1 - - - - - x")]
    [InlineData("<14>1 yesterday web-1 app - - - hi", "2026-11-26T12:00:00.000Z syslog_error=cannot read the timestamp 'yesterday' | <14>1 yesterday web-1 app - - - hi")]
    [InlineData("<14>1 2026-11-26T10:00:00Z web-1 app - - [broken x=\"1 rest", "2026-11-26T12:00:00.000Z syslog_error=structured data element [broken] has an unclosed value | <14>1 2026-11-26T10:00:00Z web-1 app - - [broken x=\"1 rest")]
    public void MessagesBecomeEventsAndBrokenOnesAreKeptWhole(string line, string expected) =>
        Assert.Equal(expected, Describe(SyslogParser.Parse(line, Received, TimeZoneInfo.Utc)));

    /// <summary>Feeds bytes in pieces, as a TCP connection delivers them, and collects the frames.</summary>
    private static List<string> Frames(string[] pieces, int max = 1000)
    {
        var frames = new List<string>();
        var state = new SyslogListener.FrameState();
        var pending = Array.Empty<byte>();
        for (var p = 0; p < pieces.Length; p++)
        {
            pending = [.. pending, .. Encoding.UTF8.GetBytes(pieces[p])];
            var buffer = new ReadOnlySequence<byte>(pending);
            var ended = p == pieces.Length - 1;
            while (SyslogListener.TryReadFrame(ref buffer, max, ended, state, out var frame, out var truncated))
            {
                frames.Add(Encoding.UTF8.GetString(frame) + (truncated ? " [cut]" : ""));
            }
            pending = buffer.ToArray();
        }
        return frames;
    }

    [Fact]
    public void TcpFramesAreOctetCountedOrLinesEvenWhenSplitAcrossReads()
    {
        Assert.Equal(["<14>1 - - - - - first", "<14>1 - - - - - sec\nond", "third line", "fourth"],
            Frames(["2", "1 <14>1 - - - - - first", "23 <14>1 - - - - - sec\nond", "third li", "ne\n\nfourth"]));
        // A connection that starts with a line frames by lines throughout, even a line that starts with digits.
        Assert.Equal(["<14>hello", "2026 was a year", "next"], Frames(["<14>hello\n2026", " was a year\nnext\n"]));
    }

    [Fact]
    public void AnOversizedFrameIsCutAndItsRestSkippedWithoutBuffering()
    {
        var longLine = new string('x', 50);
        Assert.Equal([new string('x', 20) + " [cut]", "after"], Frames([longLine[..30], longLine[30..] + "\nafter\n"], max: 20));
        Assert.Equal(["abcdefghij [cut]", "ok"], Frames(["30 abcdefghij", "klmnopqrst", "uvwxyz0123", "2 ok"], max: 10));
    }
}
