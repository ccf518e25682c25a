using System.Net;
using System.Net.Http.Headers;

namespace Logwell.Tests;

/// <summary>Requests an attacker or an unlucky client sends, through the node's whole HTTP pipeline.</summary>
public sealed class HardeningTests
{
    [Theory]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 })] // a length varint beyond 32 bits
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0x7f })] // a length beyond int.MaxValue
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0x0f })] // 2^32 - 1
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x08 })] // 2^31
    [InlineData(new byte[] { 0x80 })] // a varint that never ends
    [InlineData(new byte[] { 0x0a, 0xf0, 0x10 })] // a copy before any literal
    public async Task LokiPushWithABrokenSnappyHeaderIsABadRequest(byte[] body)
    {
        await using var node = await InProcessNode.StartAsync();
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        using var response = await node.Http.PostAsync("/loki/api/v1/push", content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Contains("snappy", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NumbersKeepTheirExactValue()
    {
        await using var node = await InProcessNode.StartAsync();
        var line = "{\"@t\":\"" + EventTime.At("10:00:00").ToString("O") + "\",\"msg\":\"n\",\"big\":9007199254740993,\"huge\":1e400,\"u64\":18446744073709551615,\"neg\":-9223372036854775809,\"small\":1e-400,\"pi\":3.14}";
        using var posted = await node.Http.PostAsync("/api/v1/indexsets/n/ingest", new StringContent(line, System.Text.Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        var text = await node.Http.GetStringAsync("/api/v1/search?indexset=n&q=*&from=now-30d");
        Assert.Contains("\"big\":9007199254740993", text, StringComparison.Ordinal);
        Assert.Contains("\"huge\":1e400", text, StringComparison.Ordinal);
        Assert.Contains("\"u64\":18446744073709551615", text, StringComparison.Ordinal);
        Assert.Contains("\"neg\":-9223372036854775809", text, StringComparison.Ordinal);
        Assert.Contains("\"pi\":3.14", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"@t\":{\"a\":1},\"msg\":\"x\"}", "'@t' (an object)")]
    [InlineData("{\"@t\":[1],\"msg\":\"x\"}", "'@t' ([1])")]
    [InlineData("{\"timestamp\":{},\"msg\":\"x\"}", "'timestamp' (an object)")]
    public void ATimestampThatIsNotATimeIsRejectedWhateverItsType(string line, string named)
    {
        var result = Logwell.Core.Ingest.EventDecoder.DecodeJsonLines(System.Text.Encoding.UTF8.GetBytes(line), EventTime.Yesterday);
        Assert.Empty(result.Events);
        Assert.Contains(named, Assert.Single(result.Errors).Error, StringComparison.Ordinal);
    }

    [Fact]
    public void AnObjectUnderALowerTimeNameKeepsItsFields()
    {
        var line = "{\"@t\":\"" + EventTime.At("10:00:00").ToString("O") + "\",\"time\":{\"took\":5}}";
        var evt = Assert.Single(Logwell.Core.Ingest.EventDecoder.DecodeJsonLines(System.Text.Encoding.UTF8.GetBytes(line), EventTime.Yesterday).Events);
        Assert.Equal(EventTime.At("10:00:00").UtcTicks, evt.Timestamp);
        Assert.Equal(["time.took"], evt.Fields.Select(f => f.Name));
    }

    [Theory]
    [InlineData("utf-16")]
    [InlineData("utf-16BE")]
    [InlineData("UTF-32")]
    [InlineData("iso-8859-1")]
    public async Task TextInAnotherCharsetIsDecoded(string charset)
    {
        await using var node = await InProcessNode.StartAsync();
        var encoding = System.Text.Encoding.GetEncoding(charset);
        using var content = new ByteArrayContent([.. encoding.GetPreamble(), .. encoding.GetBytes("caf\u00e9 ouvert\n")]);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"text/plain; charset={charset}");
        using var posted = await node.Http.PostAsync("/api/v1/indexsets/c/ingest", content);
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        var text = await node.Http.GetStringAsync("/api/v1/search?indexset=c&q=ouvert&from=now-1h");
        Assert.Contains("\"message\":\"caf\u00e9 ouvert\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnknownCharsetIsRefusedWith415()
    {
        await using var node = await InProcessNode.StartAsync();
        using var content = new StringContent("x");
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("text/plain; charset=klingon");
        using var posted = await node.Http.PostAsync("/api/v1/indexsets/c/ingest", content);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, posted.StatusCode);
        Assert.Contains("klingon", await posted.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("evil.example:5080", 421)]
    [InlineData("evil.example", 421)]
    [InlineData("logs.example.com", 200)]
    [InlineData("a.internal.example.com:8080", 200)]
    [InlineData("localhost:5080", 200)]
    [InlineData("127.0.0.1:5080", 200)]
    [InlineData("[::1]:5080", 200)]
    [InlineData("10.1.2.3", 200)]
    public async Task OnlyTheNodesOwnHostNamesAreServed(string host, int status)
    {
        await using var node = await InProcessNode.StartAsync(new Dictionary<string, string?> { ["Logwell:AllowedHosts"] = "logs.example.com; *.internal.example.com" });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/search?indexset=default&q=x");
        request.Headers.Host = host;
        using var response = await node.Http.SendAsync(request);
        Assert.True((int)response.StatusCode == status || (status == 200 && response.StatusCode == HttpStatusCode.NotFound), $"{host}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        if (status == 421)
        {
            Assert.Contains("AllowedHosts", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("Origin", "http://evil.example", 403)]
    [InlineData("Origin", "null", 403)]
    [InlineData("Origin", "http://localhost:3000", 403)]
    [InlineData("Sec-Fetch-Site", "cross-site", 403)]
    [InlineData("Sec-Fetch-Site", "same-site", 403)]
    [InlineData("Origin", "http://localhost", 201)]
    [InlineData("Origin", "https://localhost", 201)]
    [InlineData("Sec-Fetch-Site", "same-origin", 201)]
    [InlineData(null, null, 201)]
    public async Task StateChangingRequestsFromPagesOfOtherSitesAreRefused(string? header, string? value, int status)
    {
        await using var node = await InProcessNode.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/indexsets")
        {
            Content = new StringContent("{\"name\": \"made\"}", System.Text.Encoding.UTF8, "application/json"),
        };
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }
        using var response = await node.Http.SendAsync(request);
        Assert.True((int)response.StatusCode == status, $"{header}: {value}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        var list = await node.Http.GetStringAsync("/api/v1/indexsets");
        Assert.Equal(status == 201, list.Contains("\"made\"", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData(null)]
    public async Task JsonEndpointsTakeOnlyJsonBodies(string? contentType)
    {
        await using var node = await InProcessNode.StartAsync();
        using var content = new ByteArrayContent("{\"name\": \"made\"}"u8.ToArray());
        if (contentType is not null)
        {
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        foreach (var path in new[] { "/api/v1/indexsets", "/api/v1/exports", "/api/v1/saved-searches", "/api/v1/search" })
        {
            using var response = await node.Http.PostAsync(path, content);
            Assert.True(response.StatusCode == HttpStatusCode.UnsupportedMediaType, $"{path}: {(int)response.StatusCode}");
            Assert.Contains("application/json", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.DoesNotContain("made", await node.Http.GetStringAsync("/api/v1/indexsets"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ShippersWithoutAnOriginStillIngest()
    {
        await using var node = await InProcessNode.StartAsync();
        using var posted = await node.Http.PostAsync("/api/v1/indexsets/shipped/ingest", new StringContent("{\"msg\":\"hello\"}\n", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        using var bulk = new StringContent("{\"index\":{\"_index\":\"shipped\"}}\n{\"message\":\"bulk\"}\n", System.Text.Encoding.UTF8, "application/x-ndjson");
        using var bulked = await node.Http.PostAsync("/_bulk", bulk);
        Assert.Equal(HttpStatusCode.OK, bulked.StatusCode);
    }

    [Theory]
    [InlineData("/api/v1/search")]
    [InlineData("/api/v1/histogram")]
    [InlineData("/api/v1/fields")]
    public async Task AQueryOverTheClauseLimitIsA400NamingTheLimit(string path)
    {
        await using var node = await InProcessNode.StartAsync();
        using var posted = await node.Http.PostAsync("/api/v1/indexsets/default/ingest", new StringContent("x\n", System.Text.Encoding.UTF8, "text/plain"));
        var q = Uri.EscapeDataString(string.Join(" OR ", Enumerable.Range(0, 3000).Select(i => $"r{i}")));
        using var response = await node.Http.GetAsync($"{path}?indexset=default&q={q}&timeout=5");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Contains("3000 clauses, over the limit of 1024", text, StringComparison.Ordinal);
    }

    /// <summary>The request that poisoned an index set: 1,000 events of 1,000 distinct field names each (17 MB).</summary>
    [Fact]
    public async Task WideEventsKeepTheIndexSetWithinItsFieldLimit()
    {
        await using var node = await InProcessNode.StartAsync();
        var body = new System.Text.StringBuilder();
        for (var e = 0; e < 1_000; e++)
        {
            body.Append("{\"msg\":\"wide ").Append(e).Append('"');
            for (var f = 0; f < 1_000; f++)
            {
                body.Append(",\"e").Append(e).Append("_f").Append(f).Append("\":").Append(f);
            }
            body.Append("}\n");
        }
        using var posted = await node.Http.PostAsync("/api/v1/indexsets/wide/ingest", new StringContent(body.ToString(), System.Text.Encoding.UTF8, "application/x-ndjson"));
        Assert.Contains("\"accepted\":1000", await posted.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var fields = System.Text.Json.JsonDocument.Parse(await node.Http.GetStringAsync("/api/v1/fields?indexset=wide&from=now-1h&timeout=30"));
        var names = fields.RootElement.GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
        // 1,000 of the events' own, the overflow, and the pattern id (outside the limit).
        Assert.Equal(1_002, names.Count);
        Assert.Contains("_overflow", names);
        Assert.Contains("pattern", names);
        // Written out as a segment and read back: every event, every value, within 1,001 columns.
        Assert.True(node.Engine.TryGet("wide", out var store));
        await store.FlushAsync();
        Assert.Equal((1_000, 1_000), (store.Info().Fields, store.Info().MaxFields));
        using var last = System.Text.Json.JsonDocument.Parse(await node.Http.GetStringAsync("/api/v1/search?indexset=wide&q=%22wide%20999%22&from=now-1h"));
        var hits = last.RootElement.GetProperty("hits").EnumerateArray().ToList();
        Assert.True(hits.Count == 1, $"{hits.Count} hits");
        var hit = hits[0];
        using var overflow = System.Text.Json.JsonDocument.Parse(hit.GetProperty("fields").GetProperty("_overflow").GetRawText());
        Assert.Equal(1_000, overflow.RootElement.EnumerateObject().Count());
        Assert.Equal(999, overflow.RootElement.GetProperty("e999_f999").GetInt32());
    }

    [Fact]
    public async Task ANodeStartsWhenAnIndexSetCannotBeOpenedAndServesTheOthers()
    {
        using var dir = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Logwell:DataDirectory"] = dir.Path };
        await using (var node = await InProcessNode.StartAsync(settings))
        {
            foreach (var name in new[] { "good", "broken" })
            {
                using var posted = await node.Http.PostAsync($"/api/v1/indexsets/{name}/ingest", new StringContent($"{name} line\n", System.Text.Encoding.UTF8, "text/plain"));
                Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
                Assert.True(node.Engine.TryGet(name, out var store));
                await store.FlushAsync();
            }
        }
        var segment = Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "indexsets", "broken", "segments"), "*.lws"));
        await File.WriteAllBytesAsync(segment, new byte[4096]);

        await using (var node = await InProcessNode.StartAsync(settings))
        {
            Assert.Contains("good line", await node.Http.GetStringAsync("/api/v1/search?indexset=good&q=good"), StringComparison.Ordinal);
            using var list = System.Text.Json.JsonDocument.Parse(await node.Http.GetStringAsync("/api/v1/indexsets"));
            var broken = list.RootElement.GetProperty("indexsets").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "broken");
            Assert.False(broken.GetProperty("available").GetBoolean());
            using var health = await node.Http.GetAsync("/healthz");
            var text = await health.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Contains("[-]log-store failed: index set broken is unavailable", text, StringComparison.Ordinal);
            using var readyz = await node.Http.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.OK, readyz.StatusCode);
            using var search = await node.Http.GetAsync("/api/v1/search?indexset=broken&q=x");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, search.StatusCode);
            using var ingest = await node.Http.PostAsync("/api/v1/indexsets/broken/ingest", new StringContent("x\n", System.Text.Encoding.UTF8, "text/plain"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ingest.StatusCode);
            // Deleting it is how the operator starts it afresh.
            using var deleted = await node.Http.DeleteAsync("/api/v1/indexsets/broken");
            Assert.True(deleted.IsSuccessStatusCode, $"{(int)deleted.StatusCode}");
            Assert.False(Directory.Exists(Path.Combine(dir.Path, "indexsets", "broken")));
            using var healthy = await node.Http.GetAsync("/healthz?include=log-store");
            Assert.True(healthy.StatusCode == HttpStatusCode.OK, await healthy.Content.ReadAsStringAsync());
        }
    }

    // Found by FuzzTests: each answered 500 or threw out of its parser.
    [Fact]
    public async Task AnOtlpJsonBodyStartingWithAnAstralCharacterIsABadRequest()
    {
        await using var node = await InProcessNode.StartAsync();
        using var content = new StringContent("\U00017045{\"resourceLogs\":[]}", System.Text.Encoding.UTF8, "application/json");
        using var response = await node.Http.PostAsync("/v1/logs", content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Contains("\ufffd", System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AClefLineWithALoneSurrogateEscapeIsRejectedAlone()
    {
        var body = "{\"@t\":\"2026-01-02T03:04:05Z\",\"@m\":\"bad \\ud800\"}\n{\"@t\":\"2026-01-02T03:04:05Z\",\"@m\":\"good\"}\n"u8;
        var result = Logwell.Core.Ingest.ClefDecoder.Decode(body);
        Assert.Equal("good", Assert.Single(result.Events).Message);
        Assert.Equal(1, Assert.Single(result.Errors).Line);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FiltersWithALoneSurrogateAreRefusedWithAReason(bool raw)
    {
        // An escape in the JSON, or the character itself in the text (not valid UTF-16).
        var filters = "[{\"field\":\"" + (raw ? "\ud800" : "\\ud800") + "\",\"op\":\"exists\"}]";
        Assert.False(Logwell.Core.Query.StructuredFilters.TryParse(filters, out _, out var error));
        Assert.Contains("filters", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void APipelineWithALoneSurrogateIsRefusedWithAReason(bool raw)
    {
        var definition = "{\"parse\":{\"json\":{}},\"steps\":[{\"set\":{\"field\":\"" + (raw ? "\udc00" : "\\udc00") + "\",\"value\":\"x\"}}]}";
        Assert.Throws<Logwell.Core.Cleaning.PipelineDefinitionException>(() => Logwell.Core.Cleaning.CleaningPipeline.Parse(definition));
    }

    [Theory]
    [InlineData("/_bulk", "application/x-ndjson", "{\"index\":{\"_in\\uD800dex\":\"fuzz\"}}\n{\"message\":\"es hello\"}\n", HttpStatusCode.BadRequest)]
    [InlineData("/loki/api/v1/push", "application/json", "{\"streams\":[{\"stream\":{\"app\":\"\\ud800\"},\"values\":[[\"1\",\"x\"]]}]}", HttpStatusCode.BadRequest)]
    [InlineData("/loki/api/v1/push", "application/json", "{\"streams\":[{\"stream\":{\"app\":\"web\"},\"values\":[[1,\"x\"]]}]}", HttpStatusCode.BadRequest)]
    [InlineData("/api/v1/indexsets", "application/json", "{\"name\":\"a\\udc00\"}", HttpStatusCode.BadRequest)]
    [InlineData("/api/v1/search", "application/json", "{\"q\":\"\\ud800\"}", HttpStatusCode.BadRequest)]
    public async Task AStringThatIsNotValidTextIsRefusedNotA500(string path, string contentType, string body, HttpStatusCode expected)
    {
        await using var node = await InProcessNode.StartAsync();
        using var content = new StringContent(body, System.Text.Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var response = await node.Http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {text}");
        if (path == "/_bulk")
        {
            // As Elasticsearch answers a malformed action line, with why.
            Assert.Contains("not valid text", text, StringComparison.Ordinal);
        }
    }
}
