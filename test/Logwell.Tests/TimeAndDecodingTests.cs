using System.Text;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Core.Time;

namespace Logwell.Tests;

public sealed class TimeAndDecodingTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("now-15m", "2026-11-26T11:45:00Z")]
    [InlineData("now-1d", "2026-11-25T12:00:00Z")]
    [InlineData("now", "2026-11-26T12:00:00Z")]
    [InlineData("2026-11-20T08:30:00Z", "2026-11-20T08:30:00Z")]
    [InlineData("2026-11-20T10:30:00+02:00", "2026-11-20T08:30:00Z")]
    [InlineData("1764000000000", "2025-11-24T16:00:00Z")]
    public void TimeBoundsAreReadInEveryForm(string text, string expected)
    {
        Assert.True(TimeExpression.TryParse(text, Now, out var value, out var error), error);
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), value);
    }

    [Theory]
    [InlineData("now/d", false, "2026-11-26T00:00:00Z")]
    [InlineData("now/d", true, "2026-11-26T23:59:59.9999999Z")]
    [InlineData("now/d-1d", false, "2026-11-25T00:00:00Z")]
    [InlineData("now-1d/d", false, "2026-11-25T00:00:00Z")]
    [InlineData("now/M", false, "2026-11-01T00:00:00Z")]
    [InlineData("now+1M/M", true, "2026-12-31T23:59:59.9999999Z")]
    [InlineData("now/y", false, "2026-01-01T00:00:00Z")]
    [InlineData("now/w", false, "2026-11-23T00:00:00Z")]
    [InlineData("now-1y+2h/h", false, "2025-11-26T14:00:00Z")]
    [InlineData("2026-01-31||+1M", false, "2026-02-28T00:00:00Z")]
    [InlineData("2026-01-31T10:00:00Z||/d", true, "2026-01-31T23:59:59.9999999Z")]
    public void DateMathAppliesLeftToRightAndRoundsEitherWay(string text, bool roundUp, string expected)
    {
        Assert.True(TimeExpression.TryParse(text, Now, roundUp, out var value, out var error), error);
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), value);
    }

    [Theory]
    [InlineData("now-15x")]
    [InlineData("now/")]
    [InlineData("now/q")]
    [InlineData("now-1")]
    [InlineData("nope||+1d")]
    [InlineData("yesterday")]
    [InlineData("now-m")]
    public void BadTimeBoundsAreRejectedWithAReason(string text)
    {
        Assert.False(TimeExpression.TryParse(text, Now, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Fact]
    public void JsonLinesKeepTypesAndFlattenNestedObjects()
    {
        var body = "{\"@t\":\"2026-11-26T10:00:00.5Z\",\"msg\":\"hello\",\"status\":500,\"ratio\":0.5,\"ok\":false,\"user\":{\"id\":7,\"tags\":[\"a\"]},\"none\":null}\n"u8;
        var result = EventDecoder.DecodeJsonLines(body, Now);
        var evt = Assert.Single(result.Events);
        Assert.Equal(new DateTime(2026, 11, 26, 10, 0, 0, 500, DateTimeKind.Utc).Ticks, evt.Timestamp);
        Assert.Equal("hello", evt.Message);
        Assert.True(evt.TryGetField("status", out var status) && status == FieldValue.FromLong(500));
        Assert.True(evt.TryGetField("ratio", out var ratio) && ratio == FieldValue.FromDouble(0.5));
        Assert.True(evt.TryGetField("ok", out var ok) && ok == FieldValue.False);
        Assert.True(evt.TryGetField("user.id", out var id) && id == FieldValue.FromLong(7));
        Assert.True(evt.TryGetField("user.tags", out var tags) && tags == FieldValue.FromJson("[\"a\"]"));
        Assert.True(evt.TryGetField("none", out var none) && none == FieldValue.Null);
        Assert.False(evt.TryGetField("@t", out _));
    }

    [Theory]
    [InlineData("{\"ts\":1764158400}", "2025-11-26T12:00:00Z")]
    [InlineData("{\"time\":1764158400123}", "2025-11-26T12:00:00.123Z")]
    [InlineData("{\"timestamp\":\"1764158400\"}", "2025-11-26T12:00:00Z")]
    [InlineData("{\"@timestamp\":\"2025-11-26T13:00:00+01:00\"}", "2025-11-26T12:00:00Z")]
    public void TimestampsAreReadFromTheirUsualNamesAndForms(string line, string expected)
    {
        var evt = Assert.Single(EventDecoder.DecodeJsonLines(Encoding.UTF8.GetBytes(line), Now).Events);
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture).UtcTicks, evt.Timestamp);
    }

    [Fact]
    public void AFieldNamedTwiceKeepsItsLastValue()
    {
        var evt = Assert.Single(EventDecoder.DecodeJsonLines("{\"a\":1,\"b\":{\"c\":2},\"a\":\"x\",\"b.c\":3}"u8, Now).Events);
        Assert.Equal([new Field("a", FieldValue.FromString("x")), new Field("b.c", FieldValue.FromLong(3))], evt.Fields);
    }

    [Fact]
    public void MissingTimestampMeansTimeReceived()
    {
        var evt = Assert.Single(EventDecoder.DecodeJsonLines("{\"message\":\"x\"}"u8, Now).Events);
        Assert.Equal(Now.UtcTicks, evt.Timestamp);
    }

    [Fact]
    public void MalformedLinesAreRejectedWithTheirLineNumberAndTheRestAccepted()
    {
        var body = "{\"message\":\"one\"}\n{\"message\": oops}\n\n[1,2]\n{\"message\":\"two\"}\r\n{\"@t\":\"someday\"}\n{\"a\":\"\\ud800\"}\n"u8;
        var result = EventDecoder.DecodeJsonLines(body, Now);
        Assert.Equal(["one", "two"], result.Events.Select(e => e.Message));
        Assert.Equal(4, result.Rejected);
        Assert.Equal([2L, 4L, 6L, 7L], result.Errors.Select(e => e.Line));
        Assert.Contains("invalid JSON at column 13", result.Errors[0].Error, StringComparison.Ordinal);
        Assert.Contains("expected a JSON object", result.Errors[1].Error, StringComparison.Ordinal);
        Assert.Contains("timestamp", result.Errors[2].Error, StringComparison.Ordinal);
    }

    [Fact]
    public void TextLinesBecomeMessages()
    {
        var result = EventDecoder.DecodeText("first line\r\n\nsecond line"u8, Now);
        Assert.Equal(["first line", "second line"], result.Events.Select(e => e.Message));
    }
}
