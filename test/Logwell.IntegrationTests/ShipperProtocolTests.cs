using System.Net;
using System.Text;
using System.Text.Json;
using Elastic.Clients.Elasticsearch;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Resources;
using Serilog;
using static Logwell.IntegrationTests.HttpApiTests;
using static Logwell.Tests.EventTime;

namespace Logwell.IntegrationTests;

/// <summary>The protocols of the shippers operators already run, spoken by their own client libraries.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class ShipperProtocolTests
{
    private sealed record ShopEvent(
        [property: System.Text.Json.Serialization.JsonPropertyName("@timestamp")] DateTimeOffset Timestamp,
        [property: System.Text.Json.Serialization.JsonPropertyName("message")] string Message,
        [property: System.Text.Json.Serialization.JsonPropertyName("log.level")] string Level,
        [property: System.Text.Json.Serialization.JsonPropertyName("host")] string Host,
        [property: System.Text.Json.Serialization.JsonPropertyName("status")] int Status);

    [Fact]
    public async Task TheElasticsearchClientBulkIndexesIntoTheIndexSetOfItsDailyIndex()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var client = new ElasticsearchClient(new ElasticsearchClientSettings(node.BaseAddress));

        var info = await client.InfoAsync();
        Assert.True(info.IsValidResponse, info.DebugInformation);
        Assert.StartsWith("8.", info.Version.Number, StringComparison.Ordinal);

        var start = At("09:00:00");
        var events = Enumerable.Range(0, 500).Select(i => new ShopEvent(start.AddSeconds(i), $"order {i} {(i % 50 == 0 ? "failed: card declined" : "paid")}",
            i % 50 == 0 ? "ERROR" : "INFO", $"web-{i % 3}", i % 50 == 0 ? 502 : 200)).ToList();
        var response = await client.BulkAsync(b => b.Index("shop-2026.11.26").IndexMany(events));
        Assert.True(response.IsValidResponse, response.DebugInformation);
        Assert.False(response.Errors);
        Assert.Equal(500, response.Items.Count);
        Assert.All(response.Items, item => Assert.Equal(201, item.Status));

        var (status, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?indexset=shop&q=" + Uri.EscapeDataString("log.level:ERROR AND declined") + "&sort=asc");
        Assert.Equal(HttpStatusCode.OK, status);
        var hits = found.GetProperty("hits").EnumerateArray().ToList();
        Assert.Equal(10, hits.Count);
        Assert.Equal("order 0 failed: card declined", hits[0].GetProperty("message").GetString());
        Assert.Equal($"{Day}T09:00:00.0000000Z", hits[0].GetProperty("t").GetString());
        Assert.Equal("web-0", hits[0].GetProperty("fields").GetProperty("host").GetString());
        Assert.Equal(502, hits[0].GetProperty("fields").GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task TheBulkEndpointAnswersEachItemAndRefusesOnlyWhatIsBroken()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, "Production");
        var http = node.Http;
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("{\"name\":\"app\"}", Encoding.UTF8, "application/json"))).Status);

        // A good item, a broken document, an index set that does not exist, a delete, a create into a daily index.
        var body = string.Join('\n',
            "{\"index\":{\"_index\":\"app\"}}", $"{{\"@timestamp\":\"{Day}T10:00:00Z\",\"message\":\"first\"}}",
            "{\"index\":{}}", "{\"message\": broken}",
            "{\"index\":{\"_index\":\"nosuch-2026.11.26\"}}", "{\"message\":\"lost\"}",
            "{\"delete\":{\"_index\":\"app\",\"_id\":\"1\"}}",
            "{\"create\":{\"_index\":\"app-2026.11.26\"}}", $"{{\"@timestamp\":\"{Day}T10:00:01Z\",\"message\":\"second\"}}") + "\n";
        var (status, answer) = await SendAsync(http, HttpMethod.Post, "/app/_bulk", new StringContent(body, Encoding.UTF8, "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(answer.GetProperty("errors").GetBoolean());
        var items = answer.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal([201, 400, 404, 400, 201], items.Select(i => i.EnumerateObject().Single().Value.GetProperty("status").GetInt32()));
        Assert.Equal("create", items[4].EnumerateObject().Single().Name);
        Assert.Equal("document_parsing_exception", items[1].GetProperty("index").GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("line [4]", items[1].GetProperty("index").GetProperty("error").GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("index_not_found_exception", items[2].GetProperty("index").GetProperty("error").GetProperty("type").GetString());

        (_, var found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?indexset=app&sort=asc");
        Assert.Equal(["first", "second"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message").GetString()));
        Assert.Equal(items[0].GetProperty("index").GetProperty("_id").GetString(), found.GetProperty("hits")[0].GetProperty("id").GetString());

        // A malformed action line loses the pairing of actions and documents: nothing of the request is stored.
        (status, answer) = await SendAsync(http, HttpMethod.Post, "/_bulk", new StringContent("{\"index\":{\"_index\":\"app\"}}\n{\"message\":\"third\"}\n[1]\n{}\n", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("line [3]", answer.GetProperty("error").GetProperty("reason").GetString(), StringComparison.Ordinal);
        (_, found) = await SendAsync(http, HttpMethod.Get, "/api/v1/search?indexset=app");
        Assert.Equal(2, found.GetProperty("total").GetInt32());

        // What shippers ask before sending.
        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal("Elasticsearch", head.Headers.GetValues("X-Elastic-Product").Single());
        (status, answer) = await SendAsync(http, HttpMethod.Get, "/_cluster/health");
        Assert.Equal("green", answer.GetProperty("status").GetString());
        (status, answer) = await SendAsync(http, HttpMethod.Get, "/_license");
        Assert.Equal("active", answer.GetProperty("license").GetProperty("status").GetString());
        (status, _) = await SendAsync(http, HttpMethod.Get, "/_index_template/logs");
        Assert.Equal(HttpStatusCode.NotFound, status);
        (status, answer) = await SendAsync(http, HttpMethod.Put, "/_index_template/logs", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("no index templates", answer.GetProperty("error").GetProperty("reason").GetString(), StringComparison.Ordinal);

        // A single document, as rsyslog's omelasticsearch sends without bulk mode.
        (status, answer) = await SendAsync(http, HttpMethod.Post, "/app-2026.11.27/_doc", new StringContent($"{{\"@timestamp\":\"{Day}T00:00:00Z\",\"message\":\"single\"}}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("created", answer.GetProperty("result").GetString());
    }

    [Fact]
    public async Task SerilogsSeqSinkSendsClefWithRenderedMessagesLevelsAndProperties()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string> { ["LOGWELL_SEQAPIKEYS__payments-key"] = "payments" });
        var before = DateTimeOffset.UtcNow;
        using (var log = new LoggerConfiguration().MinimumLevel.Verbose()
            .Enrich.WithProperty("Service", "checkout")
            .WriteTo.Seq(node.BaseAddress.ToString(), apiKey: "payments-key")
            .CreateLogger())
        {
            log.Information("Order {OrderId} paid by {@Customer} in {Elapsed:0.0} ms", 42, new { Name = "ada", Tier = "gold" }, 12.345);
            log.Error(new InvalidOperationException("card declined"), "Payment {PaymentId} failed", "p-9");
            log.Debug("Cache {{warm}} after {Count} loads", 3);
        }
        var after = DateTimeOffset.UtcNow;

        var (status, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?indexset=payments&sort=asc");
        Assert.Equal(HttpStatusCode.OK, status);
        var hits = found.GetProperty("hits").EnumerateArray().ToList();
        Assert.Equal(["Order 42 paid by {\"Name\":\"ada\",\"Tier\":\"gold\"} in 12.3 ms", "Payment p-9 failed", "Cache {warm} after 3 loads"],
            hits.Select(h => h.GetProperty("message").GetString()));
        Assert.Equal(["Information", "Error", "Debug"], hits.Select(h => h.GetProperty("fields").GetProperty("level").GetString()));
        var first = hits[0].GetProperty("fields");
        Assert.Equal(42, first.GetProperty("OrderId").GetInt32());
        Assert.Equal("gold", first.GetProperty("Customer.Tier").GetString());
        Assert.Equal("checkout", first.GetProperty("Service").GetString());
        Assert.Equal("Order {OrderId} paid by {@Customer} in {Elapsed:0.0} ms", first.GetProperty("message_template").GetString());
        var time = DateTimeOffset.Parse(hits[0].GetProperty("t").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(time, before.AddSeconds(-1), after.AddSeconds(1));
        Assert.Contains("System.InvalidOperationException: card declined", hits[1].GetProperty("fields").GetProperty("exception").GetString(), StringComparison.Ordinal);

        // Searchable like any event: by level and by the exception's text.
        (_, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?indexset=payments&q=" + Uri.EscapeDataString("level:error AND exception:declined"));
        Assert.Equal(1, found.GetProperty("total").GetInt32());

        // A wrong key is refused in Seq's error format; a broken line fails alone.
        using var wrong = new HttpRequestMessage(HttpMethod.Post, "/api/events/raw") { Content = new StringContent($"{{\"@t\":\"{Day}T10:00:00Z\",\"@m\":\"x\"}}\n", Encoding.UTF8, "application/vnd.serilog.clef") };
        wrong.Headers.Add("X-Seq-ApiKey", "nope");
        using var refused = await node.Http.SendAsync(wrong);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("\"Error\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        (status, var answer) = await SendAsync(node.Http, HttpMethod.Post, "/api/events/raw?apiKey=payments-key",
            new StringContent($"{{\"@t\":\"{Day}T10:00:00Z\",\"@mt\":\"kept {{N}}\",\"N\":1}}\n{{\"@m\":\"no time\"}}\nnot json\n", Encoding.UTF8, "application/vnd.serilog.clef"));
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(1, answer.GetProperty("Accepted").GetInt32());
        Assert.Equal([2, 3], answer.GetProperty("Errors").EnumerateArray().Select(e => e.GetProperty("Line").GetInt32()));
        (_, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?indexset=payments&q=kept");
        Assert.Equal("kept 1", found.GetProperty("hits")[0].GetProperty("message").GetString());
    }

    [Fact]
    public async Task TheOpenTelemetryExporterSendsOtlpProtobufWithSeverityAttributesResourceAndTrace()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var before = DateTimeOffset.UtcNow;
        string? traceId;
        using (var activitySource = new System.Diagnostics.ActivitySource("shop"))
        using (var listener = new System.Diagnostics.ActivityListener { ShouldListenTo = _ => true, Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded })
        {
            System.Diagnostics.ActivitySource.AddActivityListener(listener);
            using var loggers = LoggerFactory.Create(builder => builder.AddOpenTelemetry(otel =>
            {
                otel.SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService("checkout", serviceVersion: "1.4.2"));
                otel.IncludeFormattedMessage = true;
                otel.AddOtlpExporter(exporter =>
                {
                    exporter.Endpoint = new Uri(node.BaseAddress, "/v1/logs");
                    exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                });
            }));
            var logger = loggers.CreateLogger("Shop.Payments");
            using (var activity = activitySource.StartActivity("pay"))
            {
                logger.LogError("Payment {PaymentId} failed after {Attempts} attempts", "p-9", 3);
                Assert.NotNull(activity);
                traceId = activity.TraceId.ToHexString();
            }
            logger.LogInformation("Order {OrderId} shipped", 42);
        }
        var after = DateTimeOffset.UtcNow;

        var (status, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?sort=asc&q=" + Uri.EscapeDataString("service.name:checkout"));
        Assert.Equal(HttpStatusCode.OK, status);
        var hits = found.GetProperty("hits").EnumerateArray().ToList();
        Assert.Equal(["Payment p-9 failed after 3 attempts", "Order 42 shipped"], hits.Select(h => h.GetProperty("message").GetString()));
        var error = hits[0].GetProperty("fields");
        // The SDK sends its own severity text; the number says the same in OTLP's scale.
        Assert.Equal("Error", error.GetProperty("level").GetString());
        Assert.Equal(17, error.GetProperty("severity_number").GetInt32());
        Assert.Equal("p-9", error.GetProperty("PaymentId").GetString());
        Assert.Equal(3, error.GetProperty("Attempts").GetInt32());
        Assert.Equal("1.4.2", error.GetProperty("service.version").GetString());
        Assert.Equal("Shop.Payments", error.GetProperty("scope.name").GetString());
        Assert.Equal(traceId, error.GetProperty("trace_id").GetString());
        Assert.Equal("Information", hits[1].GetProperty("fields").GetProperty("level").GetString());
        var time = DateTimeOffset.Parse(hits[0].GetProperty("t").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(time, before.AddSeconds(-1), after.AddSeconds(1));
    }

    [Fact]
    public async Task OtlpJsonBodiesKeepStructuredBodiesAndHexIdsAndBrokenBodiesAreRefused()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        // timeUnixNano is 10:00 yesterday.
        var body = """
            {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
              "scopeLogs": [{"scope": {"name": "jobs"}, "logRecords": [
                {"timeUnixNano": "TIME_NANOS", "severityNumber": 13, "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                 "body": {"kvlistValue": {"values": [{"key": "invoice", "value": {"intValue": "77"}}, {"key": "state", "value": {"stringValue": "overdue"}}]}},
                 "attributes": [{"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": true}]}}}]}]}]}]}
            """.Replace("TIME_NANOS", $"{At("10:00:00").ToUnixTimeMilliseconds()}000000", StringComparison.Ordinal);
        var (status, _) = await SendAsync(node.Http, HttpMethod.Post, "/v1/logs", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, status);
        var (_, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=service.name:billing");
        var hit = Assert.Single(found.GetProperty("hits").EnumerateArray());
        Assert.Equal($"{Day}T10:00:00.0000000Z", hit.GetProperty("t").GetString());
        Assert.Equal("{\"invoice\":77,\"state\":\"overdue\"}", hit.GetProperty("message").GetString());
        var fields = hit.GetProperty("fields");
        Assert.Equal("WARN", fields.GetProperty("level").GetString());
        Assert.Equal(77, fields.GetProperty("body.invoice").GetInt32());
        Assert.Equal("5b8efff798038103d269b633813fc60c", fields.GetProperty("trace_id").GetString());
        Assert.Equal("eee19b7ec3c1b174", fields.GetProperty("span_id").GetString());
        Assert.Equal("[\"a\",true]", fields.GetProperty("tags").GetRawText().Replace(" ", "", StringComparison.Ordinal));

        (status, var answer) = await SendAsync(node.Http, HttpMethod.Post, "/v1/logs", new StringContent("{\"resourceLogs\": [", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(3, answer.GetProperty("code").GetInt32());
        using var broken = new ByteArrayContent([0x0a, 0xff, 0xff]);
        broken.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-protobuf");
        using var refused = await node.Http.PostAsync("/v1/logs", broken);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
    }

    [SkippableFact]
    public async Task WinstonLokiPushesSnappyProtobufAndJsonWithItsLabels()
    {
        var (clients, why) = await NodeClients.EnsureAsync();
        Skip.If(clients is null, why);
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var before = DateTimeOffset.UtcNow;
        foreach (var mode in new[] { "protobuf", "json" })
        {
            var (code, output) = await NodeClients.RunAsync("node", ["loki-push.js", node.BaseAddress.ToString().TrimEnd('/'), mode], clients!, TimeSpan.FromSeconds(60));
            Assert.True(code == 0, $"winston-loki ({mode}) failed: {output}");
        }
        var after = DateTimeOffset.UtcNow;

        foreach (var mode in new[] { "protobuf", "json" })
        {
            var (status, found) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?sort=asc&q=" + Uri.EscapeDataString($"app:shop AND mode:{mode}"));
            Assert.Equal(HttpStatusCode.OK, status);
            var hits = found.GetProperty("hits").EnumerateArray().ToList();
            Assert.Equal(3, hits.Count);
            var declined = Assert.Single(hits, h => h.GetProperty("fields").GetProperty("level").GetString() == "error");
            Assert.StartsWith($"payment 2 declined ({mode})", declined.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(["debug", "error", "info"], hits.Select(h => h.GetProperty("fields").GetProperty("level").GetString()).Order());
            Assert.All(hits, h => Assert.Single(h.GetProperty("fields").EnumerateObject(), f => f.Name == "level"));
            var time = DateTimeOffset.Parse(declined.GetProperty("t").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(time, before.AddSeconds(-1), after.AddSeconds(1));
        }

        // Loki's own error answers: plain text, with the status that fits.
        using var broken = new ByteArrayContent([1, 2, 3]);
        broken.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-protobuf");
        using var refused = await node.Http.PostAsync("/loki/api/v1/push", broken);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        // A malformed entry fails alone: the others are stored, the answer names it.
        using var badTime = await node.Http.PostAsync("/loki/api/v1/push", new StringContent(
            $"{{\"streams\":[{{\"stream\":{{\"app\":\"mixed\"}},\"values\":[[1,\"x\"],[\"{At("10:00:00").ToUnixTimeMilliseconds()}000000\",\"kept entry\"]]}}]}}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, badTime.StatusCode);
        Assert.Contains("1 entries rejected, 1 stored: streams[0].values[0]", await badTime.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var (_, mixed) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/search?q=app:mixed");
        Assert.Equal("kept entry", Assert.Single(mixed.GetProperty("hits").EnumerateArray()).GetProperty("message").GetString());
    }
}
