namespace Logwell.Bench.Systems;

/// <summary>
/// Logwell in cluster mode: a <c>logwell serve</c> node whose log store is a ClickHouse server (Debian's 18.16, as the
/// <c>clickhouse</c> system runs it), fed over HTTP by two clients as <c>logwell-http</c> is. Beside <c>clickhouse</c>
/// alone it shows what Logwell adds over ClickHouse. The CPU and memory figures are the node's; ClickHouse's own are
/// not counted.
/// </summary>
internal sealed class LogwellClusterSystem : IBenchSystem
{
    private readonly ClickHouseSystem _clickHouse;
    private readonly LogwellHttpSystem _node;

    private LogwellClusterSystem(ClickHouseSystem clickHouse, LogwellHttpSystem node)
    {
        _clickHouse = clickHouse;
        _node = node;
    }

    /// <summary>The node's process.</summary>
    public ServerProcess Server => _node.Server;

    public static async Task<LogwellClusterSystem> StartAsync(string dataDirectory)
    {
        var clickHouse = await ClickHouseSystem.StartAsync(Path.Combine(dataDirectory, "clickhouse"));
        try
        {
            var node = await LogwellHttpSystem.StartAsync(Path.Combine(dataDirectory, "node"), bulk: false, environment: new Dictionary<string, string>
            {
                ["LOGWELL_LogStore"] = "clickhouse",
                ["LOGWELL_ClickHouseUrl"] = clickHouse.Endpoint.ToString(),
            });
            return new LogwellClusterSystem(clickHouse, node);
        }
        catch
        {
            await clickHouse.DisposeAsync();
            throw;
        }
    }

    public Task IngestAsync(Corpus corpus) => _node.IngestAsync(corpus);

    public Task<long?> QueryAsync(string name, QueryParameters p) => _node.QueryAsync(name, p);

    /// <summary>The active parts of the index sets' tables, as for <c>clickhouse</c> (merged-away parts linger for minutes).</summary>
    public Task<long?> LiveDataBytesAsync() => _clickHouse.ActivePartBytesAsync("logwell_events_");

    public async ValueTask DisposeAsync()
    {
        await _node.DisposeAsync();
        await _clickHouse.DisposeAsync();
    }
}
