using System.Globalization;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;

namespace Logwell.Tests;

public sealed class CleaningPipelineTests
{
    private static readonly long Received = new DateTime(2026, 11, 26, 12, 0, 0, DateTimeKind.Utc).Ticks;

    /// <summary>Runs a pipeline over a raw line and describes the event: time, fields, message.</summary>
    private static string Clean(string pipeline, string line, params Field[] fields)
    {
        var evt = CleaningPipeline.Parse(pipeline).Apply(new LogEvent(Received, line, fields));
        return $"{new DateTime(evt.Timestamp, DateTimeKind.Utc).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} "
            + string.Join(" ", evt.Fields.Select(f => $"{f.Name}={(f.Value.Kind == FieldKind.String ? "'" + f.Value.Text + "'" : f.Value.SearchText)}"))
            + $" | {evt.Message}";
    }

    [Theory]
    // raw keeps the line; json takes fields, message and time from the line.
    [InlineData("""{"parse": {"type": "raw"}}""", "plain line", "2026-11-26T12:00:00.000Z  | plain line")]
    [InlineData("""{"parse": {"type": "json"}}""", """{"ts": "2026-11-26T10:00:00Z", "msg": "paid", "order": {"id": 7}, "ok": true}""",
        "2026-11-26T10:00:00.000Z order.id=7 ok=true | paid")]
    [InlineData("""{"parse": {"type": "json"}}""", "{not json", "2026-11-26T12:00:00.000Z pipeline_error='parse (json) did not match the message' | {not json")]
    // delimiter, with quotes that hold the delimiter and doubled quotes.
    [InlineData("""{"parse": {"type": "delimiter", "delimiter": ",", "quote": "\"", "fields": ["user", "action", "note"]}}""", "alice,login,\"from \"\"home\"\", ok\"",
        "2026-11-26T12:00:00.000Z user='alice' action='login' note='from \"home\", ok' | alice,login,\"from \"\"home\"\", ok\"")]
    [InlineData("""{"parse": {"type": "delimiter", "delimiter": " | ", "fields": ["a", "b"]}}""", "only one",
        "2026-11-26T12:00:00.000Z pipeline_error='parse (delimiter) did not match the message' | only one")]
    // regex with named groups; grok with conversions and the library.
    [InlineData("""{"parse": {"type": "regex", "pattern": "^(?<level>[A-Z]+) \\[(?<thread>[^\\]]+)\\] (?<text>.*)$"}}""", "WARN [pool-1] slow query",
        "2026-11-26T12:00:00.000Z level='WARN' thread='pool-1' text='slow query' | WARN [pool-1] slow query")]
    [InlineData("""{"parse": {"type": "grok", "pattern": "%{IP:client} %{WORD:method} %{URIPATHPARAM:path} %{NUMBER:status:int} %{NUMBER:took:float}"}}""",
        "10.1.2.3 GET /api/items?id=4 503 0.25", "2026-11-26T12:00:00.000Z client='10.1.2.3' method='GET' path='/api/items?id=4' status=503 took=0.25 | 10.1.2.3 GET /api/items?id=4 503 0.25")]
    [InlineData("""{"parse": {"type": "grok", "pattern": "%{COMMONAPACHELOG}"}, "steps": [{"type": "time", "field": "timestamp", "format": "dd/MMM/yyyy:HH:mm:ss zzz"}, {"type": "keep", "fields": ["client", "status"]}]}""",
        "127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
        "2026-10-10T20:55:36.000Z client='127.0.0.1' status=200 | 127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326")]
    [InlineData("""{"parse": {"type": "grok", "pattern": "%{IP:client} %{WORD:method}"}, "steps": [{"type": "add", "fields": {"env": "prod"}}]}""", "not an ip at all",
        "2026-11-26T12:00:00.000Z pipeline_error='parse (grok) did not match the message' | not an ip at all")]
    public void ParseTypesTurnTheMessageIntoFieldsOrSayTheyFailed(string pipeline, string line, string expected) =>
        Assert.Equal(expected, Clean(pipeline, line));

    [Theory]
    // time: a custom format in a zone, epoch, and a time that cannot be read (kept, named in the error).
    [InlineData("""{"steps": [{"type": "time", "field": "ts", "format": "yyyy-MM-dd HH:mm:ss,fff", "timezone": "Europe/Paris"}]}""", "ts", "2026-11-26 10:00:00,250",
        "2026-11-26T09:00:00.250Z  | line")]
    [InlineData("""{"steps": [{"type": "time", "field": "ts", "format": "epoch"}]}""", "ts", "1795168800123", "2026-11-20T10:00:00.123Z  | line")]
    [InlineData("""{"steps": [{"type": "time", "field": "ts", "format": "iso8601", "timezone": "America/New_York"}]}""", "ts", "2026-11-26T10:00:00", "2026-11-26T15:00:00.000Z  | line")]
    [InlineData("""{"steps": [{"type": "time", "field": "ts"}]}""", "ts", "yesterday",
        "2026-11-26T12:00:00.000Z ts='yesterday' pipeline_error='steps[0] (time): cannot read 'yesterday' as a time in the format iso8601' | line")]
    // convert: each type, and a value that is not one.
    [InlineData("""{"steps": [{"type": "convert", "field": "n", "to": "int"}]}""", "n", "42", "2026-11-26T12:00:00.000Z n=42 | line")]
    [InlineData("""{"steps": [{"type": "convert", "field": "n", "to": "float"}]}""", "n", "2.5", "2026-11-26T12:00:00.000Z n=2.5 | line")]
    [InlineData("""{"steps": [{"type": "convert", "field": "n", "to": "bool"}]}""", "n", "yes", "2026-11-26T12:00:00.000Z n=true | line")]
    [InlineData("""{"steps": [{"type": "convert", "field": "n", "to": "time"}]}""", "n", "1795168800", "2026-11-26T12:00:00.000Z n='2026-11-20T10:00:00.0000000Z' | line")]
    [InlineData("""{"steps": [{"type": "convert", "field": "n", "to": "int"}]}""", "n", "4x2",
        "2026-11-26T12:00:00.000Z n='4x2' pipeline_error='steps[0] (convert): 'n' = '4x2' is not a int; kept as it was' | line")]
    // rename, drop, keep, add.
    [InlineData("""{"steps": [{"type": "rename", "field": "n", "to": "count"}]}""", "n", "1", "2026-11-26T12:00:00.000Z count='1' | line")]
    [InlineData("""{"steps": [{"type": "drop", "fields": ["n"]}, {"type": "add", "fields": {"env": "prod", "tier": 2}}]}""", "n", "1", "2026-11-26T12:00:00.000Z env='prod' tier=2 | line")]
    [InlineData("""{"steps": [{"type": "keep", "fields": ["missing"]}]}""", "n", "1", "2026-11-26T12:00:00.000Z  | line")]
    // mask: keep both ends, or replace what a pattern finds (in a field or the message).
    [InlineData("""{"steps": [{"type": "mask", "field": "n", "keep_first": 4, "keep_last": 4}]}""", "n", "4111111111111111", "2026-11-26T12:00:00.000Z n='4111********1111' | line")]
    [InlineData("""{"steps": [{"type": "mask", "field": "n", "keep_first": 4, "keep_last": 4}]}""", "n", "1234567", "2026-11-26T12:00:00.000Z n='*******' | line")]
    [InlineData("""{"steps": [{"type": "mask", "field": "n", "pattern": "[0-9]{3}-[0-9]{4}", "replacement": "[phone]"}]}""", "n", "call 555-1234 now", "2026-11-26T12:00:00.000Z n='call [phone] now' | line")]
    public void StepsChangeFieldsAndTime(string pipeline, string field, string value, string expected) =>
        Assert.Equal(expected, Clean(pipeline, "line", new Field(field, FieldValue.FromString(value))));

    [Fact]
    public void MaskingReachesTheMessageToo() =>
        Assert.Equal("2026-11-26T12:00:00.000Z  | card **** paid",
            Clean("""{"steps": [{"type": "mask", "field": "message", "pattern": "[0-9]{16}"}]}""", "card 4111111111111111 paid"));

    [Fact]
    public void HostileLinesAreKeptAndFinishQuickly()
    {
        // A pattern that backtracks exponentially elsewhere runs in linear time here; huge and odd lines stay whole.
        var pipeline = CleaningPipeline.Parse("""{"parse": {"type": "regex", "pattern": "^(?<a>(x+x+)+)y$"}}""");
        var hostile = new string('x', 100_000);
        var evt = pipeline.Apply(new LogEvent(Received, hostile, []));
        Assert.Equal(hostile, evt.Message);
        Assert.Equal("parse (regex) did not match the message", evt.Fields.Single(f => f.Name == CleaningPipeline.ErrorField).Value.Text);
        var json = CleaningPipeline.Parse("""{"parse": {"type": "json"}}""");
        foreach (var line in new[] { "", "{", "[1,2]", new string('{', 5000), "{\"a\": \"\\ud800\"}", "\u0000\u0001" })
        {
            var kept = json.Apply(new LogEvent(Received, line, []));
            Assert.Equal(line, kept.Message);
            Assert.Contains(kept.Fields, f => f.Name == CleaningPipeline.ErrorField);
        }
    }

    [Theory]
    [InlineData("""{"parse": {"type": "xml"}}""", "parse.type 'xml' is not known: use raw, json, delimiter, regex or grok")]
    [InlineData("""{"parse": {"type": "grok", "pattern": "%{NOPE:x}"}}""", "parse.pattern: unknown grok pattern %{NOPE}")]
    [InlineData("""{"parse": {"type": "regex", "pattern": "(?<a>x)\\1"}}""", "parse.pattern uses what the linear-time engine cannot run")]
    [InlineData("""{"parse": {"type": "regex", "pattern": "no groups"}}""", "parse.pattern captures no field")]
    [InlineData("""{"steps": [{"type": "convert", "field": "n", "to": "date"}]}""", "steps[0].to 'date' is not known")]
    [InlineData("""{"steps": [{"type": "time", "field": "t", "timezone": "Mars/Olympus"}]}""", "steps[0].timezone 'Mars/Olympus' is not a known time zone")]
    [InlineData("""{"steps": [{"type": "rename", "field": "a"}]}""", "steps[0].to is required")]
    [InlineData("""{"stepz": []}""", "unknown key 'stepz'")]
    [InlineData("""[1]""", "a pipeline is an object")]
    public void BrokenDefinitionsAreRefusedWithThePlace(string pipeline, string error) =>
        Assert.StartsWith(error, Assert.Throws<PipelineDefinitionException>(() => CleaningPipeline.Parse(pipeline)).Message, StringComparison.Ordinal);
}
