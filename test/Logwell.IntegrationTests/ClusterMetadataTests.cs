using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Logwell.Storage.ClickHouse;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// Two <c>logwell serve</c> processes over one ClickHouse and one metadata database (a real PostgreSQL, then a real
/// MariaDB): what is made on one node (users, keys, saved searches, a web session) holds on the other, a revocation on
/// one reaches the other within the rules' refresh, and both nodes are in one registry.
/// </summary>
public sealed class ClusterMetadataTests(ClickHouseFixture fixture) : IClassFixture<ClickHouseFixture>
{
    [SkippableTheory]
    [InlineData("postgresql")]
    [InlineData("mariadb")]
    public async Task TwoNodesShareUsersKeysSessionsSavedSearchesAndOneRegistry(string metadata)
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        var server = SqlServer.Of(metadata);
        var connectionString = server.CreateDatabase();
        var database = "logwell_" + Guid.NewGuid().ToString("N");
        using (var admin = new ClickHouseHttp(fixture.Server!.Endpoint))
        {
            await admin.ExecuteAsync($"CREATE DATABASE {database}");
        }
        var settings = new Dictionary<string, string>
        {
            ["LOGWELL_LogStore"] = "clickhouse",
            ["LOGWELL_ClickHouseUrl"] = fixture.Server.Endpoint.ToString(),
            ["LOGWELL_ClickHouseDatabase"] = database,
            ["LOGWELL_MetadataStore"] = metadata,
            ["LOGWELL_MetadataConnectionString"] = connectionString,
        };
        using var dirA = new TempDirectory();
        using var dirB = new TempDirectory();
        // Both start at once: one of them migrates the empty database, the other waits for it.
        var starting = new[] { dirA, dirB }.Select(dir => LogwellNode.StartAsync(dir.Path, env: settings)).ToArray();
        await using var a = await starting[0];
        await using var b = await starting[1];

        // The first admin, made with the CLI from a third data directory: the settings, not the directory, say where the users are.
        using var dirCli = new TempDirectory();
        var created = await CliTests.RunWithAsync(dirCli.Path, a, null, settings, "users", "create", "alice", "--role", "admin", "--password", "a long password", "--data", dirCli.Path);
        Assert.True(created.ExitCode == 0, created.Stderr);
        // The settings as the CLI reads them, secrets hidden.
        var withSecrets = new Dictionary<string, string>(settings)
        {
            ["LOGWELL_MetadataConnectionString"] = connectionString + ";Password=db-secret-1",
            ["LOGWELL_ClickHousePassword"] = "ch-secret-2",
            ["LOGWELL_RedisConnection"] = "127.0.0.1:6379,password=redis-secret-3",
        };
        var shown = await CliTests.RunWithAsync(dirCli.Path, a, null, withSecrets, "config", "show", "--data", dirCli.Path);
        Assert.True(shown.ExitCode == 0, shown.Stderr);
        Assert.Contains($"MetadataStore = {metadata}", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("ClickHousePassword = (hidden)", shown.Stdout, StringComparison.Ordinal);
        string Line(string setting) => shown.Stdout.Split('\n').Single(l => l.StartsWith(setting + " = ", StringComparison.Ordinal));
        Assert.Contains("password=(hidden)", Line("MetadataConnectionString"), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("password=(hidden)", Line("RedisConnection"), StringComparison.Ordinal);
        Assert.DoesNotContain("secret-", shown.Stdout, StringComparison.Ordinal);
        foreach (var node in new[] { a, b })
        {
            await WorkerProcessTests.WaitForAsync(() => Status(node, HttpMethod.Get, "/api/v1/indexsets", null) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(5), () => "credentials required on every node");
            Assert.Equal(HttpStatusCode.OK, Status(node, HttpMethod.Get, "/api/v1/indexsets", Basic("alice", "a long password")));
        }

        // A key made through node A's API works on node B; revoked on B, A refuses it within the rules' refresh.
        var (status, key) = await Send(a, HttpMethod.Post, "/api/v1/access/keys", Basic("alice", "a long password"),
            """{"name":"shipper","role":"ingester","scope":"indexset:app"}""");
        Assert.Equal(HttpStatusCode.Created, status);
        var secret = key.GetProperty("secret").GetString()!;
        var line = $"{{\"message\":\"from node b\",\"@timestamp\":\"{DateTimeOffset.UtcNow:O}\"}}\n";
        // Node B knows it once it reads the rules again (every 250 ms).
        await WorkerProcessTests.WaitForAsync(() => Send(b, HttpMethod.Post, "/api/v1/indexsets/app/ingest", new AuthenticationHeaderValue("Bearer", secret), line, "application/x-ndjson").Result.Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(5), () => "the new key accepted on node B");
        (status, _) = await Send(b, HttpMethod.Delete, $"/api/v1/access/keys/{key.GetProperty("id").GetString()}", Basic("alice", "a long password"));
        Assert.Equal(HttpStatusCode.NoContent, status);
        await WorkerProcessTests.WaitForAsync(() => Send(a, HttpMethod.Post, "/api/v1/indexsets/app/ingest", new AuthenticationHeaderValue("Bearer", secret), line, "application/x-ndjson").Result.Status == HttpStatusCode.Unauthorized,
            TimeSpan.FromSeconds(5), () => "the revoked key refused on node A");

        // Signed in on A; the page's next change goes to B, with A's cookie and anti-forgery token.
        using var signIn = new HttpRequestMessage(HttpMethod.Post, "/api/v1/access/session")
        {
            Content = new StringContent("""{"user":"alice","password":"a long password"}""", Encoding.UTF8, "application/json"),
        };
        using var signedIn = await a.Http.SendAsync(signIn);
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        var cookie = signedIn.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
        var csrf = JsonDocument.Parse(await signedIn.Content.ReadAsStringAsync()).RootElement.GetProperty("csrf").GetString()!;
        using var save = new HttpRequestMessage(HttpMethod.Post, "/api/v1/saved-searches")
        {
            Content = new StringContent("""{"name":"Errors on b","indexset":"app","q":"level:error","from":"now-1h"}""", Encoding.UTF8, "application/json"),
        };
        save.Headers.Add("Cookie", cookie);
        save.Headers.Add("X-Logwell-Csrf", csrf);
        using var saved = await b.Http.SendAsync(save);
        Assert.True(saved.StatusCode == HttpStatusCode.Created, await saved.Content.ReadAsStringAsync());
        // Listed on A.
        (status, var list) = await Send(a, HttpMethod.Get, "/api/v1/saved-searches", Basic("alice", "a long password"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(list.GetProperty("saved_searches").EnumerateArray(), s => s.GetProperty("name").GetString() == "Errors on b" && s.GetProperty("from").GetString() == "now-1h");

        // One registry: each node lists both.
        foreach (var node in new[] { a, b })
        {
            await WorkerProcessTests.WaitForAsync(() => Send(node, HttpMethod.Get, "/api/v1/nodes", Basic("alice", "a long password")).Result.Body.GetProperty("nodes").GetArrayLength() == 2,
                TimeSpan.FromSeconds(10), () => Send(node, HttpMethod.Get, "/api/v1/nodes", Basic("alice", "a long password")).Result.Body.ToString());
        }
    }

    [SkippableTheory]
    [InlineData("postgresql", "Host=127.0.0.1;Port={0};Database=logwell;Username=logwell;Timeout=1")]
    [InlineData("mariadb", "Server=127.0.0.1;Port={0};Database=logwell;User ID=logwell;Connection Timeout=1")]
    public async Task ANodeWhoseMetadataServerDoesNotAnswerStopsWithTheReasonAndAcceptsNothing(string metadata, string connectionString)
    {
        // A port nothing listens on.
        var port = ClickHouseServer.FreePort();
        using var dir = new TempDirectory();
        var env = new Dictionary<string, string>
        {
            ["LOGWELL_MetadataStore"] = metadata,
            ["LOGWELL_MetadataConnectionString"] = string.Format(System.Globalization.CultureInfo.InvariantCulture, connectionString, port),
            ["LOGWELL_MetadataConnectTimeoutSeconds"] = "3",
        };
        var started = System.Diagnostics.Stopwatch.StartNew();
        var (exitCode, output) = await ProgramRunner.RunAsync("dotnet", [LogwellNode.LogwellDll, "serve", "--urls", "http://127.0.0.1:0", "--data", dir.Path],
            dir.Path, TimeSpan.FromSeconds(60), env);
        Assert.True(exitCode == 3, $"exit {exitCode}: {output}");
        Assert.Contains($"error: the metadata database ({(metadata == "postgresql" ? "PostgreSQL" : "MariaDB")} at 127.0.0.1:{port}, database logwell) did not answer within 3 s", output, StringComparison.Ordinal);
        // It tried again meanwhile, saying why each time.
        Assert.Contains("does not answer", output, StringComparison.Ordinal);
        Assert.DoesNotContain("listening on", output, StringComparison.Ordinal);
        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(3));
    }

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    private static HttpStatusCode Status(LogwellNode node, HttpMethod method, string url, AuthenticationHeaderValue? authorization) =>
        Send(node, method, url, authorization).Result.Status;

    private static async Task<(HttpStatusCode Status, JsonElement Body)> Send(LogwellNode node, HttpMethod method, string url, AuthenticationHeaderValue? authorization, string? body = null, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, url) { Headers = { Authorization = authorization } };
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, contentType);
        }
        using var response = await node.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 && text[0] is '{' or '[' ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }
}
