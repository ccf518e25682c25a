using System.Reflection;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Logwell.Jobs;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Hosting;

/// <summary>A node in the registry and how its heartbeats stand: passing, or critical once they stopped.</summary>
/// <param name="Checks">The node's health components as it last reported them with a heartbeat: a JSON array of
/// <c>{"name", "status", "detail"}</c>, empty for a node that reports none (an API master).</param>
public sealed record NodeEntry(string Id, string Address, int Port, string Role, string Version, IReadOnlyList<string> Tags, DateTimeOffset RegisteredAt, DateTimeOffset HeartbeatAt, string Health, string Checks);

/// <summary>
/// The service registry: each node registers itself (id, address, port, role, version, tags) once it serves, sends a
/// heartbeat every <c>RegistryHeartbeatSeconds</c> and deregisters when it stops. A node whose heartbeats stopped for
/// <c>RegistryCriticalSeconds</c> is critical; after <c>RegistryRemoveSeconds</c> any node removes it. The rows live in
/// the metadata store: a cluster's metadata database, or on SQLite <c>RegistryFile</c> (by default <c>meta.db</c> in
/// the data directory, which nodes of one machine can share).
/// </summary>
public sealed class NodeRegistry
{
    private readonly Func<DbConnection> _connect;
    private readonly MetaDialect _dialect;
    private readonly TimeProvider _time;

    /// <summary>The registry in a SQLite file (<c>RegistryFile</c>), made there when missing.</summary>
    public NodeRegistry(string file, TimeProvider time)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        var connectionString = SqliteFiles.ConnectionString(file);
        _connect = () => SqliteFiles.Open(connectionString, fullSync: false);
        _dialect = MetaDialect.Sqlite;
        _time = time;
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS nodes (
                id TEXT PRIMARY KEY,
                address TEXT NOT NULL,
                port INTEGER NOT NULL,
                role TEXT NOT NULL,
                version TEXT NOT NULL,
                tags TEXT NOT NULL,
                registered_at INTEGER NOT NULL,
                heartbeat_at INTEGER NOT NULL,
                checks TEXT NOT NULL DEFAULT '[]'
            );
            """;
        command.ExecuteNonQuery();
        // A registry file from before nodes reported their health components.
        command.CommandText = "SELECT count(*) FROM pragma_table_info('nodes') WHERE name = 'checks'";
        if (command.ScalarLong() == 0)
        {
            command.CommandText = "ALTER TABLE nodes ADD COLUMN checks TEXT NOT NULL DEFAULT '[]'";
            try
            {
                command.ExecuteNonQuery();
            }
            catch (SqliteException e) when (e.Message.Contains("duplicate column name", StringComparison.Ordinal))
            {
                // Another process of the node (the store and the API master start together) added it first.
            }
        }
    }

    /// <summary>The registry in a cluster's metadata database (its table made by the migrations).</summary>
    public NodeRegistry(MetaDatabase database, TimeProvider time)
    {
        _connect = database.Connect;
        _dialect = database.Dialect;
        _time = time;
    }

    /// <summary>The registry the settings name: the cluster's metadata database, or on SQLite <c>RegistryFile</c>.</summary>
    public static NodeRegistry Open(LogwellOptions options, TimeProvider time) => options.MetadataDialect == MetaDialect.Sqlite
        ? new NodeRegistry(options.RegistryPath, time)
        : new NodeRegistry(MetaDatabase.Open(options, time), time);

    private DbConnection Open() => _connect();

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public void Register(string id, string address, int port, string role, string version, IReadOnlyList<string> tags)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO nodes (id, address, port, role, version, tags, registered_at, heartbeat_at, checks)
            VALUES (@id, @address, @port, @role, @version, @tags, @now, @now, '[]')
            """ + MetaDatabase.Upsert(_dialect, "id", "address", "port", "role", "version", "tags", "registered_at", "heartbeat_at");
        command.Add("@id", id);
        command.Add("@address", address);
        command.Add("@port", port);
        command.Add("@role", role);
        command.Add("@version", version);
        command.Add("@tags", string.Join(',', tags));
        command.Add("@now", Now);
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Records a heartbeat, with the node's health components when it reports them (<paramref name="checks"/>, a JSON
    /// array); false when the node is not registered (it was removed meanwhile).
    /// </summary>
    public bool Heartbeat(string id, string? checks = null)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE nodes SET heartbeat_at = @now, checks = coalesce(@checks, checks) WHERE id = @id";
        command.Add("@id", id);
        command.Add("@now", Now);
        command.Add("@checks", (object?)checks ?? DBNull.Value);
        if (command.ExecuteNonQuery() == 1)
        {
            return true;
        }
        // MariaDB counts only rows an update changed: a heartbeat in the same millisecond as the last changes none.
        command.CommandText = "SELECT count(*) FROM nodes WHERE id = @id";
        command.Parameters.Clear();
        command.Add("@id", id);
        return command.ScalarLong() == 1;
    }

    public bool Deregister(string id) => Execute("DELETE FROM nodes WHERE id = @id", id) == 1;

    /// <summary>Removes nodes whose last heartbeat is older than <paramref name="after"/>; their ids.</summary>
    public IReadOnlyList<string> RemoveSilent(TimeSpan after)
    {
        var cutoff = Now - (long)after.TotalMilliseconds;
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id FROM nodes WHERE heartbeat_at < @cutoff";
        command.Add("@cutoff", cutoff);
        var silent = new List<string>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                silent.Add(reader.GetString(0));
            }
        }
        // One conditional delete each: of nodes removing at once, the one whose delete took the row reports it, and a
        // node that spoke again meanwhile stays.
        command.CommandText = "DELETE FROM nodes WHERE id = @id AND heartbeat_at < @cutoff";
        var removed = new List<string>();
        foreach (var id in silent)
        {
            command.Parameters.Clear();
            command.Add("@cutoff", cutoff);
            command.Add("@id", id);
            if (command.ExecuteNonQuery() == 1)
            {
                removed.Add(id);
            }
        }
        return removed;
    }

    /// <summary>Every registered node; critical when its last heartbeat is older than <paramref name="critical"/>.</summary>
    public IReadOnlyList<NodeEntry> List(TimeSpan critical)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, address, port, role, version, tags, registered_at, heartbeat_at, checks FROM nodes ORDER BY id";
        var now = Now;
        var nodes = new List<NodeEntry>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var heartbeat = reader.GetInt64(7);
            nodes.Add(new NodeEntry(reader.GetString(0), reader.GetString(1), (int)reader.GetInt64(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5).Split(',', StringSplitOptions.RemoveEmptyEntries),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)), DateTimeOffset.FromUnixTimeMilliseconds(heartbeat),
                now - heartbeat > critical.TotalMilliseconds ? "critical" : "passing", reader.GetString(8)));
        }
        return nodes;
    }

    private int Execute(string sql, string id)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Add("@id", id);
        command.Add("@now", Now);
        return command.ExecuteNonQuery();
    }
}

/// <summary>Keeps one registration alive: register, heartbeat (registering again if it was removed), remove silent nodes, deregister at the end.</summary>
public static class RegistryLoop
{
    private static readonly TimeSpan ChecksTimeout = TimeSpan.FromSeconds(2);

    /// <param name="heartbeat">Called after each registration or heartbeat is recorded.</param>
    /// <param name="checks">The node's health components as a JSON array, sent with each heartbeat; none when null.</param>
    public static async Task RunAsync(NodeRegistry registry, string id, string host, int port, string role, LogwellOptions options, TimeProvider time, Action<string> log, CancellationToken stop, Action? heartbeat = null, Func<CancellationToken, Task<string>>? checks = null)
    {
        // Registration is tried again at each heartbeat until it is recorded (the registry's disk may be full).
        var registered = false;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (!registered)
                {
                    try
                    {
                        registry.Register(id, host, port, role, RegistryHost.Version, [.. options.NodeTags]);
                        registered = true;
                        heartbeat?.Invoke();
                        log($"registered node {id} ({role}) at {host}:{port}");
                    }
                    catch (DbException e)
                    {
                        log($"registration failed ({e.Message}); trying again");
                    }
                }
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(options.RegistryHeartbeatSeconds), time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                if (!registered)
                {
                    continue;
                }
                string? report = null;
                if (checks is not null)
                {
                    try
                    {
                        // A component that does not answer (a queue server away) must not hold the heartbeat back:
                        // past this, the heartbeat goes with the components last reported.
                        report = await checks(stop).WaitAsync(ChecksTimeout, time, stop).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                        log(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"health components took over {ChecksTimeout.TotalSeconds:0} s; heartbeat sent without them"));
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
                try
                {
                    if (!registry.Heartbeat(id, report))
                    {
                        // Removed while silent (paused, or cut off): register again.
                        registry.Register(id, host, port, role, RegistryHost.Version, [.. options.NodeTags]);
                        log($"node {id} had been removed; registered again");
                    }
                    heartbeat?.Invoke();
                    foreach (var removed in registry.RemoveSilent(TimeSpan.FromSeconds(options.RegistryRemoveSeconds)))
                    {
                        log($"removed node {removed}: no heartbeat for {options.RegistryRemoveSeconds} s");
                    }
                }
                catch (DbException e)
                {
                    log($"heartbeat failed ({e.Message}); trying again");
                }
            }
        }
        finally
        {
            try
            {
                registry.Deregister(id);
                log($"deregistered node {id}");
            }
            catch (DbException)
            {
                // Removed once silent, or the registry is away: it removes the node once silent.
            }
        }
    }
}

/// <summary>
/// Registers this process once it listens (as <c>NodeRole</c>), heartbeats with its health components (what
/// <c>/healthz</c> answers), removes silent nodes, and deregisters on the way out.
/// </summary>
internal sealed class RegistryHost(IOptions<LogwellOptions> settings, NodeRegistry registry, IServer server, IHostApplicationLifetime lifetime, IServiceProvider services, TimeProvider time, ILogger<RegistryHost> logger) : BackgroundService
{
    /// <summary>This node's id once registered.</summary>
    public string? NodeId { get; private set; }

    /// <summary>When this node's last heartbeat was recorded.</summary>
    public DateTimeOffset? LastHeartbeat { get; private set; }

    public static string Version => typeof(RegistryHost).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var options = settings.Value;
        // Ready means listening: register only then.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled()))
        {
            try
            {
                await started.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? options.Urls;
        // A node on a Unix socket (http://unix:/path) registers the path, with port 0.
        var (host, port) = address.StartsWith("http://unix:", StringComparison.OrdinalIgnoreCase)
            ? ("unix:" + address["http://unix:".Length..], 0)
            : new Uri(address.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal)) is var uri ? (uri.Host, uri.Port) : default;
        if (options.AdvertiseAddress.Length > 0 && port != 0)
        {
            host = options.AdvertiseAddress;
        }
        var id = string.IsNullOrEmpty(options.NodeId) ? $"{Environment.MachineName}:{(port == 0 ? host : port.ToString(System.Globalization.CultureInfo.InvariantCulture))}" : options.NodeId;
        NodeId = id;
        var consul = options.ConsulAddress.Length > 0 && port != 0
            ? ConsulRegistration.RunAsync(options, ConsulRegistration.Service(id, address.StartsWith("https:", StringComparison.OrdinalIgnoreCase) ? "https" : "http", host, port, options.NodeRole, options.NodeTags),
                time, line => logger.LogInformation("{Line}", line), stoppingToken)
            : Task.CompletedTask;
        await RegistryLoop.RunAsync(registry, id, host, port, options.NodeRole, options, time, line => logger.LogInformation("Registry: {Line}", line), stoppingToken,
            heartbeat: () => LastHeartbeat = time.GetUtcNow(),
            checks: async ct => Api.HealthEndpoints.ToJson(await Api.HealthEndpoints.CheckAsync(services, ready: false, ct).ConfigureAwait(false))).ConfigureAwait(false);
        await consul.ConfigureAwait(false);
    }
}
