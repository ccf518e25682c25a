using System.Net;
using System.Text;
using static Logwell.IntegrationTests.HttpApiTests;

namespace Logwell.IntegrationTests;

/// <summary>Cleaning pipelines on a real node: previewed, saved, applied to every protocol, kept across restarts.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class PipelineTests
{
    private const string AccessLog = """
        {"parse": {"type": "grok", "pattern": "%{IP:client} %{WORD:method} %{URIPATHPARAM:path} %{NUMBER:status:int} card=%{NOTSPACE:card}"},
         "steps": [{"type": "mask", "field": "card", "keep_first": 4, "keep_last": 4},
                   {"type": "mask", "field": "message", "pattern": "card=[0-9]+", "replacement": "card=****"},
                   {"type": "add", "fields": {"source": "edge"}}]}
        """;

    [Fact]
    public async Task APipelineIsPreviewedSavedAppliedToIngestAndKeptAcrossRestarts()
    {
        using var dir = new TempDirectory();
        await using (var node = await LogwellNode.StartAsync(dir.Path, "Production"))
        {
            var http = node.Http;
            Assert.Equal(HttpStatusCode.Created, (await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", new StringContent("{\"name\":\"edge\"}", Encoding.UTF8, "application/json"))).Status);

            // Preview: what two sample lines would become, one of them not matching.
            var (status, preview) = await SendAsync(http, HttpMethod.Post, "/api/v1/indexsets/edge/pipeline/preview",
                new StringContent($$"""{"pipeline": {{AccessLog}}, "lines": ["10.0.0.7 GET /pay?id=3 502 card=4111111111111111", "garbage"]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, status);
            var events = preview.GetProperty("events").EnumerateArray().ToList();
            Assert.Equal("4111********1111", events[0].GetProperty("fields").GetProperty("card").GetString());
            Assert.Equal(502, events[0].GetProperty("fields").GetProperty("status").GetInt32());
            Assert.Equal("garbage", events[1].GetProperty("message").GetString());
            Assert.Equal("parse (grok) did not match the message", events[1].GetProperty("fields").GetProperty("pipeline_error").GetString());
            Assert.Equal(1, preview.GetProperty("failed").GetInt32());
            (_, var shown) = await SendAsync(http, HttpMethod.Get, "/api/v1/indexsets/edge/pipeline");
            Assert.Equal(System.Text.Json.JsonValueKind.Null, shown.GetProperty("pipeline").ValueKind);

            // A broken definition is refused and changes nothing.
            (status, var refused) = await SendAsync(http, HttpMethod.Put, "/api/v1/indexsets/edge/pipeline",
                new StringContent("""{"parse": {"type": "grok", "pattern": "%{NOPE:x}"}}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.StartsWith("parse.pattern: unknown grok pattern %{NOPE}", refused.GetProperty("error").GetString(), StringComparison.Ordinal);

            (status, _) = await SendAsync(http, HttpMethod.Put, "/api/v1/indexsets/edge/pipeline", new StringContent(AccessLog, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, status);

            // Every way in goes through it: text ingest and the Elasticsearch bulk endpoint.
            await IngestAsync(http, "edge", "10.0.0.8 POST /orders 201 card=5500000000000004\nnot an access line\n", "text/plain");
            (status, _) = await SendAsync(http, HttpMethod.Post, "/_bulk", new StringContent(
                "{\"index\":{\"_index\":\"edge-2026.11.26\"}}\n{\"message\":\"10.0.0.9 GET /health 200 card=none\"}\n", Encoding.UTF8, "application/x-ndjson"));
            Assert.Equal(HttpStatusCode.OK, status);
            await node.StopAsync();
        }

        await using var restarted = await LogwellNode.StartAsync(dir.Path, "Production");
        var (_, found) = await SendAsync(restarted.Http, HttpMethod.Get, "/api/v1/search?indexset=edge&sort=asc");
        var hits = found.GetProperty("hits").EnumerateArray().ToList();
        Assert.Equal(3, hits.Count);
        Assert.Equal("5500********0004", hits[0].GetProperty("fields").GetProperty("card").GetString());
        Assert.Equal("edge", hits[0].GetProperty("fields").GetProperty("source").GetString());
        Assert.Equal("not an access line", hits[1].GetProperty("message").GetString());
        Assert.True(hits[1].GetProperty("fields").TryGetProperty("pipeline_error", out _));
        Assert.Equal(200, hits[2].GetProperty("fields").GetProperty("status").GetInt32());
        // The pipeline was saved with the index set: still there after the restart.
        (_, var saved) = await SendAsync(restarted.Http, HttpMethod.Get, "/api/v1/indexsets/edge/pipeline");
        Assert.Equal("grok", saved.GetProperty("pipeline").GetProperty("parse").GetProperty("type").GetString());
        // The number is masked in the field and in the message: a search for it finds nothing.
        Assert.Equal("10.0.0.8 POST /orders 201 card=****", hits[0].GetProperty("message").GetString());
        (_, found) = await SendAsync(restarted.Http, HttpMethod.Get, "/api/v1/search?indexset=edge&q=5500000000000004");
        Assert.Equal(0, found.GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task TheCommandLineShowsSetsPreviewsAndRemovesPipelines()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var file = Path.Combine(dir.Path, "pipeline.json");
        await File.WriteAllTextAsync(file, """{"parse": {"type": "delimiter", "delimiter": ";", "fields": ["user", "action"]}}""");
        await IngestAsync(node.Http, "audit", "seed\n", "text/plain");

        var (code, stdout, stderr) = await CliTests.RunAsync(node, "alice;login\nbroken\n", "pipeline", "preview", "--index", "audit", "--pipeline", file);
        Assert.True(code == 0, stderr);
        Assert.Contains("user=alice action=login", stdout, StringComparison.Ordinal);
        Assert.Contains("2 lines, 1 failed", stderr, StringComparison.Ordinal);

        (code, stdout, stderr) = await CliTests.RunAsync(node, null, "pipeline", "set", "--index", "audit", file);
        Assert.True(code == 0, stderr);
        (code, stdout, _) = await CliTests.RunAsync(node, null, "pipeline", "show", "--index", "audit");
        Assert.Contains("\"delimiter\": \";\"", stdout, StringComparison.Ordinal);
        (code, _, stderr) = await CliTests.RunAsync(node, null, "pipeline", "set", "--index", "audit", Path.Combine(dir.Path, "missing.json"));
        Assert.Equal(1, code);
        Assert.Contains("missing.json", stderr, StringComparison.Ordinal);
        (code, _, _) = await CliTests.RunAsync(node, null, "pipeline", "remove", "--index", "audit");
        Assert.Equal(0, code);
        (_, stdout, _) = await CliTests.RunAsync(node, null, "pipeline", "show", "--index", "audit");
        Assert.Equal("null", stdout.Trim());
    }
}
