using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Core.Query;
using Logwell.Storage;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>
/// Conformance of the query language with Elasticsearch's <c>query_string</c> syntax. Three sources of queries:
/// the examples of Elasticsearch's "Query string query" reference page, each with the events it must find written as a
/// plain predicate over the events (not through Logwell's parser or engine); the query strings of the test suite of
/// luqum (a Python Lucene query parser), each either answered by the engine exactly as a brute-force reading of the
/// parsed query says, or refused at a position inside the text for a stated reason; and malformed queries, refused
/// with a 400 that says where and what. The examples also go through every read API of a node: search, histogram,
/// fields, export and a live tail.
/// </summary>
/// <remarks>
/// Expectations follow Elasticsearch's semantics for an index whose strings are analysed into lowercase words and whose
/// numbers are mapped as doubles, except where Logwell documents a deliberate difference (docs/query-language.md):
/// clauses side by side are joined by AND unless the request says <c>default_operator=OR</c> (examples written for
/// Elasticsearch's OR run with OR, and most also with AND), an empty query matches every event, a bare term searches
/// the message and every field, a term with punctuation inside is the phrase of its words, AND binds tighter than OR,
/// boosts leave the hits as they are, and a term both fuzzy and wildcard is refused. Arrays are indexed as
/// Elasticsearch indexes them, each value on its own: a range or a term holds when one value matches, a phrase stays
/// inside one value, an array of nulls and empty arrays holds no value, and an object exists through its fields.
/// </remarks>
[Trait(DateSensitive.Category, DateSensitive.Value)]
public sealed partial class QueryConformanceTests(QueryConformanceNode fixture) : IClassFixture<QueryConformanceNode>
{
    /// <summary>The index set of the node that holds the conformance events.</summary>
    internal const string IndexSet = "conformance";

    private const string TailIndexSet = "conformance-tail";

    // ---------------------------------------------------------------------------------------------------------------
    // The events
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// One event of the data: its number (the field <c>eid</c>), its message and its fields as JSON carries them. A
    /// value is null, a string, a number, a boolean, an array of values (<c>object?[]</c>, arrays inside allowed) or an
    /// <see cref="Nested"/> object, whose fields the event holds under dotted names (<c>obj.sub</c>), as they are read.
    /// </summary>
    internal sealed class Doc
    {
        public Doc(int id, string message, (string Name, object? Value)[] fields)
        {
            Id = id;
            Message = message;
            Written = [("eid", (long)id), .. fields.Select(f => (f.Name, Normalized(f.Value)))];
            Fields = [.. Written.SelectMany(f => Flattened(f.Name, f.Value))];
        }

        public int Id { get; }

        public string Message { get; }

        /// <summary>The fields as the event's JSON writes them: objects nested.</summary>
        public IReadOnlyList<(string Name, object? Value)> Written { get; }

        /// <summary>The fields as they are searched: objects flattened into dotted names, arrays kept whole.</summary>
        public IReadOnlyList<(string Name, object? Value)> Fields { get; }

        /// <summary>The event time: minutes after midnight of the day before the run.</summary>
        public DateTimeOffset Time => EventTime.Yesterday.AddMinutes(Id);

        /// <summary>The same event with one more field.</summary>
        public Doc With(string name, object? value) => new(Id, Message, [.. Written.Where(f => f.Name != "eid"), (name, value)]);

        private static object? Normalized(object? value) => value switch
        {
            int i => (long)i,
            object?[] values => values.Select(Normalized).ToArray(),
            Nested nested => new Nested([.. nested.Fields.Select(f => (f.Name, Normalized(f.Value)))]),
            _ => value,
        };

        private static IEnumerable<(string Name, object? Value)> Flattened(string name, object? value) =>
            value is Nested nested ? nested.Fields.SelectMany(f => Flattened(name + "." + f.Name, f.Value)) : [(name, value)];

        public string ToJson()
        {
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("t", Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
                writer.WriteString("message", Message);
                foreach (var (name, value) in Written)
                {
                    writer.WritePropertyName(name);
                    Write(writer, name, value);
                }
                writer.WriteEndObject();
            }
            return Encoding.UTF8.GetString(buffer.ToArray());
        }

        private static void Write(Utf8JsonWriter writer, string name, object? value)
        {
            switch (value)
            {
                case null:
                    writer.WriteNullValue();
                    break;
                case string s:
                    writer.WriteStringValue(s);
                    break;
                case long l:
                    writer.WriteNumberValue(l);
                    break;
                case double d:
                    writer.WriteNumberValue(d);
                    break;
                case bool b:
                    writer.WriteBooleanValue(b);
                    break;
                case object?[] values:
                    writer.WriteStartArray();
                    foreach (var item in values)
                    {
                        if (item is Nested)
                        {
                            throw new ArgumentException($"an object inside the array of '{name}' is not supported");
                        }
                        Write(writer, name, item);
                    }
                    writer.WriteEndArray();
                    break;
                case Nested nested:
                    writer.WriteStartObject();
                    foreach (var (inner, item) in nested.Fields)
                    {
                        writer.WritePropertyName(inner);
                        Write(writer, name + "." + inner, item);
                    }
                    writer.WriteEndObject();
                    break;
                default:
                    throw new ArgumentException($"unsupported value for '{name}'");
            }
        }

        public override string ToString() => ToJson();
    }

    /// <summary>A JSON object as the value of a field.</summary>
    internal sealed class Nested((string Name, object? Value)[] fields)
    {
        public IReadOnlyList<(string Name, object? Value)> Fields { get; } = fields;
    }

    /// <summary>
    /// A JSON array of the values. A single argument that is null or an array would stand for the whole array rather
    /// than for its one item: <c>Arr((object?)null)</c> is <c>[null]</c>, and an array nests among other items.
    /// </summary>
    private static object?[] Arr(params object?[] values) => values;

    /// <summary>A JSON object of fields.</summary>
    private static Nested Obj(params (string Name, object? Value)[] fields) => new(fields);

    private static Doc D(int id, string message, params (string Name, object? Value)[] fields) => new(id, message, fields);

    private static string Iso(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static readonly DateTimeOffset Today = EventTime.Yesterday.AddDays(1);

    private static readonly DateTimeOffset Tomorrow = EventTime.Yesterday.AddDays(2);

    /// <summary>
    /// The events every query runs over: for each example some that match and near misses that do not (typos, words
    /// swapped or too far apart, range bounds and the values next to them, other cases, other fields).
    /// </summary>
    internal static readonly IReadOnlyList<Doc> Docs =
    [
        D(1, "the quick brown fox jumps over the lazy dog", ("title", "Quick Brown Fox"), ("status", "active"), ("age", 10), ("count", 1), ("tag", "beta"), ("author", "John Smith")),
        D(2, "quikc brwn foks", ("title", "brown bag"), ("status", "Active"), ("age", 9), ("count", 0)),
        D(3, "a quack brown bear", ("status", "inactive"), ("age", 11), ("count", 5), ("tag", "alpha")),
        D(4, "quick fox", ("status", "pending"), ("age", 20), ("count", 6), ("tag", "omega")),
        D(5, "fox quick", ("status", "active-user"), ("age", 19), ("count", 3), ("tag", "alphabet")),
        D(6, "fox a b c d e quick", ("age", 10.5), ("count", 4.99), ("tag", "omegas")),
        D(7, "fox a b c d e f quick", ("age", "12"), ("count", "3"), ("tag", "zeta")),
        D(8, "quick a b c fox", ("age", null), ("count", 5.5), ("tag", "a")),
        D(9, "quick a b c d e f fox", ("count", 10)),
        D(10, "brown news about a fox", ("count", 9), ("title", "The quick one")),
        D(11, "qck brownie quiick abrown", ("count", 100), ("status", "closed")),
        D(12, "the broom is quick", ("count", "many"), ("age", 25)),
        D(13, "running in the ring"),
        D(14, "ingest an ingot"),
        D(15, "app"),
        D(16, "apps store"),
        D(17, "an apple a day"),
        D(18, "ap"),
        D(19, "application form"),
        D(20, "proof: (1+1)=2"),
        D(21, "1 + 1 = 2"),
        D(22, "(1+1)=3 and 1+2=3"),
        D(23, "news of the day: quick brown fox", ("title", "quickly")),
        D(24, "john smith was here", ("author", "john smith jr")),
        D(25, "Smith John", ("author", "Smith John")),
        D(26, "met John Q. Smith", ("author", "John Q. Smith")),
        D(27, "johnsmith", ("author", "johnsmith")),
        D(28, "hyphenated author", ("author", "John-Smith")),
        D(29, "alice", ("first name", "Alice")),
        D(30, "alicia", ("first name", "Alicia")),
        D(31, "someone", ("firstname", "Alice"), ("name", "john")),
        D(32, "reading", ("book.title", "Quick start"), ("book.date", 2012)),
        D(33, "bears", ("book.content", "a brown bear")),
        D(34, "shelf", ("bookshelf", "quick"), ("book", "brown")),
        D(35, "none here", ("book.title", "slow going")),
        D(36, "titled", ("title", "")),
        D(37, "untitled", ("title", null)),
        D(38, "first of the names", ("name", "Johnathan")),
        D(39, "second of the names", ("name", "jonathan")),
        D(40, "third of the names", ("name", "johnathon")),
        D(41, "fourth of the names", ("name", "Jonathon Smith")),
        D(42, "fifth of the names", ("name", "johnathans")),
        D(43, "sixth of the names", ("name", "Jonathan-Paul")),
        D(44, "dated one", ("date", "2011-12-31T23:59:59Z")),
        D(45, "dated two", ("date", "2012-01-01")),
        D(46, "dated three", ("date", "2012-01-01T00:00:01Z")),
        D(47, "dated four", ("date", "2012-06-15T10:00:00Z")),
        D(48, "dated five", ("date", 1339761600000)),
        D(49, "dated six", ("date", "2012-12-31")),
        D(50, "dated seven", ("date", "2013-01-01T00:00:00Z")),
        D(51, "dated eight", ("date", "not a date")),
        D(108, "dated nine", ("date", "2012-12-31T18:00:00Z")),
        D(109, "dated ten", ("date", "2012-01-01T12:00:00Z")),
        D(110, "dated eleven", ("date", "2012-12-01T23:00:00Z")),
        D(52, "when one", ("somedate", Iso(EventTime.Yesterday))),
        D(53, "when two", ("somedate", Iso(EventTime.Yesterday.AddSeconds(-1)))),
        D(54, "when three", ("somedate", Iso(EventTime.Yesterday.AddHours(12)))),
        D(55, "when four", ("somedate", Iso(Today.AddHours(12)))),
        D(56, "when five", ("somedate", Iso(Tomorrow.AddSeconds(-1)))),
        D(57, "when six", ("somedate", Iso(Tomorrow))),
        D(58, "when seven", ("somedate", Iso(Tomorrow.AddHours(6)))),
        D(59, "when eight", ("somedate", Iso(EventTime.Yesterday.AddHours(-12)))),
        D(60, "when nine", ("somedate", EventTime.Yesterday.AddHours(6).ToUnixTimeMilliseconds())),
        D(61, "when ten", ("somedate", "soon")),
        D(62, "new york city lights"),
        D(63, "the big apple"),
        D(64, "new city"),
        D(65, "york big"),
        D(66, "capital of Hungary"),
        D(67, "capital of France"),
        D(68, "Hungary"),
        D(69, "this and that", ("content", "this"), ("name", "that")),
        D(70, "this or thus", ("content", "this that")),
        D(71, "that alone", ("city.name", "this and that")),
        D(72, "thus spoke", ("city.region", "thus")),
        D(73, "city whole", ("city.name", "this that thus")),
        D(74, "foo bar baz", ("author", "John Smith")),
        D(75, "foo bar", ("title", "full text search"), ("status", "pending")),
        D(76, "baz only", ("title", "Full-Text Search!"), ("status", "active")),
        D(77, "ny city", ("title", "text search")),
        D(78, "ny", ("title", "search"), ("city.name", "something")),
        D(79, "kimchy one", ("user.id", "kimchy")),
        D(80, "kimchy two", ("user.id", "kimchy!")),
        D(81, "kimchi", ("user.id", "kimchi")),
        D(82, "field empty", ("field", "")),
        D(83, "field dash", ("field", "-")),
        D(84, "field letter", ("field", "x")),
        D(85, "field null", ("field", null)),
        D(86, "subject test", ("subject", "test"), ("desc", "a house"), ("foo", 10), ("bar", 11), ("baz", 100), ("fou", "150")),
        D(87, "luqum two", ("subject", "other"), ("desc", "car"), ("foo", "TO"), ("bar", "a"), ("ip", "1000::1000::1/24"), ("field_42", 42)),
        D(88, "approximatly this", ("spam", "eggs"), ("monty", 3), ("pays", "FR"), ("life", "bryan")),
        D(89, "Harry Potter and the Order of the Phoenix", ("title", "Harry Potter and the Order of the Phoenix"), ("ref", "HP5"), ("n_pages", 766), ("edition", "Lumos"),
            ("illustrators.name", "Giles Greenfield"), ("illustrators.nationality", "UK"), ("publication_date", "2003-06-21")),
        D(90, "Harry Potter and the Chamber of Secrets", ("title", "Harry Potter and the Chamber of Secrets"), ("ref", "HP2"), ("n_pages", 360), ("foo", "2015-12-19"), ("body", "quick fox")),
        D(91, "a test test phrase here", ("note", "a regex with some matching"), ("other", "Another one")),
        D(92, "hi and bye, a phrase and a complicated one, another one"),
        D(93, "test foo bar 1 2 3 4 a b f g e", ("foo", 11), ("bar", 11), ("baz", 100), ("fou", "150")),
        D(94, "range probe", ("foo", 50), ("bar", "b"), ("baz", 99), ("fou", "200")),
        D(95, "foo fields", ("foo", "to and or nothing bar"), ("bar", "bar")),
        D(96, "stamped", ("foo", "2015-12-19T22:30:45.234Z")),
        D(97, "Harry Potter and the Goblet of Fire", ("title", "Harry Potter and the Goblet of Fire"), ("ref", "BB1"), ("name", "Giles"), ("publication_date", "2007-07-21"),
            ("n_pages", 636), ("pays", "FR"), ("monty", "python")),
        D(98, "Harry Potter and the Prisoner of Azkaban", ("title", "Harry Potter and the Prisoner of Azkaban"), ("ref", "HP4"), ("author.name", "Rowling"),
            ("publication_date", "2000-07-08"), ("illustrators.name", "Cliff Wright"), ("illustrators.nationality", "US")),
        D(99, "nested", ("author.book.title", "foo"), ("author.book.format.type", "pdf"), ("author.firstname", "François"), ("author.lastname", "Dupont"), ("author", "foo")),
        D(100, "subfields", ("text.english", "Spanish Cow"), ("publish.site", "http://example.com/foo#bar"), ("manager.address.zipcode", 44000), ("spam", "monthy python")),
        D(101, "thesaurus", ("pays", "FR"), ("type", "AO"), ("thes", "SI_FM_GC_RH"), ("objet", "diagnostics")),
        D(102, "collection", ("title", "foo bar"), ("body", "quick fox"), ("linked.key", "bar"), ("revision", "test"), ("collection.ref", "foo")),
        D(103, "people", ("author.firstname", "Hugo"), ("firstname", "François"), ("lastname", "Dupont"), ("book.title", "bar"), ("name", "Cliff Wright"), ("edition", "Lumos"), ("n_pages", 157)),
        D(104, "illustrated", ("name", "Giles Greenfield"), ("nationality", "UK"), ("n_pages", 636)),
        D(105, "alone", ("spam", "de"), ("monty", "la"), ("title", "alone")),
        D(106, "foo pdf Mr bar", ("author", "book title, book format type, birth city, gender")),
        // A field pattern's group is expanded clause by clause: "this" in one field and "that" in another is a match.
        D(107, "split city", ("city.name", "this"), ("city.region", "that")),
        // Arrays: each value is indexed on its own, nulls and empty arrays are no value, arrays inside arrays are flattened.
        D(111, "array of everything", ("tags", Arr("alpha", "beta")), ("count", Arr(3, 10)), ("author", Arr("John Smith", "John Doe")), ("host", Arr("web-1", "db-2"))),
        D(112, "array empty", ("tags", Arr()), ("count", Arr()), ("field", Arr())),
        D(113, "array of null", ("tags", Arr((object?)null)), ("count", Arr((object?)null))),
        D(114, "array of nothing", ("tags", Arr(null, Arr()))),
        D(115, "array nested", ("tags", Arr(Arr(null, ""), null)), ("count", Arr(Arr(1), Arr(7.5)))),
        // Written as JSON, í and the angle brackets are escapes (\u00ED, \u003C): the values are read, not the text of the
        // array, so "betaína" is one word (not beta) and "<webhook>" starts with web.
        D(116, "array escaped", ("tags", Arr("betaína", "<webhook>")), ("field", Arr(null, "-"))),
        D(117, "array near", ("tags", Arr("betamax", "cobweb")), ("count", Arr(0, 6))),
        D(118, "array words", ("tags", Arr("void", "null")), ("count", Arr("4", "twelve"))),
        D(119, "not an array", ("tags", "web server"), ("count", Arr(0, 5))),
        D(120, "array null", ("tags", null), ("age", Arr(3, 25))),
        // A phrase never spans two values: "john doe" is not in ["Mary John", "Doe Jane"].
        D(121, "array apart", ("author", Arr("Mary John", "Doe Jane")), ("host", Arr("web-12", "web-1-canary"))),
        D(122, "array hosts", ("host", Arr(Arr("web-1"), Arr("db-3")))),
        D(123, "array dates", ("date", Arr("2011-05-01T00:00:00Z", "2013-03-01T10:00:00Z"))),
        D(124, "array epoch", ("date", Arr(1339761600000, "not a date"))),
        // Objects are flattened into dotted names; an object exists when a field under it holds a value.
        D(125, "object", ("obj", Obj(("sub", "x")))),
        D(126, "object of nulls", ("obj", Obj(("sub", Arr((object?)null)), ("other", null)))),
        D(127, "object deep", ("obj", Obj(("inner", Obj(("level", 0)))))),
        D(128, "object named alike", ("objective", "x"), ("obj_id", 7)),
    ];

    /// <summary>The events as JSON lines, as a client sends them.</summary>
    internal static string Ndjson(IEnumerable<Doc> docs) => string.Concat(docs.Select(d => d.ToJson() + "\n"));

    private static List<LogEvent> Decoded(IEnumerable<Doc> docs)
    {
        var decoded = EventDecoder.DecodeJsonLines(Encoding.UTF8.GetBytes(Ndjson(docs)), DateTimeOffset.UtcNow);
        Assert.Equal(0, decoded.Rejected);
        return decoded.Events;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Elasticsearch's examples
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>An example query, the events it must find, and how it is run (default operator AND, or OR as Elasticsearch's default).</summary>
    internal sealed record Example(string Query, Func<Doc, bool> Matches, string Note = "", bool Or = false)
    {
        public string Operator => Or ? "OR" : "AND";

        public List<int> Expected => [.. Docs.Where(Matches).Select(d => d.Id).Order()];

        public override string ToString() => $"'{Query}' (default_operator={Operator}{(Note.Length > 0 ? "; " + Note : "")})";
    }

    private static Example And(string query, Func<Doc, bool> matches, string note = "") => new(query, matches, note);

    private static Example Or(string query, Func<Doc, bool> matches, string note = "") => new(query, matches, note, Or: true);

    private static DateTimeOffset Utc(int year, int month, int day) => new(year, month, day, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The example queries of Elasticsearch's "Query string query" page (its syntax section and the queries of its
    /// parameter, multi-field and synonym sections), with date math as Elasticsearch's range documentation writes it,
    /// and queries in the same syntax on arrays and objects.
    /// </summary>
    /// <remarks>
    /// Not run: the page's renderings of the Lucene queries Elasticsearch builds (<c>(title:this title:that title:thus)~2</c>,
    /// <c>((content:this content:that content:thus) | (title:this title:that title:thus))</c>, <c>blended(terms:[...])</c>,
    /// <c>field1:query_term OR field2:query_term | ...</c>), which are not query strings a user types. The values of the
    /// pure-wildcard warning (<c>{"field": ""}</c>, <c>{"field": null}</c>) are events here (82 to 85).
    /// </remarks>
    internal static IReadOnlyList<Example> Examples() =>
    [
        // Field names.
        And("status:active", e => Term(e, "status", "active")),
        And("title:(quick OR brown)", e => Term(e, "title", "quick") || Term(e, "title", "brown")),
        And(@"author:""John Smith""", e => Phrase(e, "author", "john smith")),
        And(@"first\ name:Alice", e => Term(e, "first name", "alice")),
        And(@"book.\*:(quick OR brown)", e => NamesStartingWith(e, "book.").Any(f => Term(e, f, "quick") || Term(e, f, "brown"))),
        And("_exists_:title", e => HasValue(e, "title"), "an empty string is a value, null is not"),

        // Wildcards.
        And("qu?ck bro*", e => Wildcard(e, null, "qu?ck") && Prefix(e, null, "bro")),
        Or("qu?ck bro*", e => Wildcard(e, null, "qu?ck") || Prefix(e, null, "bro")),
        And("a* b* c*", e => Prefix(e, null, "a") && Prefix(e, null, "b") && Prefix(e, null, "c")),
        Or("a* b* c*", e => Prefix(e, null, "a") || Prefix(e, null, "b") || Prefix(e, null, "c")),
        And("field:*", e => HasValue(e, "field"), "a pure wildcard is an exists query: \"\" matches, null and a missing field do not"),
        And("*ing", e => Wildcard(e, null, "*ing")),

        // Regular expressions.
        And("name:/joh?n(ath[oa]n)/", e => Regexp(e, "name", "joh?n(ath[oa]n)")),
        And("/.*n/", e => Regexp(e, null, ".*n")),

        // Fuzziness: ~ alone is AUTO, 1 edit for terms of 3 to 5 characters, so foks~ does not reach fox (2 edits).
        Or("quikc~ brwn~ foks~", e => Fuzzy(e, null, "quikc", 1) || Fuzzy(e, null, "brwn", 1) || Fuzzy(e, null, "foks", 1)),
        And("quikc~ brwn~ foks~", e => Fuzzy(e, null, "quikc", 1) && Fuzzy(e, null, "brwn", 1) && Fuzzy(e, null, "foks", 1)),
        And("quikc~1", e => Fuzzy(e, null, "quikc", 1)),
        And("app~1", e => Fuzzy(e, null, "app", 1)),
        And("app*", e => Prefix(e, null, "app")),

        // Phrases and proximity: two words swapped take 2 moves.
        And(@"""john smith""", e => Phrase(e, null, "john smith")),
        And(@"""fox quick""~5", e => Phrase(e, null, "fox quick", 5)),
        And(@"""quick fox""", e => Phrase(e, null, "quick fox")),
        And(@"""quick brown fox""", e => Phrase(e, null, "quick brown fox")),
        And(@"""quick brown""", e => Phrase(e, null, "quick brown")),
        And("quick", e => Term(e, null, "quick")),

        // Ranges. An upper date bound without a time of day reaches to the end of that day (lte rounds missing parts up).
        And("date:[2012-01-01 TO 2012-12-31]", e => Date(e, "date", d => d >= Utc(2012, 1, 1) && d < Utc(2013, 1, 1))),
        And("count:[1 TO 5]", e => Number(e, "count", n => n is >= 1 and <= 5)),
        And("tag:{alpha TO omega}", e => Tokens(e, "tag").Any(t => string.CompareOrdinal(t, "alpha") > 0 && string.CompareOrdinal(t, "omega") < 0)),
        And("count:[10 TO *]", e => Number(e, "count", n => n >= 10)),
        And("date:{* TO 2012-01-01}", e => Date(e, "date", d => d < Utc(2012, 1, 1))),
        // A lower bound that rounds up (gt) starts after the whole day; "2012-12" lacks a day, which Elasticsearch fills with 01.
        And("date:>2012-01-01", e => Date(e, "date", d => d >= Utc(2012, 1, 2))),
        And("date:{2012-01-01 TO *]", e => Date(e, "date", d => d >= Utc(2012, 1, 2))),
        And("date:<=2012-12", e => Date(e, "date", d => d < Utc(2012, 12, 2))),
        And("date:[2012-06-15T10:00 TO 2012-12-31T18:00:00]", e => Date(e, "date", d => d >= new DateTimeOffset(2012, 6, 15, 10, 0, 0, TimeSpan.Zero) && d < new DateTimeOffset(2012, 12, 31, 18, 0, 1, TimeSpan.Zero))),
        And("count:[1 TO 5}", e => Number(e, "count", n => n is >= 1 and < 5)),
        And("age:>10", e => Number(e, "age", n => n > 10)),
        And("age:>=10", e => Number(e, "age", n => n >= 10)),
        And("age:<10", e => Number(e, "age", n => n < 10)),
        And("age:<=10", e => Number(e, "age", n => n <= 10)),
        // Two comparisons are two clauses: on an array each may hold through another value ([3, 25] is >= 10 and < 20).
        And("age:(>=10 AND <20)", e => Number(e, "age", n => n >= 10) && Number(e, "age", n => n < 20)),
        Or("age:(>=10 AND <20)", e => Number(e, "age", n => n >= 10) && Number(e, "age", n => n < 20)),
        And("age:(+>=10 +<20)", e => Number(e, "age", n => n >= 10) && Number(e, "age", n => n < 20)),
        Or("age:(+>=10 +<20)", e => Number(e, "age", n => n >= 10) && Number(e, "age", n => n < 20)),

        // Boosting changes scores only.
        And("quick^2 fox", e => Term(e, null, "quick") && Term(e, null, "fox")),
        Or("quick^2 fox", e => Term(e, null, "quick") || Term(e, null, "fox")),
        And(@"""john smith""^2   (foo bar)^4", e => Phrase(e, null, "john smith") && Term(e, null, "foo") && Term(e, null, "bar")),
        Or(@"""john smith""^2   (foo bar)^4", e => Phrase(e, null, "john smith") || Term(e, null, "foo") || Term(e, null, "bar")),

        // Boolean operators and grouping.
        Or("foo bar baz", e => Term(e, null, "foo") || Term(e, null, "bar") || Term(e, null, "baz")),
        And("foo bar baz", e => Term(e, null, "foo") && Term(e, null, "bar") && Term(e, null, "baz")),
        Or("quick brown +fox -news", e => Term(e, null, "fox") && !Term(e, null, "news"), "quick and brown are optional: only fox and news decide"),
        And("quick brown +fox -news", e => Term(e, null, "quick") && Term(e, null, "brown") && Term(e, null, "fox") && !Term(e, null, "news")),
        And("((quick AND fox) OR (brown AND fox) OR fox) AND NOT news", e => Term(e, null, "fox") && !Term(e, null, "news")),
        Or("((quick AND fox) OR (brown AND fox) OR fox) AND NOT news", e => Term(e, null, "fox") && !Term(e, null, "news")),
        And("(quick OR brown) AND fox", e => (Term(e, null, "quick") || Term(e, null, "brown")) && Term(e, null, "fox")),
        Or("status:(active OR pending) title:(full text search)^2", e =>
            Term(e, "status", "active") || Term(e, "status", "pending") || Term(e, "title", "full") || Term(e, "title", "text") || Term(e, "title", "search")),
        And("status:(active OR pending) title:(full text search)^2", e =>
            (Term(e, "status", "active") || Term(e, "status", "pending")) && Term(e, "title", "full") && Term(e, "title", "text") && Term(e, "title", "search")),

        // Reserved characters: escaped, they are part of the term; a term with punctuation inside is the phrase of its words.
        And(@"\(1\+1\)\=2", e => Phrase(e, null, "1 1 2")),
        And(@"user.id:kimchy\!", e => Term(e, "user.id", "kimchy")),

        // An empty query, or one of spaces only, matches every event (Elasticsearch: none).
        And("", _ => true),
        And("   ", _ => true),

        // The page's example request, parameters and multi-field searches; no synonym filter applies here, so
        // "ny city" is two plain terms.
        And("(new york city) OR (big apple)", e => (Term(e, null, "new") && Term(e, null, "york") && Term(e, null, "city")) || (Term(e, null, "big") && Term(e, null, "apple"))),
        Or("(new york city) OR (big apple)", e => new[] { "new", "york", "city", "big", "apple" }.Any(w => Term(e, null, w))),
        Or("capital of Hungary", e => Term(e, null, "capital") || Term(e, null, "of") || Term(e, null, "hungary")),
        And("capital of Hungary", e => Term(e, null, "capital") && Term(e, null, "of") && Term(e, null, "hungary")),
        And("this AND that OR thus", e => (Term(e, null, "this") && Term(e, null, "that")) || Term(e, null, "thus"), "AND binds tighter than OR"),
        Or("this AND that OR thus", e => Term(e, null, "this") && Term(e, null, "that"), "this and that are required, thus optional"),
        And("this AND that", e => Term(e, null, "this") && Term(e, null, "that")),
        And("(content:this OR name:this) AND (content:that OR name:that)", e =>
            (Term(e, "content", "this") || Term(e, "name", "this")) && (Term(e, "content", "that") || Term(e, "name", "that"))),
        And(@"city.\*:(this AND that OR thus)", e => (City(e, "this") && City(e, "that")) || City(e, "thus")),
        Or(@"city.\*:(this AND that OR thus)", e => City(e, "this") && City(e, "that")),
        And(@"city.\*:something", e => City(e, "something")),
        Or("this that thus", e => Term(e, null, "this") || Term(e, null, "that") || Term(e, null, "thus")),
        And("this that thus", e => Term(e, null, "this") && Term(e, null, "that") && Term(e, null, "thus")),
        And("this OR that OR thus", e => Term(e, null, "this") || Term(e, null, "that") || Term(e, null, "thus")),
        Or("ny city", e => Term(e, null, "ny") || Term(e, null, "city")),
        And("ny city", e => Term(e, null, "ny") && Term(e, null, "city")),
        And(@"(ny OR (""new york""))", e => Term(e, null, "ny") || Phrase(e, null, "new york")),
        And("(ny OR (new AND york)) city", e => (Term(e, null, "ny") || (Term(e, null, "new") && Term(e, null, "york"))) && Term(e, null, "city")),

        // Date math: [now/d-1d TO now/d] is yesterday and today whole; {now/d TO *] starts tomorrow.
        And("somedate:[now/d-1d TO now/d]", e => Date(e, "somedate", d => d >= EventTime.Yesterday && d < Tomorrow)),
        And("somedate:{now/d TO *]", e => Date(e, "somedate", d => d >= Tomorrow)),

        // Arrays, as Elasticsearch indexes them: each value on its own. The ranges above hold arrays too.
        And("_exists_:tags", e => HasValue(e, "tags"), "[], [null] and [null, []] hold no value; [[null, \"\"], null] holds an empty string"),
        And("NOT _exists_:tags", e => !HasValue(e, "tags")),
        And("_exists_:obj", e => HasValue(e, "obj"), "an object exists when a field under it holds a value"),
        And("count:>5", e => Number(e, "count", n => n > 5)),
        And("tags:beta", e => Term(e, "tags", "beta")),
        And("tags:null", e => Term(e, "tags", "null"), "a null in an array is no value, not the word null"),
        And(@"author:""john doe""", e => Phrase(e, "author", "john doe")),
        And(@"author:""smith john""", e => Phrase(e, "author", "smith john"), "a phrase never spans two values of an array"),
        And("tags:web*", e => Prefix(e, "tags", "web")),
        And("host:=web-1", e => WholeValue(e, "host", "web-1"), "Logwell's equality: one whole value, as a term query on a keyword field"),
        And("tags:beta count:>5", e => Term(e, "tags", "beta") && Number(e, "count", n => n > 5)),
        Or("tags:beta count:>5", e => Term(e, "tags", "beta") || Number(e, "count", n => n > 5)),
        And("_exists_:tags -tags:alpha", e => HasValue(e, "tags") && !Term(e, "tags", "alpha")),
        Or("_exists_:tags -tags:alpha", e => HasValue(e, "tags") && !Term(e, "tags", "alpha")),
        And(@"author:""john doe"" OR host:=web-1 OR _exists_:obj", e => Phrase(e, "author", "john doe") || WholeValue(e, "host", "web-1") || HasValue(e, "obj")),
        Or(@"author:""john doe"" host:=web-1 _exists_:obj", e => Phrase(e, "author", "john doe") || WholeValue(e, "host", "web-1") || HasValue(e, "obj")),
        And("count:[1 TO 5] NOT count:[0 TO 0]", e => Number(e, "count", n => n is >= 1 and <= 5) && !Number(e, "count", n => n == 0)),
        Or("count:[1 TO 5] NOT count:[0 TO 0]", e => Number(e, "count", n => n is >= 1 and <= 5) && !Number(e, "count", n => n == 0)),
    ];

    /// <summary>
    /// Examples Logwell refuses on purpose: Elasticsearch runs <c>app*~1</c> as <c>app*</c>, silently dropping the
    /// fuzziness; Logwell answers 400 rather than run another query than the one written.
    /// </summary>
    internal static readonly (string Query, string Names)[] RefusedExamples = [("app*~1", "wildcard")];

    // ---------------------------------------------------------------------------------------------------------------
    // The predicates the expectations are written with
    // ---------------------------------------------------------------------------------------------------------------

    private static string? TextOf(object? value) => value switch
    {
        null => null,
        string s => s,
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => throw new ArgumentException("unsupported value"),
    };

    /// <summary>
    /// The values a field holds, as Elasticsearch indexes them: a value on its own, an array's values one by one
    /// (arrays inside it flattened), nulls left out; <c>[]</c> and <c>[null]</c> hold none.
    /// </summary>
    private static IEnumerable<object> ValuesOf(object? value) => value switch
    {
        null => [],
        object?[] values => values.SelectMany(ValuesOf),
        _ => [value],
    };

    /// <summary>The values of the fields named <paramref name="field"/>.</summary>
    private static IEnumerable<object> Values(Doc e, string field) => e.Fields.Where(f => f.Name == field).SelectMany(f => ValuesOf(f.Value));

    /// <summary>
    /// The texts a clause reads, each value of an array on its own (a phrase never spans two): a bare clause the message
    /// and every field, <c>message</c> the message, otherwise the field.
    /// </summary>
    private static IEnumerable<string> Texts(Doc e, string? field)
    {
        if (field is null or "message")
        {
            yield return e.Message;
        }
        foreach (var (name, value) in e.Fields)
        {
            if (field is null || name == field)
            {
                foreach (var one in ValuesOf(value))
                {
                    yield return TextOf(one)!;
                }
            }
        }
    }

    /// <summary>The words of a text: runs of letters and digits, lowercased, in order.</summary>
    private static List<string> Words(string text) => [.. WordPattern().Matches(text).Select(m => m.Value.ToLowerInvariant())];

    /// <summary>The tokens of a text: its words, and runs of words joined by '.' or '_' as a whole and in parts.</summary>
    private static HashSet<string> TokensOf(string text)
    {
        var tokens = new HashSet<string>(Words(text), StringComparer.Ordinal);
        foreach (Match run in JoinedRunPattern().Matches(text))
        {
            var value = run.Value.ToLowerInvariant();
            tokens.Add(value);
            foreach (var piece in value.Split('.'))
            {
                tokens.Add(piece);
            }
        }
        return tokens;
    }

    private static IEnumerable<string> Tokens(Doc e, string? field) => Texts(e, field).SelectMany(TokensOf);

    private static bool Term(Doc e, string? field, string token) => Texts(e, field).Any(t => TokensOf(t).Contains(token));

    private static bool Phrase(Doc e, string? field, string phrase, int slop = 0) =>
        Texts(e, field).Any(t => WithinMoves(Words(t), phrase.Split(' '), slop));

    /// <summary>
    /// Whether the phrase's words appear at distinct positions whose offsets (position less the word's place in the
    /// phrase) span at most <paramref name="slop"/>: every choice of positions is tried.
    /// </summary>
    private static bool WithinMoves(List<string> words, IReadOnlyList<string> phrase, int slop) =>
        phrase.Count > 0 && SloppyPhraseSearchTests.Within(words, phrase, slop);

    private static bool Prefix(Doc e, string? field, string prefix) => Tokens(e, field).Any(t => t.StartsWith(prefix, StringComparison.Ordinal));

    private static bool Wildcard(Doc e, string? field, string pattern) => Tokens(e, field).Any(t => Glob(pattern, t));

    private static bool Regexp(Doc e, string? field, string pattern) => Tokens(e, field).Any(t => WholeMatch(pattern, t));

    private static bool Fuzzy(Doc e, string? field, string term, int edits) => Tokens(e, field).Any(t => Distance(term, t) <= edits);

    /// <summary>
    /// Whether the field holds a value (an empty string is one; null, <c>[]</c>, <c>[null]</c> are none), or a field
    /// under it does: an object exists through its fields, as Elasticsearch's <c>exists</c> reads an object's name.
    /// </summary>
    private static bool HasValue(Doc e, string field) =>
        e.Fields.Any(f => (f.Name == field || f.Name.StartsWith(field + ".", StringComparison.Ordinal)) && ValuesOf(f.Value).Any());

    /// <summary>Whether one value of the field is this text exactly, as a term query on a keyword field compares it.</summary>
    private static bool WholeValue(Doc e, string field, string text) => Values(e, field).Any(v => v is string s && s == text);

    private static IEnumerable<string> NamesStartingWith(Doc e, string prefix) =>
        e.Fields.Select(f => f.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Distinct();

    /// <summary>A term in any field under <c>city.</c>: Elasticsearch expands a field pattern term by term.</summary>
    private static bool City(Doc e, string token) => NamesStartingWith(e, "city.").Any(f => Term(e, f, token));

    /// <summary>A number, or a string that reads as one: a value of a numeric field as Elasticsearch maps it (double).</summary>
    private static double? AsNumber(object value) => value switch
    {
        long l => l,
        double d => d,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => null,
    };

    /// <summary>Whether one value of a numeric field (each of an array's) passes <paramref name="test"/>.</summary>
    private static bool Number(Doc e, string field, Func<double, bool> test) => Values(e, field).Any(v => AsNumber(v) is { } n && test(n));

    /// <summary>A value of a date field: ISO 8601 text (UTC unless it says otherwise) or epoch milliseconds.</summary>
    private static DateTimeOffset? AsDate(object value) => value switch
    {
        long ms => DateTimeOffset.FromUnixTimeMilliseconds(ms),
        string s when IsoDatePattern().IsMatch(s) && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) => t,
        _ => null,
    };

    /// <summary>Whether one value of a date field (each of an array's) passes <paramref name="test"/>.</summary>
    private static bool Date(Doc e, string field, Func<DateTimeOffset, bool> test) => Values(e, field).Any(v => AsDate(v) is { } d && test(d));

    /// <summary>Wildcard matching of a whole text: <c>*</c> any characters, <c>?</c> one, <c>\</c> makes the next character plain.</summary>
    private static bool Glob(string pattern, string text)
    {
        var parts = new List<(char Char, bool Plain)>();
        for (var i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] == '\\' && i + 1 < pattern.Length)
            {
                parts.Add((pattern[++i], true));
            }
            else
            {
                parts.Add((pattern[i], false));
            }
        }
        var memo = new Dictionary<(int, int), bool>();
        bool At(int p, int t)
        {
            if (memo.TryGetValue((p, t), out var known))
            {
                return known;
            }
            bool result;
            if (p == parts.Count)
            {
                result = t == text.Length;
            }
            else if (parts[p] is ('*', false))
            {
                result = At(p + 1, t) || (t < text.Length && At(p, t + 1));
            }
            else if (parts[p] is ('?', false))
            {
                result = t < text.Length && At(p + 1, t + 1);
            }
            else
            {
                result = t < text.Length && text[t] == parts[p].Char && At(p + 1, t + 1);
            }
            memo[(p, t)] = result;
            return result;
        }
        return At(0, 0);
    }

    private static bool WholeMatch(string pattern, string text) =>
        Regex.IsMatch(text, "^(?:" + pattern + ")$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));

    /// <summary>Damerau-Levenshtein distance (optimal string alignment), ignoring case: the plain full table.</summary>
    private static int Distance(string a, string b) => FuzzySearchTests.Distance(a, b);

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"[\p{L}\p{N}]+(?:[._][\p{L}\p{N}]+)+")]
    private static partial Regex JoinedRunPattern();

    [GeneratedRegex(@"^\d{4}-\d\d")]
    private static partial Regex IsoDatePattern();

    // ---------------------------------------------------------------------------------------------------------------
    // The examples through the engine
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>The data tells each example apart: every one finds some events and leaves others (the empty query aside).</summary>
    [Fact]
    public void EveryExampleHasMatchingAndNonMatchingEvents()
    {
        foreach (var example in Examples())
        {
            var expected = example.Expected;
            if (example.Query.Trim().Length > 0)
            {
                Assert.True(expected.Count > 0 && expected.Count < Docs.Count, $"{example}: the data should hold events it finds and events it does not; it finds [{string.Join(", ", expected)}]");
            }
        }
        Assert.Equal(Docs.Count, Docs.Select(d => d.Id).Distinct().Count());
    }

    /// <summary>
    /// Each example finds exactly the events its predicate says: on the engine from memory tables and again from
    /// segments, and on ClickHouse 18.16 and 26.7.
    /// </summary>
    [SkippableTheory]
    [InlineData(TestLogStore.Embedded)]
    [InlineData(TestLogStore.ClickHouse)]
    [InlineData(TestLogStore.Chdb)]
    public async Task EveryExampleFindsTheEventsItsSemanticsSay(string kind)
    {
        var examples = Examples();
        await using var store = await TestLogStore.OpenAsync(kind, "conformance");
        await store.Set.AppendAsync(Decoded(Docs));
        var failures = new List<string>();
        foreach (var (where, reach) in store.Phases)
        {
            await reach();
            foreach (var example in examples)
            {
                if (!QueryParser.TryParse(example.Query, example.Or, out var query, out var error))
                {
                    failures.Add($"{example}: refused: {error}");
                    continue;
                }
                var found = await FoundAsync(store.Set, query);
                if (!example.Expected.SequenceEqual(found))
                {
                    failures.Add($"{example} {where}: expected [{string.Join(", ", example.Expected)}], found [{string.Join(", ", found)}]");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>An example Logwell refuses on purpose is refused with either default operator, at a position inside it.</summary>
    [Fact]
    public void ExamplesRefusedOnPurposeAreRefusedAtTheirPosition()
    {
        foreach (var (query, names) in RefusedExamples)
        {
            foreach (var or in new[] { false, true })
            {
                Assert.False(QueryParser.TryParse(query, or, out _, out var error), $"'{query}' should be refused");
                Assert.InRange(error!.Position, 0, query.Length);
                Assert.Contains(names, error.Message, StringComparison.Ordinal);
            }
        }
    }

    private static async Task<List<int>> FoundAsync(ILogIndexSet store, QueryNode query) =>
        [.. (await store.SearchAsync(new SearchRequest(query, Limit: 1000))).Hits.Select(h => h.TryGetField("eid", out var id) ? (int)id.Long : -1).Order()];

    // ---------------------------------------------------------------------------------------------------------------
    // The examples through every read API of a node
    // ---------------------------------------------------------------------------------------------------------------

    private static string Window => $"&from={Uri.EscapeDataString(Iso(EventTime.Yesterday.AddHours(-1)))}&to={Uri.EscapeDataString(Iso(EventTime.Yesterday.AddHours(3)))}";

    private static string Parameters(string indexSet, string query, bool or) =>
        $"indexset={indexSet}&q={Uri.EscapeDataString(query)}&default_operator={(or ? "OR" : "AND")}";

    /// <summary>
    /// Through a node, each example answers the same events everywhere: the search's hits and total, the histogram's
    /// total and bars, the fields sidebar's total and per-field counts, and the lines of an NDJSON export.
    /// </summary>
    [Fact]
    public async Task EveryExampleAnswersAlikeThroughSearchHistogramFieldsAndExport()
    {
        var http = fixture.Node.Http;
        var failures = new List<string>();
        foreach (var example in Examples())
        {
            var expected = example.Expected;
            var parameters = Parameters(IndexSet, example.Query, example.Or) + Window;
            void Check<T>(string api, T want, T got)
            {
                if (!EqualityComparer<T>.Default.Equals(want, got))
                {
                    failures.Add($"{example} {api}: expected {want}, found {got}");
                }
            }
            void CheckIds(string api, List<int> found)
            {
                if (!expected.SequenceEqual(found))
                {
                    failures.Add($"{example} {api}: expected [{string.Join(", ", expected)}], found [{string.Join(", ", found)}]");
                }
            }

            using (var search = await GetJsonAsync(http, "/api/v1/search?limit=1000&" + parameters))
            {
                CheckIds("search", [.. search.RootElement.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("fields").GetProperty("eid").GetInt32()).Order()]);
                Check("search total", expected.Count, search.RootElement.GetProperty("total").GetInt32());
            }

            using (var histogram = await GetJsonAsync(http, "/api/v1/histogram?interval=1h&" + parameters))
            {
                Check("histogram total", expected.Count, histogram.RootElement.GetProperty("total").GetInt32());
                Check("histogram buckets", expected.Count, histogram.RootElement.GetProperty("buckets").EnumerateArray().Sum(b => b.GetProperty("count").GetInt32()));
            }

            using (var fields = await GetJsonAsync(http, "/api/v1/fields?" + parameters))
            {
                Check("fields total", expected.Count, fields.RootElement.GetProperty("total").GetInt32());
                var counts = fields.RootElement.GetProperty("fields").EnumerateArray()
                    .ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("count").GetInt32());
                // The index set gives each event with a message its pattern id.
                var expectedCounts = Docs.Where(example.Matches).SelectMany(d => d.Fields.Select(f => f.Name).Concat(d.Message.Length > 0 ? ["pattern"] : []))
                    .GroupBy(n => n, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());
                Check("fields counts", Describe(expectedCounts), Describe(counts));
            }

            using (var export = await http.GetAsync("/api/v1/export?format=ndjson&" + parameters))
            {
                var text = await export.Content.ReadAsStringAsync();
                if (export.StatusCode != HttpStatusCode.OK)
                {
                    failures.Add($"{example} export: answered {(int)export.StatusCode}: {text}");
                }
                else
                {
                    CheckIds("export", [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
                    {
                        using var row = JsonDocument.Parse(line);
                        return row.RootElement.GetProperty("eid").GetInt32();
                    }).Order()]);
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// A live tail per example, all open at once, receives exactly the matching events ingested after it started: a
    /// second batch ends each stream with a matching event marked as the end, so nothing after it is waited for.
    /// </summary>
    [Fact]
    public async Task ALiveTailOfEachExampleReceivesExactlyTheMatchingEventsIngestedAfterItStarted()
    {
        var http = fixture.Node.Http;
        var examples = Examples();
        // The index set exists before the tails subscribe; what it held before is not theirs to see.
        await PostAsync(http, TailIndexSet, Ndjson([D(0, "before the tails")]));
        var tails = new List<(Example Example, HttpResponseMessage Response, StreamReader Reader)>();
        try
        {
            foreach (var example in examples)
            {
                var response = await http.GetAsync("/api/v1/tail?" + Parameters(TailIndexSet, example.Query, example.Or), HttpCompletionOption.ResponseHeadersRead);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{example} tail: answered {(int)response.StatusCode}");
                var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                tails.Add((example, response, reader));
                // The first comment says the subscription is in place.
                Assert.StartsWith(": tailing", await reader.ReadLineAsync());
            }

            await PostAsync(http, TailIndexSet, Ndjson(Docs));
            // Then, in a batch of its own, one event each tail must receive: a matching event marked as the end.
            var ends = examples.Select(example =>
            {
                var end = Docs.First(example.Matches).With("tail_end", true);
                Assert.True(example.Matches(end), $"{example}: the end marker should match");
                return end;
            });
            await PostAsync(http, TailIndexSet, Ndjson(ends));

            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var received = await Task.WhenAll(tails.Select(t => ReadUntilEndAsync(t.Reader, deadline.Token)));
            var failures = new List<string>();
            for (var i = 0; i < tails.Count; i++)
            {
                var expected = tails[i].Example.Expected;
                var found = received[i].Order().ToList();
                if (!expected.SequenceEqual(found))
                {
                    failures.Add($"{tails[i].Example} tail: expected [{string.Join(", ", expected)}], found [{string.Join(", ", found)}]");
                }
            }
            Assert.True(failures.Count == 0, string.Join("\n", failures));
        }
        finally
        {
            foreach (var (_, response, reader) in tails)
            {
                reader.Dispose();
                response.Dispose();
            }
        }
    }

    /// <summary>The <c>eid</c> of each event a tail sends, until the event marked as the end.</summary>
    private static async Task<List<int>> ReadUntilEndAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        var ids = new List<int>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }
            using var hit = JsonDocument.Parse(line["data: ".Length..]);
            var fields = hit.RootElement.GetProperty("fields");
            if (fields.TryGetProperty("tail_end", out _))
            {
                return ids;
            }
            ids.Add(fields.GetProperty("eid").GetInt32());
        }
        throw new InvalidOperationException("the tail ended before the end marker");
    }

    internal static async Task PostAsync(HttpClient http, string indexSet, string ndjson)
    {
        using var content = new StringContent(ndjson, Encoding.UTF8, "application/x-ndjson");
        using var response = await http.PostAsync($"/api/v1/indexsets/{indexSet}/ingest", content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"ingest answered {(int)response.StatusCode}: {body}");
        using var answer = JsonDocument.Parse(body);
        Assert.Equal(0, answer.RootElement.GetProperty("rejected").GetInt32());
    }

    private static async Task<JsonDocument> GetJsonAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path} answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body);
    }

    private static string Describe(Dictionary<string, int> counts) =>
        string.Join(", ", counts.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));

    // ---------------------------------------------------------------------------------------------------------------
    // luqum's test suite
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// The query strings luqum's parser accepts in its tests (tests/test_parser.py first, then the strings its other
    /// tests parse), that Logwell reads too: each must answer what a brute-force reading of the parsed query finds.
    /// </summary>
    internal static readonly string[] LuqumAccepted =
    [
        // tests/test_parser.py
        "\rfoo\t^2\n",
        "\rfoo\t~2\n",
        "\r\"foo\"\t~2\n",
        "somedate:[now/d-1d+7H TO now/d+7H]",
        "foo AND bar",
        "foo bar",
        "subject:test",
        @"test\+\-\&\&\|\|\!\(\)\{\}\[\]\^\""\~\*\?\:\\test",
        .. @"+-&|!(){}[]^""~*?:\<>".Select(c => $@"\{c}test"),
        @"""test \""ph\rase""",
        "field_42:42",
        "hi , bye",
        "-test AND -foo AND NOT bar",
        "+test AND foo AND +bar",
        @"""a phrase (AND a complicated~ one)"" AND ""Another one""",
        "/a regex (with some.*match+ing)?/ AND /Another one/",
        @"""foo bar""^3 (baz AND bar)^2.1",
        "test OR (subject:(foo OR bar) AND baz)",
        "foo:[10 TO 100] AND bar:[a* TO *}",
        @"subject:test desc:(house OR car) AND NOT ""approximatly this""~3",
        @"foo:>10 AND bar:<=11 AND baz:>=100 AND fou:<""200""",
        "foo:(>=10 <11)",
        "1 OR +2~1^1 AND 3",
        "1 2 AND 3 4",
        "foo:TO",
        "foo:TO*",
        "foo:NOT*",
        @"foo:""TO AND OR""",
        "foo:2015-12-19",
        "foo:2015-12-19T22:30",
        "foo:2015-12-19T22:30:45",
        "foo:2015-12-19T22:30:45.234Z",
        @"foo:2015-12-19||+2\d",
        @"foo:now+2h+20m\h",
        @"foo:[2015-12-19||+2\d TO now+3d+12h\h]",
        @"(title:""foo bar"" AND body:""quick fox"")",

        // tests/test_headtail.py
        "\tfoo\r",
        "\t\"foo  bar\"\r",
        "\t/foo/\r",
        "\tTO\r",
        "\tfoo\nbar\r",
        "\tfoo\nOR  bar\rOR\t\nbaz\r\r",
        "\tfoo\nAND  bar\rAND\t\nbaz\r\r",
        "\t+\rfoo\n",
        "\t-\rfoo\n",
        "\tNOT\rfoo\n",
        "\t(\rfoo  )\n",
        "\rfoo:\tbar\n",
        "\rfoo:\t(  bar\n)\t\n",
        "\rfoo AND bar  \nAND \t(\rbaz OR    spam\rOR ham\t\t)\r",
        "\r(foo AND bar  \nAND \t(\rbaz OR    spam\rOR ham\t\t))\r",

        // tests/test_tree.py, tests/test_utils.py, tests/test_naming.py, tests/test_thread.py
        "a b (+f +g) -(c d) +e",
        "\ra\nb (c\t (d e f)) ",
        @"""b""",
        "(foo OR bar~2 OR baz^2) AND NOT spam",
        """
            (title:"foo bar" AND body:"quick fox") OR title:fox AND
            (title:"foo bar" AND body:"quick fox") OR
            title:fox AND (title:"foo bar" AND body:"quick fox") OR
            title:fox AND (title:"foo bar" AND body:"quick fox") OR
            title:fox AND (title:"foo bar" AND body:"quick fox") OR title:fox
        """,

        // tests/test_check.py
        @"author.book.title:""foo"" AND author.book.format.type:""pdf""",
        @"author.birth.city:""foo"" AND collection.ref:""foo""",
        @"foo.english:""foo"" AND author.book.title.raw:""pdf""",
        @"author:(birth.city:""foo"" AND book.title:""bar"")",
        @"author.gender:""Mr"" AND author.book.format.type:""pdf""",
        @"author:(book.title:""foo"" OR book.title:""bar"")",
        @"author:(book.title.raw:""foo"" OR book.title.raw:""bar"")",
        @"author:""foo""",
        @"author:test OR author.firstname:""Hugo""",
        @"author:(""test"" AND firstname:Hugo)",
        @"collection:(title:""foo"" AND keywords.more_info:(linked.key:""bar"" revision:""test""))",
        @"collection:(title:""foo"" AND keywords.more_info:(linked:""bar"" revision:""test""))",
        @"collection.keywords.more_info:""foo""",

        // tests/test_elasticsearch/tests.py
        "spam:eggs",
        "pays:FR AND monty:python",
        "spam:de AND -monty:le AND title:alone",
        "spam:eggs AND (monty:python OR life:bryan)",
        "spam:eggs OR monty:{2 TO 4]",
        "pays:FR OR objet:{2 TO 4]",
        "pays:FR OR monty:{2 TO 4] OR python",
        "pays:FR AND type:AO AND thes:((SI_FM_GC_RC_Relation_client_commerciale_courrier OR SI_FM_GC_Gestion_Projet_Documents OR "
            + "SI_FM_GC_RC_Mailing_prospection_Enquete_Taxe_apprentissage OR SI_FM_GC_RC_Site_web OR SI_FM_GC_RH OR SI_FM_GC_RH_Paye OR "
            + "SI_FM_GC_RH_Temps) OR NOT C91_Etranger)",
        """
            objet:(accessibilite OR diagnosti* OR adap OR
                              "ad ap" -(travaux OR amiante OR "hors voirie"))
            """,
        "spam:\"monthy\r\n python\"",
        @"text:(english:""Spanish Cow"")",
        @"text.english:""Spanish Cow""",
        "author.book.isbn.ref.lower:thebiglebowski",
        @"author:(firstname:""François"")",
        @"author.firstname:""François""",
        @"manager.firstname:""François"" OR manager.address.zipcode:44000",
        @"publish.site:""http://example.com/foo#bar""",
        @"author.firstname:""François"" AND author.lastname:""Dupont""",
        @"author.book.format.type:""pdf""",
        @"author:(firstname:""François"" AND lastname:""Dupont"")",
        @"author:(book:(title:""printemps""))",
        @"author:(book:(format:(type:""pdf"")))",
        @"author:(book:(format:(type:""pdf"" OR type:""epub"")))",
        @"author.book.format.type:""pdf"" OR author.book.format.type:""epub""",
        """
            author:(book:(isbn.ref:"foo" AND title:"bar") OR lastname:"baz") AND
            manager:(subteams.supervisor.name:("John" OR "Paul") AND NOT address.zipcode:44)
            """,

        // tests/test_elasticsearch/test_es_integration.py
        @"title:""Chamber""",
        "illustrators:(name:Giles)",
        @"illustrators:(name:""Giles Greenfield"" OR name:""Cliff Wright"")",
        @"illustrators:(name:""Cliff Wright"") AND illustrators:(name:""Mary GrandPré"")",
        "publication_date:[2005-01-01 TO 2010-12-31]",
        "n_pages:[500 TO *]",
        "n_pages:360",
        @"title:""Harry Secrets""~5",
        "title:Gublet~2",
        @"illustrators:(name:""J. K. Rowling"")",
        "title:secret",
        "title:secret*",
        "title:P*ix",
        "-title:Harry",
        "illustrators:nationality:uk",
        """
            title:phoenux~2 AND
            illustrators:name:Grand* AND
            illustrators:(
                -name:grandpr* AND (
                    name:J*on OR birthdate:[1950-01-01 TO 1970-01-01]
                )
            )
            """,
        "title.no_vowels:Potter AND title.no_vowels:x",

        // tests/test_elasticsearch/test_es_naming.py
        "illustrators.nationality:UK",
        "n_pages:360 OR edition:Lumos",
        "n_pages:157 AND edition:Lumos",
        "n_pages:360 AND edition:Lumos",
        "NOT n_pages:360 AND edition:Lumos",
        "- n_pages:360 AND edition:Lumos",
        "NOT (n_pages:360 AND - edition:Lumos) AND ref:*",
        "ref:BB~1 OR n_pages:1000",
        @"title:""Harry Potter Phoenix""~6 OR n_pages:1000",
        @"title:""Phoenix""^4 OR n_pages:1000",
        @"+title:""Phoenix"" OR n_pages:1000",
        "(ref:* AND title:Phoenix) OR n_pages:1000",
        "publication_date:[2000-01-01 TO 2001-01-01] OR n_pages:1000",
        "title:(Phoenix AND Potter) OR n_pages:1000",
        "(title:Phoenix AND ref:HP5) OR n_pages:1000",
        "(title:Phoenix ref:HP5) OR n_pages:1000",
        "(illustrators.name:Greenfield) OR n_pages:1000",
        "(author.name:Rowling AND ref:HP4) OR n_pages:1000",
        "(illustrators:(name:Greenfield AND nationality:UK))",
        "(illustrators:(name:Greenfield OR nationality:FR) AND n_pages:636)",
        "(NOT illustrators:(-name:Greenfield AND nationality:FR))",
        "(illustrators:(name:Greenfield AND nationality:US) AND n_pages:1000)",
        "(illustrators:(name:Greenfield AND nationality:US) AND n_pages:636)",
    ];

    /// <summary>
    /// The query strings luqum's parser accepts in its tests that Logwell refuses on purpose, each with the reason: it
    /// answers 400 at a position inside the query rather than run another query than the one written.
    /// </summary>
    internal static readonly (string Query, string Why)[] LuqumAcceptedLogwellRefuses =
    [
        (@"subject:test desc:(house OR car)^3 AND ""big garage""~2 dirt~0.3 OR foo:{a TO z*]", "a fractional fuzziness (Lucene's old similarity): Logwell takes a whole number of edits"),
        ("boost^ me^1", "a boost without a number (luqum's own extension; Lucene refuses it too)"),
        (@"""foo bar""~3 ""foo baz""~ baz~0.3 fou~", "a fractional fuzziness (baz~0.3)"),
        ("[-1 TO 5]", "a range without a field"),
        ("[-10 TO -1]", "a range without a field"),
        ("[5 TO -1]", "a range without a field"),
        ("\r{\tfoo\nTO  bar\r\n]\t\t", "a range without a field"),
        (" foo:bar OR baz OR ([20 TO 2000] AND more:(yee AND yii)) ", "a range without a field"),
        (@"author:book:title:""foo"" AND author:book:format:type: ""pdf""", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"author:birth:city:""foo"" AND collection:(ref:""foo"" AND title:""bar"")", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"foo:english:""foo"" AND author:book:title:raw:""pdf""", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"author:gender:""Mr"" AND author:book:format:type:""pdf""", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"author:book:""foo""", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"author:birth:""foo""", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"author:book:(title:""Hugo"" isbn.ref:""2222"" format:type:(""pdf"" OR ""epub""))", "a field name inside a field's value (luqum's nested fields; Elasticsearch refuses it too)"),
        (@"ip:1000\:\:1000\:\:1/24", "'/' inside a word: Lucene ends the word there and starts a regular expression; quote or escape it"),
        (@"1000\:1000\:\:1/24", "'/' inside a word: Lucene ends the word there and starts a regular expression; quote or escape it"),
        (@"<\=test", "a comparison without a field"),
        ("+>=10^3", "a comparison without a field"),
    ];

    /// <summary>The query strings luqum's parser tests refuse (ParseSyntaxError, IllegalCharacterError): Logwell refuses them too.</summary>
    internal static readonly string[] LuqumRejected = ["foo:NOT", "foo:AND", "foo:OR", "OR", "AND", "((foo bar) ", "[foo TO bar", "[foo TO ]", "\\"];

    /// <summary>
    /// Every query luqum accepts and Logwell reads, with either default operator, finds from memory and from segments
    /// what a clause-by-clause reading of the parsed query over the events finds.
    /// </summary>
    [SkippableTheory]
    [InlineData(TestLogStore.Embedded)]
    [InlineData(TestLogStore.ClickHouse)]
    [InlineData(TestLogStore.Chdb)]
    public async Task LuqumQueriesAnswerWhatABruteForceReadingOfTheParsedQueryFinds(string kind)
    {
        await using var store = await TestLogStore.OpenAsync(kind, "luqum");
        await store.Set.AppendAsync(Decoded(Docs));
        var failures = new List<string>();
        var parsed = new List<(string Text, bool Or, QueryNode Query)>();
        foreach (var text in LuqumAccepted)
        {
            foreach (var or in new[] { false, true })
            {
                if (QueryParser.TryParse(text, or, out var query, out var error))
                {
                    parsed.Add((text, or, query));
                }
                else
                {
                    failures.Add($"'{Escape(text)}' (default_operator={(or ? "OR" : "AND")}) refused: {error}");
                }
            }
        }
        // Most of the queries find some of the events but not all, so that agreeing says something.
        var telling = parsed.Count(p => Docs.Count(d => Reference(p.Query, d, DateTimeOffset.UtcNow)) is > 0 and var n && n < Docs.Count);
        Assert.True(telling * 4 >= parsed.Count * 3, $"only {telling} of {parsed.Count} readings find some events but not all");
        foreach (var (where, reach) in store.Phases)
        {
            await reach();
            foreach (var (text, or, query) in parsed)
            {
                var now = DateTimeOffset.UtcNow;
                var expected = Docs.Where(d => Reference(query, d, now)).Select(d => d.Id).Order().ToList();
                var found = await FoundAsync(store.Set, query);
                if (!expected.SequenceEqual(found))
                {
                    failures.Add($"'{Escape(text)}' (default_operator={(or ? "OR" : "AND")}) {where}: read as {query}, expected [{string.Join(", ", expected)}], found [{string.Join(", ", found)}]");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>What luqum rejects, and what Logwell refuses on purpose, is refused with either default operator at a position inside the query.</summary>
    [Fact]
    public void QueriesLuqumRejectsOrLogwellRefusesOnPurposeAreRefusedAtAPositionInsideThem()
    {
        foreach (var (text, why) in LuqumRejected.Select(q => (q, "luqum refuses it")).Concat(LuqumAcceptedLogwellRefuses))
        {
            foreach (var or in new[] { false, true })
            {
                Assert.False(QueryParser.TryParse(text, or, out var query, out var error), $"'{Escape(text)}' should be refused ({why}), not read as {query}");
                Assert.True(error!.Position >= 0 && error.Position <= text.Length, $"'{Escape(text)}': position {error.Position} is outside the query");
            }
        }
    }

    private static string Escape(string text) => text.Replace("\t", "\\t", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    // ---------------------------------------------------------------------------------------------------------------
    // The brute-force reading of a parsed query
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// What a parsed query finds, read clause by clause over the event as docs/query-language.md describes it, without
    /// the engine's tokenizer, token index, matchers or range code.
    /// </summary>
    private static bool Reference(QueryNode node, Doc e, DateTimeOffset now) => node switch
    {
        MatchAllNode => true,
        TermNode t => Texts(e, t.Field).Any(text => TokensOf(text).Contains(t.Token)),
        PhraseNode p => Texts(e, p.Field).Any(text => WithinMoves(Words(text), p.Tokens, p.Slop)),
        PrefixNode p => Texts(e, p.Field).Any(text => Regex.IsMatch(text, @"(?<![\p{L}\p{N}])" + Regex.Escape(p.Prefix), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)),
        WildcardNode w => Texts(e, w.Field).Any(text => TokensOf(text).Prepend(text.ToLowerInvariant()).Any(c => Glob(w.Pattern, c))),
        RegexNode r => Texts(e, r.Field).Any(text => TokensOf(text).Prepend(text).Any(c => WholeMatch(r.Pattern, c))),
        FuzzyNode f => Texts(e, f.Field).Any(text => TokensOf(text).Any(c => Distance(f.Term, c) <= f.MaxEdits)),
        ExistsNode x => (x.Field == "message" && e.Message.Length > 0) || HasValue(e, x.Field),
        RangeNode r => ReferenceRange(r, e, now),
        AndNode a => a.Children.All(c => Reference(c, e, now)),
        OrNode o => o.Children.Any(c => Reference(c, e, now)),
        NotNode n => !Reference(n.Child, e, now),
        FieldPatternNode p => e.Fields.Select(f => f.Name).Prepend("message").Distinct().Where(name => Glob(p.Pattern, name))
            .Any(name => Reference(Retarget(p.Clause, p.Pattern, name), e, now)),
        _ => throw new NotSupportedException($"no reference reading of {node.GetType().Name}"),
    };

    /// <summary>A field pattern's clause written for one field: clauses that name the pattern name the field instead.</summary>
    private static QueryNode Retarget(QueryNode node, string pattern, string name) => node switch
    {
        TermNode n when n.Field == pattern => n with { Field = name },
        PhraseNode n when n.Field == pattern => n with { Field = name },
        PrefixNode n when n.Field == pattern => n with { Field = name },
        WildcardNode n when n.Field == pattern => n with { Field = name },
        RegexNode n when n.Field == pattern => n with { Field = name },
        FuzzyNode n when n.Field == pattern => n with { Field = name },
        RangeNode n when n.Field == pattern => n with { Field = name },
        AndNode n => new AndNode([.. n.Children.Select(c => Retarget(c, pattern, name))]),
        OrNode n => new OrNode([.. n.Children.Select(c => Retarget(c, pattern, name))]),
        NotNode n => new NotNode(Retarget(n.Child, pattern, name)),
        _ => node,
    };

    private static readonly HashSet<string> TimeFields = new(["@t", "@timestamp", "timestamp", "time", "ts", "t"], StringComparer.Ordinal);

    /// <summary>
    /// A range: on the event time, bounds are times; on a field, dates when both bounds are dates (date math or ISO 8601
    /// year first), numbers when both are numbers, else text in ordinal order (strings only). A field matches when one
    /// of its values (each of an array's) is inside.
    /// </summary>
    private static bool ReferenceRange(RangeNode r, Doc e, DateTimeOffset now)
    {
        bool Inside<T>(T value, T? low, T? high) where T : struct, IComparable<T> =>
            (low is not { } l || value.CompareTo(l) > 0 || (r.IncludeLower && value.CompareTo(l) == 0))
            && (high is not { } h || value.CompareTo(h) < 0 || (r.IncludeUpper && value.CompareTo(h) == 0));

        // A rounding goes down for [ and <, up to the unit's last instant for ] and >.
        DateTimeOffset? Low() => r.Lower is null ? null : ReferenceTime(r.Lower, now, roundUp: !r.IncludeLower);
        DateTimeOffset? High() => r.Upper is null ? null : ReferenceTime(r.Upper, now, roundUp: r.IncludeUpper);
        if (TimeFields.Contains(r.Field))
        {
            return Inside(e.Time, Low(), High());
        }
        var values = Values(e, r.Field);
        bool IsDate(string? bound) => bound is null || (LooksLikeDate(bound) && ReferenceTime(bound, now, roundUp: false) is not null);
        if ((r.Lower is not null || r.Upper is not null) && IsDate(r.Lower) && IsDate(r.Upper))
        {
            var (low, high) = (Low(), High());
            return values.Any(value => value switch
            {
                long ms when ms is > -62_135_596_800_000 and < 253_402_300_800_000 => Inside(DateTimeOffset.FromUnixTimeMilliseconds(ms), low, high),
                string s when LooksLikeDate(s) && !s.StartsWith("now", StringComparison.OrdinalIgnoreCase)
                    && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) => Inside(t, low, high),
                _ => false,
            });
        }
        static double? AsNumber(string? text) =>
            text is not null && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && double.IsFinite(n) ? n : null;
        if ((r.Lower is null || AsNumber(r.Lower) is not null) && (r.Upper is null || AsNumber(r.Upper) is not null))
        {
            return values.Any(value => value switch
            {
                long l => l,
                double d => d,
                string s => AsNumber(s),
                _ => null,
            } is { } n && !double.IsNaN(n) && Inside(n, AsNumber(r.Lower), AsNumber(r.Upper)));
        }
        return values.Any(value => value is string text
            && (r.Lower is null || string.CompareOrdinal(text, r.Lower) > 0 || (r.IncludeLower && text == r.Lower))
            && (r.Upper is null || string.CompareOrdinal(text, r.Upper) < 0 || (r.IncludeUpper && text == r.Upper)));
    }

    private static bool LooksLikeDate(string text) =>
        text.StartsWith("now", StringComparison.OrdinalIgnoreCase) || text.Contains("||", StringComparison.Ordinal) || IsoDatePattern().IsMatch(text);

    /// <summary>
    /// A time bound: ISO 8601, epoch milliseconds, or date math (<c>now</c> or <c>date||</c>, then <c>+N</c>/<c>-N</c>
    /// units and <c>/unit</c> roundings, left to right in UTC); null when it is none of these.
    /// </summary>
    private static DateTimeOffset? ReferenceTime(string text, DateTimeOffset now, bool roundUp)
    {
        static DateTimeOffset? Plain(string text) =>
            long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) && ms is > -62_135_596_800_000 and < 253_402_300_800_000
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
                : DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t.ToUniversalTime() : null;
        text = text.Trim();
        DateTimeOffset time;
        string math;
        if (text.StartsWith("now", StringComparison.OrdinalIgnoreCase))
        {
            time = now.ToUniversalTime();
            math = text[3..];
        }
        else if (text.IndexOf("||", StringComparison.Ordinal) is var anchor and >= 0)
        {
            if (Plain(text[..anchor]) is not { } date)
            {
                return null;
            }
            time = date;
            math = text[(anchor + 2)..];
        }
        else
        {
            return Plain(text);
        }
        var step = DateMathPattern().Match(math.Trim());
        if (!step.Success)
        {
            return null;
        }
        var utc = time.UtcDateTime;
        foreach (Capture capture in step.Groups["step"].Captures)
        {
            var part = capture.Value;
            var unit = part[^1];
            if (part[0] == '/')
            {
                var start = unit switch
                {
                    'y' => new DateTime(utc.Year, 1, 1, 0, 0, 0, DateTimeKind.Utc),
                    'M' => new DateTime(utc.Year, utc.Month, 1, 0, 0, 0, DateTimeKind.Utc),
                    'w' => utc.Date.AddDays(-(((int)utc.DayOfWeek + 6) % 7)),
                    'd' => utc.Date,
                    'h' or 'H' => utc.Date.AddHours(utc.Hour),
                    'm' => utc.Date.AddHours(utc.Hour).AddMinutes(utc.Minute),
                    _ => utc.Date.AddHours(utc.Hour).AddMinutes(utc.Minute).AddSeconds(utc.Second),
                };
                utc = roundUp ? Add(start, 1, unit).AddTicks(-1) : start;
            }
            else
            {
                utc = Add(utc, long.Parse(part[..^1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture), unit);
            }
        }
        return new DateTimeOffset(utc);

        static DateTime Add(DateTime t, long n, char unit) => unit switch
        {
            'y' => t.AddYears((int)n),
            'M' => t.AddMonths((int)n),
            'w' => t.AddDays(7 * n),
            'd' => t.AddDays(n),
            'h' or 'H' => t.AddHours(n),
            'm' => t.AddMinutes(n),
            _ => t.AddSeconds(n),
        };
    }

    [GeneratedRegex(@"^(?<step>[+-]\d+[yMwdhHms]|/[yMwdhHms])*$")]
    private static partial Regex DateMathPattern();

    // ---------------------------------------------------------------------------------------------------------------
    // Malformed queries
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>Queries that cannot be read, and a word the error must name (with either default operator unless said).</summary>
    internal static readonly (string Query, string Names, bool NamedWithOr)[] Malformed =
    [
        ("[foo TO bar", "range", true),
        ("foo:NOT", "NOT", true),
        ("foo:AND", "AND", true),
        ("foo:OR", "OR", true),
        ("[-1 TO 5]", "range", true),
        ("~x", "term", true),
        ("quick^", "boost", true),
        ("qu*ck~1", "wildcard", true),
        ("(", "end of query", true),
        ("(quick brown", "'('", true),
        ("((foo bar) ", "'('", true),
        // With default_operator=OR a lone ')' is refused as "unexpected end of query".
        (")", "')'", false),
        ("quick)", "')'", true),
        ("\"quick brown", "quote", true),
        ("title:\"quick", "quote", true),
        ("/qu.ck", "regular expression", true),
        ("name:/joh?n", "regular expression", true),
        ("title:", "title:", true),
        ("AND", "AND", true),
        ("a AND", "AND", true),
        ("OR b", "OR", true),
        ("a OR", "OR", true),
        ("age:>", "age:>", true),
        ("count:[1 5]", "TO", true),
        ("count:[1 TO 5", "range", true),
        ("--quick", "modifier", true),
        ("NOT NOT quick", "modifier", true),
        ("quick~x", "edits", true),
        ("\"quick fox\"~x", "proximity", true),
        ("/(a)\\1/", "regular expression", true),
        ("/a(?=b)/", "regular expression", true),
        ("_exists_:", "_exists_", true),
        (">10", "comparison", true),
        ("]", "']'", true),
        ("quick } fox", "'}'", true),
        ("a]b", "reserved", true),
        ("title:a[b", "reserved", true),
        ("author:book:\"foo\"", "field name", true),
        ("a!b", "'!' inside a word", true),
        ("path:api/v1", "'/' inside a word", true),
        ("quick <=5", "comparison", true),
    ];

    /// <summary>A malformed query is refused at a position inside it, with a message that names what is wrong.</summary>
    [Fact]
    public void MalformedQueriesAreRefusedAtAPositionInsideThem()
    {
        foreach (var (query, names, namedWithOr) in Malformed)
        {
            foreach (var or in new[] { false, true })
            {
                Assert.False(QueryParser.TryParse(query, or, out _, out var error), $"'{query}' (default_operator={(or ? "OR" : "AND")}) should be refused");
                Assert.True(error!.Position >= 0 && error.Position <= query.Length, $"'{query}': position {error.Position} is outside the query");
                Assert.True(error.Message.Contains(names, StringComparison.Ordinal) || (or && !namedWithOr), $"'{query}': '{error.Message}' should name {names}");
            }
        }
    }

    /// <summary>Search, histogram, fields, export and tail answer a malformed query with 400, its position, a message and what was expected.</summary>
    [Fact]
    public async Task MalformedQueriesAnswer400WithTheirPositionFromEveryReadApi()
    {
        var http = fixture.Node.Http;
        foreach (var (query, names) in Malformed.Select(m => (m.Query, m.Names)).Concat(RefusedExamples))
        {
            foreach (var api in new[] { "search", "histogram", "fields", "export", "tail" })
            {
                using var response = await http.GetAsync($"/api/v1/{api}?" + Parameters(IndexSet, query, or: false) + Window);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"'{query}' {api}: answered {(int)response.StatusCode}: {body}");
                using var answer = JsonDocument.Parse(body);
                var position = answer.RootElement.GetProperty("position").GetInt32();
                Assert.True(position >= 0 && position <= query.Length, $"'{query}' {api}: position {position} is outside the query");
                Assert.Contains(names, answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
                Assert.False(string.IsNullOrEmpty(answer.RootElement.GetProperty("expected").GetString()));
            }
        }
    }
}

/// <summary>
/// One node for the conformance tests: the events ingested into one index set, every other one flushed to a segment
/// first and the rest left in memory, so that each example reads both.
/// </summary>
public sealed class QueryConformanceNode : IAsyncLifetime
{
    internal InProcessNode Node { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Node = await InProcessNode.StartAsync();
        var docs = QueryConformanceTests.Docs;
        await QueryConformanceTests.PostAsync(Node.Http, QueryConformanceTests.IndexSet, QueryConformanceTests.Ndjson(docs.Where((_, i) => i % 2 == 0)));
        Assert.True(Node.Engine.TryGet(QueryConformanceTests.IndexSet, out var store));
        await store.FlushAsync();
        await QueryConformanceTests.PostAsync(Node.Http, QueryConformanceTests.IndexSet, QueryConformanceTests.Ndjson(docs.Where((_, i) => i % 2 == 1)));
    }

    public async Task DisposeAsync() => await Node.DisposeAsync();
}
