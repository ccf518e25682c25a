using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;
using Logwell.Storage.Engine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Logwell.Storage.ClickHouse;

/// <summary>Where and how a <see cref="ClickHouseLogStore"/> keeps events.</summary>
/// <param name="Endpoints">The HTTP interfaces of the servers (<c>http://host:8123/</c>): one, or the replicas of the
/// tables, each of which can take any statement.</param>
public sealed record ClickHouseStoreOptions(IReadOnlyList<Uri> Endpoints)
{
    public ClickHouseStoreOptions(Uri endpoint)
        : this([endpoint])
    {
    }

    /// <summary>The servers as messages name them.</summary>
    public string Described => Endpoints.Count == 1 ? $"ClickHouse at {Endpoints[0]}" : $"ClickHouse at {string.Join(", ", Endpoints)}";

    public string User { get; init; } = "default";

    public string Password { get; init; } = "";

    public string Database { get; init; } = "default";

    /// <summary>
    /// The ZooKeeper path under which tables are <c>ReplicatedMergeTree</c> (with the servers' <c>{replica}</c> macro);
    /// null for plain <c>MergeTree</c> on one server.
    /// </summary>
    public string? ReplicationPath { get; init; }

    /// <summary>Replicas that must hold an insert before it is acknowledged (<c>insert_quorum</c>); 0 for none.</summary>
    public int InsertQuorum { get; init; }

    /// <summary>
    /// How long an insert waits for its quorum. ClickHouse's own default (600 s) holds a request that long after a
    /// replica dies, until ZooKeeper expires its session.
    /// </summary>
    public TimeSpan InsertQuorumTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public int DefaultRetentionDays { get; init; } = 30;

    /// <summary>Events waiting for their insert above which the index set reports itself backed up (ingest answers 429).</summary>
    public long MaxQueuedEvents { get; init; } = 250_000;

    /// <summary>The most events one insert carries: concurrent appends share inserts up to this size.</summary>
    public int MaxInsertEvents { get; init; } = 100_000;

    public int TrackTotalHitsUpTo { get; init; } = 10_000;

    public int MaxFieldsPerIndexSet { get; init; } = FieldLimit.DefaultMax;

    /// <summary>How often the index sets, their retention and pipelines are read again (what other nodes changed).</summary>
    public TimeSpan CatalogRefresh { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// Carries the events one node acknowledges to the live tails of the others (cluster mode: through Redis).
/// </summary>
public interface ITailRelay
{
    /// <summary>A batch this node acknowledged: sent to the nodes that follow the index set.</summary>
    void Send(string indexSet, IReadOnlyList<LogEvent> events);

    /// <summary>Whether this node has tails on the index set (then it receives what the others send for it).</summary>
    void Following(string indexSet, bool following);
}

/// <summary>
/// The log store on ClickHouse (cluster mode): each index set a table of its own (see <see cref="ClickHouseEvents"/>),
/// and the index sets themselves, with their retention and cleaning pipeline, in the table <c>logwell_indexsets</c>
/// beside them, so that every node over the same servers sees the same index sets and a change made on one reaches the
/// others within <see cref="ClickHouseStoreOptions.CatalogRefresh"/>.
/// </summary>
public sealed partial class ClickHouseLogStore : ILogStore
{
    internal const string CatalogTable = "logwell_indexsets";

    private readonly ClickHouseStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggers;
    private readonly Dictionary<string, ClickHouseIndexSet> _sets = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _catalog = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private Task _refresh = Task.CompletedTask;
    private int _disposed;

    private ClickHouseLogStore(ClickHouseStoreOptions options, TimeProvider time, ILoggerFactory loggers)
    {
        _options = options;
        _time = time;
        _loggers = loggers;
        _logger = loggers.CreateLogger<ClickHouseLogStore>();
        Client = new ClickHouseReplicas(options.Endpoints, options.User, options.Password, options.Database, TimeSpan.FromMinutes(5));
    }

    internal ClickHouseReplicas Client { get; }

    /// <summary>
    /// Carries acknowledged events to the tails of the other nodes (the store disposes it); null: a tail shows this
    /// node's events only.
    /// </summary>
    public ITailRelay? TailRelay { get; set; }

    /// <summary>Events another node acknowledged into <paramref name="indexSet"/>, for this node's tails.</summary>
    public void Relayed(string indexSet, List<LogEvent> events)
    {
        ClickHouseIndexSet? set;
        lock (_sets)
        {
            _sets.TryGetValue(indexSet, out set);
        }
        set?.Relayed(events);
    }

    internal ClickHouseStoreOptions Options => _options;

    internal TimeProvider Time => _time;

    /// <summary>
    /// Opens the store without waiting for the server: it connects (creating the catalog table and the <c>default</c>
    /// index set where they do not exist) in the background, and reports <see cref="Unreachable"/> until it has.
    /// </summary>
    public static ClickHouseLogStore Open(ClickHouseStoreOptions options, TimeProvider time, ILoggerFactory? loggers = null)
    {
        var store = new ClickHouseLogStore(options, time, loggers ?? NullLoggerFactory.Instance);
        store._unreachable = $"{options.Described} has not answered yet";
        store._refresh = Task.Run(store.RefreshLoopAsync, CancellationToken.None);
        return store;
    }

    /// <summary>Opens the store and connects before answering; fails with the server's answer when it cannot.</summary>
    public static async Task<ClickHouseLogStore> OpenAsync(ClickHouseStoreOptions options, TimeProvider time, ILoggerFactory? loggers = null, CancellationToken cancellationToken = default)
    {
        var store = new ClickHouseLogStore(options, time, loggers ?? NullLoggerFactory.Instance);
        try
        {
            await store.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        store._refresh = Task.Run(store.RefreshLoopAsync, CancellationToken.None);
        return store;
    }

    private volatile bool _connected;
    private volatile string? _unreachable;
    private bool _outageLogged;

    public string? Unreachable => _unreachable;

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        await Client.OnEachAsync(CatalogDdl(), cancellationToken).ConfigureAwait(false);
        await AddPatternsColumnAsync(cancellationToken).ConfigureAwait(false);
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        if (!TryGet(IndexSetName.Default, out _))
        {
            var (outcome, error, _) = await CreateAsync(IndexSetName.Default, null).ConfigureAwait(false);
            if (outcome is not (CreateOutcome.Created or CreateOutcome.AlreadyExists))
            {
                throw new InvalidOperationException(error);
            }
        }
        _connected = true;
    }

    /// <summary>
    /// Gives a catalog made before index sets had the <c>patterns</c> setting its column, on for each of them
    /// (ClickHouse 18.16 has no <c>ADD COLUMN IF NOT EXISTS</c>): once when the catalog is replicated, else on each
    /// server that answers and lacks it.
    /// </summary>
    private async Task AddPatternsColumnAsync(CancellationToken cancellationToken)
    {
        var alter = $"ALTER TABLE {CatalogTable} ADD COLUMN patterns UInt8 DEFAULT 1";
        var replicas = _options.ReplicationPath is null ? Enumerable.Range(0, Client.Count) : [0];
        foreach (var replica in replicas)
        {
            try
            {
                var client = _options.ReplicationPath is null ? Client[replica] : null;
                var has = false;
                var query = $"SELECT count() AS n FROM system.columns WHERE database = currentDatabase() AND table = {ClickHouseSql.Literal(CatalogTable)} AND name = 'patterns'";
                await foreach (var row in (client is null ? Client.QueryAsync(query, cancellationToken: cancellationToken) : client.QueryAsync(query, cancellationToken: cancellationToken)).ConfigureAwait(false))
                {
                    has = row.GetProperty("n").GetInt64() > 0;
                }
                if (!has)
                {
                    await (client is null ? Client.ExecuteAsync(alter, cancellationToken: cancellationToken) : client.ExecuteAsync(alter, cancellationToken: cancellationToken)).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (ClickHouseReplicas.IsReplicaDown(e) && Client.Count > 1)
            {
                // A server away now gets the catalog's table, column included, when it is reconciled.
                _logger.LogDebug("ClickHouse at {Endpoint} did not answer for the catalog's patterns column ({Error})", Client.Endpoints[replica], e.Message);
            }
        }
    }

    private string CatalogDdl()
    {
        var engine = _options.ReplicationPath is { } path
            ? $"ReplicatedReplacingMergeTree({ClickHouseSql.Literal(path.TrimEnd('/') + "/" + CatalogTable)}, '{{replica}}', version)"
            : "ReplacingMergeTree(version)";
        return $"""
            CREATE TABLE IF NOT EXISTS {CatalogTable} (
                name String,
                retention_days UInt32,
                created Int64,
                pipeline String,
                deleted UInt8,
                version Int64,
                patterns UInt8 DEFAULT 1
            ) ENGINE = {engine} ORDER BY name
            """;
    }

    /// <summary>
    /// Changes an index set's table: on one replica when tables are replicated (ClickHouse passes the change on through
    /// ZooKeeper), else on each server.
    /// </summary>
    internal async Task AlterAsync(string ddl)
    {
        if (_options.ReplicationPath is not null)
        {
            await Client.ExecuteAsync(ddl).ConfigureAwait(false);
            return;
        }
        foreach (var (endpoint, error) in await Client.OnEachAsync(ddl).ConfigureAwait(false))
        {
            _logger.LogWarning("ClickHouse at {Endpoint} did not take a change of a table ({Error})", endpoint, error.Message);
        }
    }

    /// <summary>The settings of an insert: the quorum it waits for, when there is one.</summary>
    internal IReadOnlyDictionary<string, string>? InsertSettings => _options.InsertQuorum > 1
        ? new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["insert_quorum"] = _options.InsertQuorum.ToString(CultureInfo.InvariantCulture),
            ["insert_quorum_timeout"] = ((long)_options.InsertQuorumTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        }
        : null;

    private async Task RefreshLoopAsync()
    {
        var first = true;
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                if (!first)
                {
                    await Task.Delay(_options.CatalogRefresh, _time, _stopping.Token).ConfigureAwait(false);
                }
                first = false;
                if (_connected)
                {
                    await RefreshAsync(_stopping.Token).ConfigureAwait(false);
                }
                else
                {
                    await ConnectAsync(_stopping.Token).ConfigureAwait(false);
                }
                if (_unreachable is not null)
                {
                    _logger.LogInformation("{Servers} answers", _options.Described);
                    _unreachable = null;
                    _outageLogged = false;
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is ClickHouseException or HttpRequestException or IOException or OperationCanceledException or InvalidOperationException)
            {
                // The index sets known stay as they are until the server answers again; said once per outage.
                var reason = $"{_options.Described} does not answer: {e.Message}";
                if (!_outageLogged)
                {
                    _logger.LogWarning("{Reason}; nothing is acknowledged until it does", reason);
                    _outageLogged = true;
                }
                _unreachable = reason;
            }
        }
    }

    /// <summary>
    /// Reads the catalog: index sets created, changed or deleted (by any node) since the last read. Holds the catalog's
    /// lock, so that no creation or deletion on this node falls between the read and its use.
    /// </summary>
    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _catalog.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RefreshLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _catalog.Release();
        }
    }

    private async Task RefreshLockedAsync(CancellationToken cancellationToken)
    {
        var rows = new List<(string Name, int Retention, long Created, string Pipeline, bool Deleted, bool Patterns)>();
        await foreach (var row in Client.QueryAsync($"SELECT name, retention_days, created, pipeline, deleted, patterns FROM {CatalogTable} FINAL", cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            rows.Add((row.GetProperty("name").GetString()!, row.GetProperty("retention_days").GetInt32(), row.GetProperty("created").GetInt64(),
                row.GetProperty("pipeline").GetString()!, row.GetProperty("deleted").GetInt32() != 0, row.GetProperty("patterns").GetInt32() != 0));
        }
        var gone = new List<ClickHouseIndexSet>();
        lock (_sets)
        {
            foreach (var (name, retention, created, pipelineText, deleted, patterns) in rows)
            {
                if (deleted)
                {
                    if (_sets.Remove(name, out var removed))
                    {
                        gone.Add(removed);
                    }
                    continue;
                }
                var pipeline = ParsePipeline(name, pipelineText);
                if (_sets.TryGetValue(name, out var known))
                {
                    known.Update(retention, pipeline, patterns);
                }
                else
                {
                    _sets[name] = new ClickHouseIndexSet(this, name, retention, new DateTimeOffset(created, TimeSpan.Zero), pipeline, patterns, _loggers.CreateLogger<ClickHouseIndexSet>());
                }
            }
        }
        foreach (var set in gone)
        {
            await set.DisposeAsync().ConfigureAwait(false);
        }
        if (Client.Count > 1)
        {
            await ReconcileAsync(rows.Select(r => (r.Name, r.Deleted)).ToList(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Brings each replica that answers in line with the catalog: the tables of index sets created while it was away,
    /// made (a replicated table then fetches its parts from the others), and those of deleted ones, dropped.
    /// </summary>
    private async Task ReconcileAsync(List<(string Name, bool Deleted)> catalog, CancellationToken cancellationToken)
    {
        for (var replica = 0; replica < Client.Count; replica++)
        {
            var client = Client[replica];
            try
            {
                var tables = new HashSet<string>(StringComparer.Ordinal);
                await foreach (var row in client.QueryAsync($"SELECT name FROM system.tables WHERE database = currentDatabase()", cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    tables.Add(row.GetProperty("name").GetString()!);
                }
                if (!tables.Contains(CatalogTable))
                {
                    await client.ExecuteAsync(CatalogDdl(), cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                foreach (var (name, deleted) in catalog)
                {
                    var table = ClickHouseEvents.Table(name);
                    // Read again just before: another node may have made the index set anew since the catalog was read.
                    if (deleted && tables.Contains(table) && await ReadRowAsync(name, cancellationToken).ConfigureAwait(false) is null)
                    {
                        await client.ExecuteAsync($"DROP TABLE IF EXISTS {ClickHouseSql.Identifier(table)}", cancellationToken: cancellationToken).ConfigureAwait(false);
                    }
                    else if (!deleted && !tables.Contains(table))
                    {
                        await client.ExecuteAsync(ClickHouseEvents.CreateTable(name, _options.ReplicationPath), cancellationToken: cancellationToken).ConfigureAwait(false);
                        _logger.LogInformation("Index set {Name}: its table made on {Replica}, which was away when the index set was created", name, Client.Endpoints[replica]);
                    }
                }
            }
            catch (Exception e) when (ClickHouseReplicas.IsReplicaDown(e))
            {
                // Done on the refresh after it answers again.
            }
            catch (ClickHouseException e)
            {
                // Another node doing the same at the same time (a table made or dropped meanwhile): tried again on the
                // next refresh; the store itself answers.
                _logger.LogDebug("Reconciling {Replica} with the catalog: {Error}", Client.Endpoints[replica], e.Message);
            }
        }
    }

    /// <summary>
    /// Inserts one block and answers once ClickHouse has it (with its quorum). While a replica's loss unsettles the
    /// quorum (code 319: the outcome of this insert is unknown; 286: an earlier quorum insert is not settled yet), the
    /// same block is sent again every quarter second, for up to three quorum timeouts: a replicated table stores
    /// identical blocks once, and the client sees a slower answer rather than a failure.
    /// </summary>
    internal async Task InsertAsync(string table, byte[] block, CancellationToken cancellationToken = default)
    {
        var settings = InsertSettings;
        var deadline = _time.GetUtcNow() + 3 * _options.InsertQuorumTimeout;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await Client.OnAnyAsync(async client =>
                {
                    await client.InsertAsync(table, block, settings, cancellationToken).ConfigureAwait(false);
                    return true;
                }).ConfigureAwait(false);
                return;
            }
            catch (ClickHouseException e) when (e.Code is 319 or 286 && (attempt < 3 || _time.GetUtcNow() < deadline))
            {
                if (attempt == 1)
                {
                    _logger.LogWarning("An insert into {Table} waits for its quorum to settle ({Error}); sending the same block again", table, e.ServerMessage.Split('\n')[0]);
                }
                await Task.Delay(TimeSpan.FromMilliseconds(250), _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private Task WriteCatalogAsync(string name, int retentionDays, DateTimeOffset created, CleaningPipeline? pipeline, bool patterns, bool deleted, CancellationToken cancellationToken = default)
    {
        var row = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(row))
        {
            writer.WriteStartObject();
            writer.WriteString("name", name);
            writer.WriteNumber("retention_days", retentionDays);
            writer.WriteNumber("created", created.UtcTicks);
            writer.WriteString("pipeline", pipeline?.Definition ?? "");
            writer.WriteNumber("deleted", deleted ? 1 : 0);
            writer.WriteNumber("patterns", patterns ? 1 : 0);
            writer.WriteNumber("version", _time.GetUtcNow().UtcTicks);
            writer.WriteEndObject();
        }
        return InsertAsync(CatalogTable, row.WrittenSpan.ToArray(), cancellationToken);
    }

    /// <summary>A saved pipeline's definition read again; null for none, or for one that no longer reads (said in the log).</summary>
    private CleaningPipeline? ParsePipeline(string name, string definition)
    {
        if (definition.Length == 0)
        {
            return null;
        }
        try
        {
            return CleaningPipeline.Parse(definition);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or JsonException or InvalidOperationException)
        {
            _logger.LogError("Index set {Name}: its saved pipeline no longer reads ({Error}); events are stored without it", name, e.Message);
            return null;
        }
    }

    /// <summary>An index set's row as the catalog holds it now (any node's latest write), or null when it is deleted or unknown.</summary>
    private async Task<(int Retention, DateTimeOffset Created, string Pipeline, bool Patterns)?> ReadRowAsync(string name, CancellationToken cancellationToken = default)
    {
        await foreach (var row in Client.QueryAsync($"SELECT retention_days, created, pipeline, deleted, patterns FROM {CatalogTable} FINAL WHERE name = {ClickHouseSql.Literal(name)}", cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            return row.GetProperty("deleted").GetInt32() != 0
                ? null
                : (row.GetProperty("retention_days").GetInt32(), new DateTimeOffset(row.GetProperty("created").GetInt64(), TimeSpan.Zero), row.GetProperty("pipeline").GetString()!,
                    row.GetProperty("patterns").GetInt32() != 0);
        }
        return null;
    }

    /// <summary>
    /// Saves an index set's pipeline for every node; the caller's copy uses it at once. The other settings are taken
    /// from the catalog as it is now, so that a change another node made a moment ago is kept.
    /// </summary>
    internal async Task SavePipelineAsync(ClickHouseIndexSet set, CleaningPipeline? pipeline, CancellationToken cancellationToken)
    {
        await _catalog.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = await ReadRowAsync(set.Name, cancellationToken).ConfigureAwait(false)
                ?? throw new ObjectDisposedException(set.Name, $"index set '{set.Name}' was deleted");
            await WriteCatalogAsync(set.Name, current.Retention, current.Created, pipeline, current.Patterns, deleted: false, cancellationToken).ConfigureAwait(false);
            set.Update(current.Retention, pipeline, current.Patterns);
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>Saves an index set's <c>patterns</c> setting for every node, keeping its other settings as the catalog has them now.</summary>
    public async Task<bool> SetPatternsAsync(string name, bool on) => await ChangeAsync(name, retentionDays: null, on).ConfigureAwait(false) is not null;

    /// <summary>
    /// Saves an index set's retention and (when given) its <c>patterns</c> setting for every node, the rest as the
    /// catalog has it now; the index set, or null when there is none by that name.
    /// </summary>
    private async Task<ClickHouseIndexSet?> ChangeAsync(string name, int? retentionDays, bool? patterns)
    {
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            ClickHouseIndexSet? set;
            lock (_sets)
            {
                _sets.TryGetValue(name, out set);
            }
            if (set is null || await ReadRowAsync(name).ConfigureAwait(false) is not { } current)
            {
                return null;
            }
            var pipeline = ParsePipeline(name, current.Pipeline);
            var (retention, on) = (retentionDays ?? current.Retention, patterns ?? current.Patterns);
            await WriteCatalogAsync(name, retention, current.Created, pipeline, on, deleted: false).ConfigureAwait(false);
            set.Update(retention, pipeline, on);
            return set;
        }
        finally
        {
            _catalog.Release();
        }
    }

    public IReadOnlyDictionary<string, string> Unavailable => new Dictionary<string, string>(StringComparer.Ordinal);

    public bool TryGet(string name, [NotNullWhen(true)] out ILogIndexSet? indexSet)
    {
        lock (_sets)
        {
            var found = _sets.TryGetValue(name, out var set);
            indexSet = set;
            return found;
        }
    }

    public IReadOnlyList<string> Names()
    {
        lock (_sets)
        {
            return [.. _sets.Keys.Order(StringComparer.Ordinal)];
        }
    }

    public async Task<IReadOnlyList<IndexSetInfo>> ListAsync(CancellationToken cancellationToken = default)
    {
        List<ClickHouseIndexSet> sets;
        lock (_sets)
        {
            sets = [.. _sets.Values.OrderBy(s => s.Name, StringComparer.Ordinal)];
        }
        var infos = new List<IndexSetInfo>(sets.Count);
        foreach (var set in sets)
        {
            infos.Add(await set.InfoAsync(cancellationToken).ConfigureAwait(false));
        }
        return infos;
    }

    public async Task<(CreateOutcome Outcome, string Error, ILogIndexSet? IndexSet)> CreateAsync(string name, int? retentionDays, bool system = false)
    {
        if (!IndexSetName.IsValid(name, out var error, system))
        {
            return (CreateOutcome.InvalidName, error, null);
        }
        var days = retentionDays ?? _options.DefaultRetentionDays;
        if (days is < 1 or > 36_500)
        {
            return (CreateOutcome.InvalidSettings, $"retention_days must be between 1 and 36500, not {days}", null);
        }
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            if (TryGet(name, out _))
            {
                return (CreateOutcome.AlreadyExists, $"index set '{name}' already exists", null);
            }
            if (await ReadRowAsync(name).ConfigureAwait(false) is { } existing)
            {
                // Made a moment ago by another node: this node takes it as it is rather than overwrite its settings.
                var known = new ClickHouseIndexSet(this, name, existing.Retention, existing.Created, ParsePipeline(name, existing.Pipeline), existing.Patterns, _loggers.CreateLogger<ClickHouseIndexSet>());
                lock (_sets)
                {
                    _sets[name] = known;
                }
                return (CreateOutcome.AlreadyExists, $"index set '{name}' already exists", null);
            }
            // The table first: an index set in the catalog always has one.
            await Client.OnEachAsync(ClickHouseEvents.CreateTable(name, _options.ReplicationPath)).ConfigureAwait(false);
            var created = _time.GetUtcNow();
            await WriteCatalogAsync(name, days, created, null, patterns: true, deleted: false).ConfigureAwait(false);
            var set = new ClickHouseIndexSet(this, name, days, created, null, patterns: true, _loggers.CreateLogger<ClickHouseIndexSet>());
            lock (_sets)
            {
                _sets[name] = set;
            }
            _logger.LogInformation("Created index set {Name} in ClickHouse (retention {Days} days)", name, days);
            return (CreateOutcome.Created, "", set);
        }
        finally
        {
            _catalog.Release();
        }
    }

    public async Task<ILogIndexSet> GetOrCreateAsync(string name)
    {
        if (TryGet(name, out var existing))
        {
            return existing;
        }
        var (outcome, error, set) = await CreateAsync(name, null).ConfigureAwait(false);
        return outcome switch
        {
            CreateOutcome.Created => set!,
            CreateOutcome.AlreadyExists when TryGet(name, out var raced) => raced,
            _ => throw new ArgumentException(error),
        };
    }

    public async Task<bool> DeleteAsync(string name)
    {
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            ClickHouseIndexSet? set;
            lock (_sets)
            {
                if (!_sets.Remove(name, out set))
                {
                    return false;
                }
            }
            // The catalog first: once it says deleted, no node writes to the table any more, then the table goes.
            await WriteCatalogAsync(name, set.RetentionDays, set.Created, null, patterns: false, deleted: true).ConfigureAwait(false);
            await set.DisposeAsync().ConfigureAwait(false);
            await Client.OnEachAsync($"DROP TABLE IF EXISTS {ClickHouseSql.Identifier(ClickHouseEvents.Table(name))}").ConfigureAwait(false);
            _logger.LogInformation("Deleted index set {Name} from ClickHouse", name);
            return true;
        }
        finally
        {
            _catalog.Release();
        }
    }

    public async Task<(bool Found, string? Error, IndexSetInfo? Info)> SetRetentionAsync(string name, int retentionDays)
    {
        if (retentionDays is < 1 or > 36_500)
        {
            return (true, $"retention_days must be between 1 and 36500, not {retentionDays}", null);
        }
        return await ChangeAsync(name, retentionDays, patterns: null).ConfigureAwait(false) is { } set
            ? (true, null, await set.InfoAsync().ConfigureAwait(false))
            : (false, null, null);
    }

    public async Task ApplyRetentionAsync(CancellationToken cancellationToken = default)
    {
        List<ClickHouseIndexSet> sets;
        lock (_sets)
        {
            sets = [.. _sets.Values];
        }
        foreach (var set in sets)
        {
            await set.ApplyRetentionAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>ClickHouse merges parts by itself; there is nothing to start.</summary>
    public void RequestMerges()
    {
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _refresh.ConfigureAwait(false);
        List<ClickHouseIndexSet> sets;
        lock (_sets)
        {
            sets = [.. _sets.Values];
            _sets.Clear();
        }
        foreach (var set in sets)
        {
            await set.DisposeAsync().ConfigureAwait(false);
        }
        (TailRelay as IDisposable)?.Dispose();
        Client.Dispose();
        _stopping.Dispose();
        _catalog.Dispose();
    }
}
