using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// <c>logwell serve --tls-cert --tls-key --syslog-tls</c> with a private CA's certificate (sent with its intermediate):
/// HTTPS with HSTS to real clients (.NET, curl, Python's Elasticsearch client, the logwell CLI), syslog over TLS from
/// rsyslog, Secure session cookies; and the warning of a node that listens in clear on a public address.
/// </summary>
public sealed class TlsTests
{
    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private const string Password = "a long admin password";

    [SkippableFact]
    public async Task A_node_with_a_certificate_serves_https_with_hsts_and_secure_cookies_to_real_clients()
    {
        Skip.IfNot(File.Exists("/usr/bin/curl"), "curl is not installed (test.sh installs it from Debian when run as root)");
        using var dir = new TempDirectory();
        var certificates = TestCertificates.Create(Path.Combine(dir.Path, "tls"));
        await using var node = await LogwellNode.StartAsync(Path.Combine(dir.Path, "data"), urls: "http://127.0.0.1:0",
            env: new Dictionary<string, string> { ["LOGWELL_ALLOWEDHOSTS"] = TestCertificates.Name },
            arguments: ["--tls-cert", certificates.ChainFile, "--tls-key", certificates.KeyFile], handler: certificates.TrustingHandler());
        // The TCP address of --urls speaks HTTPS once there is a certificate.
        Assert.Equal("https", node.BaseAddress.Scheme);
        await WorkerProcessTests.WaitForAsync(() => node.Output.Contains("Logwell TLS with", StringComparison.Ordinal), TimeSpan.FromSeconds(30), () => node.Output);

        // The root CA alone is trusted: the handshake succeeds only because the node sends the intermediate.
        using (var response = await node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "app" }))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            // No HSTS for a loopback name: it would hold for every port of the browser's localhost.
            Assert.False(response.Headers.Contains("Strict-Transport-Security"));
        }
        // Under the node's name, HSTS for a year.
        using (var named = new HttpRequestMessage(HttpMethod.Get, "/api/v1/indexsets"))
        {
            named.Headers.Host = $"{TestCertificates.Name}:{node.BaseAddress.Port}";
            using var response = await node.Http.SendAsync(named);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("max-age=31536000", string.Join(",", response.Headers.GetValues("Strict-Transport-Security")));
        }
        // Plain HTTP on that port gets no answer a client could read as one.
        using (var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => plain.GetAsync(new UriBuilder(node.BaseAddress) { Scheme = "http" }.Uri));
        }
        // A client that trusts only the system's CAs refuses the node.
        using (var system = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            var refused = await Assert.ThrowsAsync<HttpRequestException>(() => system.GetAsync(node.BaseAddress));
            Assert.Contains("SSL", refused.ToString(), StringComparison.Ordinal);
        }

        // curl with the CA file, as an operator would try it.
        var (code, output) = await NodeClients.RunAsync("curl", ["-sS", "--fail-with-body", "--cacert", certificates.RootFile, "-X", "POST", "-H", "Content-Type: application/x-ndjson",
            "--data-binary", "{\"message\":\"over curl and tls\"}\n", new Uri(node.BaseAddress, "/api/v1/indexsets/app/ingest").ToString()], dir.Path, TimeSpan.FromSeconds(30));
        Assert.True(code == 0, output);
        Assert.Single(await SyslogIngestTests.WaitForAsync(node.Http, "app", "curl", 1));

        // The logwell CLI: refused without the CA, served with --ca-cert.
        var untrusted = await CliTests.RunAsync(node, null, "indexsets", "list");
        Assert.NotEqual(0, untrusted.ExitCode);
        var trusted = await CliTests.RunAsync(node, null, "indexsets", "list", "--ca-cert", certificates.RootFile);
        Assert.True(trusted.ExitCode == 0, trusted.Stdout + trusted.Stderr);
        Assert.Contains("app", trusted.Stdout, StringComparison.Ordinal);

        // Python's Elasticsearch client with the CA file, and a secured node: basic auth over TLS.
        if (File.Exists("/usr/lib/python3/dist-packages/elasticsearch/__init__.py"))
        {
            Assert.Equal(0, (await CliTests.RunAsync(node, null, "users", "create", "alice", "--role", "admin", "--password", Password, "--data", node.DataDirectory)).ExitCode);
            const string script = """
                import sys
                from elasticsearch import Elasticsearch, helpers
                url, ca, user, password = sys.argv[1:5]
                es = Elasticsearch(url, ca_certs=ca, http_auth=(user, password))
                ok, errors = helpers.bulk(es, ({"_index": "pytls-2026.12.06", "message": f"python tls {i}"} for i in range(10)), raise_on_error=False)
                print(ok, len(errors))
                """;
            (code, output) = await NodeClients.RunAsync("/usr/bin/python3", ["-c", script, node.BaseAddress.ToString().TrimEnd('/'), certificates.RootFile, "alice", Password], dir.Path, TimeSpan.FromSeconds(60));
            Assert.True(code == 0 && output.Trim() == "10 0", output);
            node.Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:" + Password)));
            Assert.Equal(10, (await SyslogIngestTests.WaitForAsync(node.Http, "pytls", "python", 10)).Count);

            // Under TLS the session cookie is Secure.
            using var signIn = await node.Http.PostAsJsonAsync("/api/v1/access/session", new { user = "alice", password = Password });
            Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
            Assert.Contains("secure", Assert.Single(signIn.Headers.GetValues("Set-Cookie")), StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task A_worker_reaches_its_tls_node_from_the_nodes_settings_alone()
    {
        using var dir = new TempDirectory();
        var certificates = TestCertificates.Create(Path.Combine(dir.Path, "tls"));
        var data = Path.Combine(dir.Path, "data");
        // Settings both processes read (here from the environment, as from appsettings): the address and the TLS files.
        var settings = new Dictionary<string, string>
        {
            ["LOGWELL_URLS"] = $"http://127.0.0.1:{FreePort()}",
            ["LOGWELL_TLSCERTIFICATEFILE"] = certificates.ChainFile,
            ["LOGWELL_TLSKEYFILE"] = certificates.KeyFile,
            ["LOGWELL_ServeWorkerQueues"] = "default",
        };
        await using var node = await LogwellNode.StartAsync(data, env: settings, urls: settings["LOGWELL_URLS"], handler: certificates.TrustingHandler());
        Assert.Equal("https", node.BaseAddress.Scheme);
        using (var content = new StringContent("{\"message\":\"to export\"}\n", Encoding.UTF8, "application/x-ndjson"))
        {
            (await node.Http.PostAsync("/api/v1/indexsets/app/ingest", content)).EnsureSuccessStatusCode();
        }
        using var create = await node.Http.PostAsync("/api/v1/exports", new StringContent("{\"indexset\":\"app\",\"format\":\"ndjson\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, create.StatusCode);
        var id = JsonDocument.Parse(await create.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;

        // No --server, no LOGWELL_URL, no --ca-cert: https://127.0.0.1:PORT with the node's own certificate pinned.
        await using var worker = RoleProcess.Start(["worker", "-Q", "export", "-c", "1", "--data", data], settings);
        var done = await ExportTests.WaitDoneAsync(node.Http, id, () => worker.Output);
        Assert.Equal(1, done.GetProperty("events_written").GetInt32());
    }

    [SkippableFact]
    public async Task Rsyslog_forwards_over_tls_to_the_syslog_tls_port()
    {
        Skip.IfNot(File.Exists("/usr/sbin/rsyslogd"), "rsyslog is not installed (test.sh installs rsyslog from Debian when run as root)");
        Skip.IfNot(File.Exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so") || File.Exists("/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so"),
            "rsyslog's TLS driver is not installed (package rsyslog-gnutls; test.sh installs it when run as root)");
        using var dir = new TempDirectory();
        var certificates = TestCertificates.Create(Path.Combine(dir.Path, "tls"));
        var tlsPort = FreePort();
        await using var node = await LogwellNode.StartAsync(Path.Combine(dir.Path, "data"),
            env: new Dictionary<string, string> { ["LOGWELL_DEFAULTRETENTIONDAYS"] = "36500" },
            arguments: ["--tls-cert", certificates.ChainFile, "--tls-key", certificates.KeyFile, "--syslog-tls", tlsPort.ToString(CultureInfo.InvariantCulture), "--syslog-index", "secure"],
            handler: certificates.TrustingHandler());
        await WorkerProcessTests.WaitForAsync(() => node.Output.Contains($"tls {tlsPort}", StringComparison.Ordinal), TimeSpan.FromSeconds(30), () => node.Output);

        // gtls checks the node's certificate against the CA and its name (x509/name), as RFC 5425 asks.
        await using (var rsyslog = await Rsyslog.StartAsync(Path.Combine(dir.Path, "rsyslog"), $$"""
            action(type="omfwd" target="127.0.0.1" port="{{tlsPort}}" protocol="tcp" StreamDriver="gtls" StreamDriverMode="1"
                   StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
            """, global: $"DefaultNetstreamDriverCAFile=\"{certificates.RootFile}\""))
        {
            await rsyslog.LogAsync("-t", "vault", "-p", "auth.warning", "secret rotated for db-1");
            var received = Assert.Single(await SyslogIngestTests.WaitForAsync(node.Http, "secure", "rotated", 1)).GetProperty("fields");
            Assert.Equal("vault", received.GetProperty("app").GetString());
            Assert.Equal("warning", received.GetProperty("level").GetString());
        }

        // A plain-text sender on the TLS port delivers nothing, and the node says why.
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, tlsPort);
            var line = Encoding.UTF8.GetBytes($"<13>1 {DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH':'mm':'ss'Z'", CultureInfo.InvariantCulture)} host app - - - plain text on the tls port\n");
            await client.GetStream().WriteAsync(line);
        }
        await WorkerProcessTests.WaitForAsync(() => node.Output.Contains("syslog TLS handshake", StringComparison.Ordinal), TimeSpan.FromSeconds(30), () => node.Output);
        using var search = await node.Http.GetAsync("/api/v1/search?indexset=secure&q=plain&from=now-400d");
        Assert.Equal(0, (await search.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task A_node_listening_in_clear_on_a_public_address_says_so_at_start()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, urls: "http://0.0.0.0:0");
        await WorkerProcessTests.WaitForAsync(() => node.Output.Contains("WARNING: http://0.0.0.0:0 is reachable from other machines WITHOUT TLS", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), () => node.Output);

        // On loopback, nothing to say: read once the node has stopped and all it wrote is in.
        using var loopback = new TempDirectory();
        await using var local = await LogwellNode.StartAsync(loopback.Path);
        await local.StopAsync();
        Assert.Contains("Logwell stopped", local.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("WITHOUT TLS", local.Output, StringComparison.Ordinal);
    }
}
