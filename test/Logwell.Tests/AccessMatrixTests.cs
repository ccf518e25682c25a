using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Logwell.Server.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Logwell.Tests;

/// <summary>
/// Every endpoint of the endpoint table × every built-in role × (its scope granted | another space), and every
/// endpoint × (no credentials | an unknown key | a revoked key | an expired key): the expected outcome comes from the
/// table's declared action and the role's actions, so an endpoint added to the table is in the matrix at once.
/// </summary>
public sealed class AccessMatrixTests(ITestOutputHelper output)
{
    private const string Set = "teamset";

    /// <summary>Endpoints that answer a caller without the scope with what they may see (an empty list, not found) rather than 403.</summary>
    private static readonly HashSet<string> Filtered =
    [
        "GET /api/v1/indexsets", "GET /api/v1/saved-searches", "GET /api/v1/exports", "GET /api/v1/exports/{id}",
        "GET /api/v1/exports/{id}/download", "DELETE /api/v1/saved-searches/{id}", "POST /api/v1/agents/{name}/report",
    ];

    private enum Expected
    {
        Allowed,
        Denied,
        Unauthenticated,
        Filtered,
    }

    [Fact]
    public async Task EveryEndpointAnswersEveryRoleAndCredentialAsItsDeclaredActionSays()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var node = await InProcessNode.StartAsync(new Dictionary<string, string?>
        {
            ["Logwell:LokiIndexSet"] = Set,
            ["Logwell:OtlpIndexSet"] = Set,
            ["Logwell:SeqIndexSet"] = Set,
        }, time);
        var access = node.Services.GetRequiredService<AccessService>();
        var store = access.Store;
        store.CreateUser("root", "correct horse battery");
        store.AddGrant("user", "root", Role.Admin, Scope.Everything, null);
        store.CreateSpace("team");
        store.CreateSpace("other");

        var keys = new List<(string Role, bool Granted, string Secret)>();
        foreach (var role in Role.BuiltInRoles)
        {
            foreach (var granted in new[] { true, false })
            {
                if (role.Name == Role.Admin && !granted)
                {
                    // admin holds node-wide actions: it is granted on * only, so it has no "other space".
                    continue;
                }
                var (key, secret) = store.CreateKey($"{role.Name}-{(granted ? "in" : "out")}", null, null);
                store.AddGrant("key", key.Id, role.Name, role.Name == Role.Admin ? Scope.Everything : new Scope(ScopeKind.Space, granted ? "team" : "other"), null);
                keys.Add((role.Name, granted, secret));
            }
        }
        var (revoked, revokedSecret) = store.CreateKey("revoked", null, null);
        store.AddGrant("key", revoked.Id, Role.Admin, Scope.Everything, null);
        store.RevokeKey(revoked.Id);
        var (expiring, expiringSecret) = store.CreateKey("expiring", null, time.GetUtcNow().AddMinutes(1));
        store.AddGrant("key", expiring.Id, Role.Admin, Scope.Everything, null);
        time.Advance(TimeSpan.FromMinutes(2));
        var rootKey = keys.Single(k => k.Role == Role.Admin).Secret;

        var rows = EndpointTableTests.Table;
        var failures = new List<string>();
        var requests = 0;
        foreach (var row in rows)
        {
            var (method, route, declared) = Split(row);
            var cases = keys.Select(k => ($"{k.Role} {(k.Granted ? "granted" : "other space")}", (string?)k.Secret, Expect(method, route, declared, k.Role, k.Granted)))
                .Concat([
                    ("no credentials", null, declared == "public" ? Expected.Allowed : Expected.Unauthenticated),
                    ("unknown key", "lw_unknownunknownunknown", declared == "public" ? Expected.Allowed : Expected.Unauthenticated),
                    ("revoked key", revokedSecret, declared == "public" ? Expected.Allowed : Expected.Unauthenticated),
                    ("expired key", expiringSecret, declared == "public" ? Expected.Allowed : Expected.Unauthenticated),
                ]);
            foreach (var (who, secret, expected) in cases)
            {
                await EnsureSetAsync(node, rootKey);
                access.Invalidate();
                var (status, body) = await SendAsync(node, method, route, secret);
                requests++;
                var ok = expected switch
                {
                    Expected.Allowed => status is not (401 or 403),
                    Expected.Denied => status == 403,
                    Expected.Unauthenticated => status == 401,
                    _ => status is 200 or 404 && !body.Contains(Set, StringComparison.Ordinal),
                };
                if (!ok)
                {
                    failures.Add($"{method} {route} as {who}: expected {expected}, got {status} {body[..Math.Min(body.Length, 200)]}");
                }
            }
        }
        output.WriteLine($"{rows.Length} endpoints, {requests} requests");
        Assert.True(failures.Count == 0, $"{failures.Count} of {requests} requests answered otherwise:\n" + string.Join("\n", failures));
    }

    private static (string Method, string Route, string Declared) Split(string row)
    {
        var arrow = row.IndexOf(" -> ", StringComparison.Ordinal);
        var space = row.IndexOf(' ', StringComparison.Ordinal);
        return (row[..space], row[(space + 1)..arrow], row[(arrow + 4)..]);
    }

    private static Expected Expect(string method, string route, string declared, string roleName, bool granted)
    {
        if (declared == "public" || declared == "authenticated" && route is not ("/api/v1/access/users/{user}/password" or "/api/v1/access/login"))
        {
            return Expected.Allowed;
        }
        if (route == "/api/v1/access/users/{user}/password")
        {
            // A user's own password, or anyone's with manage_access: these callers are keys, not users.
            return roleName == Role.Admin ? Expected.Allowed : Expected.Denied;
        }
        if (route == "/api/v1/access/login")
        {
            // A personal key is for a user who signs in with a password; these callers are keys.
            return Expected.Denied;
        }
        var action = declared.Split(' ')[0];
        var role = Role.BuiltInRoles.Single(r => r.Name == roleName);
        if (!role.Actions.Contains(action))
        {
            return Expected.Denied;
        }
        if (declared.EndsWith(" on *", StringComparison.Ordinal))
        {
            return roleName == Role.Admin ? Expected.Allowed : Expected.Denied;
        }
        if (granted)
        {
            return Expected.Allowed;
        }
        return Filtered.Contains($"{method} {route}") ? Expected.Filtered : Expected.Denied;
    }

    /// <summary>The index set every request names exists, in space team (a DELETE in the matrix may have removed it).</summary>
    private static async Task EnsureSetAsync(InProcessNode node, string rootKey)
    {
        if (!node.Engine.TryGet(Set, out _))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/indexsets")
            {
                Content = new StringContent($"{{\"name\":\"{Set}\",\"space\":\"team\"}}", Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", rootKey);
            using var response = await node.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }
    }

    private static int _made;

    private static async Task<(int Status, string Body)> SendAsync(InProcessNode node, string method, string route, string? secret)
    {
        var path = route.Replace("{name}", Set, StringComparison.Ordinal).Replace("{index}", Set, StringComparison.Ordinal)
            .Replace("{id}", "0000000000000001", StringComparison.Ordinal).Replace("{queue}", "default", StringComparison.Ordinal)
            .Replace("{*path:nonfile}", "no-such-page", StringComparison.Ordinal).Replace("{**path}", "app.js", StringComparison.Ordinal);
        if (method is "GET" or "HEAD")
        {
            path += $"?indexset={Set}&q=x&from=now-1h";
        }
        using var request = new HttpRequestMessage(new HttpMethod(method == "*" ? "GET" : method), path);
        if (secret is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        }
        var made = Interlocked.Increment(ref _made);
        var (body, type) = route switch
        {
            "/api/v1/indexsets" => ($"{{\"name\":\"made-{made}\",\"space\":\"team\"}}", "application/json"),
            "/api/v1/indexsets/{name}" => ("{\"retention_days\":7}", "application/json"),
            "/api/v1/saved-searches" => ($"{{\"name\":\"s-{made}\",\"indexset\":\"{Set}\",\"q\":\"x\"}}", "application/json"),
            "/api/v1/exports" or "/api/v1/search" => ($"{{\"indexset\":\"{Set}\",\"q\":\"x\"}}", "application/json"),
            "/_bulk" or "/{index}/_bulk" => ($"{{\"index\":{{\"_index\":\"{Set}\"}}}}\n{{\"message\":\"m\"}}\n", "application/x-ndjson"),
            "/loki/api/v1/push" => ($"{{\"streams\":[{{\"stream\":{{\"job\":\"a\"}},\"values\":[[\"{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}000000\",\"line\"]]}}]}}", "application/json"),
            "/v1/logs" => ("{\"resourceLogs\":[]}", "application/json"),
            "/api/events/raw" => ($"{{\"@t\":\"{DateTimeOffset.UtcNow:O}\",\"@mt\":\"hi\"}}\n", "application/vnd.serilog.clef"),
            "/api/v1/indexsets/{name}/ingest" => ("{\"message\":\"m\"}\n", "application/x-ndjson"),
            "/api/v1/agents/{name}/report" => ("{\"id\":\"a\",\"version\":\"1\",\"tags\":[],\"health\":{}}", "application/json"),
            _ => ("{\"message\":\"m\"}", "application/json"),
        };
        if (method is not ("GET" or "HEAD" or "DELETE" or "*"))
        {
            request.Content = new StringContent(body, Encoding.UTF8, type);
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await node.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        var status = (int)response.StatusCode;
        if (response.Content.Headers.ContentType?.MediaType == "text/event-stream")
        {
            // A tail that started: allowed, and it would stream until stopped.
            return (status, "");
        }
        var text = await response.Content.ReadAsStringAsync(timeout.Token);
        if (route.EndsWith("_bulk", StringComparison.Ordinal) && status == 200)
        {
            // Bulk answers per item.
            status = JsonDocument.Parse(text).RootElement.GetProperty("items")[0].GetProperty("index").GetProperty("status").GetInt32();
        }
        return (status, text);
    }
}
