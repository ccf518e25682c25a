using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Logwell.Server.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>
/// Who may do what, through a node's whole HTTP pipeline: the first run on loopback, credentials of each kind, scopes,
/// spaces, node-wide actions and the record-level filters of grants.
/// </summary>
public sealed class AccessTests
{
    private const string AdminPassword = "correct horse battery";

    private static AccessService Access(InProcessNode node) => node.Services.GetRequiredService<AccessService>();

    /// <summary>A node with an administrator <c>root</c>.</summary>
    private static async Task<InProcessNode> SecuredAsync(TimeProvider? time = null)
    {
        var node = await InProcessNode.StartAsync(time: time);
        var store = Access(node).Store;
        store.CreateUser("root", AdminPassword);
        store.AddGrant("user", "root", Role.Admin, Scope.Everything, null);
        Access(node).Invalidate();
        return node;
    }

    /// <summary>A key with <paramref name="role"/> on <paramref name="scope"/> (and a filter), and its secret.</summary>
    private static string Key(InProcessNode node, string role, string scope, string? filter = null, DateTimeOffset? expires = null)
    {
        var store = Access(node).Store;
        var (key, secret) = store.CreateKey("k-" + role, null, expires);
        store.AddGrant("key", key.Id, role, Scope.Parse(scope, out _)!, filter);
        Access(node).Invalidate();
        return secret;
    }

    private static async Task<HttpResponseMessage> SendAsync(InProcessNode node, HttpMethod method, string url, string? bearer = null, string? body = null,
        string contentType = "application/x-ndjson", Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, contentType);
        }
        configure?.Invoke(request);
        return await node.Http.SendAsync(request);
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();

    private static async Task IngestAsAdminAsync(InProcessNode node, string indexSet, params string[] lines)
    {
        using var response = await SendAsync(node, HttpMethod.Post, $"/api/v1/indexsets/{indexSet}/ingest", Key(node, Role.Admin, "*"), string.Join("\n", lines) + "\n");
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task BeforeTheFirstUserOnlyLoopbackIsServedAndTheRefusalNamesTheCommand()
    {
        await using var node = await InProcessNode.StartAsync();
        using var local = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets");
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);

        void Remote(HttpRequestMessage r) => r.Headers.Add("X-Forwarded-For", "203.0.113.5");
        using var remote = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: Remote);
        Assert.Equal(HttpStatusCode.Forbidden, remote.StatusCode);
        Assert.Contains("logwell users create NAME --role admin", (await JsonAsync(remote)).GetProperty("error").GetString(), StringComparison.Ordinal);
        // Health answers anyone (503 here: this in-process node runs no worker).
        using var health = await SendAsync(node, HttpMethod.Get, "/healthz", configure: Remote);
        Assert.True(health.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, health.StatusCode.ToString());

        // A key works from anywhere, even before the first user.
        var key = Key(node, "viewer", "*");
        using var withKey = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", key, configure: Remote);
        Assert.Equal(HttpStatusCode.OK, withKey.StatusCode);
    }

    [Fact]
    public async Task OnceAUserExistsEveryRequestNeedsCredentialsLoopbackIncluded()
    {
        await using var node = await SecuredAsync();
        using var none = await SendAsync(node, HttpMethod.Get, "/api/v1/search?q=x");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Contains("Basic", none.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal("search", (await JsonAsync(none)).GetProperty("action").GetString());

        foreach (var path in new[] { "/livez", "/readyz", "/healthz", "/ui/app.js" })
        {
            using var open = await SendAsync(node, HttpMethod.Get, path);
            Assert.True(open.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound), $"{path}: {open.StatusCode}");
        }

        using var wrong = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r =>
            r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("root:wrong password"))));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Contains("wrong user name or password", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        for (var i = 0; i < 2; i++)
        {
            // Twice: the second is answered from the verified-password cache.
            using var right = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r =>
                r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("root:" + AdminPassword))));
            Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        }

        using var unknown = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", "lw_not-a-key");
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        using var scheme = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r => r.Headers.TryAddWithoutValidation("Authorization", "Digest abc"));
        Assert.Equal(HttpStatusCode.Unauthorized, scheme.StatusCode);
    }

    [Fact]
    public async Task EveryShippersWayOfSendingAKeyIsRead()
    {
        await using var node = await SecuredAsync();
        var secret = Key(node, "ingester", "indexset:app");
        var ways = new Dictionary<string, Action<HttpRequestMessage>>
        {
            ["bearer"] = r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret),
            ["elasticsearch ApiKey base64(id:key)"] = r => r.Headers.Authorization = new AuthenticationHeaderValue("ApiKey", Convert.ToBase64String(Encoding.UTF8.GetBytes("some-id:" + secret))),
            ["ApiKey raw"] = r => r.Headers.Authorization = new AuthenticationHeaderValue("ApiKey", secret),
            ["basic with the key as password"] = r => r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("shipper:" + secret))),
            ["X-Seq-ApiKey"] = r => r.Headers.Add("X-Seq-ApiKey", secret),
        };
        foreach (var (way, configure) in ways)
        {
            using var response = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", body: "{\"message\":\"hello\"}\n", configure: configure);
            Assert.True(response.IsSuccessStatusCode, $"{way}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    [Fact]
    public async Task AKeyOfTheSeqApiKeysSettingIngestsIntoItsIndexSetOnly()
    {
        await using var node = await InProcessNode.StartAsync(new Dictionary<string, string?> { ["Logwell:SeqApiKeys:legacy-key"] = "payments" });
        Access(node).Store.CreateUser("root", AdminPassword);
        Access(node).Invalidate();
        var clef = $"{{\"@t\":\"{DateTimeOffset.UtcNow:O}\",\"@mt\":\"paid\"}}\n";
        using var ingest = await SendAsync(node, HttpMethod.Post, "/api/events/raw", body: clef, contentType: "application/vnd.serilog.clef",
            configure: r => r.Headers.Add("X-Seq-ApiKey", "legacy-key"));
        Assert.Equal(HttpStatusCode.Created, ingest.StatusCode);
        using var search = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=payments&q=paid", configure: r => r.Headers.Add("X-Seq-ApiKey", "legacy-key"));
        Assert.Equal(HttpStatusCode.Forbidden, search.StatusCode);
        using var wrong = await SendAsync(node, HttpMethod.Post, "/api/events/raw", body: clef, contentType: "application/vnd.serilog.clef",
            configure: r => r.Headers.Add("X-Seq-ApiKey", "not-configured"));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
    }

    [Fact]
    public async Task AnIngestKeyForOneIndexSetCanDoNothingElse()
    {
        await using var node = await SecuredAsync();
        var secret = Key(node, "ingester", "indexset:app");
        using var ok = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", secret, "{\"message\":\"one\"}\n");
        Assert.True(ok.IsSuccessStatusCode);

        using var other = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets/other/ingest", secret, "{\"message\":\"two\"}\n");
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        var error = await JsonAsync(other);
        Assert.Equal("ingest", error.GetProperty("action").GetString());
        Assert.Equal("indexset:other", error.GetProperty("scope").GetString());
        Assert.False(node.Engine.TryGet("other", out _), "a refused ingest must not create the index set");

        foreach (var (method, url) in new[]
        {
            (HttpMethod.Get, "/api/v1/search?indexset=app&q=*"), (HttpMethod.Get, "/api/v1/histogram?indexset=app"), (HttpMethod.Get, "/api/v1/fields?indexset=app"),
            (HttpMethod.Get, "/api/v1/export?indexset=app"), (HttpMethod.Get, "/metrics"), (HttpMethod.Get, "/api/v1/queues"), (HttpMethod.Delete, "/api/v1/indexsets/app"),
            (HttpMethod.Post, "/api/v1/maintenance/merge"), (HttpMethod.Get, "/api/v1/indexsets"),
        })
        {
            using var refused = await SendAsync(node, method, url, secret);
            Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, $"{method} {url}: {refused.StatusCode}");
            Assert.True((await JsonAsync(refused)).TryGetProperty("action", out _), $"{method} {url}: the 403 names the action");
        }

        // Bulk: the item for the granted index set is taken, the other refused, item by item.
        var bulk = "{\"index\":{\"_index\":\"app\"}}\n{\"message\":\"b1\"}\n{\"index\":{\"_index\":\"secret\"}}\n{\"message\":\"b2\"}\n";
        using var mixed = await SendAsync(node, HttpMethod.Post, "/_bulk", secret, bulk);
        var items = (await JsonAsync(mixed)).GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetProperty("status").GetInt32()).ToList();
        Assert.Equal([201, 403], items);
        Assert.False(node.Engine.TryGet("secret", out _));
    }

    [Fact]
    public async Task AGrantOnASpaceReachesItsIndexSetsAndNoOthers()
    {
        await using var node = await SecuredAsync();
        var admin = Key(node, Role.Admin, "*");
        Access(node).Store.CreateSpace("team");
        Access(node).Invalidate();
        using (var created = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets", admin, "{\"name\":\"teamlogs\",\"space\":\"team\"}", "application/json"))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.Equal("team", (await JsonAsync(created)).GetProperty("space").GetString());
        }
        await IngestAsAdminAsync(node, "teamlogs", "{\"message\":\"team event\"}");
        await IngestAsAdminAsync(node, "default", "{\"message\":\"default event\"}");

        var viewer = Key(node, "viewer", "space:team");
        using var list = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", viewer);
        Assert.Equal(["teamlogs"], (await JsonAsync(list)).GetProperty("indexsets").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList());
        using var search = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=teamlogs&q=event&from=now-1h", viewer);
        Assert.Equal(1, (await JsonAsync(search)).GetProperty("total").GetInt64());
        using var outside = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=default&q=event&from=now-1h", viewer);
        Assert.Equal(HttpStatusCode.Forbidden, outside.StatusCode);
        Assert.Equal("indexset:default", (await JsonAsync(outside)).GetProperty("scope").GetString());

        // A space admin creates index sets in their space only.
        var spaceAdmin = Key(node, "space_admin", "space:team");
        using var inTeam = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets", spaceAdmin, "{\"name\":\"more\",\"space\":\"team\"}", "application/json");
        Assert.Equal(HttpStatusCode.Created, inTeam.StatusCode);
        using var inDefault = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets", spaceAdmin, "{\"name\":\"elsewhere\"}", "application/json");
        Assert.Equal(HttpStatusCode.Forbidden, inDefault.StatusCode);
        using var metrics = await SendAsync(node, HttpMethod.Get, "/metrics", spaceAdmin);
        Assert.Equal(HttpStatusCode.Forbidden, metrics.StatusCode);
        Assert.Equal("*", (await JsonAsync(metrics)).GetProperty("scope").GetString());
    }

    [Fact]
    public async Task AGrantsFilterHoldsInEveryReadApi()
    {
        await using var node = await SecuredAsync();
        var lines = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            lines.Add(JsonSerializer.Serialize(new { message = $"request {i} done", service = i % 2 == 0 ? "payments" : "billing", host = "h1" }));
        }
        await IngestAsAdminAsync(node, "app", [.. lines]);
        var key = Key(node, "viewer", "*", "service:payments");

        async Task<JsonElement> Get(string url)
        {
            using var response = await SendAsync(node, HttpMethod.Get, url, key);
            Assert.True(response.IsSuccessStatusCode, $"{url}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return await JsonAsync(response);
        }

        var search = await Get("/api/v1/search?indexset=app&q=request&from=now-1h&limit=100");
        Assert.Equal(10, search.GetProperty("total").GetInt64());
        Assert.All(search.GetProperty("hits").EnumerateArray(), hit => Assert.Equal("payments", hit.GetProperty("fields").GetProperty("service").GetString()));
        // Asking for the other service explicitly finds nothing.
        Assert.Equal(0, (await Get("/api/v1/search?indexset=app&q=service:billing&from=now-1h")).GetProperty("total").GetInt64());
        Assert.Equal(0, (await Get("/api/v1/search?indexset=app&q=NOT%20service:payments&from=now-1h")).GetProperty("total").GetInt64());

        var stats = await Get("/api/v1/search?indexset=app&q=*%20%7C%20stats%20count()%20by%20service&from=now-1h");
        Assert.DoesNotContain("billing", stats.GetRawText(), StringComparison.Ordinal);

        var histogram = await Get("/api/v1/histogram?indexset=app&from=now-1h");
        Assert.Equal(10, histogram.GetProperty("total").GetInt64());
        var fields = await Get("/api/v1/fields?indexset=app&from=now-1h");
        Assert.DoesNotContain("billing", fields.GetRawText(), StringComparison.Ordinal);

        // Context: the neighbours are the caller's only, and an event outside the filter is not found.
        var all = await SearchAllAsAdmin(node);
        var payment = all.First(h => h.GetProperty("fields").GetProperty("service").GetString() == "payments").GetProperty("id").GetString();
        var billing = all.First(h => h.GetProperty("fields").GetProperty("service").GetString() == "billing").GetProperty("id").GetString();
        var around = await Get($"/api/v1/context?indexset=app&id={payment}&before=50&after=50");
        Assert.DoesNotContain("billing", around.GetRawText(), StringComparison.Ordinal);
        Assert.NotEqual(0, around.GetProperty("before").GetArrayLength() + around.GetProperty("after").GetArrayLength());
        using (var hidden = await SendAsync(node, HttpMethod.Get, $"/api/v1/context?indexset=app&id={billing}", key))
        {
            Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode);
        }

        using var export = await SendAsync(node, HttpMethod.Get, "/api/v1/export?indexset=app&from=now-1h&format=ndjson", key);
        var exported = await export.Content.ReadAsStringAsync();
        Assert.Equal(10, exported.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.DoesNotContain("billing", exported, StringComparison.Ordinal);

        // A client's own narrowing (what a worker sends for an export's owner) cannot widen it.
        var restricted = await Get("/api/v1/search?indexset=app&q=*&from=now-1h&restrict=" + Uri.EscapeDataString("[\"service:billing\"]"));
        Assert.Equal(0, restricted.GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task MaskingRulesHideValuesFromWhoeverLacksViewRawInEveryReadApi()
    {
        await using var node = await SecuredAsync();
        await IngestAsAdminAsync(node, "app",
            "{\"message\":\"paid with card=4111111111111111 ok\",\"card\":\"4111111111111111\",\"service\":\"payments\",\"host\":\"h1\"}",
            "{\"message\":\"paid with card=5500000000000004 ok\",\"card\":\"5500000000000004\",\"service\":\"payments\",\"host\":\"h1\"}");
        var admin = Key(node, Role.Admin, "*");
        var rules = "{\"rules\":[{\"field\":\"card\",\"keep_first\":4,\"keep_last\":4},{\"field\":\"message\",\"pattern\":\"card=[0-9]+\",\"replacement\":\"card=****\"}]}";
        using (var bad = await SendAsync(node, HttpMethod.Put, "/api/v1/indexsets/app/masking", admin, "{\"rules\":[{\"field\":\"card\",\"pattern\":\"(\"}]}", "application/json"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("rules[0]", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var viewer = Key(node, "viewer", "*");
        using (var notAllowed = await SendAsync(node, HttpMethod.Put, "/api/v1/indexsets/app/masking", viewer, rules, "application/json"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, notAllowed.StatusCode);
        }
        using (var set = await SendAsync(node, HttpMethod.Put, "/api/v1/indexsets/app/masking", admin, rules, "application/json"))
        {
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        }
        var editor = Key(node, "editor", "*");

        async Task<string> Read(string key, string url)
        {
            using var response = await SendAsync(node, HttpMethod.Get, url, key);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{url}: {response.StatusCode} {text}");
            return text;
        }

        var urls = new[]
        {
            "/api/v1/search?indexset=app&q=paid&from=now-1h",
            "/api/v1/fields?indexset=app&from=now-1h",
            "/api/v1/export?indexset=app&from=now-1h&format=ndjson",
            "/api/v1/export?indexset=app&from=now-1h&format=csv&fields=card,message",
            "/api/v1/search?indexset=app&q=*%20%7C%20stats%20count()%20by%20service&from=now-1h",
        };
        foreach (var url in urls)
        {
            var masked = await Read(viewer, url);
            Assert.DoesNotContain("4111111111111111", masked, StringComparison.Ordinal);
            Assert.DoesNotContain("5500000000000004", masked, StringComparison.Ordinal);
        }
        var hits = await Read(viewer, "/api/v1/search?indexset=app&q=paid&from=now-1h");
        Assert.Contains("4111********1111", hits, StringComparison.Ordinal);
        Assert.Contains("paid with card=**** ok", hits, StringComparison.Ordinal);
        var id = JsonDocument.Parse(hits).RootElement.GetProperty("hits")[0].GetProperty("id").GetString();
        var context = await Read(viewer, $"/api/v1/context?indexset=app&id={id}");
        Assert.DoesNotContain("4111111111111111", context, StringComparison.Ordinal);
        Assert.DoesNotContain("5500000000000004", context, StringComparison.Ordinal);
        Assert.Contains("********", context, StringComparison.Ordinal);

        // Pipes over a masked field would show its stored values: refused.
        using (var byCard = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=app&q=*%20%7C%20stats%20count()%20by%20card&from=now-1h", viewer))
        {
            Assert.Equal(HttpStatusCode.Forbidden, byCard.StatusCode);
            Assert.Equal("view_raw", (await JsonAsync(byCard)).GetProperty("action").GetString());
        }

        // Pipes that do not start with an aggregation work on whole stored events, and a sort's order and cursor tell
        // the stored values: both refused.
        foreach (var url in new[] { "/api/v1/search?indexset=app&q=*%20%7C%20head%205&from=now-1h", "/api/v1/search?indexset=app&q=*&sort=card:asc&limit=1&from=now-1h" })
        {
            using var refused = await SendAsync(node, HttpMethod.Get, url, viewer);
            Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, $"{url}: {refused.StatusCode}");
        }

        // view_raw from a filtered grant does not unmask what a wider grant shows.
        var (mixed, mixedSecret) = Access(node).Store.CreateKey("mixed", null, null);
        Access(node).Store.AddGrant("key", mixed.Id, "editor", new Scope(ScopeKind.IndexSet, "app"), "service:nothing");
        Access(node).Store.AddGrant("key", mixed.Id, "viewer", Scope.Everything, null);
        Access(node).Invalidate();
        Assert.DoesNotContain("4111111111111111", await Read(mixedSecret, "/api/v1/search?indexset=app&q=paid&from=now-1h"), StringComparison.Ordinal);

        // Whoever holds view_raw reads the stored values, which never changed.
        Assert.Contains("4111111111111111", await Read(editor, "/api/v1/search?indexset=app&q=paid&from=now-1h"), StringComparison.Ordinal);
        Assert.Contains("5500000000000004", await Read(editor, "/api/v1/search?indexset=app&q=*%20%7C%20stats%20count()%20by%20card&from=now-1h"), StringComparison.Ordinal);
        Assert.Contains("keep_first", await Read(viewer, "/api/v1/indexsets/app/masking"), StringComparison.Ordinal);
        using (var removed = await SendAsync(node, HttpMethod.Delete, "/api/v1/indexsets/app/masking", admin))
        {
            Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        }
        Assert.Contains("4111111111111111", await Read(viewer, "/api/v1/search?indexset=app&q=paid&from=now-1h"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALiveTailShowsOnlyWhatTheGrantsFilterLetsThrough()
    {
        await using var node = await SecuredAsync();
        await IngestAsAdminAsync(node, "app", "{\"message\":\"warm up\",\"service\":\"payments\"}");
        var key = Key(node, "viewer", "*", "service:payments");
        var (response, all, reading) = await TailAsync(node, key);
        using var _ = response;
        // The events (deferred: read again at each use), without the comment lines.
        var lines = all.Where(l => l.StartsWith("data: ", StringComparison.Ordinal));
        var batch = 0;
        // Each batch holds another service's event first, then one the filter lets through: until three of those
        // arrived, every event shown is kept.
        while (lines.Count(l => l.Contains("payments", StringComparison.Ordinal)) < 3 && batch < 200 && !reading.IsCompleted)
        {
            await IngestAsAdminAsync(node, "app",
                $"{{\"message\":\"billing {batch}\",\"service\":\"billing\"}}", $"{{\"message\":\"paid {batch}\",\"service\":\"payments\"}}");
            batch++;
            await Task.Delay(50);
        }
        var seen = lines.ToList();
        Assert.True(seen.Count(l => l.Contains("payments", StringComparison.Ordinal)) >= 3, $"the tail showed {seen.Count} events after {batch} batches");
        Assert.DoesNotContain(seen, l => l.Contains("billing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AShipperOrANavigationIsChallengedForBasicAuthAndAPagesOwnRequestsAreNot()
    {
        await using var node = await SecuredAsync();
        async Task<string> ChallengeAsync(Action<HttpRequestMessage> configure)
        {
            using var response = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: configure);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            return string.Join(", ", response.Headers.WwwAuthenticate);
        }
        Assert.Contains("Basic", await ChallengeAsync(_ => { }), StringComparison.Ordinal);
        Assert.Contains("Basic", await ChallengeAsync(r => r.Headers.Add("Sec-Fetch-Mode", "navigate")), StringComparison.Ordinal);
        // A browser would answer these with its own prompt, over the page: the UI's fetches, its live tail's EventSource.
        Assert.DoesNotContain("Basic", await ChallengeAsync(r => r.Headers.Add("X-Requested-With", "logwell-ui")), StringComparison.Ordinal);
        Assert.DoesNotContain("Basic", await ChallengeAsync(r => r.Headers.Add("Sec-Fetch-Mode", "cors")), StringComparison.Ordinal);
        Assert.Contains("Bearer", await ChallengeAsync(r => r.Headers.Add("Sec-Fetch-Mode", "cors")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALiveTailEndsWhenItsKeyIsRevokedAndSendsNothingAfter()
    {
        await using var node = await SecuredAsync();
        await IngestAsAdminAsync(node, "app", "{\"message\":\"warm up\"}");
        var secret = Key(node, "viewer", "*");
        var (response, lines, reading) = await TailAsync(node, secret);
        using var _ = response;
        // Events reach the tail while the key is good.
        for (var i = 0; i < 200 && !lines.Any(l => l.Contains("before", StringComparison.Ordinal)); i++)
        {
            await IngestAsAdminAsync(node, "app", $"{{\"message\":\"before {i}\"}}");
            await Task.Delay(50);
        }
        Assert.Contains(lines, l => l.Contains("before", StringComparison.Ordinal));

        var store = Access(node).Store;
        store.RevokeKey(store.Load().Keys.Single(k => k.SecretHash == AccessStore.HashSecret(secret)).Id);
        Access(node).Invalidate();
        // The next batch ends the stream instead of reaching it.
        for (var i = 0; i < 200 && !reading.IsCompleted; i++)
        {
            await IngestAsAdminAsync(node, "app", $"{{\"message\":\"after {i}\"}}");
            await Task.Delay(50);
        }
        Assert.True(reading.IsCompleted, "the stream went on after the key was revoked");
        Assert.DoesNotContain(lines, l => l.Contains("after", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("event: end", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("access ended", StringComparison.Ordinal) && l.Contains("revoked", StringComparison.Ordinal));
    }

    /// <summary>
    /// A live tail of index set app opened with <paramref name="key"/>: its lines as they arrive, read on their own as a
    /// browser would (a read is never cancelled: that ends the response), and the reading, done when the stream ends.
    /// </summary>
    private static async Task<(HttpResponseMessage Response, System.Collections.Concurrent.ConcurrentQueue<string> Lines, Task Reading)> TailAsync(InProcessNode node, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/tail?indexset=app&q=*");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await node.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var reading = Task.Run(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lines.Enqueue(line);
            }
        });
        return (response, lines, reading);
    }

    private static async Task<List<JsonElement>> SearchAllAsAdmin(InProcessNode node)
    {
        using var response = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=app&q=*&from=now-1h&limit=100", Key(node, Role.Admin, "*"));
        return [.. (await JsonAsync(response)).GetProperty("hits").EnumerateArray()];
    }

    [Fact]
    public async Task ARevokedOrExpiredKeyIsRefusedOnceTheRulesAreReread()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var node = await SecuredAsync(time);
        var store = Access(node).Store;
        var (key, secret) = store.CreateKey("short", null, time.GetUtcNow().AddHours(1));
        store.AddGrant("key", key.Id, "viewer", Scope.Everything, null);
        time.Advance(AccessService.RefreshInterval);
        using (var works = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", secret))
        {
            Assert.Equal(HttpStatusCode.OK, works.StatusCode);
        }

        store.RevokeKey(key.Id);
        time.Advance(AccessService.RefreshInterval);
        using (var revoked = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", secret))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
            Assert.Contains("revoked", await revoked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var (other, otherSecret) = store.CreateKey("expiring", null, time.GetUtcNow().AddMinutes(5));
        store.AddGrant("key", other.Id, "viewer", Scope.Everything, null);
        time.Advance(TimeSpan.FromMinutes(5));
        using var expired = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", otherSecret);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Contains("expired", await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Removing a grant takes the access away the same way.
        var (third, thirdSecret) = store.CreateKey("granted", null, null);
        var grant = store.AddGrant("key", third.Id, "viewer", Scope.Everything, null);
        time.Advance(AccessService.RefreshInterval);
        using (var before = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", thirdSecret))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }
        store.RemoveGrant(grant.Id);
        time.Advance(AccessService.RefreshInterval);
        using var after = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", thirdSecret);
        Assert.Equal(HttpStatusCode.Forbidden, after.StatusCode);
    }

    [Fact]
    public async Task TheNodesOwnCredentialMayDoEverything()
    {
        await using var node = await SecuredAsync();
        var secret = NodeCredential.ReadOrCreate(node.DataDirectory);
        Assert.StartsWith("lw_", secret, StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(NodeCredential.PathOf(node.DataDirectory)));
        }
        using var metrics = await SendAsync(node, HttpMethod.Get, "/metrics", secret);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        using var merge = await SendAsync(node, HttpMethod.Post, "/api/v1/maintenance/merge", secret);
        Assert.Equal(HttpStatusCode.NoContent, merge.StatusCode);
    }

    [Fact]
    public async Task TheAccessApiManagesUsersGroupsGrantsAndKeys()
    {
        await using var node = await SecuredAsync();
        var admin = Key(node, Role.Admin, "*");
        async Task<(HttpStatusCode Status, JsonElement Body)> Call(HttpMethod method, string url, string? key, string? body = null, Action<HttpRequestMessage>? configure = null)
        {
            using var response = await SendAsync(node, method, url, key, body, "application/json", configure);
            var text = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
        }

        Assert.Equal(HttpStatusCode.Created, (await Call(HttpMethod.Post, "/api/v1/access/users", admin, "{\"name\":\"bob\",\"password\":\"bobs password\"}")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await Call(HttpMethod.Post, "/api/v1/access/users", admin, "{\"name\":\"bob\",\"password\":\"bobs password\"}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Call(HttpMethod.Post, "/api/v1/access/users", admin, "{\"name\":\"carol\",\"password\":\"short\"}")).Status);
        Assert.Equal(HttpStatusCode.Created, (await Call(HttpMethod.Post, "/api/v1/access/groups", admin, "{\"name\":\"support\"}")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await Call(HttpMethod.Post, "/api/v1/access/groups/support/members", admin, "{\"user\":\"bob\"}")).Status);
        var (status, grant) = await Call(HttpMethod.Post, "/api/v1/access/grants", admin, "{\"group\":\"support\",\"role\":\"viewer\",\"scope\":\"indexset:app\",\"filter\":\"level:error\"}");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("indexset:app", grant.GetProperty("scope").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await Call(HttpMethod.Post, "/api/v1/access/grants", admin, "{\"group\":\"support\",\"role\":\"viewer\",\"filter\":\"level:(\"}")).Status);

        // Bob, through his group: a viewer of app, and nothing about access.
        void Bob(HttpRequestMessage r) => r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:bobs password")));
        var (_, me) = await Call(HttpMethod.Get, "/api/v1/access/me", null, configure: Bob);
        Assert.Equal("bob", me.GetProperty("name").GetString());
        Assert.Equal("level:error", me.GetProperty("grants")[0].GetProperty("filter").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, (await Call(HttpMethod.Get, "/api/v1/access/users", null, configure: Bob)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Call(HttpMethod.Put, "/api/v1/access/users/root/password", null, "{\"password\":\"taken over!\"}", Bob)).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await Call(HttpMethod.Put, "/api/v1/access/users/bob/password", null, "{\"password\":\"bobs new password\"}", Bob)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Call(HttpMethod.Get, "/api/v1/access/me", null, configure: Bob)).Status);

        // A key: its secret once at creation, never in the list.
        var (created, key) = await Call(HttpMethod.Post, "/api/v1/access/keys", admin, "{\"name\":\"filebeat\",\"role\":\"ingester\",\"scope\":\"indexset:app\",\"expires_in\":\"30d\"}");
        Assert.Equal(HttpStatusCode.Created, created);
        var secret = key.GetProperty("secret").GetString()!;
        Assert.StartsWith("lw_", secret, StringComparison.Ordinal);
        var (_, keys) = await Call(HttpMethod.Get, "/api/v1/access/keys", admin);
        Assert.DoesNotContain(secret, keys.GetRawText(), StringComparison.Ordinal);
        using (var ingest = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", secret, "{\"message\":\"via api key\"}\n"))
        {
            Assert.True(ingest.IsSuccessStatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await Call(HttpMethod.Delete, $"/api/v1/access/keys/{key.GetProperty("id").GetString()}", admin)).Status);
        using (var revoked = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", secret, "{\"message\":\"after\"}\n"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await Call(HttpMethod.Delete, "/api/v1/access/users/nobody", admin)).Status);
        Assert.Equal(HttpStatusCode.Created, (await Call(HttpMethod.Post, "/api/v1/access/roles", admin, "{\"name\":\"reader\",\"actions\":[\"search\",\"view_space\"]}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Call(HttpMethod.Post, "/api/v1/access/roles", admin, "{\"name\":\"flyer\",\"actions\":[\"fly\"]}")).Status);
    }

    [Fact]
    public async Task TheAuditLogRecordsChangesReadsAndRefusalsAndOnlyTheNodeWritesIt()
    {
        await using var node = await SecuredAsync();
        var admin = Key(node, Role.Admin, "*");
        var viewer = Key(node, "viewer", "*");
        await IngestAsAdminAsync(node, "app", "{\"message\":\"hello\"}");
        (await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=app&q=hello", viewer)).Dispose();
        (await SendAsync(node, HttpMethod.Delete, "/api/v1/indexsets/app", viewer)).Dispose();
        (await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r =>
            r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("root:guessing"))))).Dispose();
        (await SendAsync(node, HttpMethod.Patch, "/api/v1/indexsets/app", admin, "{\"retention_days\":30}", "application/json")).Dispose();
        // A search whose index set and query are in the body.
        (await SendAsync(node, HttpMethod.Post, "/api/v1/search", viewer, "{\"indexset\":\"app\",\"q\":\"posted\"}", "application/json")).Dispose();

        // The entries are written behind the requests: wait until they can be read.
        var started = System.Diagnostics.Stopwatch.StartNew();
        List<JsonElement> entries;
        while (true)
        {
            using var response = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=_audit&limit=100&sort=asc", admin);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            entries = [.. (await JsonAsync(response)).GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("fields"))];
            if (entries.Count >= 5 || started.Elapsed > TimeSpan.FromSeconds(30))
            {
                break;
            }
            await Task.Delay(50);
        }
        string? Field(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : null;
        var search = Assert.Single(entries, e => Field(e, "action") == "search" && Field(e, "method") == "GET" && Field(e, "indexset") == "app" && Field(e, "caller") == "key");
        Assert.Equal("hello", Field(search, "query"));
        Assert.Equal("success", Field(search, "outcome"));
        Assert.Single(entries, e => Field(e, "method") == "DELETE" && Field(e, "outcome") == "denied" && Field(e, "action") == "manage_indexset");
        var failed = Assert.Single(entries, e => Field(e, "outcome") == "unauthenticated");
        Assert.Equal("root", Field(failed, "user"));
        Assert.Single(entries, e => Field(e, "method") == "PATCH" && Field(e, "outcome") == "success");
        var posted = Assert.Single(entries, e => Field(e, "method") == "POST" && Field(e, "action") == "search");
        Assert.Equal(("app", "posted"), (Field(posted, "indexset"), Field(posted, "query")));
        // Accepted ingest is the data path, not audited.
        Assert.DoesNotContain(entries, e => Field(e, "action") == "ingest");

        // Read with view_audit only; written by the node alone; never deleted through the API.
        using (var asViewer = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=_audit", viewer))
        {
            Assert.Equal(HttpStatusCode.Forbidden, asViewer.StatusCode);
        }
        using (var ingest = await SendAsync(node, HttpMethod.Post, "/api/v1/indexsets/_audit/ingest", admin, "{\"message\":\"forged\"}\n"))
        {
            Assert.True(ingest.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Forbidden, ingest.StatusCode.ToString());
        }
        using (var bulk = await SendAsync(node, HttpMethod.Post, "/_bulk", admin, "{\"index\":{\"_index\":\"_audit\"}}\n{\"message\":\"forged\"}\n"))
        {
            Assert.DoesNotContain("\"status\":201", await bulk.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var delete = await SendAsync(node, HttpMethod.Delete, "/api/v1/indexsets/_audit", admin))
        {
            Assert.Equal(HttpStatusCode.Forbidden, delete.StatusCode);
        }
        using var list = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", admin);
        Assert.DoesNotContain("_audit", await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // A role with view_audit alone reads the whole audit log.
        Access(node).Store.CreateRole("auditor", [Actions.ViewAudit]);
        var auditor = Key(node, "auditor", "*");
        using (var audit = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=_audit&limit=1", auditor))
        {
            Assert.Equal(HttpStatusCode.OK, audit.StatusCode);
            Assert.NotEqual(0, (await JsonAsync(audit)).GetProperty("total").GetInt64());
        }
        using var withSystem = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets?system=true", admin);
        Assert.Contains("_audit", await withSystem.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailedSignInsBackOffAndAKeyKeepsToItsRequestRate()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var node = await InProcessNode.StartAsync(new Dictionary<string, string?> { ["Logwell:KeyRequestsPerSecond"] = "1" }, time);
        Access(node).Store.CreateUser("root", AdminPassword);
        Access(node).Store.AddGrant("user", "root", Role.Admin, Scope.Everything, null);
        Access(node).Invalidate();
        async Task<HttpResponseMessage> SignIn(string password) => await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r =>
            r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("root:" + password))));

        for (var i = 0; i <= AbuseLimits.FreeFailures; i++)
        {
            using var wrong = await SignIn("guess " + i);
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        // Past the free failures even the right password waits, and the answer says for how long and why.
        using (var blocked = await SignIn(AdminPassword))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, blocked.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), blocked.Headers.RetryAfter?.Delta);
            Assert.Contains("too many failed sign-ins", await blocked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        time.Advance(TimeSpan.FromSeconds(1));
        using (var wrongAgain = await SignIn("guess again"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrongAgain.StatusCode);
        }
        using (var doubled = await SignIn(AdminPassword))
        {
            Assert.Equal(TimeSpan.FromSeconds(2), doubled.Headers.RetryAfter?.Delta);
        }
        time.Advance(TimeSpan.FromSeconds(2));
        using (var right = await SignIn(AdminPassword))
        {
            Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        }
        using (var clean = await SignIn("one more guess"))
        {
            // A success cleared the record: this failure is the first again.
            Assert.Equal(HttpStatusCode.Unauthorized, clean.StatusCode);
        }

        var key = Key(node, "viewer", "*");
        for (var i = 0; i < 2; i++)
        {
            using var burst = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", key);
            Assert.Equal(HttpStatusCode.OK, burst.StatusCode);
        }
        using (var over = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", key))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, over.StatusCode);
            Assert.Contains("KeyRequestsPerSecond", await over.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.NotNull(over.Headers.RetryAfter);
        }
        time.Advance(TimeSpan.FromSeconds(1));
        using var again = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", key);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task ADisabledUserIsRefusedByPasswordSessionAndPersonalKeyUntilEnabled()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var node = await SecuredAsync(time);
        var admin = Key(node, Role.Admin, "*");
        using (var made = await SendAsync(node, HttpMethod.Post, "/api/v1/access/users", admin, "{\"name\":\"bob\",\"password\":\"bob's password\",\"role\":\"viewer\"}", "application/json"))
        {
            Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        }
        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:bob's password")));
        string personal;
        using (var login = await SendAsync(node, HttpMethod.Post, "/api/v1/access/login", body: "{}", contentType: "application/json", configure: r => r.Headers.Authorization = basic))
        {
            personal = (await JsonAsync(login)).GetProperty("secret").GetString()!;
        }
        string cookie;
        using (var session = await SendAsync(node, HttpMethod.Post, "/api/v1/access/session", body: "{\"user\":\"bob\",\"password\":\"bob's password\"}", contentType: "application/json"))
        {
            var setCookie = Assert.Single(session.Headers.GetValues("Set-Cookie"));
            cookie = setCookie[..setCookie.IndexOf(';', StringComparison.Ordinal)];
        }
        async Task<HttpStatusCode[]> AllWaysAsync() =>
        [
            (await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r => r.Headers.Authorization = basic)).StatusCode,
            (await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", personal)).StatusCode,
            (await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", configure: r => r.Headers.Add("Cookie", cookie))).StatusCode,
        ];
        Assert.All(await AllWaysAsync(), status => Assert.Equal(HttpStatusCode.OK, status));

        using (var disable = await SendAsync(node, HttpMethod.Put, "/api/v1/access/users/bob/disabled", admin, "{\"disabled\":true}", "application/json"))
        {
            Assert.Equal(HttpStatusCode.NoContent, disable.StatusCode);
        }
        Assert.All(await AllWaysAsync(), status => Assert.Equal(HttpStatusCode.Unauthorized, status));
        using (var listed = await SendAsync(node, HttpMethod.Get, "/api/v1/access/users", admin))
        {
            Assert.Contains((await JsonAsync(listed)).EnumerateArray(), u => u.GetProperty("name").GetString() == "bob" && u.GetProperty("disabled").GetBoolean());
        }

        // Enabled again: the password and the personal key work; the session ended for good.
        (await SendAsync(node, HttpMethod.Put, "/api/v1/access/users/bob/disabled", admin, "{\"disabled\":false}", "application/json")).Dispose();
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.Unauthorized], await AllWaysAsync());
        using var bad = await SendAsync(node, HttpMethod.Put, "/api/v1/access/users/bob/disabled", admin, "{\"disabled\":\"yes\"}", "application/json");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task TheMetricsScrapeTokenOpensMetricsAndNothingElse()
    {
        const string token = "scrape-0123456789abcdef";
        await using var node = await InProcessNode.StartAsync(new Dictionary<string, string?> { ["Logwell:MetricsScrapeToken"] = token });
        Access(node).Store.CreateUser("root", AdminPassword);
        Access(node).Invalidate();
        using (var anonymous = await SendAsync(node, HttpMethod.Get, "/metrics"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }
        using (var scraped = await SendAsync(node, HttpMethod.Get, "/metrics", token))
        {
            Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
            Assert.Contains("logwell_", await scraped.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var wrong = await SendAsync(node, HttpMethod.Get, "/metrics", token + "x"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        // Other view_metrics endpoints, and everything else, do not take it.
        foreach (var path in new[] { "/api/v1/nodes", "/api/v1/queues", "/api/v1/indexsets" })
        {
            using var elsewhere = await SendAsync(node, HttpMethod.Get, path, token);
            Assert.Equal(HttpStatusCode.Unauthorized, elsewhere.StatusCode);
        }
        using var withKey = await SendAsync(node, HttpMethod.Get, "/metrics", Key(node, Role.Admin, "*"));
        Assert.Equal(HttpStatusCode.OK, withKey.StatusCode);
    }

    [Fact]
    public void AKeysQueryBudgetIsChargedWhatQueriesTookAndRefillsOverAMinute()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var limits = new AbuseLimits(time, 0, keyQuerySecondsPerMinute: 6);
        Assert.Null(limits.QueryBudgetWait("k"));
        limits.ChargeQuery("k", TimeSpan.FromSeconds(4));
        Assert.Null(limits.QueryBudgetWait("k"));
        // Overspent by 2 s: at 6 s a minute (0.1 s a second) that is 20 s to wait.
        limits.ChargeQuery("k", TimeSpan.FromSeconds(4));
        Assert.Equal(20, Math.Round(limits.QueryBudgetWait("k")!.Value.TotalSeconds));
        Assert.Null(limits.QueryBudgetWait("another key"));
        time.Advance(TimeSpan.FromSeconds(21));
        Assert.Null(limits.QueryBudgetWait("k"));
        // It refills to the budget, not beyond.
        time.Advance(TimeSpan.FromHours(1));
        limits.ChargeQuery("k", TimeSpan.FromSeconds(6.5));
        Assert.NotNull(limits.QueryBudgetWait("k"));
    }

    [Fact]
    public async Task AKeyThatSpentItsQueryBudgetIsRefusedWithTheLimitNamedWhileOthersGoOn()
    {
        // A budget no real search fits in: the first search spends it, the next waits.
        await using var node = await InProcessNode.StartAsync(new Dictionary<string, string?> { ["Logwell:KeyQuerySecondsPerMinute"] = "0.000001" });
        Access(node).Store.CreateUser("root", AdminPassword);
        Access(node).Invalidate();
        await IngestAsAdminAsync(node, "app", "{\"message\":\"one\"}");
        var first = Key(node, "viewer", "*");
        var second = Key(node, "viewer", "*");
        using (var spent = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=app&q=one", first))
        {
            Assert.Equal(HttpStatusCode.OK, spent.StatusCode);
        }
        using (var refused = await SendAsync(node, HttpMethod.Get, "/api/v1/histogram?indexset=app&q=one", first))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.Contains("KeyQuerySecondsPerMinute", (await JsonAsync(refused)).GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        // Not a search: not charged, not refused. Another key has its own budget.
        using (var list = await SendAsync(node, HttpMethod.Get, "/api/v1/indexsets", first))
        {
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        }
        using var other = await SendAsync(node, HttpMethod.Get, "/api/v1/search?indexset=app&q=one", second);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task AWebSessionNeedsItsAntiForgeryTokenToChangeAnythingAndEndsWhenIdleOldRotatedOrSignedOut()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var node = await SecuredAsync(time);
        Task<HttpResponseMessage> SignIn(string password, string? cookie = null) => SendAsync(node, HttpMethod.Post, "/api/v1/access/session",
            body: JsonSerializer.Serialize(new { user = "root", password }), contentType: "application/json",
            configure: r => { if (cookie is not null) { r.Headers.Add("Cookie", $"{Sessions.CookieName}={cookie}"); } });
        async Task<(string Cookie, string Csrf)> SignedInAsync(string? previous = null)
        {
            using var response = await SignIn(AdminPassword, previous);
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            var setCookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
            Assert.StartsWith(Sessions.CookieName + "=", setCookie, StringComparison.Ordinal);
            // Not for scripts, not sent by other sites' pages, not kept past the browser session; Secure only under TLS.
            Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("expires", setCookie, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("secure", setCookie, StringComparison.OrdinalIgnoreCase);
            return (setCookie[(Sessions.CookieName.Length + 1)..setCookie.IndexOf(';', StringComparison.Ordinal)], (await JsonAsync(response)).GetProperty("csrf").GetString()!);
        }
        Task<HttpResponseMessage> WithCookie(HttpMethod method, string url, string cookie, string? csrf = null, string? body = null) =>
            SendAsync(node, method, url, body: body, contentType: "application/json", configure: r =>
            {
                r.Headers.Add("Cookie", $"{Sessions.CookieName}={cookie}");
                if (csrf is not null)
                {
                    r.Headers.Add(Sessions.CsrfHeader, csrf);
                }
            });

        using (var wrong = await SignIn("not the password"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.False(wrong.Headers.Contains("Set-Cookie"));
            Assert.False(wrong.Headers.Contains("WWW-Authenticate"));
        }
        var (cookie, csrf) = await SignedInAsync();
        using (var read = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", cookie))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }
        using (var session = await WithCookie(HttpMethod.Get, "/api/v1/access/session", cookie))
        {
            var answer = await JsonAsync(session);
            Assert.Equal("root", answer.GetProperty("user").GetString());
            Assert.Equal(csrf, answer.GetProperty("csrf").GetString());
        }
        // A change with the cookie alone (what a forged form sends) is refused, and nothing is made.
        foreach (var presented in new[] { null, "forged", csrf[..^1] })
        {
            using var forged = await WithCookie(HttpMethod.Post, "/api/v1/indexsets", cookie, presented, "{\"name\":\"forged\"}");
            Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
            Assert.Contains(Sessions.CsrfHeader, (await JsonAsync(forged)).GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        Assert.False(node.Engine.TryGet("forged", out _));
        using (var made = await WithCookie(HttpMethod.Post, "/api/v1/indexsets", cookie, csrf, "{\"name\":\"made\"}"))
        {
            Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        }

        // Idle: a request within the idle timeout keeps the session; one past it finds it ended.
        time.Advance(TimeSpan.FromHours(8) - TimeSpan.FromMinutes(1));
        using (var kept = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", cookie))
        {
            Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
        }
        time.Advance(TimeSpan.FromHours(8) + TimeSpan.FromMinutes(1));
        using (var idle = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", cookie))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, idle.StatusCode);
            Assert.Contains("session has ended", (await JsonAsync(idle)).GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        // Absolute: however active, a session ends after its lifetime (7 days).
        (cookie, _) = await SignedInAsync();
        for (var active = TimeSpan.FromHours(4); active < TimeSpan.FromDays(7); active += TimeSpan.FromHours(4))
        {
            time.Advance(TimeSpan.FromHours(4));
            using var busy = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", cookie);
            Assert.True(busy.StatusCode == HttpStatusCode.OK, $"after {active}: {await busy.Content.ReadAsStringAsync()}");
        }
        time.Advance(TimeSpan.FromHours(4));
        using (var old = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", cookie))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
        }

        // Signing in again makes a new session and ends the one the browser held.
        var (first, _) = await SignedInAsync();
        var (second, secondCsrf) = await SignedInAsync(first);
        Assert.NotEqual(first, second);
        using (var rotated = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", first))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, rotated.StatusCode);
        }

        // Signing out ends it on the node, not only in the browser.
        using (var signOut = await WithCookie(HttpMethod.Delete, "/api/v1/access/session", second, secondCsrf))
        {
            Assert.Equal(HttpStatusCode.NoContent, signOut.StatusCode);
            Assert.Contains("expires=", Assert.Single(signOut.Headers.GetValues("Set-Cookie")), StringComparison.OrdinalIgnoreCase);
        }
        using (var after = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", second))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        }

        // A new password signs every browser out.
        var (third, _) = await SignedInAsync();
        Access(node).Store.SetPassword("root", AdminPassword + " 2");
        time.Advance(AccessService.RefreshInterval);
        using (var changed = await WithCookie(HttpMethod.Get, "/api/v1/indexsets", third))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, changed.StatusCode);
        }
    }

    [Fact]
    public void TheRulesRefuseWhatCannotBeMeant()
    {
        using var directory = new TempDirectory();
        var store = new AccessStore(Logwell.Server.Hosting.MetaDatabase.Open(directory.Path), TimeProvider.System);
        store.CreateUser("alice", "long enough");
        Assert.Equal(409, Assert.Throws<AccessException>(() => store.CreateUser("alice", "long enough")).Status);
        Assert.Throws<AccessException>(() => store.CreateUser("Bad Name", "long enough"));
        Assert.Throws<AccessException>(() => store.CreateUser("bob", "short"));
        Assert.Throws<AccessException>(() => store.CreateUser("bob", "lw_looks_like_a_key"));
        Assert.Equal(404, Assert.Throws<AccessException>(() => store.AddGrant("user", "alice", "no-such-role", Scope.Everything, null)).Status);
        Assert.Equal(404, Assert.Throws<AccessException>(() => store.AddGrant("user", "nobody", "viewer", Scope.Everything, null)).Status);
        // Node-wide actions only on everything.
        Assert.Contains("operate", Assert.Throws<AccessException>(() => store.AddGrant("user", "alice", Role.Admin, new Scope(ScopeKind.IndexSet, "app"), null)).Message, StringComparison.Ordinal);
        Assert.Contains("position", Assert.Throws<AccessException>(() => store.AddGrant("user", "alice", "viewer", Scope.Everything, "service:(")).Message, StringComparison.Ordinal);
        Assert.Throws<AccessException>(() => store.CreateRole("viewer", [Actions.Search]));
        Assert.Throws<AccessException>(() => store.CreateRole("mine", ["fly"]));
        store.CreateRole("mine", [Actions.Search, Actions.ViewSpace]);
        store.AddGrant("user", "alice", "mine", new Scope(ScopeKind.IndexSet, "app"), null);
        Assert.Equal(409, Assert.Throws<AccessException>(() => store.DeleteRole("mine")).Status);
        Assert.Equal(409, Assert.Throws<AccessException>(() => store.DeleteSpace("default")).Status);
        Assert.Null(Scope.Parse("everything", out var error));
        Assert.NotNull(error);

        var rules = store.Load();
        var alice = rules.ForUser("alice");
        Assert.True(alice.Can(Actions.Search, "app"));
        Assert.False(alice.Can(Actions.Search, "other"));
        Assert.False(alice.Can(Actions.Ingest, "app"));
        Assert.False(alice.CanOnNode(Actions.ViewMetrics));

        // Deleting a user revokes the keys they own.
        var (key, _) = store.CreateKey("alices", "alice", null);
        store.DeleteUser("alice");
        Assert.NotNull(store.Load().Keys.Single(k => k.Id == key.Id).RevokedAt);
    }

    [Fact]
    public void TheMetadataFileIsMigratedInOrderAndANewerOneIsRefused()
    {
        using var directory = new TempDirectory();
        var database = Logwell.Server.Hosting.MetaDatabase.Open(directory.Path);
        Assert.Equal(Logwell.Server.Hosting.MetaDatabase.Migrations[^1].Version, database.Version());
        using (var connection = database.Connect())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "PRAGMA user_version = 999; PRAGMA wal_checkpoint(TRUNCATE);";
            command.ExecuteNonQuery();
        }
        using var other = new TempDirectory();
        File.Copy(database.Path, Path.Combine(other.Path, "meta.db"));
        var refused = Assert.Throws<InvalidOperationException>(() => Logwell.Server.Hosting.MetaDatabase.Open(other.Path));
        Assert.Contains("newer Logwell", refused.Message, StringComparison.Ordinal);
    }
}
