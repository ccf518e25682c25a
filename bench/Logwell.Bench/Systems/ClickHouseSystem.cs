using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Logwell.Bench.Systems;

/// <summary>
/// Debian's <c>clickhouse-server</c> on loopback ports with its data in the output directory: a MergeTree table
/// partitioned by day and ordered by time, loaded over HTTP as JSONEachRow. Text queries use
/// <c>positionCaseInsensitive</c>; this release has no token index.
/// </summary>
internal sealed class ClickHouseSystem : IBenchSystem
{
    private readonly HttpClient _http;

    private ClickHouseSystem(ServerProcess server, HttpClient http)
    {
        Server = server;
        _http = http;
    }

    public ServerProcess Server { get; }

    /// <summary>The server's HTTP interface.</summary>
    public Uri Endpoint => _http.BaseAddress!;

    public static bool IsInstalled(out string why)
    {
        why = "clickhouse-server is not installed (bench/setup.sh installs it)";
        return File.Exists("/usr/sbin/clickhouse-server") || File.Exists("/usr/bin/clickhouse-server");
    }

    public static async Task<ClickHouseSystem> StartAsync(string directory)
    {
        Directory.CreateDirectory(directory);
        var data = Path.Combine(Path.GetFullPath(directory), "data") + "/";
        var http = ServerProcess.FreePort();
        var tcp = ServerProcess.FreePort();
        var users = Path.Combine(Path.GetFullPath(directory), "users.xml");
        await File.WriteAllTextAsync(users, """
            <?xml version="1.0"?>
            <yandex>
                <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
                <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
                <quotas><default></default></quotas>
            </yandex>
            """);
        var config = Path.Combine(Path.GetFullPath(directory), "config.xml");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0"?>
            <yandex>
                <logger><level>warning</level><log>{directory}/server.log</log><errorlog>{directory}/server.err.log</errorlog><console>0</console></logger>
                <http_port>{http}</http_port>
                <tcp_port>{tcp}</tcp_port>
                <listen_host>127.0.0.1</listen_host>
                <path>{data}</path>
                <tmp_path>{data}tmp/</tmp_path>
                <user_files_path>{data}user_files/</user_files_path>
                <format_schema_path>{data}format_schemas/</format_schema_path>
                <users_config>{users}</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <mark_cache_size>536870912</mark_cache_size>
            </yandex>
            """);
        var binary = File.Exists("/usr/sbin/clickhouse-server") ? "/usr/sbin/clickhouse-server" : "clickhouse-server";
        var server = ServerProcess.Start(binary, [$"--config-file={config}"]);
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http}/"), Timeout = TimeSpan.FromMinutes(30) };
        await server.WaitForAsync(async () => (await client.GetAsync("?query=SELECT%201")).IsSuccessStatusCode, TimeSpan.FromSeconds(60));
        var system = new ClickHouseSystem(server, client);
        await system.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS logs (
                t_ms UInt64,
                t DateTime MATERIALIZED toDateTime(intDiv(t_ms, 1000)),
                host String, level String, service String, trace_id String, message String
            ) ENGINE = MergeTree PARTITION BY toDate(t) ORDER BY t_ms
            """);
        return system;
    }

    private async Task<string> ExecuteAsync(string sql, HttpContent? body = null)
    {
        using var response = body is null
            ? await _http.PostAsync("", new StringContent(sql))
            : await _http.PostAsync($"?query={Uri.EscapeDataString(sql)}", body);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"clickhouse: {text}");
        }
        return text;
    }

    public async Task IngestAsync(Corpus corpus)
    {
        var batch = new StringBuilder();
        var rows = 0;
        var json = new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        foreach (var line in CorpusReader.Lines(corpus.Path))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var t = DateTimeOffset.Parse(root.GetProperty("t").GetString()!, CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream, json))
            {
                writer.WriteStartObject();
                writer.WriteNumber("t_ms", t);
                foreach (var name in new[] { "host", "level", "service", "trace_id", "message" })
                {
                    writer.WriteString(name, root.GetProperty(name).GetString());
                }
                writer.WriteEndObject();
            }
            batch.Append(Encoding.UTF8.GetString(stream.ToArray())).Append('\n');
            if (++rows == 100_000)
            {
                await ExecuteAsync("INSERT INTO logs FORMAT JSONEachRow", new StringContent(batch.ToString()));
                batch.Clear();
                rows = 0;
            }
        }
        if (rows > 0)
        {
            await ExecuteAsync("INSERT INTO logs FORMAT JSONEachRow", new StringContent(batch.ToString()));
        }
    }

    public async Task<long?> QueryAsync(string name, QueryParameters p)
    {
        static string Quote(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
        var from = new DateTimeOffset(p.NarrowFrom).ToUnixTimeMilliseconds();
        var to = new DateTimeOffset(p.NarrowTo).ToUnixTimeMilliseconds();
        var span = (long)p.HistogramSpan.TotalMilliseconds;
        var sql = name switch
        {
            "needle" => $"SELECT count() FROM logs WHERE trace_id = {Quote(p.Needle)}",
            "phrase" => $"SELECT count() FROM logs WHERE positionCaseInsensitive(message, {Quote(p.PhraseText)}) > 0",
            "and_terms" => $"SELECT count() FROM logs WHERE positionCaseInsensitive(message, {Quote(p.AndTerms[0])}) > 0 AND positionCaseInsensitive(message, {Quote(p.AndTerms[1])}) > 0",
            "field_eq" => $"SELECT count() FROM logs WHERE level = {Quote(p.Level)}",
            "wildcard" => $"SELECT count() FROM logs WHERE host LIKE {Quote(p.HostPrefix + "%")}",
            "narrow_time" => $"SELECT count() FROM logs WHERE t_ms >= {from} AND t_ms < {to} AND positionCaseInsensitive(message, {Quote(p.NarrowTerm)}) > 0",
            "count_by" => "SELECT sum(c) FROM (SELECT level, count() AS c FROM logs GROUP BY level)",
            "histogram" => $"SELECT sum(c) FROM (SELECT intDiv(t_ms, {span}) AS b, count() AS c FROM logs GROUP BY b)",
            _ => null,
        };
        if (sql is null)
        {
            return null;
        }
        var text = await ExecuteAsync(sql + " FORMAT TabSeparated");
        return long.Parse(text.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>Active parts only: ClickHouse keeps merged-away parts on disk for minutes before deleting them.</summary>
    public Task<long?> LiveDataBytesAsync() => ActivePartBytesAsync("logs");

    /// <summary>The bytes of the active parts of the tables whose names start with <paramref name="prefix"/>.</summary>
    public async Task<long?> ActivePartBytesAsync(string prefix)
    {
        var text = await ExecuteAsync($"SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND startsWith(table, '{prefix}') FORMAT TabSeparated");
        return long.Parse(text.Trim(), CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await Server.DisposeAsync();
    }
}
