using Logwell.Core.Events;

namespace Logwell.Tests;

/// <summary>
/// Arrays and objects answer as Elasticsearch indexes them: each value of an array on its own (a range matches when
/// one value is in it), an array of nulls holds no value, and an object (flattened into dotted fields) exists when a
/// field under it does. In memory and in segments alike.
/// </summary>
public sealed class ArrayValueTests
{
    private static LogEvent Event(string id, params (string Name, FieldValue Value)[] fields) =>
        new(EventTime.Yesterday.UtcTicks, $"event {id}", [new Field("id", FieldValue.FromString(id)), .. fields.Select(f => new Field(f.Name, f.Value))]);

    private static readonly LogEvent[] Events =
    [
        Event("empty", ("tags", FieldValue.FromJson("[]")), ("count", FieldValue.FromJson("[]"))),
        Event("nulls", ("tags", FieldValue.FromJson("[null, [], null]")), ("count", FieldValue.FromJson("[null]"))),
        Event("null", ("tags", FieldValue.Null)),
        Event("one", ("tags", FieldValue.FromJson("[\"a\"]")), ("count", FieldValue.FromJson("[3,10]"))),
        Event("nested", ("tags", FieldValue.FromJson("[[null, \"\"]]")), ("count", FieldValue.FromJson("[[1], [7.5]]"))),
        Event("scalar", ("count", FieldValue.FromLong(7)), ("book.title", FieldValue.FromString("x"))),
        Event("strings", ("count", FieldValue.FromJson("[\"4\", \"twelve\"]")), ("book.pages", FieldValue.FromJson("[null]"))),
        Event("dates", ("when", FieldValue.FromJson("[\"2011-05-01T00:00:00Z\", \"2012-03-01T10:00:00Z\"]"))),
        Event("authors", ("author", FieldValue.FromJson("[\"John Smith\", \"John Doe\"]"))),
        Event("hosts", ("host", FieldValue.FromJson("[\"web-1\", \"db-2\"]"))),
        // JSON escapes, as .NET and Python write them: the index holds the decoded words.
        Event("escaped", ("tags", FieldValue.FromJson("[\"\\u0027beta\\u0027\", \"caf\\u00e9\", \"line\\nbreak\"]"))),
    ];

    [Theory]
    [InlineData("_exists_:tags", new[] { "escaped", "nested", "one" })]
    [InlineData("_exists_:count", new[] { "nested", "one", "scalar", "strings" })]
    [InlineData("NOT _exists_:tags", new[] { "authors", "dates", "empty", "hosts", "null", "nulls", "scalar", "strings" })]
    [InlineData("_exists_:book", new[] { "scalar" })]
    [InlineData("_exists_:book.pages", new string[0])]
    [InlineData("count:[1 TO 5]", new[] { "nested", "one", "strings" })]
    [InlineData("count:>5", new[] { "nested", "one", "scalar" })]
    [InlineData("count:{7 TO 8}", new[] { "nested" })]
    [InlineData("count:[11 TO *]", new string[0])]
    [InlineData("when:[2012-01-01 TO 2012-12-31]", new[] { "dates" })]
    [InlineData("when:<2011-01-01", new string[0])]
    [InlineData("author:\"john doe\"", new[] { "authors" })]
    [InlineData("author:\"smith john\"", new string[0])]
    [InlineData("author:\"smith john\"~1", new string[0])]
    [InlineData("author:smith", new[] { "authors" })]
    [InlineData("author:john*doe", new[] { "authors" })]
    [InlineData("author:smith*doe", new string[0])]
    [InlineData("host:=web-1", new[] { "hosts" })]
    [InlineData("host:/web-1|db-3/", new[] { "hosts" })]
    [InlineData("1 AND db", new[] { "hosts" })]
    [InlineData("tags:beta", new[] { "escaped" })]
    [InlineData("tags:*", new[] { "escaped", "nested", "one" })]
    [InlineData("count:[* TO *]", new[] { "nested", "one", "scalar", "strings" })]
    [InlineData("tags:[* TO *]", new[] { "escaped", "nested", "one" })]
    [InlineData("book:[* TO *]", new[] { "scalar" })]
    [InlineData("book.*:*", new[] { "scalar" })]
    [InlineData("message:[* TO *]", new[] { "authors", "dates", "empty", "escaped", "hosts", "nested", "null", "nulls", "one", "scalar", "strings" })]
    [InlineData("_exists_:@timestamp", new[] { "authors", "dates", "empty", "escaped", "hosts", "nested", "null", "nulls", "one", "scalar", "strings" })]
    [InlineData("@timestamp:*", new[] { "authors", "dates", "empty", "escaped", "hosts", "nested", "null", "nulls", "one", "scalar", "strings" })]
    [InlineData("tags:café", new[] { "escaped" })]
    [InlineData("tags:cafe~1", new[] { "escaped" })]
    [InlineData("tags:\"line break\"", new[] { "escaped" })]
    [InlineData("break", new[] { "escaped" })]
    public async Task ArraysAndObjectsAnswerValueByValue(string query, string[] expected)
    {
        var (inMemory, inSegments) = await SearchedTwice.FindAsync(Events, query, h => h.Fields.First(f => f.Name == "id").Value.Text!);
        Assert.Equal(expected.Order(), inMemory);
        Assert.Equal(expected.Order(), inSegments);
    }

    /// <summary>
    /// Words in every row of a block have postings (a column of arrays only is not dictionary-coded); their positions
    /// must not join two values of an array either.
    /// </summary>
    [Fact]
    public async Task APhraseNeverSpansTwoValuesOfAnArrayWhenAnsweredFromPostings()
    {
        var events = Enumerable.Range(0, 40).Select(i => new LogEvent(EventTime.Yesterday.AddSeconds(i).UtcTicks, $"row {i}",
            [new Field("id", FieldValue.FromString($"r{i}")), new Field("author", FieldValue.FromJson(i % 2 == 0 ? "[\"John Smith\", \"John Doe\"]" : "[\"x\", \"Jo Smith John Doe\"]"))]));
        var odd = Enumerable.Range(0, 40).Where(i => i % 2 == 1).Select(i => $"r{i}").Order().ToList();
        var (inMemory, inSegments) = await SearchedTwice.FindAsync(events, "author:\"smith john\"", h => h.Fields.First(f => f.Name == "id").Value.Text!);
        Assert.Equal(odd, inMemory);
        Assert.Equal(odd, inSegments);
        (inMemory, inSegments) = await SearchedTwice.FindAsync(events, "author:\"john doe\"", h => h.Fields.First(f => f.Name == "id").Value.Text!);
        Assert.Equal(40, inMemory.Count);
        Assert.Equal(40, inSegments.Count);
    }
}
