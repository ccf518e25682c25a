using Logwell.Core.Events;
using Logwell.Core.Query;

namespace Logwell.Tests;

/// <summary>Ranges whose bounds are dates compare a field's values as times, rounded as Elasticsearch rounds them.</summary>
public sealed class DateRangeTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    // [now/d-1d TO now/d]: from the start of yesterday to the end of today.
    [InlineData("somedate:[now/d-1d TO now/d]", "2026-11-25T00:00:00Z", true)]
    [InlineData("somedate:[now/d-1d TO now/d]", "2026-11-26T23:59:59Z", true)]
    [InlineData("somedate:[now/d-1d TO now/d]", "2026-11-24T23:59:59Z", false)]
    [InlineData("somedate:[now/d-1d TO now/d]", "2026-11-27T00:00:00Z", false)]
    // {now/d TO *]: gt rounds up, so today is out.
    [InlineData("somedate:{now/d TO *]", "2026-11-26T20:00:00Z", false)]
    [InlineData("somedate:{now/d TO *]", "2026-11-27T00:00:00Z", true)]
    // [* TO now/d}: lt rounds down, so today is out.
    [InlineData("somedate:[* TO now/d}", "2026-11-26T00:00:00Z", false)]
    [InlineData("somedate:[* TO now/d}", "2026-11-25T23:00:00Z", true)]
    [InlineData("somedate:>=2026-11-01", "2026-11-20T08:00:00+02:00", true)]
    [InlineData("somedate:<2026-11-01", "2026-10-31T23:00:00-02:00", false)]
    [InlineData("somedate:[2026-11-01 TO 2026-11-30]", "not a date", false)]
    public void ADateFieldComparesAsTime(string query, string value, bool matches)
    {
        var range = Assert.IsType<RangeNode>(QueryParser.Parse(query));
        Assert.Equal(matches, RangeMatcher.Create(range, Now).Matches(FieldValue.FromString(value)));
    }

    [Fact]
    public void EpochMillisecondsOnADateFieldAreTimes()
    {
        var range = Assert.IsType<RangeNode>(QueryParser.Parse("somedate:[now/d TO now/d]"));
        Assert.True(RangeMatcher.Create(range, Now).Matches(FieldValue.FromLong(Now.ToUnixTimeMilliseconds())));
        Assert.False(RangeMatcher.Create(range, Now).Matches(FieldValue.FromLong(Now.AddDays(-2).ToUnixTimeMilliseconds())));
    }

    [Fact]
    public void TheEventTimeTakesRoundedDateMath()
    {
        var range = Assert.IsType<RangeNode>(QueryParser.Parse("@timestamp:[now/d-1d TO now/d]"));
        var matcher = RangeMatcher.Create(range, Now);
        Assert.Equal(new DateTimeOffset(2026, 11, 25, 0, 0, 0, TimeSpan.Zero).UtcTicks, matcher.LowerTicks);
        Assert.Equal(new DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero).UtcTicks - 1, matcher.UpperTicks);
    }

    [Fact]
    public void BoundsThatAreNotDatesStillCompareAsTextOrNumbers()
    {
        Assert.True(RangeMatcher.Create(Assert.IsType<RangeNode>(QueryParser.Parse("user:[a TO m]")), Now).Matches(FieldValue.FromString("kim")));
        Assert.True(RangeMatcher.Create(Assert.IsType<RangeNode>(QueryParser.Parse("version:[1.2 TO 1.5]")), Now).Matches(FieldValue.FromString("1.3")));
    }

    /// <summary>
    /// An equality on a date is the whole day (or hour) it names, compared as times, in segments as in memory: the
    /// token index must not narrow it by the words of the bound (15t10 is not 15).
    /// </summary>
    [Theory]
    [InlineData("date:=2012-06-15", new[] { "iso", "millis", "offset" })]
    [InlineData("date:[2012-06-15 TO 2012-06-15]", new[] { "iso", "millis", "offset" })]
    [InlineData("date:[2012-06-15T10 TO 2012-06-15T10]", new[] { "iso", "millis" })]
    [InlineData("date:[2012-06-15T10 TO 2012-06-15T11}", new[] { "iso", "millis" })]
    [InlineData("date:[2012-06-16 TO *]", new[] { "next" })]
    public async Task ADateEqualityFindsTheWholeDayFromSegmentsToo(string query, string[] expected)
    {
        LogEvent Event(string id, FieldValue date) =>
            new(EventTime.Yesterday.UtcTicks, $"event {id}", [new Field("id", FieldValue.FromString(id)), new Field("date", date)]);
        LogEvent[] events =
        [
            Event("iso", FieldValue.FromString("2012-06-15T10:30:00Z")),
            Event("millis", FieldValue.FromLong(new DateTimeOffset(2012, 6, 15, 10, 45, 0, TimeSpan.Zero).ToUnixTimeMilliseconds())),
            Event("offset", FieldValue.FromString("2012-06-15T23:30:00-00:20")),
            Event("next", FieldValue.FromString("2012-06-16T00:30:00Z")),
            Event("before", FieldValue.FromString("2012-06-14T23:59:59Z")),
        ];
        var (inMemory, inSegments) = await SearchedTwice.FindAsync(events, query, h => h.Fields.First(f => f.Name == "id").Value.Text!);
        Assert.Equal(expected.Order(), inMemory);
        Assert.Equal(expected.Order(), inSegments);
    }
}
