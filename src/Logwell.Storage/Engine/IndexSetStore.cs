using System.Text.Json;
using System.Globalization;
using System.Threading.Channels;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Storage.Encoding;
using Logwell.Storage.Querying;
using Logwell.Storage.Segments;
using Logwell.Storage.Wal;
using Microsoft.Extensions.Logging;

namespace Logwell.Storage.Engine;

/// <summary>
/// The storage of one index set: a write-ahead log with group commit in front of a memory table, flushed into
/// immutable per-day segments that are merged in the background and dropped whole when they expire.
/// </summary>
public sealed class IndexSetStore : ILogIndexSet, IPipelineSource, IAsyncDisposable
{
    internal const string SegmentDirectoryName = "segments";
    private const string WalPrefix = "wal-";
    private const string WalSuffix = ".log";

    private readonly EngineOptions _options;

    /// <summary>Whether a search evaluates the next block on a pool thread while it evaluates one (not on one core).</summary>
    private static readonly bool EvaluateAhead = Environment.ProcessorCount > 1;

    /// <summary>How many blocks ahead of its evaluation a search asks the kernel to read their postings.</summary>
    private const int ReadAheadBlocks = 64;

    /// <summary>A block whose evaluation took longer (0.2 ms) makes the search evaluate the next ones two at a time.</summary>
    private const long SlowBlockTicks = TimeSpan.TicksPerMillisecond / 5;
    private readonly BlockCache _cache;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _segmentDirectory;
    private readonly Channel<PendingAppend> _appends = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(4096) { SingleReader = true });
    private readonly SemaphoreSlim _maintenance = new(1, 1);
    private readonly SemaphoreSlim _flushSignal = new(0, int.MaxValue);
    private readonly SemaphoreSlim _mergeSignal = new(0, int.MaxValue);
    private readonly SemaphoreSlim _mergeLock = new(1, 1);
    private readonly SemaphoreSlim _frozenDrained = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _stateLock = new();
    private readonly TailHub _tails = new();
    private readonly Task _writer;
    private readonly Task _flusher;
    private readonly Task _merger;
    private State _state;
    private Manifest _manifest;
    /// <summary>The active memory table's log; null while it could not be created (the writer tries again).</summary>
    private WriteAheadLog? _wal;
    private long _nextSeq;
    private bool _disposed;

    /// <summary>The index set's distinct field names, bounded; applied by the writer (and on recovery) in log order.</summary>
    private readonly FieldLimit _fields;
    private int _fieldCount;

    private sealed record State(IReadOnlyList<Segment> Segments, IReadOnlyList<MemTable> Frozen, MemTable Active);

    private sealed record PendingAppend(List<LogEvent> Events, TaskCompletionSource Done, bool Rotate = false);

    private IndexSetStore(string directory, IndexSetSettings settings, EngineOptions options, BlockCache cache, ILogger logger, TimeProvider time)
    {
        Directory = directory;
        Settings = settings;
        _options = options;
        _cache = cache;
        _logger = logger;
        _time = time;
        _segmentDirectory = Path.Combine(directory, SegmentDirectoryName);
        System.IO.Directory.CreateDirectory(_segmentDirectory);
        _manifest = Manifest.Load(directory);
        LoadPipeline();
        // On unless turned off; an index set restored from the archive has it off unless it was turned on.
        _tagger = settings.Patterns ?? settings.Restored is null ? new PatternTagger() : null;
        var segments = OpenSegments();
        _fields = new FieldLimit(options.MaxFieldsPerIndexSet);
        _fields.Know(segments.SelectMany(segment => segment.FieldNames));
        var recoveredThrough = Recover(out var recovered);
        _fieldCount = _fields.Count;
        _nextSeq = Math.Max(recoveredThrough, _manifest.FlushedSeq) + 1;
        var walPath = NextWalPath();
        try
        {
            _wal = WriteAheadLog.Create(walPath);
        }
        catch (IOException e)
        {
            // A full disk: the recovered events serve from memory; the writer creates the log with the first append.
            _logger.LogWarning("Index set {Name}: cannot create a write-ahead log file yet ({Error}); ingest is refused until it can", Name, e.Message);
        }
        _state = new State(segments, recovered, new MemTable(walPath));
        _writer = Task.Run(WriteLoopAsync);
        _flusher = Task.Run(FlushLoopAsync);
        _merger = Task.Run(MergeLoopAsync);
        if (recovered.Count > 0)
        {
            _flushSignal.Release();
        }
    }

    private string NextWalPath() => Path.Combine(Directory, $"{WalPrefix}{_nextSeq.ToString("D20", CultureInfo.InvariantCulture)}{WalSuffix}");

    /// <summary>Frozen memory tables allowed to wait for their flush before appends wait too (bounds memory).</summary>
    private const int MaxFrozenMemTables = 2;

    public string Name => Settings.Name;
    public string Directory { get; }
    internal IndexSetSettings Settings { get; private set; }

    /// <summary>Keeps events for <paramref name="days"/> from now on: saved beside the data before it takes effect.</summary>
    internal void SetRetention(int days)
    {
        var settings = Settings with { RetentionDays = days };
        settings.Save(Directory);
        Settings = settings;
    }

    /// <summary>Moves whole days older than <paramref name="days"/> to the archive from now on (null: never).</summary>
    internal void SetArchiveAfter(int? days)
    {
        var settings = Settings with { ArchiveAfterDays = days };
        settings.Save(Directory);
        Settings = settings;
    }

    /// <summary>Whole days older than this many days move to the archive (null: never).</summary>
    public int? ArchiveAfterDays => Settings.ArchiveAfterDays;

    private volatile PatternTagger? _tagger;

    /// <summary>What gives each appended event its pattern id; null when the index set's <c>patterns</c> setting is off.</summary>
    public PatternTagger? Patterns => _tagger;

    /// <summary>Turns pattern ids at ingest on or off from now on: saved beside the data before it takes effect.</summary>
    internal void SetPatterns(bool on)
    {
        var settings = Settings with { Patterns = on };
        settings.Save(Directory);
        Settings = settings;
        _tagger = on ? _tagger ?? new PatternTagger() : null;
    }

    /// <summary>For an index set restored from the archive: what it holds and when it goes.</summary>
    public RestoredRange? Restored => Settings.Restored;

    internal static IndexSetStore Open(string directory, EngineOptions options, BlockCache cache, ILogger logger, TimeProvider time) =>
        new(directory, IndexSetSettings.Load(directory), options, cache, logger, time);

    internal static IndexSetStore Create(string directory, IndexSetSettings settings, EngineOptions options, BlockCache cache, ILogger logger, TimeProvider time)
    {
        System.IO.Directory.CreateDirectory(directory);
        settings.Save(directory);
        Encoding.DurableFile.SyncDirectory(Path.GetDirectoryName(directory)!);
        return new IndexSetStore(directory, settings, options, cache, logger, time);
    }

    private List<Segment> OpenSegments()
    {
        var live = new HashSet<string>(_manifest.Segments.Select(s => s.File), StringComparer.Ordinal);
        foreach (var file in System.IO.Directory.EnumerateFiles(_segmentDirectory))
        {
            // Leftovers of a flush or merge cut short: never in the manifest, so never acknowledged as segments.
            if (!live.Contains(Path.GetFileName(file)))
            {
                File.Delete(file);
            }
        }
        var segments = new List<Segment>();
        foreach (var info in _manifest.Segments)
        {
            segments.Add(Segment.Open(Path.Combine(_segmentDirectory, info.File)));
        }
        return segments;
    }

    /// <summary>
    /// Replays the write-ahead logs: each file with events not yet in a segment becomes a frozen memory table backed by
    /// that same file, which the flusher writes out as segments (and retries while the disk is full); files with
    /// nothing left to write out are deleted. Returns the highest sequence number seen.
    /// </summary>
    private long Recover(out List<MemTable> recovered)
    {
        var walFiles = System.IO.Directory.EnumerateFiles(Directory, WalPrefix + "*" + WalSuffix).Order(StringComparer.Ordinal).ToList();
        recovered = [];
        long maxSeq = 0;
        var count = 0;
        foreach (var file in walFiles)
        {
            var (replayed, cut) = WriteAheadLog.Replay(file);
            if (cut > 0)
            {
                _logger.LogWarning("Index set {Name}: cut {Bytes} bytes of torn or corrupt tail from {File}", Name, cut, Path.GetFileName(file));
            }
            var events = new List<LogEvent>();
            foreach (var evt in replayed)
            {
                maxSeq = Math.Max(maxSeq, evt.Seq);
                if (evt.Seq > _manifest.FlushedSeq)
                {
                    // Logs written before the limit held may hold any number of fields: recovery keeps to it too.
                    events.Add(_fields.Apply(evt));
                }
            }
            if (events.Count == 0)
            {
                File.Delete(file);
                continue;
            }
            var table = new MemTable(file);
            table.Add(events);
            recovered.Add(table);
            count += events.Count;
        }
        if (count > 0)
        {
            _logger.LogInformation("Index set {Name}: recovered {Count} events from the write-ahead log", Name, count);
        }
        return maxSeq;
    }

    /// <summary>
    /// Whether the index set cannot keep up: more than <see cref="EngineOptions.MaxQueuedEvents"/> events wait for the
    /// write-ahead log (they pile up while the writer waits for memory tables to reach disk). Ingest should then refuse
    /// new work (429) instead of holding it in memory.
    /// </summary>
    public bool IsBackedUp => Interlocked.Read(ref _queuedEvents) > _options.MaxQueuedEvents;

    private long _queuedEvents;

    /// <summary>The file beside the index set's data that holds its cleaning pipeline.</summary>
    public const string PipelineFileName = "pipeline.json";

    private volatile CleaningPipeline? _pipeline;

    /// <summary>The cleaning pipeline every appended event goes through; null for none.</summary>
    public CleaningPipeline? Pipeline => _pipeline;

    /// <summary>Saves (durably) and starts using a cleaning pipeline; null removes it.</summary>
    public void SetPipeline(CleaningPipeline? pipeline)
    {
        var path = Path.Combine(Directory, PipelineFileName);
        if (pipeline is null)
        {
            File.Delete(path);
            DurableFile.SyncDirectory(Directory);
        }
        else
        {
            DurableFile.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(pipeline.Definition));
        }
        _pipeline = pipeline;
    }

    private void LoadPipeline()
    {
        var path = Path.Combine(Directory, PipelineFileName);
        if (File.Exists(path))
        {
            // A saved pipeline was valid when saved; one that no longer reads stops the open with its reason.
            _pipeline = CleaningPipeline.Parse(File.ReadAllText(path));
        }
    }

    /// <summary>
    /// Makes <paramref name="events"/> durable; completes once they are fsynced and searchable. With a cleaning
    /// pipeline, each event in the list is replaced by its cleaned form first.
    /// </summary>
    public async Task AppendAsync(List<LogEvent> events, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (events.Count == 0)
        {
            return;
        }
        _pipeline?.ApplyAll(events);
        _tagger?.Tag(events);
        var pending = new PendingAppend(events, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Interlocked.Add(ref _queuedEvents, events.Count);
        try
        {
            await _appends.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Interlocked.Add(ref _queuedEvents, -events.Count);
            throw;
        }
        // Once queued the batch will be written whatever the caller does; wait for the outcome.
        await pending.Done.Task.ConfigureAwait(false);
        StorageMetrics.IngestedEvents.Add(events.Count, new KeyValuePair<string, object?>("indexset", Name));
    }

    private async Task WriteLoopAsync()
    {
        var reader = _appends.Reader;
        var batch = new List<PendingAppend>();
        var added = new List<LogEvent>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            var events = 0;
            while (events < 500_000 && reader.TryRead(out var pending))
            {
                batch.Add(pending);
                events += pending.Events.Count;
            }
            Interlocked.Add(ref _queuedEvents, -events);
            try
            {
                added.Clear();
                var wal = _wal ??= WriteAheadLog.Create(_state.Active.WalPath);
                foreach (var pending in batch)
                {
                    if (pending.Events.Count == 0)
                    {
                        continue;
                    }
                    var list = pending.Events;
                    for (var i = 0; i < list.Count; i++)
                    {
                        var evt = _fields.Apply(list[i]);
                        evt.Seq = _nextSeq++;
                        list[i] = evt;
                    }
                    Volatile.Write(ref _fieldCount, _fields.Count);
                    wal.Append(pending.Events);
                    added.AddRange(pending.Events);
                }
                wal.Sync();
                var active = _state.Active;
                active.Add(added);
                PublishToTails(added);
                var full = active.Count >= _options.MemTableMaxEvents || active.Bytes >= _options.MemTableMaxBytes;
                var asked = active.Count > 0 && batch.Exists(p => p.Rotate);
                // The events are durable: their callers hear so even if the rotation below fails.
                foreach (var pending in batch)
                {
                    if (!pending.Rotate)
                    {
                        pending.Done.TrySetResult();
                    }
                }
                if (asked)
                {
                    RotateMemTable();
                }
                foreach (var pending in batch)
                {
                    pending.Done.TrySetResult();
                }
                if (full && !asked)
                {
                    // Ingest faster than flushing: hold further appends until a frozen table is on disk.
                    while (_state.Frozen.Count >= MaxFrozenMemTables && !_stopping.IsCancellationRequested && !Volatile.Read(ref _disposed))
                    {
                        await _frozenDrained.WaitAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
                    }
                    RotateMemTable();
                }
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Index set {Name}: write-ahead log append failed", Name);
                foreach (var pending in batch)
                {
                    pending.Done.TrySetException(e);
                }
                StartFreshWal();
            }
        }
    }

    /// <summary>
    /// After a failed append: what failed may sit half-written in the log file, so later batches go to a fresh file
    /// and replay never stops at the failed record before reaching acknowledged ones. A memory table with
    /// acknowledged events is frozen (its file holds them); an empty one's file held only the failure and goes.
    /// </summary>
    private void StartFreshWal()
    {
        var old = _wal;
        _wal = null;
        old?.Dispose();
        var path = NextWalPath();
        bool dropped;
        lock (_stateLock)
        {
            dropped = _state.Active.Count == 0;
            _state = dropped
                ? _state with { Active = new MemTable(path) }
                : _state with { Frozen = [.. _state.Frozen, _state.Active], Active = new MemTable(path) };
        }
        if (!dropped)
        {
            _flushSignal.Release();
        }
        try
        {
            if (dropped && old is not null)
            {
                // It held only what failed; left behind (a read-only disk), recovery cuts its torn tail or finds it empty.
                File.Delete(old.Path);
            }
            _wal = WriteAheadLog.Create(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Created by the next append instead, which fails (refused, not acknowledged) while this one would.
            _logger.LogError("Index set {Name}: cannot start a new write-ahead log file ({Error}); appends are refused until it can", Name, e.Message);
        }
    }

    /// <summary>
    /// Follows the events of this index set as they are acknowledged (after their write-ahead log fsync). A subscriber
    /// that lets more than <paramref name="capacity"/> batches wait is cut off.
    /// </summary>
    public TailSubscription Tail(int capacity = 256) => _tails.Subscribe(capacity);

    private void PublishToTails(List<LogEvent> added) => _tails.Publish(added);

    /// <summary>Freezes the active memory table behind a new write-ahead log file and wakes the flusher.</summary>
    private void RotateMemTable()
    {
        var walPath = NextWalPath();
        var newWal = WriteAheadLog.Create(walPath);
        var oldWal = _wal;
        _wal = newWal;
        oldWal?.Dispose();
        lock (_stateLock)
        {
            _state = _state with { Frozen = [.. _state.Frozen, _state.Active], Active = new MemTable(walPath) };
        }
        _flushSignal.Release();
    }

    private async Task FlushLoopAsync()
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _flushSignal.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            try
            {
                await FlushFrozenAsync().ConfigureAwait(false);
                _mergeSignal.Release();
                backoff = TimeSpan.FromSeconds(1);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                if (DurableFile.IsDiskFull(e))
                {
                    _logger.LogWarning("Index set {Name}: the disk is full, memory tables wait in memory and their write-ahead logs; writing them out again in {Delay}", Name, backoff);
                }
                else
                {
                    _logger.LogError(e, "Index set {Name}: flush failed; retrying in {Delay}", Name, backoff);
                }
                try
                {
                    await Task.Delay(backoff, _time, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(15).Ticks));
                _flushSignal.Release();
            }
        }
    }

    private async Task FlushFrozenAsync()
    {
        await _maintenance.WaitAsync().ConfigureAwait(false);
        try
        {
            while (true)
            {
                var frozen = _state.Frozen;
                if (frozen.Count == 0)
                {
                    return;
                }
                var table = frozen[0];
                var written = WriteSegments(table.Snapshot(), _options.FlushCompressionLevel, out var nextSegmentId);
                var manifest = _manifest with
                {
                    FlushedSeq = Math.Max(_manifest.FlushedSeq, table.MaxSeq),
                    NextSegmentId = nextSegmentId,
                    Segments = [.. _manifest.Segments, .. written.Select(s => s.Info)],
                };
                try
                {
                    manifest.Save(Directory);
                }
                catch
                {
                    Discard(written);
                    throw;
                }
                _manifest = manifest;
                lock (_stateLock)
                {
                    _state = _state with
                    {
                        Segments = [.. _state.Segments, .. written],
                        Frozen = [.. _state.Frozen.Where(f => !ReferenceEquals(f, table))],
                    };
                }
                File.Delete(table.WalPath);
                table.Retire();
                _frozenDrained.Release();
            }
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>
    /// Writes a memory table's events as one segment per UTC day, dropping days already past retention. The events are
    /// put in order by their times and sequence numbers and decoded one by one as they are written, so only a block's
    /// worth of them are objects at a time.
    /// </summary>
    private List<Segment> WriteSegments(MemTableSnapshot table, int compressionLevel, out long nextSegmentId)
    {
        var positions = new EventPosition[table.Count];
        var order = new int[table.Count];
        for (var i = 0; i < order.Length; i++)
        {
            positions[i] = new EventPosition(table.Times[i], table.Seqs[i]);
            order[i] = i;
        }
        Array.Sort(positions, order);
        nextSegmentId = _manifest.NextSegmentId;
        var expiredBefore = ExpiryCutoff();
        var result = new List<Segment>();
        try
        {
            WriteDays(table, positions, order, compressionLevel, expiredBefore, result, ref nextSegmentId);
        }
        catch
        {
            // Written days not yet in the manifest are nobody's: they go, so a retry (a full disk) starts clean.
            Discard(result);
            throw;
        }
        return result;
    }

    private static void Discard(List<Segment> segments)
    {
        foreach (var segment in segments)
        {
            segment.Retire(deleteFile: true);
        }
    }

    private void WriteDays(MemTableSnapshot table, EventPosition[] positions, int[] order, int compressionLevel, long expiredBefore, List<Segment> result, ref long nextSegmentId)
    {
        var i = 0;
        while (i < positions.Length)
        {
            var dayNumber = positions[i].Timestamp / TimeSpan.TicksPerDay;
            var day = DayOf(positions[i].Timestamp);
            var end = i;
            while (end < positions.Length && positions[end].Timestamp / TimeSpan.TicksPerDay == dayNumber)
            {
                end++;
            }
            if ((dayNumber + 1) * TimeSpan.TicksPerDay > expiredBefore)
            {
                var path = Path.Combine(_segmentDirectory, $"seg-{nextSegmentId.ToString("D10", CultureInfo.InvariantCulture)}.lws");
                nextSegmentId++;
                using var writer = new SegmentWriter(path, day, _options.BlockRows, compressionLevel);
                for (var j = i; j < end; j++)
                {
                    writer.Add(table.Event(order[j]));
                }
                writer.Complete();
                result.Add(Segment.Open(path));
            }
            i = end;
        }
    }

    private static string DayOf(long ticks) => new DateTime(ticks - ticks % TimeSpan.TicksPerDay, DateTimeKind.Utc).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static long DayStart(string day) => DateTime.ParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal).Ticks;

    /// <summary>Events older than this (UTC ticks) are past retention.</summary>
    private long ExpiryCutoff() => _time.GetUtcNow().UtcTicks - Settings.RetentionDays * TimeSpan.TicksPerDay;

    /// <summary>
    /// The start of the oldest UTC day still inside retention. Reads see nothing older: an expired event is gone for
    /// searches at once, whether it still sits in a memory table or in a segment the next retention pass drops, so what
    /// a search finds does not depend on when flushes and retention passes happen to run.
    /// </summary>
    private long RetainedFrom()
    {
        var cutoff = ExpiryCutoff();
        return cutoff - cutoff % TimeSpan.TicksPerDay;
    }

    /// <summary>The request with its lower time bound raised to <see cref="RetainedFrom"/>.</summary>
    private SearchRequest WithinRetention(SearchRequest request)
    {
        var retained = RetainedFrom();
        return request.From is { } from && from >= retained ? request : request with { From = retained };
    }

    /// <summary>Wakes the merge loop for a pass over every day partition (merges also follow each flush).</summary>
    public void RequestMerge()
    {
        if (_mergeSignal.CurrentCount == 0)
        {
            _mergeSignal.Release();
        }
    }

    private async Task MergeLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _mergeSignal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                await MergeAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                _logger.LogError(e, "Index set {Name}: merge failed; the segments stay as they are", Name);
            }
        }
    }

    /// <summary>
    /// Merges segments of similar size within a day partition, streaming block by block. The heavy work runs without
    /// the maintenance lock, so flushes never wait for a merge; the swap checks its inputs are still live.
    /// </summary>
    private async Task MergeAsync(CancellationToken cancellationToken = default)
    {
        await _mergeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await MergeGroupsAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _mergeLock.Release();
        }
    }

    private async Task MergeGroupsAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var group = PickMergeGroup();
            if (group is null)
            {
                return;
            }
            long segmentId;
            await _maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                // Reserve the output's number so a flush cannot take it meanwhile.
                segmentId = _manifest.NextSegmentId;
                _manifest = _manifest with { NextSegmentId = segmentId + 1 };
            }
            finally
            {
                _maintenance.Release();
            }
            var acquired = group.Where(s => s.TryAcquire()).ToList();
            try
            {
                if (acquired.Count != group.Count)
                {
                    continue;
                }
                var path = Path.Combine(_segmentDirectory, $"seg-{segmentId.ToString("D10", CultureInfo.InvariantCulture)}.lws");
                var day = group[0].Info.Day;
                SegmentMerge.Counts counts;
                using (var writer = new SegmentWriter(path, day, _options.BlockRows, _options.MergeCompressionLevel))
                {
                    counts = SegmentMerge.Write(group, writer, _options.BlockRows, cancellationToken);
                    writer.Complete();
                }
                _logger.LogDebug("Index set {Name}: merge of {Count} segments copied {Copied} blocks and rewrote the rows of {Decoded}", Name, group.Count, counts.CopiedBlocks, counts.DecodedBlocks);
                await SwapMergedAsync(group, path, day).ConfigureAwait(false);
            }
            finally
            {
                foreach (var segment in acquired)
                {
                    segment.Release();
                }
            }
        }
    }

    private async Task SwapMergedAsync(List<Segment> group, string path, string day)
    {
        var merged = Segment.Open(path);
        await _maintenance.WaitAsync().ConfigureAwait(false);
        try
        {
            var live = new HashSet<Segment>(_state.Segments);
            if (!group.All(live.Contains))
            {
                // Retention dropped an input meanwhile: keep what is there.
                merged.Retire(deleteFile: true);
                return;
            }
            var removed = new HashSet<string>(group.Select(s => s.Info.File), StringComparer.Ordinal);
            var manifest = _manifest with { Segments = [.. _manifest.Segments.Where(s => !removed.Contains(s.File)), merged.Info] };
            manifest.Save(Directory);
            _manifest = manifest;
            lock (_stateLock)
            {
                _state = _state with { Segments = [.. _state.Segments.Where(s => !group.Contains(s)), merged] };
            }
        }
        finally
        {
            _maintenance.Release();
        }
        foreach (var segment in group)
        {
            _cache.Evict(segment.Id);
            segment.Retire(deleteFile: true);
        }
        _logger.LogDebug("Index set {Name}: merged {Count} segments of {Day} into {File}", Name, group.Count, day, merged.Info.File);
    }

    /// <summary>The live segments found damaged since they were opened.</summary>
    public IReadOnlyList<(string File, string Detail)> DamagedSegments() =>
        [.. _state.Segments.Where(s => s.Damage is not null).Select(s => (s.Info.File, s.Damage!))];

    /// <summary>
    /// The smallest run of at least <see cref="EngineOptions.MergeMinSegments"/> segments of one day whose sizes are
    /// within a factor of four of each other: each event is rewritten about log4(n) times, not once per flush.
    /// </summary>
    private List<Segment>? PickMergeGroup()
    {
        // A damaged segment is left as it is for the operator: a merge would fail on it again and again.
        foreach (var day in _state.Segments.Where(s => s.Damage is null).GroupBy(s => s.Info.Day))
        {
            var sorted = day.OrderBy(s => s.Info.Events).ToList();
            for (var start = 0; start + _options.MergeMinSegments <= sorted.Count; start++)
            {
                var group = new List<Segment>();
                long total = 0;
                for (var i = start; i < sorted.Count && group.Count < 16; i++)
                {
                    var segment = sorted[i];
                    if (segment.Info.Events > 4 * Math.Max(1, sorted[start].Info.Events) || total + segment.Info.Events > _options.MergeMaxEvents)
                    {
                        break;
                    }
                    group.Add(segment);
                    total += segment.Info.Events;
                }
                if (group.Count >= _options.MergeMinSegments)
                {
                    return group;
                }
            }
        }
        return null;
    }

    /// <summary>Drops day partitions whose every event is past retention. Returns how many segments went.</summary>
    public async Task<int> ApplyRetentionAsync()
    {
        await _maintenance.WaitAsync().ConfigureAwait(false);
        try
        {
            var cutoff = ExpiryCutoff();
            var expired = _state.Segments.Where(s => DayStart(s.Info.Day) + TimeSpan.TicksPerDay <= cutoff).ToList();
            if (expired.Count == 0)
            {
                return 0;
            }
            DropSegments(expired);
            _logger.LogInformation("Index set {Name}: dropped {Count} expired segments ({Days})", Name, expired.Count, string.Join(", ", expired.Select(s => s.Info.Day).Distinct()));
            return expired.Count;
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>
    /// The days (UTC, <c>yyyy-MM-dd</c>) with segments whose every event is older than <see cref="ArchiveAfterDays"/>
    /// days, oldest first; none when the index set is not archived.
    /// </summary>
    public IReadOnlyList<string> DaysToArchive()
    {
        if (Settings.ArchiveAfterDays is not { } days)
        {
            return [];
        }
        var cutoff = _time.GetUtcNow().UtcTicks - days * TimeSpan.TicksPerDay;
        return [.. _state.Segments.Where(s => DayStart(s.Info.Day) + TimeSpan.TicksPerDay <= cutoff).Select(s => s.Info.Day).Distinct().Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// The segments of <paramref name="day"/> as they stand now, for the archive: each opened now (the caller disposes
    /// them) with its manifest entry as JSON, so that another index set can list it as it is.
    /// </summary>
    public async Task<(Backup.IndexSetFiles Files, IReadOnlyDictionary<string, string> Entries)> OpenDayAsync(string day, CancellationToken cancellationToken = default)
    {
        await _maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
        var files = new Backup.IndexSetFiles();
        try
        {
            var entries = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var segment in _state.Segments.Where(s => s.Info.Day == day))
            {
                var path = $"{SegmentDirectoryName}/{segment.Info.File}";
                files.Open(Path.Combine(Directory, SegmentDirectoryName, segment.Info.File), path);
                files.Hold(path, segment);
                entries[segment.Info.File] = JsonSerializer.Serialize(segment.Info, ManifestJson.Default.SegmentInfo);
            }
            return (files, entries);
        }
        catch
        {
            files.Dispose();
            throw;
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>
    /// Drops the segments named <paramref name="files"/> (archived), as retention drops expired ones; false, dropping
    /// nothing, when one of them is no longer live (a merge replaced it meanwhile: archive the day again).
    /// </summary>
    public async Task<bool> DropArchivedAsync(IReadOnlyCollection<string> files)
    {
        await _maintenance.WaitAsync().ConfigureAwait(false);
        try
        {
            var dropped = _state.Segments.Where(s => files.Contains(s.Info.File)).ToList();
            if (dropped.Count != files.Count)
            {
                return false;
            }
            DropSegments(dropped);
            _logger.LogInformation("Index set {Name}: moved {Count} segments of {Days} to the archive", Name, dropped.Count, string.Join(", ", dropped.Select(s => s.Info.Day).Distinct()));
            return true;
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>
    /// Takes <paramref name="dropped"/> out of the manifest (saved first), then out of what reads see, and deletes their
    /// files once no read holds them. Under <c>_maintenance</c>.
    /// </summary>
    private void DropSegments(List<Segment> dropped)
    {
        var removed = new HashSet<string>(dropped.Select(s => s.Info.File), StringComparer.Ordinal);
        var manifest = _manifest with { Segments = [.. _manifest.Segments.Where(s => !removed.Contains(s.File))] };
        manifest.Save(Directory);
        _manifest = manifest;
        lock (_stateLock)
        {
            _state = _state with { Segments = [.. _state.Segments.Where(s => !dropped.Contains(s))] };
        }
        foreach (var segment in dropped)
        {
            _cache.Evict(segment.Id);
            segment.Retire(deleteFile: true);
        }
    }

    /// <summary>
    /// The index set's files as they stand at this moment, for a backup: its settings, pipeline and manifest as read
    /// now, every segment the manifest lists and every write-ahead log, each opened now and read up to its length now.
    /// Taken under the lock that every change of the manifest and every deletion of a log holds, so the set is
    /// consistent: an event acknowledged before this call is in a listed segment or in a log. Files deleted by a merge,
    /// retention or a flush afterwards stay readable through the handles (the caller disposes them).
    /// </summary>
    public async Task<Backup.IndexSetFiles> OpenBackupAsync(CancellationToken cancellationToken = default)
    {
        await _maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
        var files = new Backup.IndexSetFiles();
        try
        {
            foreach (var name in new[] { IndexSetSettings.FileName, PipelineFileName, Manifest.FileName })
            {
                var path = Path.Combine(Directory, name);
                if (File.Exists(path))
                {
                    files.Add(name, new MemoryStream(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false)), null);
                }
            }
            var live = _state.Segments.ToDictionary(s => s.Info.File, StringComparer.Ordinal);
            foreach (var segment in Manifest.Load(Directory).Segments)
            {
                var path = $"{SegmentDirectoryName}/{segment.File}";
                files.Open(Path.Combine(Directory, SegmentDirectoryName, segment.File), path);
                if (live.TryGetValue(segment.File, out var open))
                {
                    files.Hold(path, open);
                }
            }
            foreach (var wal in System.IO.Directory.EnumerateFiles(Directory, WalPrefix + "*.log").Order(StringComparer.Ordinal))
            {
                files.Open(wal, Path.GetFileName(wal));
            }
            return files;
        }
        catch
        {
            files.Dispose();
            throw;
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>Freezes and flushes whatever is in memory now, and waits for it.</summary>
    public async Task FlushAsync()
    {
        // An empty append asking for a rotation: once the writer reaches it, everything before it is frozen.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _appends.Writer.WriteAsync(new PendingAppend([], done, Rotate: true)).ConfigureAwait(false);
        await done.Task.ConfigureAwait(false);
        await FlushFrozenAsync().ConfigureAwait(false);
        await MergeAsync().ConfigureAwait(false);
    }

    public IndexSetInfo Info()
    {
        var state = _state;
        long events = state.Segments.Sum(s => s.Info.Events) + state.Frozen.Sum(f => (long)f.Count) + state.Active.Count;
        long bytes = 0;
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*", SearchOption.AllDirectories))
        {
            try
            {
                bytes += new FileInfo(file).Length;
            }
            catch (IOException)
            {
                // A file removed by a merge while listing.
            }
        }
        return new IndexSetInfo(Name, Settings.RetentionDays, Settings.Created, events, bytes, state.Segments.Count, Volatile.Read(ref _fieldCount), _fields.Max)
        {
            ArchiveAfterDays = Settings.ArchiveAfterDays,
            Restored = Settings.Restored,
            Patterns = _tagger is not null,
        };
    }

    /// <summary>The earliest and latest event times held, or null when the index set is empty.</summary>
    public (long Min, long Max)? TimeBounds()
    {
        var retained = RetainedFrom();
        var state = _state;
        long min = long.MaxValue, max = long.MinValue;
        foreach (var segment in state.Segments)
        {
            min = Math.Min(min, segment.Info.MinTime);
            max = Math.Max(max, segment.Info.MaxTime);
        }
        foreach (var table in state.Frozen.Append(state.Active))
        {
            // Its bounds only: a table's events are read only by a holder of a reference (see AcquireSnapshot).
            if (table.Count > 0)
            {
                min = Math.Min(min, table.MinTime);
                max = Math.Max(max, table.MaxTime);
            }
        }
        min = Math.Max(min, retained);
        return min <= max ? (min, max) : null;
    }

    /// <summary>The event with sequence number <paramref name="seq"/> (its id), or null when it is not (or no longer) here.</summary>
    public LogEvent? FindBySeq(long seq, CancellationToken cancellationToken = default) =>
        FindAnyBySeq(seq, cancellationToken) is { } found && found.Timestamp >= RetainedFrom() ? found : null;

    private LogEvent? FindAnyBySeq(long seq, CancellationToken cancellationToken)
    {
        var (segments, tables) = AcquireSnapshot();
        try
        {
            foreach (var table in tables)
            {
                // A table's sequence numbers ascend in arrival order.
                var i = Array.BinarySearch(table.Seqs, 0, table.Count, seq);
                if (i >= 0)
                {
                    return table.Event(i);
                }
            }
            foreach (var segment in segments)
            {
                if (seq < segment.Info.MinSeq || seq > segment.Info.MaxSeq)
                {
                    continue;
                }
                for (var b = 0; b < segment.Blocks.Length; b++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (segment.Blocks[b].MaxSeq < seq)
                    {
                        continue;
                    }
                    var rows = LoadRows(segment, b);
                    var row = Array.IndexOf(rows.Seqs, seq);
                    if (row >= 0)
                    {
                        return rows.ToEvent(row);
                    }
                }
            }
            return null;
        }
        finally
        {
            foreach (var segment in segments)
            {
                segment.Release();
            }
            foreach (var table in tables)
            {
                table.Table.Release();
            }
        }
    }

    /// <summary>Searches segments and memory tables together, newest first (or oldest first).</summary>
    public SearchResult Search(SearchRequest request, CancellationToken cancellationToken = default)
    {
        request = WithinRetention(request);
        if (request.OrderBy is { } fieldOrder)
        {
            return SearchByField(request, fieldOrder, cancellationToken);
        }
        var oldestFirst = request.OldestFirst;
        // "Later in the order": newer for newest first, older for oldest first. The heap keeps the `limit` earliest
        // in the order; its top is the latest of them, the first to go.
        var order = oldestFirst ? Comparer<EventPosition>.Create(static (a, b) => b.CompareTo(a)) : Comparer<EventPosition>.Default;
        var now = _time.GetUtcNow();
        var matcher = EventMatcher.Compile(request.Query, now);
        var from = request.From ?? long.MinValue;
        var to = request.To ?? long.MaxValue;
        var after = request.After;
        var limit = Math.Max(0, request.Limit);
        var matchAll = request.Query is MatchAllNode;
        var trackTotal = request.TrackTotalHitsUpTo ?? _options.TrackTotalHitsUpTo;
        // Whether a position comes strictly after the cursor in the search's order, and whether a source whose events
        // span [min, max] can hold such a position.
        bool Follows(EventPosition position) => after is null || order.Compare(after.Value, position) > 0;
        bool MayFollow(long min, long max) => after is null || (oldestFirst ? max >= after.Value.Timestamp : min <= after.Value.Timestamp);

        var (segments, tables) = AcquireSnapshot();
        try
        {
            var sources = new List<Source>();
            foreach (var table in tables)
            {
                if (table.Count > 0 && table.MaxTime >= from && table.MinTime < to && MayFollow(table.MinTime, table.MaxTime))
                {
                    sources.Add(new Source(table.MinTime, table.MaxTime, table.Count, null, -1, table));
                }
            }
            foreach (var segment in segments)
            {
                if (segment.Info.MaxTime < from || segment.Info.MinTime >= to || !MayFollow(segment.Info.MinTime, segment.Info.MaxTime))
                {
                    continue;
                }
                var candidates = BlockPlanner.CandidateBlocks(request.Query, segment, now);
                for (var b = 0; b < segment.Blocks.Length; b++)
                {
                    var block = segment.Blocks[b];
                    if (block.MaxTime < from || block.MinTime >= to || !MayFollow(block.MinTime, block.MaxTime))
                    {
                        continue;
                    }
                    if (candidates is not null && !candidates.Contains(b))
                    {
                        continue;
                    }
                    sources.Add(new Source(block.MinTime, block.MaxTime, block.Rows, segment, b, default));
                }
            }
            // Sources in the order their first events come.
            if (oldestFirst)
            {
                sources.Sort(static (a, b) => a.MinTime.CompareTo(b.MinTime));
            }
            else
            {
                sources.Sort(static (a, b) => b.MaxTime.CompareTo(a.MaxTime));
            }

            var heap = new PriorityQueue<Hit, EventPosition>(limit + 1, order);
            long total = 0;
            var exact = true;
            void Offer(in Hit hit, EventPosition position)
            {
                if (heap.Count < limit)
                {
                    heap.Enqueue(hit, position);
                }
                else if (heap.TryPeek(out _, out var last) && order.Compare(position, last) > 0)
                {
                    heap.DequeueEnqueue(hit, position);
                }
            }
            // Blocks whose evaluation takes time (a regular expression reading every text, say) are evaluated two at a
            // time: while this thread evaluates one, a pool thread evaluates the next. Hits and counts are still taken
            // in order, here. Quick evaluations (the token index's) stay on this thread.
            var ahead = new BlockAhead();
            var slowBlocks = false;
            var slow = false;
            // Blocks read from the file (slow ones) would each wait for their postings' disk read in turn: once one
            // block is slow, the kernel is asked for the next blocks' postings ahead of their evaluation (those whose
            // postings the cache holds decoded need none). Searches answered from the cache ask nothing.
            var readAhead = !matchAll && BlockQuery.ReadsPostings(request.Query);
            var readAheadTo = 0;
            void ReadAhead(int s)
            {
                if (!readAhead || !slowBlocks || s < readAheadTo - ReadAheadBlocks / 2)
                {
                    return;
                }
                var end = Math.Min(sources.Count, s + ReadAheadBlocks);
                for (var i = Math.Max(s, readAheadTo); i < end; i++)
                {
                    if (sources[i].Segment is { } segment && _cache.Peek(segment.Id, sources[i].Block)?.PostingsRead != true)
                    {
                        segment.ReadPostingsAhead(sources[i].Block);
                    }
                }
                readAheadTo = end;
            }
            ulong[] Evaluate(int s)
            {
                if (ahead.TryTake(s, out var evaluated))
                {
                    return evaluated;
                }
                if (slow && s + 1 < sources.Count && sources[s + 1].Segment is { } next)
                {
                    var block = sources[s + 1].Block;
                    ahead.Start(s + 1, () => BlockQuery.Evaluate(request.Query, LoadRows(next, block), next, now, cancellationToken), cancellationToken);
                }
                var source = sources[s];
                var started = _time.GetTimestamp();
                var result = BlockQuery.Evaluate(request.Query, LoadRows(source.Segment!, source.Block), source.Segment!, now, cancellationToken);
                slowBlocks |= _time.GetElapsedTime(started).Ticks > SlowBlockTicks;
                slow = EvaluateAhead && !matchAll && slowBlocks;
                return result;
            }
            try
            {
                for (var s = 0; s < sources.Count; s++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var source = sources[s];
                    var canHit = limit > 0 && (heap.Count < limit || (heap.TryPeek(out _, out var last) && (oldestFirst ? source.MinTime <= last.Timestamp : source.MaxTime >= last.Timestamp)));
                    if (!canHit && total >= trackTotal)
                    {
                        exact = false;
                        break;
                    }
                    var inside = source.MinTime >= from && source.MaxTime < to
                        && (after is null || (oldestFirst ? source.MinTime > after.Value.Timestamp : source.MaxTime < after.Value.Timestamp));
                    if (!canHit && matchAll && inside)
                    {
                        total += source.Rows;
                        continue;
                    }
                    if (source.Segment is null)
                    {
                        var table = source.Table;
                        for (var i = 0; i < table.Count; i++)
                        {
                            if ((i & 0xFF) == 0xFF)
                            {
                                cancellationToken.ThrowIfCancellationRequested();
                            }
                            // Time and order from the table's arrays; the event is decoded only for a clause to test, or as a hit.
                            var t = table.Times[i];
                            var position = new EventPosition(t, table.Seqs[i]);
                            if (t < from || t >= to || !Follows(position))
                            {
                                continue;
                            }
                            var evt = matchAll ? null : table.Event(i);
                            if (evt is not null && !matcher(evt))
                            {
                                continue;
                            }
                            total++;
                            if (canHit && (heap.Count < limit || (heap.TryPeek(out _, out var worst) && order.Compare(position, worst) > 0)))
                            {
                                Offer(new Hit(evt ?? table.Event(i), null, 0), position);
                            }
                        }
                        continue;
                    }
                    if (!canHit && inside && BlockQuery.CountFromFooter(request.Query, source.Segment, source.Block) is { } counted)
                    {
                        // Only counted, and the footer knows how many rows hold each value of the one field asked. An
                        // evaluation of this block started ahead is finished and dropped: none may outlive the search.
                        ahead.TryTake(s, out _);
                        total += counted;
                        continue;
                    }
                    ReadAhead(s);
                    var matching = Evaluate(s);
                    if (!canHit && inside)
                    {
                        // Only counted: every row is in the window, so no timestamps are needed.
                        total += RowBits.Count(matching);
                        continue;
                    }
                    var rows = LoadRows(source.Segment, source.Block);
                    var timestamps = rows.Timestamps;
                    var seqs = rows.Seqs;
                    foreach (var i in RowBits.Rows(matching))
                    {
                        var t = timestamps[i];
                        var position = new EventPosition(t, seqs[i]);
                        if (t < from || t >= to || !Follows(position))
                        {
                            continue;
                        }
                        total++;
                        if (canHit)
                        {
                            Offer(new Hit(null, rows, i), position);
                        }
                    }
                }
            }
            finally
            {
                // A block evaluated ahead reads its segment: it ends before the segments are released.
                ahead.Wait();
            }
            var hits = new LogEvent[heap.Count];
            for (var i = hits.Length - 1; i >= 0; i--)
            {
                var hit = heap.Dequeue();
                hits[i] = hit.Event ?? hit.Rows!.ToEvent(hit.Row);
            }
            EventPosition? next = hits.Length == limit && limit > 0 ? new EventPosition(hits[^1].Timestamp, hits[^1].Seq) : null;
            return new SearchResult(hits, total, exact, next);
        }
        finally
        {
            foreach (var segment in segments)
            {
                segment.Release();
            }
            foreach (var table in tables)
            {
                table.Table.Release();
            }
        }
    }

    /// <summary>
    /// Every match is read, so the total is exact: the first <c>Limit</c> in the field order after the cursor key stay
    /// in a heap whose top is the last of them.
    /// </summary>
    private SearchResult SearchByField(SearchRequest request, FieldOrder order, CancellationToken cancellationToken)
    {
        var limit = Math.Max(0, request.Limit);
        var after = request.AfterKey;
        var field = order.Field;
        var heap = new PriorityQueue<Hit, OrderKey>(limit + 1, Comparer<OrderKey>.Create((a, b) => order.Compare(b, a)));
        long total = 0;
        LogEvent[] hits = [];
        OrderKey lastKey = default;
        void Offer(in Hit hit, OrderKey key)
        {
            if (after is not null && order.Compare(key, after.Value) <= 0)
            {
                return;
            }
            total++;
            if (heap.Count < limit)
            {
                heap.Enqueue(hit, key);
            }
            else if (limit > 0 && heap.TryPeek(out _, out var last) && order.Compare(key, last) < 0)
            {
                heap.DequeueEnqueue(hit, key);
            }
        }
        void OfferRows(BlockRows rows, ulong[]? mask)
        {
            if (rows.FieldCodes(field) is { } dictionary)
            {
                OfferGroups(rows, mask, dictionary);
                return;
            }
            if (rows.Segment.OrderBounds(rows.Index, field) is { Low: not null } bounds && BoundsComeAfterTop(bounds))
            {
                // No value of the block can enter the page (rows without one come last): its rows are only counted.
                total += mask is null ? rows.Count : RowBits.Count(mask);
                return;
            }
            var isMessage = string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal);
            if ((rows.TextField(field) ?? (isMessage && Array.IndexOf(rows.FieldNames, field) < 0 ? rows.Messages : null)) is { } text)
            {
                OfferText(rows, mask, text);
                return;
            }
            var values = rows.Field(field);
            var ofMessage = values is null && isMessage;
            var timestamps = rows.Timestamps;
            var seqs = rows.Seqs;
            for (var i = 0; i < rows.Count; i++)
            {
                if (mask is not null && !RowBits.Contains(mask, i))
                {
                    continue;
                }
                var value = values is not null ? OrderValue.Of(values[i]) : ofMessage ? new OrderValue(false, 0, rows.Message(i)) : OrderValue.Missing;
                Offer(new Hit(null, rows, i), new OrderKey(value, new EventPosition(timestamps[i], seqs[i])));
            }
        }
        // A block of plain text is compared as UTF-8 in place: once the heap is full, a row whose value comes after its
        // top's is only counted (it also comes after the cursor, as the top does), and only rows that may enter are
        // decoded. Without this, sorting by a field of unique values (a trace id) built a string for every row.
        byte[] topUtf8 = [];
        string? topText = null;
        // Whether text (UTF-8) comes strictly after the heap's top, which is full; false when that is not known.
        bool TextComesAfterTop(ReadOnlySpan<byte> utf8, bool absent)
        {
            if (limit == 0 || heap.Count < limit || !heap.TryPeek(out _, out var top) || top.Value.IsMissing)
            {
                return false;
            }
            if (absent)
            {
                return true;
            }
            if (top.Value.IsNumber)
            {
                // Numbers come before text ascending, after it descending.
                return !order.Descending;
            }
            if (!ReferenceEquals(top.Value.Text, topText))
            {
                topText = top.Value.Text;
                topUtf8 = System.Text.Encoding.UTF8.GetBytes(topText!);
            }
            return CompareOrdinalUtf8(utf8, topUtf8) is { } byValue && (order.Descending ? -byValue : byValue) > 0;
        }
        bool ComesAfterTop(TextColumn text, int row, bool absent) => TextComesAfterTop(absent ? default : text.Utf8(row), absent);
        // Every value of the block is at or past its bound in the order: past the top, none can enter.
        bool BoundsComeAfterTop(TextBounds bounds) => TextComesAfterTop(order.Descending ? bounds.High! : bounds.Low!, absent: false);
        void OfferText(BlockRows rows, ulong[]? mask, TextColumn text)
        {
            long[]? timestamps = null;
            long[]? seqs = null;
            for (var row = 0; row < rows.Count; row++)
            {
                if (mask is not null && !RowBits.Contains(mask, row))
                {
                    continue;
                }
                var absent = text.Absent is { } none && RowBits.Contains(none, row);
                if ((limit == 0 && after is null) || ComesAfterTop(text, row, absent))
                {
                    total++;
                    continue;
                }
                var value = absent ? OrderValue.Missing : new OrderValue(false, 0, System.Text.Encoding.UTF8.GetString(text.Utf8(row)));
                Offer(new Hit(null, rows, row), new OrderKey(value, new EventPosition((timestamps ??= rows.Timestamps)[row], (seqs ??= rows.Seqs)[row])));
            }
        }
        // A dictionary-coded block is visited value by value in the order: once the heap is full, a value that comes
        // after its top cannot enter, and its rows are only counted.
        void OfferGroups(BlockRows rows, ulong[]? mask, DictionaryColumn dictionary)
        {
            // Positions are decoded only for rows that may enter.
            long[]? timestamps = null;
            long[]? seqs = null;
            EventPosition Position(int row) => new((timestamps ??= rows.Timestamps)[row], (seqs ??= rows.Seqs)[row]);
            var codes = new int[dictionary.Values.Length];
            for (var c = 0; c < codes.Length; c++)
            {
                codes[c] = c;
            }
            var values = dictionary.Values;
            Array.Sort(codes, (a, b) => order.CompareValues(new OrderValue(false, 0, values[a]), new OrderValue(false, 0, values[b])));
            var present = 0;
            foreach (var code in codes)
            {
                var value = new OrderValue(false, 0, values[code]);
                var group = dictionary.RowsOf(code);
                if (after is not null && order.CompareValues(value, after.Value.Value) < 0)
                {
                    // Every row of this value came on an earlier page.
                    present += CountIn(group, mask);
                    continue;
                }
                // Ties go newest first, so a tie from a block older than the top cannot enter either.
                if (heap.Count >= limit && (limit == 0 || (heap.TryPeek(out _, out var last) && order.CompareValues(value, last.Value) is var byValue
                    && (byValue > 0 || (byValue == 0 && rows.MaxTime < last.Position.Timestamp)))))
                {
                    var n = CountIn(group, mask);
                    present += n;
                    total += n;
                    continue;
                }
                foreach (var row in group)
                {
                    if (mask is null || RowBits.Contains(mask, row))
                    {
                        present++;
                        Offer(new Hit(null, rows, row), new OrderKey(value, Position(row)));
                    }
                }
            }
            if (dictionary.OtherRows.Length > 0)
            {
                var others = rows.Field(field)!;
                foreach (var row in dictionary.OtherRows)
                {
                    if (mask is null || RowBits.Contains(mask, row))
                    {
                        present++;
                        Offer(new Hit(null, rows, row), new OrderKey(OrderValue.Of(others[row]), Position(row)));
                    }
                }
            }
            // Rows without the field come last: they are offered only while they could still enter the heap.
            var missing = (mask is null ? rows.Count : RowBits.Count(mask)) - present;
            if (missing == 0)
            {
                return;
            }
            if (heap.Count >= limit && (limit == 0 || (heap.TryPeek(out _, out var top) && !top.Value.IsMissing)))
            {
                total += missing;
                return;
            }
            var covered = new ulong[(rows.Count + 63) >> 6];
            foreach (var row in dictionary.Rows)
            {
                RowBits.Set(covered, row);
            }
            foreach (var row in dictionary.OtherRows)
            {
                RowBits.Set(covered, row);
            }
            for (var row = 0; row < rows.Count; row++)
            {
                if (!RowBits.Contains(covered, row) && (mask is null || RowBits.Contains(mask, row)))
                {
                    Offer(new Hit(null, rows, row), new OrderKey(OrderValue.Missing, Position(row)));
                }
            }
        }
        static int CountIn(ReadOnlySpan<int> group, ulong[]? mask)
        {
            if (mask is null)
            {
                return group.Length;
            }
            var n = 0;
            foreach (var row in group)
            {
                n += (int)(mask[row >> 6] >> row) & 1;
            }
            return n;
        }
        Scan(request with { After = null }, cancellationToken,
            rows => OfferRows(rows, null),
            evt =>
            {
                var value = evt.TryGetField(field, out var fieldValue) ? OrderValue.Of(fieldValue)
                    : string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal) ? new OrderValue(false, 0, evt.Message)
                    : OrderValue.Missing;
                Offer(new Hit(evt, null, 0), new OrderKey(value, new EventPosition(evt.Timestamp, evt.Seq)));
            },
            matchingRow: null,
            matchingBlock: OfferRows,
            newestFirst: true,
            blockOrder: Comparer<(Segment Segment, int Block)>.Create((x, y) => CompareBounds(x.Segment.OrderBounds(x.Block, field), y.Segment.OrderBounds(y.Block, field), order.Descending)),
            // The column OfferRows reads: decoded beside the evaluation, ahead of the callback when blocks are slow.
            // Each call below decodes its column when the block has one; the message is read when none is the field.
            prepare: rows =>
            {
                if (rows.FieldCodes(field) is null && rows.TextField(field) is null && string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal) && Array.IndexOf(rows.FieldNames, field) < 0)
                {
                    _ = rows.Messages;
                }
            },
            finish: () =>
            {
                // Rows become events before the segments they come from may go.
                hits = new LogEvent[heap.Count];
                for (var i = hits.Length - 1; i >= 0; i--)
                {
                    heap.TryDequeue(out var hit, out var key);
                    if (i == hits.Length - 1)
                    {
                        lastKey = key;
                    }
                    hits[i] = hit.Event ?? hit.Rows!.ToEvent(hit.Row);
                }
            });
        var more = hits.Length == limit && limit > 0;
        return new SearchResult(hits, total, true, null) { NextOrderKey = more ? lastKey : null };
    }

    /// <summary>The one block a search or scan evaluates on a pool thread while it works on the block before.</summary>
    private sealed class BlockAhead
    {
        private Task<ulong[]>? _task;
        private int _index = -1;

        /// <summary>The rows of block <paramref name="index"/> if it was evaluated ahead (its failure is thrown here).</summary>
        public bool TryTake(int index, out ulong[] rows)
        {
            if (_index != index)
            {
                rows = [];
                return false;
            }
            var task = _task!;
            (_task, _index) = (null, -1);
            rows = task.GetAwaiter().GetResult();
            return true;
        }

        public void Start(int index, Func<ulong[]> evaluate, CancellationToken cancellationToken) =>
            (_task, _index) = (Task.Run(evaluate, cancellationToken), index);

        /// <summary>Waits for a block never taken; its failure (a cancellation, a damaged block) is not the search's.</summary>
        public void Wait()
        {
            try
            {
                _task?.Wait(CancellationToken.None);
            }
            catch (AggregateException)
            {
                // The search never reached that block.
            }
        }
    }

    /// <summary>
    /// The order a field order visits blocks in: those whose bounds are not known first (they are read anyway), then by
    /// the bound that comes first in the order, so the page fills with its best values early and later blocks are
    /// skipped whole. (Bytes are compared as they are: the visiting order needs no exactness.)
    /// </summary>
    private static int CompareBounds(TextBounds? x, TextBounds? y, bool descending) => (x?.Low, y?.Low) switch
    {
        (null, null) => 0,
        (null, _) => -1,
        (_, null) => 1,
        _ => descending ? y!.High.AsSpan().SequenceCompareTo(x!.High) : x!.Low.AsSpan().SequenceCompareTo(y!.Low),
    };

    /// <summary>
    /// The sign of <see cref="string.CompareOrdinal(string, string)"/> of two texts given as UTF-8, without decoding them;
    /// null where UTF-8's order (by code point) and UTF-16's differ: between a character of U+E000–U+FFFF and one past
    /// U+FFFF (lead bytes 0xEE and up on both sides).
    /// </summary>
    internal static int? CompareOrdinalUtf8(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y)
    {
        var common = x.CommonPrefixLength(y);
        if (common == x.Length || common == y.Length)
        {
            return x.Length - y.Length;
        }
        // Both texts agree up to here, so both bytes hold the same place in a character: two leads or two continuations.
        var (a, b) = (x[common], y[common]);
        return a >= 0xEE && b >= 0xEE ? null : a - b;
    }

    /// <summary>Counts matching events per value of <paramref name="field"/>.</summary>
    public CountByResult CountBy(SearchRequest request, string field, CancellationToken cancellationToken = default)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        long total = 0;
        void Add(FieldValue value)
        {
            if (value.SearchText is { } key)
            {
                counts[key] = counts.GetValueOrDefault(key) + 1;
                total++;
            }
        }
        // Counts one block's rows (all of them, or those in the mask): dictionary-coded values by their groups.
        void CountBlock(BlockRows rows, ulong[]? mask)
        {
            if (rows.FieldCodes(field) is not { } dictionary)
            {
                if (rows.Field(field) is not { } values)
                {
                    return;
                }
                for (var row = 0; row < values.Length; row++)
                {
                    if (values[row].Kind != 0 && (mask is null || RowBits.Contains(mask, row)))
                    {
                        Add(values[row]);
                    }
                }
                return;
            }
            for (var code = 0; code < dictionary.Values.Length; code++)
            {
                long n = 0;
                if (mask is null)
                {
                    n = dictionary.Starts[code + 1] - dictionary.Starts[code];
                }
                else
                {
                    foreach (var row in dictionary.RowsOf(code))
                    {
                        n += (long)(mask[row >> 6] >> row) & 1;
                    }
                }
                if (n > 0)
                {
                    counts[dictionary.Values[code]] = counts.GetValueOrDefault(dictionary.Values[code]) + n;
                    total += n;
                }
            }
            if (dictionary.OtherRows.Length > 0)
            {
                var values = rows.Field(field)!;
                foreach (var row in dictionary.OtherRows)
                {
                    if (mask is null || RowBits.Contains(mask, row))
                    {
                        Add(values[row]);
                    }
                }
            }
        }
        // A block whose every row counts and whose footer keeps the field's value counts is not read.
        bool CountFromFooter(Segment segment, int block)
        {
            if (segment.FieldCounts(block, field) is not { } footer)
            {
                return false;
            }
            for (var i = 0; i < footer.Values.Length; i++)
            {
                if (footer.Rows[i] > 0)
                {
                    counts[footer.Values[i]] = counts.GetValueOrDefault(footer.Values[i]) + footer.Rows[i];
                    total += footer.Rows[i];
                }
            }
            return true;
        }
        Scan(request, cancellationToken,
            rows => CountBlock(rows, null),
            evt =>
            {
                if (evt.TryGetField(field, out var value))
                {
                    Add(value);
                }
            },
            matchingRow: null,
            matchingBlock: CountBlock,
            wholeFromFooter: CountFromFooter);
        return new CountByResult(counts, total);
    }

    /// <summary>Counts matching events per time bucket of <paramref name="bucketTicks"/>.</summary>
    public HistogramResult Histogram(SearchRequest request, long bucketTicks, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketTicks, 1);
        var counts = new Dictionary<long, long>();
        long total = 0;
        void Add(long t)
        {
            var bucket = t - (((t % bucketTicks) + bucketTicks) % bucketTicks);
            counts[bucket] = counts.GetValueOrDefault(bucket) + 1;
            total++;
        }
        Scan(request, cancellationToken,
            rows =>
            {
                // Timestamps ascend within a block: each bucket's run ends where a binary search says.
                var timestamps = rows.Timestamps;
                var i = 0;
                while (i < timestamps.Length)
                {
                    var t = timestamps[i];
                    var bucket = t - (((t % bucketTicks) + bucketTicks) % bucketTicks);
                    var end = FirstAtOrAfter(timestamps, i, bucket > long.MaxValue - bucketTicks ? long.MaxValue : bucket + bucketTicks);
                    counts[bucket] = counts.GetValueOrDefault(bucket) + (end - i);
                    total += end - i;
                    i = end;
                }
            },
            evt => Add(evt.Timestamp),
            (rows, row) => Add(rows.Timestamps[row]),
            wholeFromFooter: bucketTicks % TimeSpan.TicksPerMinute == 0 ? CountMinutes : null);
        return new HistogramResult(counts, total);

        // Buckets of whole minutes begin on minutes: a block's rows per minute fall in the buckets of those minutes.
        bool CountMinutes(Segment segment, int block)
        {
            var meta = segment.Blocks[block];
            if (meta.MinuteRows is not { } minutes)
            {
                return false;
            }
            var first = MinuteRows.MinuteOf(meta.MinTime);
            for (var i = 0; i < minutes.Length; i++)
            {
                if (minutes[i] > 0)
                {
                    var t = (first + i) * TimeSpan.TicksPerMinute;
                    var bucket = t - (((t % bucketTicks) + bucketTicks) % bucketTicks);
                    counts[bucket] = counts.GetValueOrDefault(bucket) + minutes[i];
                    total += minutes[i];
                }
            }
            return true;
        }
    }

    /// <summary>The first index at or after <paramref name="from"/> whose value is at least <paramref name="value"/>.</summary>
    private static int FirstAtOrAfter(long[] ascending, int from, long value)
    {
        int low = from, high = ascending.Length;
        while (low < high)
        {
            var middle = (int)((uint)(low + high) >> 1);
            if (ascending[middle] < value)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }
        return low;
    }

    /// <summary>
    /// Visits every matching event: whole blocks that match entirely go to <paramref name="wholeBlock"/> (so only the
    /// needed column is decoded), other rows of blocks to <paramref name="matchingRow"/>, events in memory to
    /// <paramref name="matching"/>. <paramref name="finish"/> runs last, while the blocks' segments are still held.
    /// <paramref name="newestFirst"/> visits segments by their newest event and blocks from the end, newest first;
    /// <paramref name="blockOrder"/>, when given, then reorders the blocks (a stable sort). <paramref name="prepare"/>
    /// reads, beside a block evaluated ahead on another thread, what the callbacks will. <paramref name="wholeFromFooter"/>,
    /// when given, is offered a whole block before it is read, and answers true when the block's footer sufficed.
    /// </summary>
    internal void Scan(SearchRequest request, CancellationToken cancellationToken, Action<BlockRows> wholeBlock, Action<LogEvent> matching, Action<BlockRows, int>? matchingRow, Action<BlockRows, ulong[]>? matchingBlock = null, Action? finish = null, bool newestFirst = false, IComparer<(Segment Segment, int Block)>? blockOrder = null, Action<BlockRows>? prepare = null, Func<Segment, int, bool>? wholeFromFooter = null)
    {
        request = WithinRetention(request);
        var now = _time.GetUtcNow();
        var matcher = EventMatcher.Compile(request.Query, now);
        var from = request.From ?? long.MinValue;
        var to = request.To ?? long.MaxValue;
        var after = request.After;
        var matchAll = request.Query is MatchAllNode;
        var ahead = new BlockAhead();
        var slow = false;
        var (segments, tables) = AcquireSnapshot();
        try
        {
            foreach (var table in tables)
            {
                for (var i = 0; i < table.Count; i++)
                {
                    // A memory table holds up to MemTableMaxEvents: a slow clause must still stop in time.
                    if ((i & 0xFF) == 0xFF)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                    var t = table.Times[i];
                    if (t < from || t >= to || (after is not null && new EventPosition(t, table.Seqs[i]) >= after.Value))
                    {
                        continue;
                    }
                    var evt = table.Event(i);
                    if (matcher(evt))
                    {
                        matching(evt);
                    }
                }
            }
            if (newestFirst)
            {
                segments = [.. segments.OrderByDescending(segment => segment.Info.MaxTime)];
            }
            var blocks = new List<(Segment Segment, int Block)>();
            foreach (var segment in segments)
            {
                if (segment.Info.MaxTime < from || segment.Info.MinTime >= to)
                {
                    continue;
                }
                var candidates = BlockPlanner.CandidateBlocks(request.Query, segment, now);
                for (var n = 0; n < segment.Blocks.Length; n++)
                {
                    var b = newestFirst ? segment.Blocks.Length - 1 - n : n;
                    var block = segment.Blocks[b];
                    if (block.MaxTime < from || block.MinTime >= to || (candidates is not null && !candidates.Contains(b)))
                    {
                        continue;
                    }
                    blocks.Add((segment, b));
                }
            }
            if (blockOrder is not null)
            {
                blocks = [.. blocks.Order(blockOrder)];
            }
            bool Whole(int n) => matchAll && after is null && blocks[n].Segment.Blocks[blocks[n].Block] is var block && block.MinTime >= from && block.MaxTime < to;
            // As in Search: once a block takes time, the next block is evaluated (and prepared) on a pool thread while
            // this one is visited; the callbacks still run in order, here.
            ulong[] Evaluate(int n)
            {
                if (ahead.TryTake(n, out var evaluated))
                {
                    return evaluated;
                }
                if (slow && n + 1 < blocks.Count && !Whole(n + 1))
                {
                    var (next, nextBlock) = blocks[n + 1];
                    ahead.Start(n + 1, () =>
                    {
                        var rows = LoadRows(next, nextBlock);
                        var matching = BlockQuery.Evaluate(request.Query, rows, next, now, cancellationToken);
                        prepare?.Invoke(rows);
                        return matching;
                    }, cancellationToken);
                }
                return BlockQuery.Evaluate(request.Query, LoadRows(blocks[n].Segment, blocks[n].Block), blocks[n].Segment, now, cancellationToken);
            }
            for (var n = 0; n < blocks.Count; n++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (segment, b) = blocks[n];
                var block = segment.Blocks[b];
                if (Whole(n))
                {
                    if (wholeFromFooter?.Invoke(segment, b) != true)
                    {
                        wholeBlock(LoadRows(segment, b));
                    }
                    continue;
                }
                // A block slow to evaluate and visit (its callback decoding a column, say) sends the next ones ahead.
                var started = _time.GetTimestamp();
                var matchingRows = Evaluate(n);
                var rows = LoadRows(segment, b);
                if (!(after is null && block.MinTime >= from && block.MaxTime < to))
                {
                    foreach (var i in RowBits.Rows(matchingRows))
                    {
                        var t = rows.Timestamps[i];
                        if (t < from || t >= to || (after is not null && new EventPosition(t, rows.Seqs[i]) >= after.Value))
                        {
                            RowBits.Clear(matchingRows, i);
                        }
                    }
                }
                if (matchingBlock is not null)
                {
                    matchingBlock(rows, matchingRows);
                }
                else
                {
                    foreach (var i in RowBits.Rows(matchingRows))
                    {
                        matchingRow!(rows, i);
                    }
                }
                slow |= EvaluateAhead && _time.GetElapsedTime(started).Ticks > SlowBlockTicks;
            }
            finish?.Invoke();
        }
        finally
        {
            // A block evaluated ahead reads its segment: it ends before the segments are released.
            ahead.Wait();
            foreach (var segment in segments)
            {
                segment.Release();
            }
            foreach (var table in tables)
            {
                table.Table.Release();
            }
        }
    }

    private readonly record struct Source(long MinTime, long MaxTime, int Rows, Segment? Segment, int Block, MemTableSnapshot Table);

    /// <summary>A hit kept while searching: an event from memory, or a row of a block built into an event at the end.</summary>
    private readonly record struct Hit(LogEvent? Event, BlockRows? Rows, int Row);

    private BlockRows LoadRows(Segment segment, int block) => _cache.GetOrAdd(segment.Id, block, () => segment.OpenBlock(block));

    private (List<Segment> Segments, List<MemTableSnapshot> Tables) AcquireSnapshot()
    {
        lock (_stateLock)
        {
            var state = _state;
            var segments = new List<Segment>(state.Segments.Count);
            foreach (var segment in state.Segments)
            {
                if (segment.TryAcquire())
                {
                    segments.Add(segment);
                }
            }
            // Tables leave the state under this lock before they are retired: each one here is still live.
            var tables = new List<MemTableSnapshot>(state.Frozen.Count + 1);
            foreach (var table in state.Frozen.Append(state.Active))
            {
                table.Acquire();
                tables.Add(table.Snapshot());
            }
            return (segments, tables);
        }
    }

    /// <summary>Stops accepting writes, finishes queued ones, flushes memory to segments and closes files.</summary>
    SearchResult IPipelineSource.Search(SearchRequest request, CancellationToken cancellationToken) => Search(request, cancellationToken);

    CountByResult IPipelineSource.CountBy(SearchRequest request, string field, CancellationToken cancellationToken) => CountBy(request, field, cancellationToken);

    HistogramResult IPipelineSource.Histogram(SearchRequest request, long bucketTicks, CancellationToken cancellationToken) => Histogram(request, bucketTicks, cancellationToken);

    void IPipelineSource.Scan(SearchRequest request, CancellationToken cancellationToken, Action<BlockRows, ulong[]?> block, Action<List<LogEvent>> events)
    {
        var inMemory = new List<LogEvent>();
        Scan(request, cancellationToken, rows => block(rows, null), inMemory.Add, matchingRow: null, matchingBlock: block);
        if (inMemory.Count > 0)
        {
            events(inMemory);
        }
    }

    Task ILogIndexSet.AppendOnceAsync(List<LogEvent> events, string key, CancellationToken cancellationToken) => AppendAsync(events, cancellationToken);

    Task ILogIndexSet.SetPipelineAsync(CleaningPipeline? pipeline, CancellationToken cancellationToken) => Task.Run(() => SetPipeline(pipeline), cancellationToken);

    int ILogIndexSet.RetentionDays => Settings.RetentionDays;

    // The log store's reads answer on the calling thread: the work is CPU and page cache, and the callers run it off
    // the request's thread within their timeout.
    Task<IndexSetInfo> ILogIndexSet.InfoAsync(CancellationToken cancellationToken) => Task.FromResult(Info());

    Task<(long Min, long Max)?> ILogIndexSet.TimeBoundsAsync(CancellationToken cancellationToken) => Task.FromResult(TimeBounds());

    Task<LogEvent?> ILogIndexSet.FindBySeqAsync(long seq, CancellationToken cancellationToken) => Task.FromResult(FindBySeq(seq, cancellationToken));

    Task<SearchResult> ILogIndexSet.SearchAsync(SearchRequest request, CancellationToken cancellationToken) => Task.FromResult(Search(request, cancellationToken));

    Task<HistogramResult> ILogIndexSet.HistogramAsync(SearchRequest request, long bucketTicks, CancellationToken cancellationToken) =>
        Task.FromResult(Histogram(request, bucketTicks, cancellationToken));

    Task<ResultTable> ILogIndexSet.RunPipelineAsync(Pipeline pipeline, long? from, long? to, CancellationToken cancellationToken) =>
        Task.FromResult(PipelineRunner.Run(this, pipeline, from, to, cancellationToken));

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _appends.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        _tails.Close();
        if (_state.Active.Count > 0)
        {
            // Frozen behind its own log for the final flush; no new log is needed (nor possible on a full disk).
            var wal = _wal;
            _wal = null;
            wal?.Dispose();
            lock (_stateLock)
            {
                _state = _state with { Frozen = [.. _state.Frozen, _state.Active], Active = new MemTable(NextWalPath()) };
            }
        }
        _stopping.Cancel();
        await _flusher.ConfigureAwait(false);
        await _merger.ConfigureAwait(false);
        try
        {
            await FlushFrozenAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The write-ahead log still holds everything; the next start replays it.
            _logger.LogWarning(e, "Index set {Name}: final flush failed; events stay in the write-ahead log", Name);
        }
        _wal?.Dispose();
        // The last, empty log file is not needed; an unclean stop leaves it and recovery removes it.
        if (_state.Active.Count == 0 && _wal is not null)
        {
            File.Delete(_wal.Path);
        }
        foreach (var segment in _state.Segments)
        {
            segment.Retire(deleteFile: false);
        }
        _stopping.Dispose();
    }
}
