using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>
/// Users, keys and grants made with the CLI against a running node's data directory, as an operator makes them, and
/// a worker process that exports for a user with a record-level filter.
/// </summary>
public sealed class AccessProcessTests
{
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, Func<string>? explain = null)
    {
        var started = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(60), $"{what}: not reached in a minute\n{explain?.Invoke()}");
            await Task.Delay(50);
        }
    }

    private static async Task<HttpStatusCode> StatusAsync(LogwellNode node, HttpMethod method, string path, string? key, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/x-ndjson");
        }
        using var response = await node.Http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>The secret <c>logwell keys create</c> printed (its line starting lw_).</summary>
    private static string Secret(string stdout) => stdout.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("lw_", StringComparison.Ordinal));

    [Fact]
    public async Task TheFirstAdminAndKeysMadeWithTheCliSecureARunningNodeAndARevocationReachesIt()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var lines = string.Join("\n", Enumerable.Range(0, 10).Select(i => JsonSerializer.Serialize(new { message = $"call {i}", service = i % 2 == 0 ? "payments" : "billing" }))) + "\n";
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", null, lines));

        var created = await CliTests.RunAsync(node, "a long password\n", "users", "create", "alice", "--role", "admin", "--data", dir.Path);
        Assert.True(created.ExitCode == 0, created.Stderr);
        Assert.Contains("created user alice with role admin on *", created.Stdout, StringComparison.Ordinal);
        // The running node sees the first user: loopback needs credentials from now on.
        await WaitUntilAsync(async () => await StatusAsync(node, HttpMethod.Get, "/api/v1/indexsets", null) == HttpStatusCode.Unauthorized, "credentials required");
        using (var basic = new HttpRequestMessage(HttpMethod.Get, "/api/v1/indexsets"))
        {
            basic.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:a long password")));
            using var response = await node.Http.SendAsync(basic);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        var duplicate = await CliTests.RunAsync(node, null, "users", "create", "alice", "--password", "another one", "--data", dir.Path);
        Assert.Equal(1, duplicate.ExitCode);
        Assert.Contains("exists already", duplicate.Stderr, StringComparison.Ordinal);

        var ship = await CliTests.RunAsync(node, null, "keys", "create", "shipper", "--role", "ingester", "--scope", "indexset:app", "--data", dir.Path);
        Assert.True(ship.ExitCode == 0, ship.Stderr);
        var shipKey = Secret(ship.Stdout);
        var reader = await CliTests.RunAsync(node, null, "keys", "create", "reader", "--role", "viewer", "--filter", "service:payments", "--data", dir.Path);
        var readerKey = Secret(reader.Stdout);

        var file = Path.Combine(dir.Path, "more.ndjson");
        await File.WriteAllTextAsync(file, "{\"message\":\"call late\",\"service\":\"payments\"}\n");
        var ingested = await CliTests.RunAsync(node, null, "ingest", "--index", "app", file, "--api-key", shipKey);
        Assert.True(ingested.ExitCode == 0, ingested.Stderr);
        var refused = await CliTests.RunAsync(node, null, "search", "--index", "app", "call", "--api-key", shipKey);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("may not search", refused.Stderr, StringComparison.Ordinal);
        var anonymous = await CliTests.RunAsync(node, null, "search", "--index", "app", "call");
        Assert.Equal(1, anonymous.ExitCode);
        Assert.Contains("credentials are required", anonymous.Stderr, StringComparison.Ordinal);

        var seen = await CliTests.RunAsync(node, null, "search", "--index", "app", "call", "--json", "--api-key", readerKey);
        Assert.True(seen.ExitCode == 0, seen.Stderr);
        var hits = seen.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("fields").GetProperty("service").GetString()).ToList();
        Assert.Equal(6, hits.Count);
        Assert.All(hits, service => Assert.Equal("payments", service));

        // logwell login keeps a personal key for the node in the user's configuration directory; logout revokes it.
        var home = new Dictionary<string, string> { ["XDG_CONFIG_HOME"] = Path.Combine(dir.Path, "config") };
        var login = await CliTests.RunWithAsync(dir.Path, node, "a long password\n", home, "login", "--user", "alice");
        Assert.True(login.ExitCode == 0, login.Stderr);
        var credentials = Path.Combine(dir.Path, "config", "logwell", "credentials.json");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(credentials));
        }
        var asAlice = await CliTests.RunWithAsync(dir.Path, node, null, home, "search", "--index", "app", "call");
        Assert.True(asAlice.ExitCode == 0, asAlice.Stderr);
        Assert.Contains("11 shown of 11 matching", asAlice.Stderr, StringComparison.Ordinal);
        var personal = JsonDocument.Parse(await File.ReadAllTextAsync(credentials)).RootElement.EnumerateObject().Single().Value.GetProperty("key").GetString()!;
        var wrongPassword = await CliTests.RunWithAsync(dir.Path, node, "not it\n", home, "login", "--user", "alice");
        Assert.Equal(1, wrongPassword.ExitCode);
        Assert.Contains("401", wrongPassword.Stderr, StringComparison.Ordinal);
        var logout = await CliTests.RunWithAsync(dir.Path, node, null, home, "logout");
        Assert.True(logout.ExitCode == 0, logout.Stderr);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(node, HttpMethod.Get, "/api/v1/indexsets", personal));
        Assert.Equal(1, (await CliTests.RunWithAsync(dir.Path, node, null, home, "search", "--index", "app", "call")).ExitCode);

        var list = await CliTests.RunAsync(node, null, "keys", "list", "--data", dir.Path);
        var id = list.Stdout.Split('\n').Single(l => l.Contains("shipper", StringComparison.Ordinal)).Split(' ')[0];
        Assert.DoesNotContain(shipKey, list.Stdout, StringComparison.Ordinal);
        var revoked = await CliTests.RunAsync(node, null, "keys", "revoke", id, "--data", dir.Path);
        Assert.True(revoked.ExitCode == 0, revoked.Stderr);
        await WaitUntilAsync(async () => await StatusAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", shipKey, "{\"message\":\"x\"}\n") == HttpStatusCode.Unauthorized,
            "the revoked key refused by the running node");
    }

    [Fact]
    public async Task LoginOverTheNodesUnixSocketKeepsTheKeyForThatAddress()
    {
        using var dir = new TempDirectory();
        var socket = Path.Combine(dir.Path, "run", "node.sock");
        await using var node = await LogwellNode.StartAsync(Path.Combine(dir.Path, "data"), urls: $"http://127.0.0.1:0;http://unix:{socket}");
        (await node.Http.PostAsync("/api/v1/indexsets", new StringContent("{\"name\":\"app\"}", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        Assert.Equal(0, (await CliTests.RunAsync(node, null, "users", "create", "alice", "--role", "admin", "--password", "a long password", "--data", node.DataDirectory)).ExitCode);
        var env = new Dictionary<string, string> { ["XDG_CONFIG_HOME"] = Path.Combine(dir.Path, "config"), ["LOGWELL_URL"] = $"http://unix:{socket}" };
        var login = await CliTests.RunWithAsync(dir.Path, node, "a long password\n", env, "login", "--user", "alice");
        Assert.True(login.ExitCode == 0, login.Stderr);
        // The next verb, over the same socket, finds the key without --api-key.
        var list = await CliTests.RunWithAsync(dir.Path, node, null, env, "indexsets", "list");
        Assert.True(list.ExitCode == 0, list.Stdout + list.Stderr);
        Assert.Contains("app", list.Stdout, StringComparison.Ordinal);
        // Kept for the socket, not for the TCP address.
        env["LOGWELL_URL"] = node.BaseAddress.ToString();
        Assert.Equal(1, (await CliTests.RunWithAsync(dir.Path, node, null, env, "indexsets", "list")).ExitCode);
    }

    [Fact]
    public async Task AWorkerProcessExportsWithTheNodeCredentialOnlyWhatTheOwnerMaySee()
    {
        using var dir = new TempDirectory();
        // The node runs no export tasks itself: a worker process does, through the API.
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string> { ["LOGWELL_ServeWorkerQueues"] = "default" });
        var lines = string.Join("\n", Enumerable.Range(0, 40).Select(i => JsonSerializer.Serialize(new { message = $"call {i}", service = i % 4 == 0 ? "payments" : "billing", card = $"41111111{i:D8}" }))) + "\n";
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(node, HttpMethod.Post, "/api/v1/indexsets/app/ingest", null, lines));
        Assert.Equal(0, (await CliTests.RunAsync(node, null, "users", "create", "alice", "--role", "admin", "--generate-password", "--data", dir.Path)).ExitCode);
        var key = Secret((await CliTests.RunAsync(node, null, "keys", "create", "auditor", "--role", "viewer", "--filter", "service:payments", "--data", dir.Path)).Stdout);
        var admin = Secret((await CliTests.RunAsync(node, null, "keys", "create", "ops", "--role", "admin", "--data", dir.Path)).Stdout);
        await WaitUntilAsync(async () => await StatusAsync(node, HttpMethod.Get, "/api/v1/indexsets", admin) == HttpStatusCode.OK, "the admin key accepted");
        using (var masking = new HttpRequestMessage(HttpMethod.Put, "/api/v1/indexsets/app/masking"))
        {
            masking.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            masking.Content = new StringContent("{\"rules\":[{\"field\":\"card\",\"keep_first\":4,\"keep_last\":2}]}", Encoding.UTF8, "application/json");
            using var response = await node.Http.SendAsync(masking);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var http = new HttpClient { BaseAddress = node.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        await WaitUntilAsync(async () => (await http.GetAsync("/api/v1/indexsets")).IsSuccessStatusCode, "the key accepted");
        using var create = await http.PostAsync("/api/v1/exports", new StringContent("{\"indexset\":\"app\",\"format\":\"ndjson\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, create.StatusCode);
        var id = JsonDocument.Parse(await create.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;

        await using var worker = RoleProcess.Start(["worker", "-Q", "export", "-c", "1", "--data", dir.Path, "--server", node.BaseAddress.ToString()]);
        var done = await ExportTests.WaitDoneAsync(http, id, () => worker.Output);
        Assert.Equal(10, done.GetProperty("events_written").GetInt32());
        var exported = ExportTests.Gunzip(await http.GetByteArrayAsync(done.GetProperty("download").GetString()));
        Assert.Equal(10, exported.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.DoesNotContain("billing", exported, StringComparison.Ordinal);
        // The viewer lacks view_raw: the worker wrote the card numbers masked.
        Assert.DoesNotContain("41111111", exported, StringComparison.Ordinal);
        Assert.Contains("\"card\":\"4111**********", exported, StringComparison.Ordinal);

        // Another caller does not see the export, even an administrator's key.
        Assert.Equal(HttpStatusCode.NotFound, await StatusAsync(node, HttpMethod.Get, $"/api/v1/exports/{id}", admin));
    }
}
