using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Elastic.Clients.Elasticsearch;
using Elastic.Transport;
using Serilog;

namespace Logwell.IntegrationTests;

/// <summary>
/// Shippers' own clients sending credentials to a node that has users: the Elasticsearch clients (.NET and Python)
/// with basic auth and with an API key, rsyslog's omelasticsearch with basic auth, and Serilog's Seq sink with
/// <c>X-Seq-ApiKey</c>.
/// </summary>
public sealed class SecuredShipperTests
{
    // No spaces: rsyslog refuses a pwd with whitespace.
    private const string Password = "shipper-password-9";

    /// <summary>A node with the administrator <c>alice</c>, a key that may ingest into the default space, and a client that reads as an administrator.</summary>
    private static async Task<(LogwellNode Node, string IngestKey, HttpClient Reader)> SecuredNodeAsync(string data)
    {
        var node = await LogwellNode.StartAsync(data);
        Assert.Equal(0, (await CliTests.RunAsync(node, null, "users", "create", "alice", "--role", "admin", "--password", Password, "--data", data)).ExitCode);
        string Secret(string stdout) => stdout.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("lw_", StringComparison.Ordinal));
        var ingest = Secret((await CliTests.RunAsync(node, null, "keys", "create", "shipper", "--role", "ingester", "--scope", "space:default", "--data", data)).Stdout);
        var admin = Secret((await CliTests.RunAsync(node, null, "keys", "create", "reader", "--role", "admin", "--data", data)).Stdout);
        var reader = new HttpClient { BaseAddress = node.BaseAddress };
        reader.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        // The node rereads the rules within a second of the change.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await reader.GetAsync("/api/v1/indexsets")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the administrator's key was not accepted");
            await Task.Delay(50);
        }
        return (node, ingest, reader);
    }

    [Fact]
    public async Task TheDotnetElasticsearchClientBulkIndexesWithBasicAuthAndWithAnApiKey()
    {
        using var dir = new TempDirectory();
        var (node, key, reader) = await SecuredNodeAsync(dir.Path);
        await using var _ = node;
        using var __ = reader;

        var basic = new ElasticsearchClient(new ElasticsearchClientSettings(node.BaseAddress).Authentication(new BasicAuthentication("alice", Password)));
        var viaBasic = await basic.BulkAsync(b => b.Index("basic-2026.11.26").IndexMany(Enumerable.Range(0, 10).Select(i => new { message = $"basic {i}" })));
        Assert.True(viaBasic.IsValidResponse, viaBasic.DebugInformation);
        Assert.All(viaBasic.Items, item => Assert.Equal(201, item.Status));

        // As Elasticsearch hands out keys: base64 of id:key, sent as "ApiKey ...".
        var apiKey = new ElasticsearchClient(new ElasticsearchClientSettings(node.BaseAddress).Authentication(new ApiKey(Convert.ToBase64String(Encoding.UTF8.GetBytes("shipper:" + key)))));
        var viaKey = await apiKey.BulkAsync(b => b.Index("keyed-2026.11.26").IndexMany(Enumerable.Range(0, 10).Select(i => new { message = $"keyed {i}" })));
        Assert.True(viaKey.IsValidResponse, viaKey.DebugInformation);

        Assert.Equal(10, (await SyslogIngestTests.WaitForAsync(reader, "basic", "basic", 10)).Count);
        Assert.Equal(10, (await SyslogIngestTests.WaitForAsync(reader, "keyed", "keyed", 10)).Count);

        var wrong = new ElasticsearchClient(new ElasticsearchClientSettings(node.BaseAddress).Authentication(new BasicAuthentication("alice", "not the password")));
        var refused = await wrong.BulkAsync(b => b.Index("basic-2026.11.26").IndexMany([new { message = "never" }]));
        Assert.False(refused.IsValidResponse);
        Assert.Equal(401, refused.ApiCallDetails.HttpStatusCode);
    }

    [SkippableFact]
    public async Task PythonElasticsearchBulkIndexesWithBasicAuthAndWithAnApiKey()
    {
        Skip.IfNot(File.Exists("/usr/lib/python3/dist-packages/elasticsearch/__init__.py"),
            "Python's elasticsearch client is not installed (test.sh installs python3-elasticsearch from Debian when run as root)");
        using var dir = new TempDirectory();
        var (node, key, reader) = await SecuredNodeAsync(dir.Path);
        await using var _ = node;
        using var __ = reader;
        const string script = """
            import sys
            from elasticsearch import Elasticsearch, helpers
            url, mode, first, second, index = sys.argv[1:6]
            es = Elasticsearch(url, http_auth=(first, second)) if mode == "basic" else Elasticsearch(url, api_key=(first, second))
            ok, errors = helpers.bulk(es, ({"_index": index, "message": f"python {mode} {i}"} for i in range(20)), raise_on_error=False)
            print(ok, len(errors))
            """;
        var url = node.BaseAddress.ToString().TrimEnd('/');
        var (code, output) = await NodeClients.RunAsync("/usr/bin/python3", ["-c", script, url, "basic", "alice", Password, "pybasic-2026.11.26"], dir.Path, TimeSpan.FromSeconds(60));
        Assert.True(code == 0 && output.Trim() == "20 0", output);
        (code, output) = await NodeClients.RunAsync("/usr/bin/python3", ["-c", script, url, "apikey", "shipper", key, "pykey-2026.11.26"], dir.Path, TimeSpan.FromSeconds(60));
        Assert.True(code == 0 && output.Trim() == "20 0", output);
        Assert.Equal(20, (await SyslogIngestTests.WaitForAsync(reader, "pybasic", "python", 20)).Count);
        Assert.Equal(20, (await SyslogIngestTests.WaitForAsync(reader, "pykey", "python", 20)).Count);

        (code, output) = await NodeClients.RunAsync("/usr/bin/python3", ["-c", script, url, "basic", "alice", "wrong password", "pybasic-2026.11.26"], dir.Path, TimeSpan.FromSeconds(60));
        Assert.True(code != 0 && output.Contains("401", StringComparison.Ordinal), output);
    }

    [SkippableFact]
    public async Task RsyslogsOmelasticsearchSendsBasicAuth()
    {
        Skip.IfNot(File.Exists("/usr/sbin/rsyslogd"), "rsyslog is not installed (test.sh installs rsyslog and rsyslog-elasticsearch from Debian when run as root)");
        Skip.IfNot(File.Exists("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so") || File.Exists("/usr/lib/aarch64-linux-gnu/rsyslog/omelasticsearch.so"),
            "rsyslog's omelasticsearch module is not installed (package rsyslog-elasticsearch)");
        using var dir = new TempDirectory();
        var (node, _, reader) = await SecuredNodeAsync(Path.Combine(dir.Path, "data"));
        await using var ___ = node;
        using var __ = reader;
        await using var rsyslog = await Rsyslog.StartAsync(Path.Combine(dir.Path, "rsyslog"), $$"""
            module(load="omelasticsearch")
            template(name="doc" type="list" option.jsonf="on") {
              property(outname="message" name="msg" format="jsonf")
              property(outname="app" name="programname" format="jsonf")
            }
            action(type="omelasticsearch" server="127.0.0.1" serverport="{{node.BaseAddress.Port}}" template="doc" searchIndex="secured-2026.11.26" bulkmode="on" esVersion.major="8" uid="alice" pwd="{{Password}}")
            """);
        await rsyslog.LogAsync("-t", "shop", "authenticated delivery 9");
        var indexed = await SyslogIngestTests.WaitForAsync(reader, "secured", "delivery", 1);
        Assert.Equal("authenticated delivery 9", Assert.Single(indexed).GetProperty("message").GetString()!.Trim());
    }

    [Fact]
    public async Task SerilogsSeqSinkSendsAnApiKey()
    {
        using var dir = new TempDirectory();
        var (node, key, reader) = await SecuredNodeAsync(dir.Path);
        await using var _ = node;
        using var __ = reader;
        using (var log = new LoggerConfiguration().WriteTo.Seq(node.BaseAddress.ToString(), apiKey: key).CreateLogger())
        {
            log.Information("Order {OrderId} shipped", 7);
        }
        var hits = await SyslogIngestTests.WaitForAsync(reader, "default", "shipped", 1);
        Assert.Equal("Order 7 shipped", Assert.Single(hits).GetProperty("message").GetString());
    }
}
