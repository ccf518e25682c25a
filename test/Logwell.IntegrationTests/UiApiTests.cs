using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>The endpoints the web UI added, and how the node serves the UI's files, with the errors a client can cause.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class UiApiTests
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    [Fact]
    public async Task RetentionIsChangedKeptAcrossARestartAndBadChangesAreRefused()
    {
        using var dir = new TempDirectory();
        await using (var node = await LogwellNode.StartAsync(dir.Path))
        {
            var http = node.Http;
            Assert.Equal(HttpStatusCode.Created, (await HttpApiTests.SendAsync(http, HttpMethod.Post, "/api/v1/indexsets", Json("""{"name": "app", "retention_days": 3}"""))).Status);
            var (status, changed) = await HttpApiTests.SendAsync(http, HttpMethod.Patch, "/api/v1/indexsets/app", Json("""{"retention_days": 30}"""));
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(30, changed.GetProperty("retention_days").GetInt32());

            foreach (var (body, message) in new[]
            {
                ("""{"retention_days": 0}""", "between 1 and 36500"),
                ("""{"retention_days": "30"}""", "whole number of days"),
                ("""{"retention_days": 2.5}""", "whole number of days"),
                ("""{"name": "other", "retention_days": 3}""", "'name' cannot be changed"),
                ("""{}""", "expected a JSON object such as"),
                ("""[30]""", "expected a JSON object such as"),
            })
            {
                var (refused, error) = await HttpApiTests.SendAsync(http, HttpMethod.Patch, "/api/v1/indexsets/app", Json(body));
                Assert.Equal(HttpStatusCode.BadRequest, refused);
                Assert.Contains(message, error.GetProperty("error").GetString(), StringComparison.Ordinal);
            }
            var (broken, position) = await HttpApiTests.SendAsync(http, HttpMethod.Patch, "/api/v1/indexsets/app", Json("""{"retention_days": """));
            Assert.Equal(HttpStatusCode.BadRequest, broken);
            Assert.True(position.TryGetProperty("position", out _));
            Assert.Equal(HttpStatusCode.NotFound, (await HttpApiTests.SendAsync(http, HttpMethod.Patch, "/api/v1/indexsets/nope", Json("""{"retention_days": 5}"""))).Status);
            Assert.Equal(0, await node.StopAsync());
        }
        await using var again = await LogwellNode.StartAsync(dir.Path);
        var (_, list) = await HttpApiTests.SendAsync(again.Http, HttpMethod.Get, "/api/v1/indexsets");
        Assert.Equal(30, list.GetProperty("indexsets").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "app").GetProperty("retention_days").GetInt32());
    }

    [Fact]
    public async Task SavedSearchesAreSavedListedAndDeletedAndBadOnesRefused()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;
        var (status, saved) = await HttpApiTests.SendAsync(http, HttpMethod.Post, "/api/v1/saved-searches", Json("""{"name": "gateway errors", "indexset": "default", "q": "status:502", "from": "now-4h"}"""));
        Assert.Equal(HttpStatusCode.Created, status);
        var id = saved.GetProperty("id").GetString()!;
        Assert.Equal("now-4h", saved.GetProperty("from").GetString());
        Assert.Equal(JsonValueKind.Null, saved.GetProperty("to").ValueKind);

        var (conflict, duplicate) = await HttpApiTests.SendAsync(http, HttpMethod.Post, "/api/v1/saved-searches", Json("""{"name": "gateway errors", "q": "*"}"""));
        Assert.Equal(HttpStatusCode.Conflict, conflict);
        Assert.Contains("exists already", duplicate.GetProperty("error").GetString(), StringComparison.Ordinal);

        var (bad, queryError) = await HttpApiTests.SendAsync(http, HttpMethod.Post, "/api/v1/saved-searches", Json("""{"name": "broken", "q": "status:[500 599]"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Equal(12, queryError.GetProperty("position").GetInt32());
        foreach (var (body, message) in new[]
        {
            ("""{"q": "error"}""", "'name' is required"),
            ("""{"name": "   "}""", "'name' is required"),
            ("""{"name": "x", "from": "yesterday"}""", "bad 'from'"),
            ("""{"name": "x", "q": 5}""", "'q' must be a string"),
            ("""{"name": "x", "owner": "me"}""", "unknown property 'owner'"),
        })
        {
            var (refused, error) = await HttpApiTests.SendAsync(http, HttpMethod.Post, "/api/v1/saved-searches", Json(body));
            Assert.Equal(HttpStatusCode.BadRequest, refused);
            Assert.Contains(message, error.GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        var (_, list) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "/api/v1/saved-searches");
        var only = Assert.Single(list.GetProperty("saved_searches").EnumerateArray());
        Assert.Equal("status:502", only.GetProperty("q").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await HttpApiTests.SendAsync(http, HttpMethod.Delete, $"/api/v1/saved-searches/{id}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await HttpApiTests.SendAsync(http, HttpMethod.Delete, $"/api/v1/saved-searches/{id}")).Status);
        (_, list) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "/api/v1/saved-searches");
        Assert.Equal(0, list.GetProperty("saved_searches").GetArrayLength());
    }

    [Fact]
    public async Task TheRootIsThePageForABrowserAndTheElasticsearchDocumentForOtherClients()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var http = node.Http;

        using (var browser = new HttpRequestMessage(HttpMethod.Get, "/"))
        {
            browser.Headers.Accept.ParseAdd("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
            using var page = await http.SendAsync(browser);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            Assert.Contains("/ui/app.js", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var (status, info) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "/", accept: "application/json");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("logwell", info.GetProperty("cluster_name").GetString());
        using (var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/")))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal("application/json", head.Content.Headers.ContentType?.MediaType);
        }

        // Pages other than search load the same document; their files are revalidated by ETag and compressed.
        using (var indexSets = await http.GetAsync("/indexsets"))
        {
            Assert.Contains("<title>Logwell</title>", await indexSets.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using var script = await http.GetAsync("/ui/search.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        var etag = script.Headers.ETag!;
        using (var again = new HttpRequestMessage(HttpMethod.Get, "/ui/search.js"))
        {
            again.Headers.IfNoneMatch.Add(etag);
            using var notModified = await http.SendAsync(again);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        }
        using (var compressed = new HttpRequestMessage(HttpMethod.Get, "/ui/app.css"))
        {
            compressed.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("br"));
            using var response = await http.SendAsync(compressed);
            Assert.Equal("br", Assert.Single(response.Content.Headers.ContentEncoding));
            await using var brotli = new System.IO.Compression.BrotliStream(await response.Content.ReadAsStreamAsync(), System.IO.Compression.CompressionMode.Decompress);
            using var reader = new StreamReader(brotli);
            Assert.Contains("--accent", await reader.ReadToEndAsync(), StringComparison.Ordinal);
        }
        var (missing, error) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "/ui/nothing.js");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Contains("nothing.js", error.GetProperty("error").GetString(), StringComparison.Ordinal);

        // Without a supervisor, the supervisor view says so rather than failing.
        var (_, supervisor) = await HttpApiTests.SendAsync(http, HttpMethod.Get, "/api/v1/supervisor");
        Assert.Equal(JsonValueKind.Null, supervisor.GetProperty("processes").ValueKind);
        Assert.Equal(JsonValueKind.Null, supervisor.GetProperty("api_master").ValueKind);
    }
}
