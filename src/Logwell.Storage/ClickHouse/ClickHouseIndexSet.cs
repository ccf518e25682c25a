using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Storage.Engine;
using Logwell.Storage.Querying;
using Logwell.Storage.Segments;
using Microsoft.Extensions.Logging;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// One index set on ClickHouse. Appends on this node share inserts (one writer per index set takes whatever waits, up
/// to <see cref="ClickHouseStoreOptions.MaxInsertEvents"/>, as one block), and are acknowledged once ClickHouse has the
/// block with its quorum. A read selects candidate rows with <see cref="ClickHouseFilter"/> in the order of the search
/// and tests each with <see cref="EventMatcher"/>, so its hits are those of the embedded engine.
/// </summary>
internal sealed class ClickHouseIndexSet : ILogIndexSet, IPipelineSource, IAsyncDisposable
{
    private sealed record PendingAppend(List<LogEvent> Events, TaskCompletionSource Done);

    private readonly ClickHouseLogStore _store;
    private readonly ILogger _logger;
    private readonly Channel<PendingAppend> _appends = Channel.CreateUnbounded<PendingAppend>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TailHub _tails;
    private readonly Task _writer;
    private readonly string _table;
    private volatile CleaningPipeline? _pipeline;
    private int _retentionDays;
    private long _queuedEvents;
    private int _disposed;
    private volatile IReadOnlySet<string> _columns = new HashSet<string>(StringComparer.Ordinal);
    private long _columnsReadAt;
    private readonly HashSet<string> _promoted = new(StringComparer.Ordinal);
    private Task _promotion = Task.CompletedTask;
    private long _promotionLookedAt;

    public ClickHouseIndexSet(ClickHouseLogStore store, string name, int retentionDays, DateTimeOffset created, CleaningPipeline? pipeline, bool patterns, ILogger logger)
    {
        _store = store;
        _logger = logger;
        Name = name;
        Created = created;
        _retentionDays = retentionDays;
        _pipeline = pipeline;
        _tagger = patterns ? new PatternTagger() : null;
        _table = ClickHouseSql.Identifier(ClickHouseEvents.Table(name));
        _tails = new TailHub(count => store.TailRelay?.Following(name, count > 0));
        _writer = Task.Run(WriteLoopAsync);
    }

    public string Name { get; }

    public DateTimeOffset Created { get; }

    public int RetentionDays => Volatile.Read(ref _retentionDays);

    public bool IsBackedUp => Interlocked.Read(ref _queuedEvents) > _store.Options.MaxQueuedEvents;

    public CleaningPipeline? Pipeline => _pipeline;

    private volatile PatternTagger? _tagger;

    public PatternTagger? Patterns => _tagger;

    /// <summary>Settings another node saved (read from the catalog).</summary>
    internal void Update(int retentionDays, CleaningPipeline? pipeline, bool patterns)
    {
        Volatile.Write(ref _retentionDays, retentionDays);
        if (pipeline?.Definition != _pipeline?.Definition)
        {
            _pipeline = pipeline;
        }
        if (patterns != (_tagger is not null))
        {
            _tagger = patterns ? new PatternTagger() : null;
        }
    }

    public async Task SetPipelineAsync(CleaningPipeline? pipeline, CancellationToken cancellationToken = default)
    {
        await _store.SavePipelineAsync(this, pipeline, cancellationToken).ConfigureAwait(false);
        _pipeline = pipeline;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Writes
    // ---------------------------------------------------------------------------------------------------------------

    public async Task AppendAsync(List<LogEvent> events, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (events.Count == 0)
        {
            return;
        }
        _pipeline?.ApplyAll(events);
        _tagger?.Tag(events);
        var pending = new PendingAppend(events, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Interlocked.Add(ref _queuedEvents, events.Count);
        if (!_appends.Writer.TryWrite(pending))
        {
            Interlocked.Add(ref _queuedEvents, -events.Count);
            throw new ObjectDisposedException(Name);
        }
        await pending.Done.Task.ConfigureAwait(false);
        StorageMetrics.IngestedEvents.Add(events.Count, new KeyValuePair<string, object?>("indexset", Name));
    }

    public async Task AppendOnceAsync(List<LogEvent> events, string key, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (events.Count == 0)
        {
            return;
        }
        _pipeline?.ApplyAll(events);
        // Ids from the key, the event's place, time and message: the same request makes the same block, byte for byte,
        // and two batches under one key (a bulk request's indices that name one index set) get ids of their own.
        var keyBytes = System.Text.Encoding.UTF8.GetBytes(Name + "\n" + key + "\n");
        Span<byte> place = stackalloc byte[12];
        var blockHash = new System.IO.Hashing.XxHash128();
        for (var i = 0; i < events.Count; i++)
        {
            var hash = new System.IO.Hashing.XxHash64();
            hash.Append(keyBytes);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(place, i);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(place[4..], events[i].Timestamp);
            hash.Append(place);
            hash.Append(System.Text.Encoding.UTF8.GetBytes(events[i].Message));
            events[i].Seq = (long)(hash.GetCurrentHashAsUInt64() & long.MaxValue) | 1;
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(place, events[i].Seq);
            blockHash.Append(place[..8]);
        }
        if (_tagger is { } tagger)
        {
            TagOnce(tagger, events, blockHash.GetCurrentHashAsUInt128());
        }
        try
        {
            await _store.InsertAsync(ClickHouseEvents.Table(Name), ClickHouseEvents.Block(events), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ClickHouseException or HttpRequestException or TaskCanceledException or InvalidOperationException)
        {
            _logger.LogWarning("Index set {Name}: an insert of {Count} events failed ({Error}); none of them was acknowledged", Name, events.Count, e.Message);
            throw new IOException($"ClickHouse did not store the events: {e.Message}", e);
        }
        Publish(events);
        StorageMetrics.IngestedEvents.Add(events.Count, new KeyValuePair<string, object?>("indexset", Name));
    }

    // The pattern ids of the last blocks written under an idempotency key, by the block's event ids: the miner may have
    // moved on when the same request comes again, and the block must be the same bytes for the table to recognise it.
    // A request sent again to another node gets that node's ids, the same unless the two miners differ on its lines.
    private const int OnceIdsKept = 1000;
    private readonly Dictionary<UInt128, string?[]> _onceIds = [];
    private readonly Queue<UInt128> _onceOrder = new();

    private void TagOnce(PatternTagger tagger, List<LogEvent> events, UInt128 block)
    {
        string?[]? ids;
        lock (_onceIds)
        {
            _onceIds.TryGetValue(block, out ids);
        }
        if (ids is not null && ids.Length == events.Count)
        {
            PatternTagger.Apply(events, ids);
            return;
        }
        tagger.Tag(events);
        ids = [.. events.Select(PatternTagger.IdOf)];
        lock (_onceIds)
        {
            if (_onceIds.TryAdd(block, ids))
            {
                _onceOrder.Enqueue(block);
                if (_onceOrder.Count > OnceIdsKept)
                {
                    _onceIds.Remove(_onceOrder.Dequeue());
                }
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _appends.Reader;
        var batch = new List<PendingAppend>();
        var added = new List<LogEvent>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            added.Clear();
            while (added.Count < _store.Options.MaxInsertEvents && reader.TryRead(out var pending))
            {
                batch.Add(pending);
                added.AddRange(pending.Events);
            }
            Interlocked.Add(ref _queuedEvents, -added.Count);
            try
            {
                foreach (var evt in added)
                {
                    evt.Seq = NextSeq();
                }
                await _store.InsertAsync(ClickHouseEvents.Table(Name), ClickHouseEvents.Block(added)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever went wrong, the waiting requests hear it and the loop goes on.
                _logger.LogWarning("Index set {Name}: an insert of {Count} events failed ({Error}); none of them was acknowledged", Name, added.Count, e.Message);
                var failure = new IOException($"ClickHouse did not store the events: {e.Message}", e);
                foreach (var pending in batch)
                {
                    pending.Done.TrySetException(failure);
                }
                continue;
            }
            // Before the acknowledgement, so that whoever stored the batch finds any promotion it starts under way.
            try
            {
                PromoteFields(added);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogWarning("Index set {Name}: choosing fields for columns failed ({Error})", Name, e.Message);
            }
            foreach (var pending in batch)
            {
                pending.Done.TrySetResult();
            }
            Publish(added);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Field columns
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>Fields at most that get columns of their own, per index set: each adds to every insert's work.</summary>
    internal const int MaxFieldColumns = 16;

    /// <summary>ClickHouse's ILLEGAL_COLUMN: the column exists (18.16 has no <c>ADD COLUMN IF NOT EXISTS</c>).</summary>
    private const int DuplicateColumn = 44;

    /// <summary>DUPLICATE_COLUMN, what later releases answer instead.</summary>
    private const int DuplicateColumnNow = 15;

    /// <summary>ClickHouse's UNKNOWN_IDENTIFIER: a replica that has not yet taken a new column.</summary>
    private const int UnknownColumn = 47;

    /// <summary>
    /// Gives columns of their own to the fields that at least half of a batch's events carry with few distinct values
    /// (up to <see cref="MaxFieldColumns"/>), in the background: an ALTER on a replicated table may wait for replicas, and
    /// acknowledged events must not. A field another node promoted meanwhile is simply found to exist.
    /// </summary>
    private void PromoteFields(List<LogEvent> events)
    {
        int room;
        lock (_promoted)
        {
            room = MaxFieldColumns - _promoted.Count;
        }
        var now = _store.Time.GetUtcNow().UtcTicks;
        if (events.Count < 100 || !_promotion.IsCompleted || room <= 0 || now - _promotionLookedAt < TimeSpan.TicksPerMinute)
        {
            return;
        }
        // A look at the first thousand events of a batch, once a minute at most: the writer's time belongs to inserts.
        _promotionLookedAt = now;
        var sample = events.Count <= 1000 ? events : events.GetRange(0, 1000);
        var counts = new Dictionary<string, (int Events, HashSet<string> Values)>(StringComparer.Ordinal);
        var distinctCap = Math.Max(10, sample.Count / 10);
        foreach (var evt in sample)
        {
            foreach (var field in evt.Fields)
            {
                ref var seen = ref CollectionsMarshal.GetValueRefOrAddDefault(counts, field.Name, out var existed);
                if (!existed)
                {
                    seen = (0, new HashSet<string>(StringComparer.Ordinal));
                }
                seen.Events++;
                if (seen.Values.Count <= distinctCap)
                {
                    seen.Values.Add(field.Value.SearchText ?? "");
                }
            }
        }
        // Fields with few values (level, host, service: what field clauses name) pay for their column many times over;
        // one with a value per event (a trace id) would double its size on disk for what a bare search finds anyway.
        List<string> wanted;
        lock (_promoted)
        {
            wanted = [.. counts.Where(c => c.Value.Events * 2 >= sample.Count && c.Value.Values.Count <= distinctCap && !_promoted.Contains(c.Key) && !_columns.Contains(ClickHouseEvents.FieldColumn(c.Key)))
                .OrderByDescending(c => c.Value.Events).ThenBy(c => c.Key, StringComparer.Ordinal).Select(c => c.Key).Take(room)];
        }
        if (wanted.Count == 0)
        {
            return;
        }
        _promotion = PromoteAsync(wanted);
    }

    /// <summary>Gives these fields columns of their own (also what tests use to choose them).</summary>
    internal async Task PromoteAsync(IReadOnlyList<string> names)
    {
        lock (_promoted)
        {
            _promoted.UnionWith(names);
        }
        await Task.Yield();
        // What the table has now, whoever added it: a field with its columns is skipped, and those count towards the cap.
        try
        {
            await ReadColumnsAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _logger.LogWarning("Index set {Name}: its columns could not be read ({Error}); no field gets a column of its own for now", Name, e.Message);
            return;
        }
        var existing = _columns.Count(c => c.StartsWith(ClickHouseEvents.KindColumnPrefix, StringComparison.Ordinal));
        names = [.. names.Where(n => !_columns.Contains(ClickHouseEvents.KindColumn(n)) || !_columns.Contains(ClickHouseEvents.FieldColumn(n))).Take(Math.Max(0, MaxFieldColumns - existing))];
        if (names.Count == 0)
        {
            return;
        }
        foreach (var name in names)
        {
            foreach (var ddl in ClickHouseEvents.FieldColumnDdl(Name, name))
            {
                try
                {
                    await _store.AlterAsync(ddl).ConfigureAwait(false);
                }
                catch (ClickHouseException e) when (e.Code is DuplicateColumn or DuplicateColumnNow)
                {
                    // Another node gave the field its column first.
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    _logger.LogWarning("Index set {Name}: field {Field} gets no column of its own for now ({Error}); searches read it from the arrays", Name, name, e.Message);
                    return;
                }
            }
        }
        await ReadColumnsAsync(CancellationToken.None).ConfigureAwait(false);
        _logger.LogInformation("Index set {Name}: fields {Fields} have columns of their own", Name, string.Join(", ", names));
    }

    /// <summary>Waits for the field columns being added, and reads which exist (for tests and tools).</summary>
    internal async Task<IReadOnlySet<string>> FieldColumnsAsync()
    {
        await _promotion.ConfigureAwait(false);
        await ReadColumnsAsync(CancellationToken.None).ConfigureAwait(false);
        return _columns;
    }

    private async Task ReadColumnsAsync(CancellationToken cancellationToken)
    {
        var columns = new HashSet<string>(StringComparer.Ordinal);
        var sql = $"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {ClickHouseSql.Literal(ClickHouseEvents.Table(Name))}";
        await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            columns.Add(row.GetProperty("name").GetString()!);
        }
        _columns = columns;
    }

    /// <summary>
    /// The filter of <paramref name="query"/> over the field columns this node knows of, read again every ten seconds
    /// (columns are only ever added, and a filter that does not use one is as right, only slower).
    /// </summary>
    private async Task<ClickHouseFilter> FilterForAsync(QueryNode query, CancellationToken cancellationToken)
    {
        var now = _store.Time.GetUtcNow();
        if (now.UtcTicks - Interlocked.Read(ref _columnsReadAt) > TimeSpan.TicksPerSecond * 10)
        {
            Interlocked.Exchange(ref _columnsReadAt, now.UtcTicks);
            try
            {
                await ReadColumnsAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ClickHouseException or HttpRequestException)
            {
                // The columns known so far serve; the search itself will say whether ClickHouse answers.
            }
        }
        return ClickHouseFilter.For(query, now, _columns);
    }

    /// <summary>
    /// This process's sequence numbers start at a random point below 2^62 and rise. Two nodes' numbers meet only if
    /// their starts fall closer than the events they write (for a trillion events, about one chance in two million
    /// per pair of nodes), and even then two events share a position only if they also share their time.
    /// </summary>
    private static long _seq = Random.Shared.NextInt64(1, 1L << 62);

    /// <summary>
    /// With the time, orders events and names them in cursors: rising within a node, so events of one instant come
    /// back in the order they were stored, as on the embedded engine; unique across nodes without coordination.
    /// </summary>
    private static long NextSeq() => Interlocked.Increment(ref _seq);

    public TailSubscription Tail(int capacity = 256) => _tails.Subscribe(capacity);

    /// <summary>Acknowledged events to this node's tails, and through the relay to the other nodes' (a tail's trouble is not the writer's).</summary>
    private void Publish(List<LogEvent> events)
    {
        try
        {
            _tails.Publish(events);
            _store.TailRelay?.Send(Name, events);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _logger.LogWarning("Index set {Name}: live tails missed a batch ({Error})", Name, e.Message);
        }
    }

    /// <summary>Events another node acknowledged, for this node's tails.</summary>
    internal void Relayed(List<LogEvent> events) => _tails.Publish(events);

    // ---------------------------------------------------------------------------------------------------------------
    // Reads
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>The start of the oldest UTC day still inside retention: reads see nothing older, as on the embedded engine.</summary>
    private long RetainedFrom()
    {
        var cutoff = _store.Time.GetUtcNow().UtcTicks - RetentionDays * TimeSpan.TicksPerDay;
        return cutoff - cutoff % TimeSpan.TicksPerDay;
    }

    private static string Ticks(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The conditions of a time-ordered read: the window within retention, the cursor, and the query's filter.</summary>
    private string Where(SearchRequest request, ClickHouseFilter filter)
    {
        var from = Math.Max(request.From ?? long.MinValue, RetainedFrom());
        var where = new StringBuilder("t >= ").Append(Ticks(from));
        if (request.To is { } to)
        {
            where.Append(" AND t < ").Append(Ticks(to));
        }
        if (request.After is { } after)
        {
            var op = request.OldestFirst ? ">" : "<";
            where.Append(CultureInfo.InvariantCulture, $" AND (t {op} {Ticks(after.Timestamp)} OR t = {Ticks(after.Timestamp)} AND seq {op} {Ticks(after.Seq)})");
        }
        if (filter.Sql != "1")
        {
            where.Append(" AND (").Append(filter.Sql).Append(')');
        }
        return where.ToString();
    }

    /// <summary>
    /// The events <paramref name="filter"/> selects in the search's order (newest first unless oldest first) that match:
    /// rows the filter is sure of as they are, the others once the matcher agrees.
    /// </summary>
    private async IAsyncEnumerable<LogEvent> MatchingAsync(SearchRequest request, ClickHouseFilter filter, int? limit, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var matcher = filter.Exact ? null : EventMatcher.Compile(request.Query, _store.Time.GetUtcNow());
        var sure = !filter.Exact && filter.Sure != "0";
        var order = request.OldestFirst ? "ASC" : "DESC";
        var sql = $"SELECT {ClickHouseEvents.Columns}{(sure ? $", ({filter.Sure}) AS lw_sure" : "")} FROM {_table} WHERE {Where(request, filter)} ORDER BY t {order}, seq {order}";
        if (limit is { } n && filter.Exact)
        {
            sql += " LIMIT " + n.ToString(CultureInfo.InvariantCulture);
        }
        await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var evt = ClickHouseEvents.Read(row);
            if (matcher is null || (sure && row.GetProperty("lw_sure").GetInt32() != 0) || matcher(evt))
            {
                yield return evt;
            }
        }
    }

    /// <summary>
    /// What a first pass over the candidates tells: how many, how many are sure, all their keys when few, and the
    /// times at <see cref="TimeQuantiles"/> of them (estimates, from a sample), to bound the page's read.
    /// </summary>
    private sealed record Probe(long Candidates, long Sure, List<EventPosition>? Keys, double[] Times);

    private static readonly double[] TimeQuantiles = [0.0001, 0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999];

    /// <summary>Candidates at most whose keys a probe brings back, to read them by key instead of scanning again.</summary>
    private const int ProbeKeys = 1000;

    private async Task<Probe> ProbeAsync(SearchRequest request, ClickHouseFilter filter, CancellationToken cancellationToken)
    {
        var sure = filter.Exact ? "count()" : filter.Sure == "0" ? "0" : $"countIf({filter.Sure})";
        var quantiles = string.Join(", ", TimeQuantiles.Select(q => q.ToString(CultureInfo.InvariantCulture)));
        var sql = $"SELECT {sure} AS lw_sure, count() AS lw_count, groupArray({ProbeKeys + 1})((t, seq)) AS lw_keys, quantiles({quantiles})(t) AS lw_times FROM {_table} WHERE {Where(request, filter)}";
        await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var candidates = row.GetProperty("lw_count").GetInt64();
            List<EventPosition>? keys = null;
            if (candidates <= ProbeKeys)
            {
                keys = [.. row.GetProperty("lw_keys").EnumerateArray().Select(k => new EventPosition(ClickHouseEvents.Int64(k[0]), ClickHouseEvents.Int64(k[1])))];
            }
            var times = candidates == 0 ? [] : row.GetProperty("lw_times").EnumerateArray().Select(t => t.ValueKind == System.Text.Json.JsonValueKind.String ? double.Parse(t.GetString()!, CultureInfo.InvariantCulture) : t.GetDouble()).ToArray();
            return new Probe(candidates, row.GetProperty("lw_sure").GetInt64(), keys, times);
        }
        return new Probe(0, 0, [], []);
    }

    /// <summary>
    /// The events with these keys that pass the filter's condition, read through the primary key (time, seq). Every row
    /// of a key comes back once, so an event stored twice (a retried batch on a table without deduplication) is read as
    /// the other paths read it.
    /// </summary>
    private async Task<List<LogEvent>> ReadByKeysAsync(List<EventPosition> keys, ClickHouseFilter filter, CancellationToken cancellationToken)
    {
        keys = [.. keys.Distinct()];
        var events = new List<LogEvent>(keys.Count);
        for (var start = 0; start < keys.Count; start += 500)
        {
            var chunk = keys.GetRange(start, Math.Min(500, keys.Count - start));
            var tuples = string.Join(", ", chunk.Select(k => $"({Ticks(k.Timestamp)}, {Ticks(k.Seq)})"));
            var sql = $"SELECT {ClickHouseEvents.Columns} FROM {_table} WHERE t >= {Ticks(chunk.Min(k => k.Timestamp))} AND t <= {Ticks(chunk.Max(k => k.Timestamp))} AND (t, seq) IN ({tuples}) AND ({filter.Sql})";
            await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                events.Add(ClickHouseEvents.Read(row));
            }
        }
        return events;
    }

    /// <summary>
    /// The page of a read whose candidates all matched when counted: the keys in order, then the rows. Null when a
    /// candidate of the page is in doubt after all (stored since the count), for the caller to read the slow way.
    /// </summary>
    private async Task<List<LogEvent>?> PageAsync(SearchRequest request, ClickHouseFilter filter, int limit, Probe probe, CancellationToken cancellationToken)
    {
        if (limit == 0)
        {
            return [];
        }
        var order = request.OldestFirst ? "ASC" : "DESC";
        var sure = filter.Exact ? "1" : filter.Sure;
        var keys = new List<EventPosition>(limit);
        // The page lies among the newest (or oldest) candidates: a bound at a time the probe's quantiles put well
        // beyond the page spares a second scan of the whole window. Should the bound hold fewer than a page (the
        // quantiles are estimates, and events may have gone), the read is made again without it.
        foreach (var bound in new[] { TimeBound(request.OldestFirst, limit, probe), null })
        {
            keys.Clear();
            var where = Where(request, filter) + (bound ?? "");
            var sql = $"SELECT t, seq, ({sure}) AS lw_sure FROM {_table} WHERE {where} ORDER BY t {order}, seq {order} LIMIT {limit.ToString(CultureInfo.InvariantCulture)}";
            await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                if (row.GetProperty("lw_sure").GetInt32() == 0)
                {
                    return null;
                }
                keys.Add(new EventPosition(ClickHouseEvents.Int64(row.GetProperty("t")), ClickHouseEvents.Int64(row.GetProperty("seq"))));
            }
            if (bound is null || keys.Count == limit)
            {
                break;
            }
        }
        var byKey = (await ReadByKeysAsync(keys, filter, cancellationToken).ConfigureAwait(false)).ToLookup(e => new EventPosition(e.Timestamp, e.Seq));
        // In the page's order; an event gone between the two reads (its partition dropped by retention) is left out.
        return [.. keys.Distinct().SelectMany(k => byKey[k]).Take(limit)];
    }

    /// <summary>
    /// A condition on <c>t</c> that the probe's quantiles say at least four pages of candidates meet, at the newest end
    /// (oldest, when <paramref name="oldestFirst"/>); null when none is that narrow.
    /// </summary>
    private static string? TimeBound(bool oldestFirst, int limit, Probe probe)
    {
        if (probe.Times.Length != TimeQuantiles.Length)
        {
            return null;
        }
        string? bound = null;
        // A millisecond of margin around a time a double holds to within 128 ticks.
        const long margin = TimeSpan.TicksPerMillisecond;
        for (var i = 0; i < TimeQuantiles.Length; i++)
        {
            var share = oldestFirst ? TimeQuantiles[i] : 1 - TimeQuantiles[TimeQuantiles.Length - 1 - i];
            if (share * probe.Candidates >= 4.0 * limit)
            {
                var at = probe.Times[oldestFirst ? i : TimeQuantiles.Length - 1 - i];
                bound = oldestFirst
                    ? $" AND t <= {Ticks((long)Math.Ceiling(at) + margin)}"
                    : $" AND t >= {Ticks((long)Math.Floor(at) - margin)}";
                break;
            }
        }
        return bound;
    }

    public async Task<SearchResult> SearchAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        if (request.OrderBy is { } fieldOrder)
        {
            return await SearchByFieldAsync(request, fieldOrder, cancellationToken).ConfigureAwait(false);
        }
        try
        {
            return await SearchAsync(request, await FilterForAsync(request.Query, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (ClickHouseException e) when (e.Code == UnknownColumn && _columns.Count > 0)
        {
            // A replica that has not yet taken a field's new column: the arrays answer as well.
            return await SearchAsync(request, ClickHouseFilter.For(request.Query, _store.Time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A first pass counts the candidates and the sure ones. Few candidates are then read by key and tested here; many,
    /// all sure, are counted by ClickHouse, which finds the page's keys and then the page; otherwise the candidates
    /// stream in order through the matcher.
    /// </summary>
    private async Task<SearchResult> SearchAsync(SearchRequest request, ClickHouseFilter filter, CancellationToken cancellationToken)
    {
        var limit = Math.Max(0, request.Limit);
        var trackTotal = request.TrackTotalHitsUpTo ?? _store.Options.TrackTotalHitsUpTo;
        var now = _store.Time.GetUtcNow();
        var probe = await ProbeAsync(request, filter, cancellationToken).ConfigureAwait(false);
        var hits = new List<LogEvent>(Math.Min(limit, 10_000));
        long total = 0;
        var exact = true;
        if (probe.Keys is { } keys)
        {
            var matcher = filter.Exact ? null : EventMatcher.Compile(request.Query, now);
            var matching = (await ReadByKeysAsync(keys, filter, cancellationToken).ConfigureAwait(false)).Where(e => matcher is null || matcher(e)).ToList();
            matching.Sort((x, y) => x.Timestamp != y.Timestamp ? x.Timestamp.CompareTo(y.Timestamp) : x.Seq.CompareTo(y.Seq));
            if (!request.OldestFirst)
            {
                matching.Reverse();
            }
            total = matching.Count;
            hits.AddRange(matching.Take(limit));
        }
        else if ((filter.Exact || probe.Sure == probe.Candidates) && await PageAsync(request, filter, limit, probe, cancellationToken).ConfigureAwait(false) is { } page)
        {
            // Every candidate matched when counted: ClickHouse counted them, and found the page's keys before its rows.
            total = probe.Candidates;
            hits.AddRange(page);
        }
        else
        {
            await foreach (var evt in MatchingAsync(request, filter, null, cancellationToken).ConfigureAwait(false))
            {
                if (hits.Count == limit && total >= trackTotal)
                {
                    // Counted as far as asked: the total is a lower bound from here on.
                    exact = false;
                    break;
                }
                total++;
                if (hits.Count < limit)
                {
                    hits.Add(evt);
                }
            }
        }
        EventPosition? next = hits.Count == limit && limit > 0 ? new EventPosition(hits[^1].Timestamp, hits[^1].Seq) : null;
        return new SearchResult(hits, total, exact, next);
    }

    /// <summary>Every match is read, so the total is exact; the first <c>Limit</c> in the field order after the cursor key are kept.</summary>
    private async Task<SearchResult> SearchByFieldAsync(SearchRequest request, FieldOrder order, CancellationToken cancellationToken)
    {
        var limit = Math.Max(0, request.Limit);
        var after = request.AfterKey;
        var heap = new PriorityQueue<LogEvent, OrderKey>(limit + 1, Comparer<OrderKey>.Create((a, b) => order.Compare(b, a)));
        long total = 0;
        var unordered = request with { After = null, OldestFirst = false };
        await foreach (var evt in MatchingAsync(unordered, ClickHouseFilter.For(request.Query, _store.Time.GetUtcNow()), null, cancellationToken).ConfigureAwait(false))
        {
            var value = evt.TryGetField(order.Field, out var field) ? OrderValue.Of(field)
                : string.Equals(order.Field, EventMatcher.MessageField, StringComparison.Ordinal) ? new OrderValue(false, 0, evt.Message)
                : OrderValue.Missing;
            var key = new OrderKey(value, new EventPosition(evt.Timestamp, evt.Seq));
            if (after is not null && order.Compare(key, after.Value) <= 0)
            {
                continue;
            }
            total++;
            if (heap.Count < limit)
            {
                heap.Enqueue(evt, key);
            }
            else if (limit > 0 && heap.TryPeek(out _, out var last) && order.Compare(key, last) < 0)
            {
                heap.DequeueEnqueue(evt, key);
            }
        }
        var hits = new LogEvent[heap.Count];
        OrderKey lastKey = default;
        for (var i = hits.Length - 1; i >= 0; i--)
        {
            heap.TryDequeue(out var evt, out var key);
            hits[i] = evt!;
            if (i == hits.Length - 1)
            {
                lastKey = key;
            }
        }
        var more = hits.Length == limit && limit > 0;
        return new SearchResult(hits, total, true, null) { NextOrderKey = more ? lastKey : null };
    }

    public async Task<HistogramResult> HistogramAsync(SearchRequest request, long bucketTicks, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketTicks, 1);
        var all = request with { After = null };
        try
        {
            var filter = await FilterForAsync(request.Query, cancellationToken).ConfigureAwait(false);
            return await HistogramAsync(all, bucketTicks, filter, cancellationToken).ConfigureAwait(false);
        }
        catch (ClickHouseException e) when (e.Code == UnknownColumn && _columns.Count > 0)
        {
            return await HistogramAsync(all, bucketTicks, ClickHouseFilter.For(request.Query, _store.Time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<HistogramResult> HistogramAsync(SearchRequest all, long bucketTicks, ClickHouseFilter filter, CancellationToken cancellationToken)
    {
        var counts = new Dictionary<long, long>();
        long total = 0;
        if (filter.Sure != "0")
        {
            // ClickHouse counts the sure rows per bucket; the matcher reads only the rows left in doubt.
            var b = Ticks(bucketTicks);
            var sure = filter.Exact ? "count()" : $"countIf({filter.Sure})";
            var sql = $"SELECT t - ((t % {b}) + {b}) % {b} AS lw_bucket, {sure} AS lw_count FROM {_table} WHERE {Where(all, filter)} GROUP BY lw_bucket";
            await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                var n = row.GetProperty("lw_count").GetInt64();
                if (n > 0)
                {
                    counts[row.GetProperty("lw_bucket").GetInt64()] = n;
                    total += n;
                }
            }
            if (filter.Exact)
            {
                return new HistogramResult(counts, total);
            }
            filter = new ClickHouseFilter($"({filter.Sql}) AND NOT ({filter.Sure})", "0");
        }
        await foreach (var evt in MatchingAsync(all, filter, null, cancellationToken).ConfigureAwait(false))
        {
            var t = evt.Timestamp;
            var bucket = t - (((t % bucketTicks) + bucketTicks) % bucketTicks);
            counts[bucket] = counts.GetValueOrDefault(bucket) + 1;
            total++;
        }
        return new HistogramResult(counts, total);
    }

    public async Task<LogEvent?> FindBySeqAsync(long seq, CancellationToken cancellationToken = default)
    {
        if (seq <= 0)
        {
            return null;
        }
        var sql = $"SELECT {ClickHouseEvents.Columns} FROM {_table} WHERE seq = {Ticks(seq)} AND t >= {Ticks(RetainedFrom())} LIMIT 1";
        await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            return ClickHouseEvents.Read(row);
        }
        return null;
    }

    public async Task<(long Min, long Max)?> TimeBoundsAsync(CancellationToken cancellationToken = default)
    {
        var sql = $"SELECT min(t) AS lo, max(t) AS hi, count() AS n FROM {_table} WHERE t >= {Ticks(RetainedFrom())}";
        await foreach (var row in _store.Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            return row.GetProperty("n").GetInt64() == 0 ? null : (row.GetProperty("lo").GetInt64(), row.GetProperty("hi").GetInt64());
        }
        return null;
    }

    public async Task<IndexSetInfo> InfoAsync(CancellationToken cancellationToken = default)
    {
        long events = 0, bytes = 0;
        var parts = 0;
        var fields = 0;
        var name = ClickHouseSql.Literal(ClickHouseEvents.Table(Name));
        await foreach (var row in _store.Client.QueryAsync($"SELECT sum(rows) AS n, sum(bytes) AS b, count() AS p FROM system.parts WHERE database = currentDatabase() AND table = {name} AND active", cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            events = row.GetProperty("n").GetInt64();
            bytes = row.GetProperty("b").GetInt64();
            parts = row.GetProperty("p").GetInt32();
        }
        await foreach (var row in _store.Client.QueryAsync($"SELECT uniqExact(arrayJoin(arrayFilter(n -> n != {ClickHouseSql.Literal(PatternTagger.Field)}, field_names))) AS f FROM {_table}", cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            fields = row.GetProperty("f").GetInt32();
        }
        return new IndexSetInfo(Name, RetentionDays, Created, events, bytes, parts, fields, _store.Options.MaxFieldsPerIndexSet) { Patterns = _tagger is not null };
    }

    public Task<ResultTable> RunPipelineAsync(Pipeline pipeline, long? from, long? to, CancellationToken cancellationToken = default) =>
        // The runner is synchronous; it reads through this index set's blocking adapter on a pool thread.
        Task.Run(() => PipelineRunner.Run((IPipelineSource)this, pipeline, from, to, cancellationToken), cancellationToken);

    /// <summary>Drops the day partitions whose every event is past retention: whole parts, cheap on every release.</summary>
    public async Task ApplyRetentionAsync(CancellationToken cancellationToken)
    {
        var cutoff = _store.Time.GetUtcNow().UtcTicks - RetentionDays * TimeSpan.TicksPerDay;
        var name = ClickHouseSql.Literal(ClickHouseEvents.Table(Name));
        var expired = new List<string>();
        await foreach (var row in _store.Client.QueryAsync($"SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = {name} AND active", cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var partition = row.GetProperty("partition").GetString()!.Trim('\'');
            if (DateTime.TryParseExact(partition, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var day)
                && day.Ticks + TimeSpan.TicksPerDay <= cutoff)
            {
                expired.Add(partition);
            }
        }
        foreach (var partition in expired)
        {
            await _store.Client.ExecuteAsync($"ALTER TABLE {_table} DROP PARTITION {ClickHouseSql.Literal(partition)}", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        if (expired.Count > 0)
        {
            _logger.LogInformation("Index set {Name}: dropped {Count} expired day partitions ({Days})", Name, expired.Count, string.Join(", ", expired));
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // What pipes read: the same reads, waited for on the runner's thread
    // ---------------------------------------------------------------------------------------------------------------

    SearchResult IPipelineSource.Search(SearchRequest request, CancellationToken cancellationToken) =>
        SearchAsync(request, cancellationToken).GetAwaiter().GetResult();

    HistogramResult IPipelineSource.Histogram(SearchRequest request, long bucketTicks, CancellationToken cancellationToken) =>
        HistogramAsync(request, bucketTicks, cancellationToken).GetAwaiter().GetResult();

    (long Min, long Max)? IPipelineSource.TimeBounds() => TimeBoundsAsync().GetAwaiter().GetResult();

    CountByResult IPipelineSource.CountBy(SearchRequest request, string field, CancellationToken cancellationToken)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        long total = 0;
        foreach (var evt in MatchingAsync(request, ClickHouseFilter.For(request.Query, _store.Time.GetUtcNow()), null, cancellationToken).ToBlockingEnumerable(cancellationToken))
        {
            if (evt.TryGetField(field, out var value) && value.SearchText is { } key)
            {
                counts[key] = counts.GetValueOrDefault(key) + 1;
                total++;
            }
        }
        return new CountByResult(counts, total);
    }

    void IPipelineSource.Scan(SearchRequest request, CancellationToken cancellationToken, Action<BlockRows, ulong[]?> block, Action<List<LogEvent>> events)
    {
        var batch = new List<LogEvent>(4096);
        foreach (var evt in MatchingAsync(request, ClickHouseFilter.For(request.Query, _store.Time.GetUtcNow()), null, cancellationToken).ToBlockingEnumerable(cancellationToken))
        {
            batch.Add(evt);
            if (batch.Count == 4096)
            {
                events(batch);
                batch = new List<LogEvent>(4096);
            }
        }
        if (batch.Count > 0)
        {
            events(batch);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _appends.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        _tails.Close();
    }
}
