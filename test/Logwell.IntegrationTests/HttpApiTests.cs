using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using static Logwell.Tests.EventTime;

namespace Logwell.IntegrationTests;

/// <summary>A real node over HTTP: index sets, ingest, search, and the errors a client can cause.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class HttpApiTests
{
    internal static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient http, HttpMethod method, string url, HttpContent? content = null, string? accept = null)
    {
        using var request = new HttpRequestMessage(method, url) { Content = content };
        if (accept is not null)
        {
            request.Headers.Accept.ParseAdd(accept);
        }
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, body);
    }

    internal static StringContent Ndjson(string body) => new(body, Encoding.UTF8, "application/x-ndjson");

    /// <summary>JSON lines of exactly <paramref name="length"/> bytes, the last one padded to fit.</summary>
    private static string LinesOfLength(int length, string word)
    {
        var text = new StringBuilder();
        var line = $"{{\"message\":\"{word} body line\"}}\n";
        while (length - text.Length >= 2 * line.Length)
        {
            text.Append(line);
        }
        var last = $"{{\"message\":\"{word} \"}}\n";
        return text.Append(last.Insert(last.Length - 3, new string('x', length - text.Length - last.Length))).ToString();
    }

    /// <summary>A body the client cannot size ahead, so it goes chunked, without Content-Length.</summary>
    private static async Task<StreamContent> UnsizedAsync(byte[] bytes)
    {
        // Nothing reads the pipe before the request is sent: the writer must not wait for a reader.
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pauseWriterThreshold: 0));
        await pipe.Writer.WriteAsync(bytes);
        await pipe.Writer.CompleteAsync();
        var content = new StreamContent(pipe.Reader.AsStream());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        return content;
    }

    internal static async Task<JsonElement> IngestAsync(HttpClient http, string index, string body, string? contentType = null)
    {
        var (status, json) = await SendAsync(http, HttpMethod.Post, $"/api/v1/indexsets/{index}/ingest", contentType is null ? Ndjson(body) : new StringContent(body, Encoding.UTF8, contentType));
        Assert.Equal(HttpStatusCode.OK, status);
        return json;
    }

    [Fact]
    public async Task ALineOverTheLimitIsRejectedAloneInEveryLineProtocol()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string> { ["LOGWELL_MAXLINEBYTES"] = "300" });
        var big = new string('x', 400);
        var result = await IngestAsync(node.Http, "default", $"{{\"message\":\"small one\"}}\n{{\"message\":\"{big}\"}}\n");
        Assert.Equal(1, result.GetProperty("accepted").GetInt32());
        Assert.Equal("line of 414 bytes is over the limit of 300 bytes (MaxLineBytes)", result.GetProperty("errors")[0].GetProperty("error").GetString());
        result = await IngestAsync(node.Http, "default", $"short text\n{big}\n", "text/plain");
        Assert.Equal(2, result.GetProperty("errors")[0].GetProperty("line").GetInt32());

        var (_, bulk) = await SendAsync(node.Http, HttpMethod.Post, "/default/_bulk", new StringContent($"{{\"index\":{{}}}}\n{{\"message\":\"{big}\"}}\n{{\"index\":{{}}}}\n{{\"message\":\"fits\"}}\n", Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal([400, 201], bulk.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetProperty("status").GetInt32()));
        var (_, clef) = await SendAsync(node.Http, HttpMethod.Post, "/api/events/raw", new StringContent($"{{\"@t\":\"{Day}T10:00:00Z\",\"@m\":\"{big}\"}}\n{{\"@t\":\"{Day}T10:00:00Z\",\"@m\":\"ok\"}}\n", Encoding.UTF8, "application/vnd.serilog.clef"));
        Assert.Equal(1, clef.GetProperty("Accepted").GetInt32());
        Assert.Equal(1, clef.GetProperty("Rejected").GetInt32());
    }

    [Fact]
    public async Task IndexSetsAreCreatedListedAndDeleted()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;

        var (status, created) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("{\"name\":\"payments\",\"retention_days\":3}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(3, created.GetProperty("retention_days").GetInt32());

        (status, var conflict) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("{\"name\":\"payments\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("already exists", conflict.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, var invalid) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("{\"name\":\"Bad Name\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("invalid character 'B'", invalid.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("{\"name\":", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);

        await IngestAsync(http, "payments", "{\"message\":\"paid\"}\n{\"message\":\"refunded\"}\n");
        (status, var list) = await SendAsync(http, HttpMethod.Get, "/api/v1/indexsets");
        Assert.Equal(HttpStatusCode.OK, status);
        var sets = list.GetProperty("indexsets").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!);
        Assert.Contains("default", sets.Keys);
        Assert.Equal(2, sets["payments"].GetProperty("events").GetInt64());
        Assert.True(sets["payments"].GetProperty("bytes_on_disk").GetInt64() > 0);

        (status, _) = await SendAsync(http, HttpMethod.Delete, "/api/v1/indexsets/payments");
        Assert.Equal(HttpStatusCode.NoContent, status);
        (status, _) = await SendAsync(http, HttpMethod.Delete, "/api/v1/indexsets/payments");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "indexsets", "payments")));
    }

    [Fact]
    public async Task IngestedEventsComeBackBySearchWithTheirFields()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        var body = new StringBuilder();
        body.Append($"{{\"@t\":\"{Day}T10:00:00Z\",\"message\":\"user login failed\",\"host\":\"web-1\",\"level\":\"ERROR\",\"status\":401,\"ctx\":{{\"user\":\"bob\"}}}}\n");
        body.Append($"{{\"@t\":\"{Day}T10:01:00Z\",\"msg\":\"connection reset by peer\",\"host\":\"web-12\",\"level\":\"WARN\"}}\n");
        body.Append($"{{\"@t\":\"{Day}T10:02:00Z\",\"log\":\"user login ok\",\"host\":\"db-1\",\"level\":\"INFO\"}}\n");
        body.Append("{broken\n");
        var result = await IngestAsync(http, "default", body.ToString());
        Assert.Equal(3, result.GetProperty("accepted").GetInt32());
        Assert.Equal(1, result.GetProperty("rejected").GetInt32());
        Assert.Equal(4, result.GetProperty("errors")[0].GetProperty("line").GetInt32());

        var (status, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("login AND host:web-* AND NOT ok"));
        Assert.Equal(HttpStatusCode.OK, status);
        var hit = Assert.Single(found.GetProperty("hits").EnumerateArray());
        Assert.Equal("user login failed", hit.GetProperty("message").GetString());
        Assert.Equal($"{Day}T10:00:00.0000000Z", hit.GetProperty("t").GetString());
        Assert.Equal(401, hit.GetProperty("fields").GetProperty("status").GetInt32());
        Assert.Equal("bob", hit.GetProperty("fields").GetProperty("ctx.user").GetString());
        Assert.True(found.GetProperty("total_is_exact").GetBoolean());

        (status, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("\"reset by peer\" OR level:INFO"));
        Assert.Equal(["user login ok", "connection reset by peer"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()));

        (status, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?sort=asc&limit=2");
        Assert.Equal(["user login failed", "connection reset by peer"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()));
        (status, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?sort=asc&limit=2&cursor=" + Uri.EscapeDataString(found.GetProperty("next_cursor").GetString()!));
        Assert.Equal(["user login ok"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()));
        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?sort=up:down");
        Assert.Equal(HttpStatusCode.BadRequest, status);

        // Side by side, AND by default; with default_operator=OR either clause will do.
        (_, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("failed reset"));
        Assert.Equal(0, found.GetProperty("hits").GetArrayLength());
        (_, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?default_operator=OR&q=" + Uri.EscapeDataString("failed reset"));
        Assert.Equal(2, found.GetProperty("hits").GetArrayLength());
        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?default_operator=XOR");
        Assert.Equal(HttpStatusCode.BadRequest, status);

        (status, found) = await SendAsync(http, HttpMethod.Post, "/api/v1/search",
            new StringContent($"{{\"indexset\":\"default\",\"q\":\"user\",\"from\":\"{Day}T10:00:30Z\",\"to\":{At("10:03:00").ToUnixTimeMilliseconds()}}}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["user login ok"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()));
        (status, found) = await SendAsync(http, HttpMethod.Post, "/api/v1/search",
            new StringContent("{\"q\":\"failed reset\",\"default_operator\":\"OR\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(2, found.GetProperty("hits").GetArrayLength());
    }

    [Fact]
    public async Task HitsSortByAFieldAcrossEveryMatchAndPageByCursor()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        // Latencies in a shuffled order of time; one event without latency, one with text.
        var latencies = new[] { "12", "3.5", "250", null, "\"slow\"", "7", "1000", "0.25" };
        await IngestAsync(http, "default", string.Concat(latencies.Select((l, i) =>
            $"{{\"@t\":\"{Day}T10:0{i}:00Z\",\"message\":\"request {i}\"{(l is null ? "" : ",\"latency\":" + l)}}}\n")));

        async Task<(string[] Messages, string? Cursor, long Total)> Page(string sort, string? cursor = null)
        {
            var (status, found) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?limit=3&sort={sort}" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            Assert.Equal(HttpStatusCode.OK, status);
            var next = found.GetProperty("next_cursor");
            return ([.. found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()!)],
                next.ValueKind == JsonValueKind.Null ? null : next.GetString(), found.GetProperty("total").GetInt64());
        }
        async Task<List<string>> All(string sort)
        {
            var all = new List<string>();
            string? cursor = null;
            do
            {
                var page = await Page(sort, cursor);
                all.AddRange(page.Messages);
                cursor = page.Cursor;
            }
            while (cursor is not null);
            return all;
        }
        // Numbers by value, then text; events without the field last in both directions.
        Assert.Equal(["request 7", "request 1", "request 5", "request 0", "request 2", "request 6", "request 4", "request 3"], await All("latency:asc"));
        Assert.Equal(["request 4", "request 6", "request 2", "request 0", "request 5", "request 1", "request 7", "request 3"], await All("latency:desc"));
        Assert.Equal(8, (await Page("latency")).Total);
        Assert.Equal(["request 7", "request 6", "request 5"], (await Page("@timestamp:desc")).Messages);
        Assert.Equal(["request 0", "request 1", "request 2"], (await Page("t:asc")).Messages);

        // A cursor continues only the order it came from.
        var (_, cursorOfAsc, _) = await Page("latency:asc");
        var (status, error) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?sort=latency:desc&cursor=" + Uri.EscapeDataString(cursorOfAsc!));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("cursor", error.GetProperty("error").GetString());
        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?sort=latency:sideways");
        Assert.Equal(HttpStatusCode.BadRequest, status);

        // As a first pipe stage, sort orders every match too, not only the newest page.
        (status, var table) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("* | sort by latency desc | head 2 | fields message, latency"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("[[\"request 4\",\"slow\"],[\"request 6\",1000]]", table.GetProperty("rows").GetRawText());
    }

    [Fact]
    public async Task StructuredFiltersNarrowTheQueryAndBadOnesAreRefused()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        await IngestAsync(http, "default", string.Join('\n',
            $"{{\"@t\":\"{Day}T10:00:00Z\",\"message\":\"payment failed\",\"level\":\"ERROR\",\"status\":502,\"user\":\"bob\"}}",
            $"{{\"@t\":\"{Day}T10:01:00Z\",\"message\":\"payment retried\",\"level\":\"WARN\",\"status\":503}}",
            $"{{\"@t\":\"{Day}T10:02:00Z\",\"message\":\"payment ok\",\"level\":\"INFO\",\"status\":200,\"user\":\"alice\"}}") + "\n");

        async Task<string[]> Messages(string q, string filters)
        {
            var (status, found) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q={Uri.EscapeDataString(q)}&filters={Uri.EscapeDataString(filters)}");
            Assert.Equal(HttpStatusCode.OK, status);
            return [.. found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()!)];
        }

        Assert.Equal(["payment retried", "payment failed"], await Messages("payment", "[{\"field\":\"status\",\"op\":\"between\",\"value\":[500,599]}]"));
        Assert.Equal(["payment failed"], await Messages("", "[{\"field\":\"status\",\"op\":\"gte\",\"value\":500},{\"field\":\"user\",\"op\":\"exists\"}]"));
        Assert.Equal(["payment ok"], await Messages("payment", "[{\"field\":\"level\",\"op\":\"is\",\"value\":\"INFO\"}]"));
        Assert.Equal(["payment retried", "payment failed"], await Messages("payment", "[{\"field\":\"user\",\"op\":\"not_contains\",\"value\":\"LIC\"}]"));
        Assert.Equal(["payment failed"], await Messages("payment", $"[{{\"field\":\"@timestamp\",\"op\":\"lt\",\"value\":\"{Day}T10:01:00Z\"}}]"));

        // In a POST body the filters are a JSON array, not a string.
        var (postStatus, posted) = await SendAsync(http, HttpMethod.Post, "/api/v1/search",
            new StringContent("{\"q\":\"payment\",\"filters\":[{\"field\":\"level\",\"op\":\"is_not\",\"value\":\"INFO\"}]}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, postStatus);
        Assert.Equal(2, posted.GetProperty("hits").GetArrayLength());

        foreach (var (filters, error) in new[]
        {
            ("{\"field\":\"a\"}", "'filters' must be a JSON array"),
            ("[{\"field\":\"a\",\"op\":\"like\",\"value\":1}]", "filters[0]: 'op' must be one of"),
            ("[{\"field\":\"status\",\"op\":\"gt\"}, {\"field\":\"x\",\"op\":\"between\",\"value\":[1]}]", "filters[0]: 'gt' needs"),
            ("[{\"op\":\"exists\"}]", "filters[0]: \"field\" must be a field name"),
            ("[{\"field\":\"t\",\"op\":\"gt\",\"value\":\"soon\"}]", "filters[0]: 'soon' is not a time"),
            ("[1,", "'filters' is not JSON"),
        })
        {
            var (status, body) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q=payment&filters={Uri.EscapeDataString(filters)}");
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.StartsWith(error, body.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task HistogramCountsEveryIntervalOfTheWindow()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        // 10:00:10 and 10:00:50 error, 10:01:30 ok, 10:03:05 error: minutes 10:00 (2 errors), 10:01 (1 ok), 10:03 (1 error).
        await IngestAsync(http, "default", string.Join('\n',
            $"{{\"@t\":\"{Day}T10:00:10Z\",\"message\":\"error a\"}}",
            $"{{\"@t\":\"{Day}T10:00:50Z\",\"message\":\"error b\"}}",
            $"{{\"@t\":\"{Day}T10:01:30Z\",\"message\":\"ok\"}}",
            $"{{\"@t\":\"{Day}T10:03:05Z\",\"message\":\"error c\"}}") + "\n");

        var (status, body) = await SendAsync(http, HttpMethod.Get, $"/api/v1/histogram?q=error&interval=1m&from={Day}T10:00:00Z&to={Day}T10:05:00Z");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(60_000, body.GetProperty("interval_ms").GetInt64());
        Assert.Equal(3, body.GetProperty("total").GetInt64());
        Assert.Equal([2L, 0, 0, 1, 0], body.GetProperty("buckets").EnumerateArray().Select(b => b.GetProperty("count").GetInt64()));
        Assert.Equal($"{Day}T10:03:00.0000000Z", body.GetProperty("buckets")[3].GetProperty("t").GetString());

        // Without a window or an interval: the data's own span, in round intervals of at most 60 bars.
        (status, body) = await SendAsync(http, HttpMethod.Get, "/api/v1/histogram");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(5_000, body.GetProperty("interval_ms").GetInt64());
        Assert.Equal(4, body.GetProperty("total").GetInt64());
        Assert.Equal(4, body.GetProperty("buckets").EnumerateArray().Sum(b => b.GetProperty("count").GetInt64()));

        foreach (var (url, error) in new[]
        {
            ("/api/v1/histogram?interval=5x", "'interval' must be auto"),
            ("/api/v1/histogram?interval=1s&from=2026-11-01T00:00:00Z&to=2026-11-30T00:00:00Z", "an interval of 1s makes"),
            ("/api/v1/histogram?q=(error", "query error at position 6"),
        })
        {
            (status, body) = await SendAsync(http, HttpMethod.Get, url);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.StartsWith(error, body.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task FieldsListTypesAndTopValuesOfTheMatchingEvents()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        var lines = Enumerable.Range(0, 12).Select(i =>
            $"{{\"@t\":\"{Day}T10:00:{i:00}Z\",\"message\":\"{(i < 10 ? "request" : "other")}\",\"host\":\"web-{i % 3}\",\"status\":{(i % 4 == 0 ? "\"n/a\"" : "200")},\"tags\":[1,2]{(i == 0 ? ",\"rare\":true" : "")}}}");
        await IngestAsync(http, "default", string.Join('\n', lines) + "\n");

        var (status, body) = await SendAsync(http, HttpMethod.Get, "/api/v1/fields?q=request");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(10, body.GetProperty("events").GetInt32());
        Assert.False(body.GetProperty("sampled").GetBoolean());
        var fields = body.GetProperty("fields").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        // The pattern id the index set gives each event is a field like the others: one template, "request".
        Assert.Equal(["host", "pattern", "status", "tags", "rare"], fields.Keys);
        Assert.Equal(10, fields["host"].GetProperty("count").GetInt32());
        Assert.Equal([(Logwell.Core.Patterns.TemplateMiner.Id("request"), 10)],
            fields["pattern"].GetProperty("top").EnumerateArray().Select(t => (t.GetProperty("value").GetString(), t.GetProperty("count").GetInt32())));
        // Events 0-9: web-0 at 0,3,6,9; web-1 at 1,4,7; web-2 at 2,5,8.
        Assert.Equal([("web-0", 4), ("web-1", 3), ("web-2", 3)],
            fields["host"].GetProperty("top").EnumerateArray().Select(v => (v.GetProperty("value").GetString(), v.GetProperty("count").GetInt32())));
        Assert.Equal(["number", "string"], fields["status"].GetProperty("types").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(["boolean"], fields["rare"].GetProperty("types").EnumerateArray().Select(t => t.GetString()));

        (status, body) = await SendAsync(http, HttpMethod.Get, "/api/v1/fields?sample=5");
        Assert.Equal(5, body.GetProperty("events").GetInt32());
        Assert.True(body.GetProperty("sampled").GetBoolean());
        Assert.Equal(12, body.GetProperty("total").GetInt64());

        (status, body) = await SendAsync(http, HttpMethod.Get, "/api/v1/fields?sample=0");
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task TailStreamsMatchingEventsAsTheyAreAcknowledged()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        using var tailClient = new HttpClient { BaseAddress = node.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        using var response = await tailClient.GetAsync("/api/v1/tail?q=" + Uri.EscapeDataString("level:ERROR"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        // The first comment says the subscription is in place: what is ingested from now on is streamed.
        Assert.StartsWith(": tailing default", await reader.ReadLineAsync());

        await IngestAsync(node.Http, "default", "{\"message\":\"first\",\"level\":\"ERROR\"}\n{\"message\":\"quiet\",\"level\":\"INFO\"}\n");
        await IngestAsync(node.Http, "default", "{\"message\":\"second\",\"level\":\"ERROR\"}\n");
        var messages = new List<string>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (messages.Count < 2)
        {
            var line = await reader.ReadLineAsync(deadline.Token);
            Assert.NotNull(line);
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                messages.Add(JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("message").GetString()!);
            }
        }
        Assert.Equal(["first", "second"], messages);

        var (status, _) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/tail?q=" + Uri.EscapeDataString("(broken"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task PipesAnswerWithATable()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        await IngestAsync(http, "default", string.Join('\n',
            $"{{\"@t\":\"{Day}T10:00:00Z\",\"message\":\"req\",\"host\":\"a\",\"latency\":10}}",
            $"{{\"@t\":\"{Day}T10:00:30Z\",\"message\":\"req\",\"host\":\"a\",\"latency\":30}}",
            $"{{\"@t\":\"{Day}T10:01:10Z\",\"message\":\"req\",\"host\":\"b\",\"latency\":5}}",
            $"{{\"@t\":\"{Day}T10:02:00Z\",\"message\":\"other\",\"host\":\"b\"}}") + "\n");

        async Task<JsonElement> Table(string q, string extra = "")
        {
            var (status, body) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString(q) + extra);
            Assert.Equal(HttpStatusCode.OK, status);
            return body;
        }
        static string Rows(JsonElement table) => string.Join(";", table.GetProperty("rows").EnumerateArray().Select(r => string.Join(",", r.EnumerateArray().Select(c => c.ToString()))));

        var stats = await Table("req | stats count() as n, avg(latency), max(latency) by host | sort by n desc");
        Assert.Equal(["host", "n", "avg(latency)", "max(latency)"], stats.GetProperty("columns").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal("a,2,20,30;b,1,5,5", Rows(stats));
        Assert.Equal("a,2,66.67", Rows(await Table("req | top 1 host")));
        Assert.Equal($"{Day}T10:00:00.0000000Z,2;{Day}T10:01:00.0000000Z,1;{Day}T10:02:00.0000000Z,0",
            Rows(await Table("req | timechart span=1m count()", $"&from={Day}T10:00:00Z&to={Day}T10:03:00Z")));
        Assert.Equal("other;req", Rows(await Table("* | fields message | head 2")));
        // Templates of the messages, the day before as the comparison (nothing then: every one is new).
        var patterns = await Table("* | patterns compare=1d", $"&from={Day}T10:00:00Z&to={Day}T10:03:00Z");
        Assert.Equal(["pattern", "template", "count", "percent", "first_seen", "last_seen", "example", "previous", "change", "new", "trend", "stored_ids"],
            patterns.GetProperty("columns").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal($"req,3,75,{Day}T10:00:00.0000000Z,{Day}T10:01:10.0000000Z,req,0,,True;other,1,25,{Day}T10:02:00.0000000Z,{Day}T10:02:00.0000000Z,other,0,,True",
            string.Join(";", patterns.GetProperty("rows").EnumerateArray().Select(r => string.Join(",", r.EnumerateArray().Skip(1).Take(9).Select(c => c.ToString())))));
        // The trend over the 3 minutes in 24 slices of 7.5 s, and the id ingest gave the events: what finds them.
        var req = patterns.GetProperty("rows")[0];
        Assert.Equal("1,0,0,0,1,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0", req[10].GetString());
        Assert.Equal(Logwell.Core.Patterns.TemplateMiner.Id("req"), req[11].GetString());
        Assert.Equal("3", Rows(await Table($"pattern:{req[11].GetString()} | stats count()", $"&from={Day}T00:00:00Z")));

        var (badStatus, bad) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("req | stats nope(x)"));
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
        Assert.Equal(6, bad.GetProperty("position").GetInt32());
        (badStatus, bad) = await SendAsync(http, HttpMethod.Get, "/api/v1/histogram?q=" + Uri.EscapeDataString("req | stats count()"));
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
    }

    [Fact]
    public async Task IngestGivesEachEventItsPatternIdAndTheNodeKeepsTheTemplates()
    {
        using var dir = new TempDirectory();
        var lines = string.Concat(Enumerable.Range(0, 30).Select(i =>
            $"{{\"@t\":\"{Day}T10:{i:00}:00Z\",\"message\":\"Connection closed by 10.0.{i % 4}.{i} port {40000 + i}\",\"host\":\"web-{i % 3}\"}}\n"));
        var id = Logwell.Core.Patterns.TemplateMiner.Id("Connection closed by <*> port <*>");
        await using (var node = await LogwellNode.StartAsync(dir.Path))
        {
            var http = node.Http;
            var (status, sets) = await SendAsync(http, HttpMethod.Get, "/api/v1/indexsets");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.True(sets.GetProperty("indexsets")[0].GetProperty("patterns").GetBoolean());
            await IngestAsync(http, "default", lines);

            // An ordinary field: searched, aggregated, and not matched by a bare word.
            var (_, found) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q=pattern:{id}&from={Day}T00:00:00Z&track_total_hits=true");
            Assert.Equal(30, found.GetProperty("total").GetInt32());
            var (_, counted) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("* | stats count() by pattern") + $"&from={Day}T00:00:00Z");
            Assert.Equal($"{id},30", string.Join(";", counted.GetProperty("rows").EnumerateArray().Select(r => $"{r[0]},{r[1]}")));
            var (_, bare) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q={id}&from={Day}T00:00:00Z&track_total_hits=true");
            Assert.Equal(0, bare.GetProperty("total").GetInt32());

            // The template reaches the metadata database within a pass of the catalog (5 s).
            JsonElement stored = default;
            await WorkerProcessTests.WaitForAsync(() =>
            {
                (_, stored) = SendAsync(http, HttpMethod.Get, "/api/v1/indexsets/default/patterns").GetAwaiter().GetResult();
                return stored.GetProperty("templates").GetArrayLength() > 0;
            }, TimeSpan.FromSeconds(30), () => stored.ToString());
            var template = Assert.Single(stored.GetProperty("templates").EnumerateArray());
            Assert.Equal((id, "Connection closed by <*> port <*>", 30), (template.GetProperty("pattern").GetString(), template.GetProperty("template").GetString(), template.GetProperty("events").GetInt32()));
            Assert.Equal($"{Day}T10:00:00Z", template.GetProperty("first_seen").GetString());
            Assert.Equal($"{Day}T10:29:00Z", template.GetProperty("last_seen").GetString());
            Assert.StartsWith("Connection closed by 10.0.", template.GetProperty("example").GetString(), StringComparison.Ordinal);

            // Off: new events have no id; a wrong value is refused.
            var (badStatus, bad) = await SendAsync(http, HttpMethod.Patch, "/api/v1/indexsets/default", new StringContent("{\"patterns\":\"no\"}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, badStatus);
            Assert.Contains("'patterns' must be true or false", bad.GetProperty("error").GetString(), StringComparison.Ordinal);
            var (offStatus, off) = await SendAsync(http, HttpMethod.Patch, "/api/v1/indexsets/default", new StringContent("{\"patterns\":false}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, offStatus);
            Assert.False(off.GetProperty("patterns").GetBoolean());
            await IngestAsync(http, "default", $"{{\"@t\":\"{Day}T11:00:00Z\",\"message\":\"Connection closed by 10.9.9.9 port 1\"}}\n");
            var (_, without) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q=NOT%20_exists_:pattern&from={Day}T00:00:00Z&track_total_hits=true");
            Assert.Equal(1, without.GetProperty("total").GetInt32());
        }

        // The setting is kept beside the data.
        await using (var node = await LogwellNode.StartAsync(dir.Path))
        {
            var (_, sets) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/indexsets");
            Assert.False(sets.GetProperty("indexsets")[0].GetProperty("patterns").GetBoolean());
        }
    }

    [Fact]
    public async Task ARequestCanSetItsOwnTimeout()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        var body = new StringBuilder();
        for (var i = 0; i < 50_000; i++)
        {
            body.Append("{\"message\":\"request ").Append(i).Append(" served in ").Append(i % 997).Append(" ms by worker-").Append(i % 13).Append("\"}\n");
        }
        await IngestAsync(http, "default", body.ToString());

        // A regular expression reads every message: far more than a millisecond of work.
        var regex = Uri.EscapeDataString("/w[aeiou]rker/ | stats count()");
        var (status, answer) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q={regex}&timeout=0.001");
        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        Assert.StartsWith("search took longer than 0.001 s", answer.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, answer) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?q={regex}&timeout=60");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(50_000, answer.GetProperty("rows")[0][0].GetInt64());

        foreach (var bad in new[] { "0", "0.0001", "-1", "abc", "100000" })
        {
            (status, answer) = await SendAsync(http, HttpMethod.Get, $"/api/v1/histogram?timeout={bad}");
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.StartsWith("'timeout' must be a number of seconds", answer.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ContextShowsTheLinesAroundAnEventFromTheSameSource()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        // Two hosts interleaved, one line a second: a-0, b-0, a-1, b-1, ...
        var lines = Enumerable.Range(0, 20).Select(i => $"{{\"@t\":\"{Day}T10:00:{i:00}Z\",\"message\":\"{(i % 2 == 0 ? "a" : "b")}-{i / 2}\",\"host\":\"{(i % 2 == 0 ? "a" : "b")}\"}}");
        await IngestAsync(http, "default", string.Join('\n', lines) + "\n");
        var (_, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("\"a-5\""));
        var id = found.GetProperty("hits")[0].GetProperty("id").GetString()!;

        static string[] Messages(JsonElement events) => [.. events.EnumerateArray().Select(e => e.GetProperty("message").GetString()!)];
        var (status, around) = await SendAsync(http, HttpMethod.Get, $"/api/v1/context?id={id}&before=3&after=2");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("a-5", around.GetProperty("event").GetProperty("message").GetString());
        Assert.Equal("a", around.GetProperty("source").GetProperty("host").GetString());
        Assert.Equal(["a-2", "a-3", "a-4"], Messages(around.GetProperty("before")));
        Assert.Equal(["a-6", "a-7"], Messages(around.GetProperty("after")));

        // Near the end there is less after it.
        (_, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("\"b-9\""));
        (_, around) = await SendAsync(http, HttpMethod.Get, $"/api/v1/context?id={found.GetProperty("hits")[0].GetProperty("id").GetString()}");
        Assert.Equal(10 - 1, around.GetProperty("before").GetArrayLength());
        Assert.Equal(0, around.GetProperty("after").GetArrayLength());

        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/context?id=00000000000fffff");
        Assert.Equal(HttpStatusCode.NotFound, status);
        foreach (var bad in new[] { "id=xyz", $"id={id}&before=-1", $"id={id}&after=5000" })
        {
            (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/context?" + bad);
            Assert.Equal(HttpStatusCode.BadRequest, status);
        }
    }

    [Fact]
    public async Task GzipBodiesAndPlainTextAreAccepted()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 1000).Select(i => $"{{\"message\":\"gzip line {i}\"}}\n"))));
        }
        var content = new ByteArrayContent(compressed.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        content.Headers.ContentEncoding.Add("gzip");
        var (status, result) = await SendAsync(node.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", content);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1000, result.GetProperty("accepted").GetInt32());

        (status, result) = await SendAsync(node.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new StringContent("Nov 26 kernel: oom-killer invoked\nplain second\n", Encoding.UTF8, "text/plain"));
        Assert.Equal(2, result.GetProperty("accepted").GetInt32());
        (_, var found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=oom");
        Assert.Equal("Nov 26 kernel: oom-killer invoked", found.GetProperty("hits")[0].GetProperty("message").GetString());
        (_, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=gzip&limit=0");
        Assert.Equal(1000, found.GetProperty("total").GetInt64());

        // No content type, or curl's default form encoding: the body is sniffed.
        (status, result) = await SendAsync(node.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new ByteArrayContent("{\"message\":\"sniffed json\",\"k\":1}\n"u8.ToArray()));
        Assert.Equal(HttpStatusCode.OK, status);
        (status, result) = await SendAsync(node.Http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new StringContent("sniffed text line\n", Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.OK, status);
        (_, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=sniffed");
        Assert.Equal(["sniffed text line", "sniffed json"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()));
        Assert.Equal(1, found.GetProperty("hits")[1].GetProperty("fields").GetProperty("k").GetInt32());
    }

    [Fact]
    public async Task BadRequestsGetClearErrorsAndNeverA500()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, "Production", new Dictionary<string, string> { ["LOGWELL_MAXBODYBYTES"] = "100000" });
        var http = node.Http;

        var (status, error) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/nosuch/ingest", Ndjson("{\"message\":\"x\"}\n"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("'nosuch'", error.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, error) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", Ndjson(new string('x', 200_000)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("100000 bytes", error.GetProperty("error").GetString(), StringComparison.Ordinal);

        // A body of exactly the limit is read whole; one byte more is refused. The same holds when no Content-Length
        // says the size ahead (chunked), and when a small gzip body grows the buffer as it decompresses.
        var atLimit = LinesOfLength(100_000, "limit");
        (status, error) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", Ndjson(atLimit));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(atLimit.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, error.GetProperty("accepted").GetInt32());
        (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", Ndjson(atLimit + " "));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        var chunked = LinesOfLength(90_000, "chunked");
        (status, error) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", await UnsizedAsync(Encoding.UTF8.GetBytes(chunked)));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(chunked.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, error.GetProperty("accepted").GetInt32());
        (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", await UnsizedAsync(Encoding.UTF8.GetBytes(atLimit + " ")));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        using (var zipped = new MemoryStream())
        {
            await using (var gzip = new GZipStream(zipped, CompressionLevel.Optimal, leaveOpen: true))
            {
                gzip.Write(Encoding.UTF8.GetBytes(atLimit));
            }
            var small = new ByteArrayContent(zipped.ToArray());
            small.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
            small.Headers.ContentEncoding.Add("gzip");
            (status, error) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", small);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(atLimit.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, error.GetProperty("accepted").GetInt32());
        }

        // Small on the wire, over the limit once decompressed.
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"message\":\"aaaaaaaaaaaaaaaa\"}\n", 20_000))));
        }
        var bomb = new ByteArrayContent(compressed.ToArray());
        bomb.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        bomb.Headers.ContentEncoding.Add("gzip");
        (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", bomb);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);

        var corrupt = new ByteArrayContent([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]);
        corrupt.Headers.ContentEncoding.Add("gzip");
        (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", corrupt);
        Assert.Equal(HttpStatusCode.BadRequest, status);

        (status, error) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/default/ingest", new StringContent("<xml/>", Encoding.UTF8, "application/xml"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);

        (status, error) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=" + Uri.EscapeDataString("error AND (timeout"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(18, error.GetProperty("position").GetInt32());
        Assert.Equal("')'", error.GetProperty("expected").GetString());

        (status, error) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=x&from=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("'from'", error.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?from=now&to=now-1h");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?limit=-4");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?cursor=zzz");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (status, _) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?indexset=nosuch");
        Assert.Equal(HttpStatusCode.NotFound, status);
        (status, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/search", new StringContent("[1,2", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);

        // The node is still healthy.
        using var health = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task CursorPagesHaveNoDuplicatesOrGapsWhileIngestGoesOn()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        var start = Yesterday;
        string Lines(int from, int count) => string.Concat(Enumerable.Range(from, count).Select(i =>
            $"{{\"@t\":\"{start.AddSeconds(i % 50):O}\",\"message\":\"page event {i}\",\"n\":{i}}}\n"));
        await IngestAsync(http, "default", Lines(0, 500));

        var seen = new List<long>();
        string? cursor = null;
        var extra = 500;
        do
        {
            var (status, page) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?q=page&limit=37" + (cursor is null ? "" : "&cursor=" + cursor));
            Assert.Equal(HttpStatusCode.OK, status);
            seen.AddRange(page.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("fields").GetProperty("n").GetInt64()));
            cursor = page.GetProperty("next_cursor").GetString();
            // New events land while paging: later ones and ones in the middle of the time range.
            await IngestAsync(http, "default", Lines(extra, 20));
            extra += 20;
        }
        while (cursor is not null);

        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Superset(Enumerable.Range(0, 500).Select(i => (long)i).ToHashSet(), seen.ToHashSet());
    }

    [Fact]
    public async Task TotalIsALowerBoundPastTenThousandUnlessAskedToCountAll()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string> { ["LOGWELL_MEMTABLEMAXEVENTS"] = "2000", ["LOGWELL_BLOCKROWS"] = "500" });
        var start = Yesterday;
        for (var batch = 0; batch < 6; batch++)
        {
            await IngestAsync(node.Http, "default", string.Concat(Enumerable.Range(batch * 2000, 2000).Select(i => $"{{\"@t\":\"{start.AddSeconds(i):O}\",\"message\":\"many {i}\"}}\n")));
        }
        // Segments are written in the background: wait until the memory tables have drained.
        for (var attempt = 0; attempt < 100 && Directory.GetFiles(Path.Combine(dir.Path, "indexsets", "default"), "wal-*.log").Length > 1; attempt++)
        {
            await Task.Delay(100);
        }
        var (_, result) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=many&limit=10");
        Assert.False(result.GetProperty("total_is_exact").GetBoolean());
        Assert.InRange(result.GetProperty("total").GetInt64(), 10_000, 12_000);
        (_, result) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=many&limit=10&track_total_hits=true");
        Assert.True(result.GetProperty("total_is_exact").GetBoolean());
        Assert.Equal(12_000, result.GetProperty("total").GetInt64());
        var (status, _) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=many&track_total_hits=maybe");
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task NdjsonAcceptStreamsOneHitPerLine()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        await IngestAsync(node.Http, "default", string.Concat(Enumerable.Range(0, 250).Select(i => $"{{\"message\":\"stream {i}\"}}\n")));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/search?q=stream&limit=1000");
        request.Headers.Accept.ParseAdd("application/x-ndjson");
        using var response = await node.Http.SendAsync(request);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("250", response.Headers.GetValues("X-Logwell-Total").Single());
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(250, lines.Length);
        Assert.All(lines, line => Assert.StartsWith("stream ", JsonDocument.Parse(line).RootElement.GetProperty("message").GetString(), StringComparison.Ordinal));
    }
}
