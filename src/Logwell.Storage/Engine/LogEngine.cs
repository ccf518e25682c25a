using Logwell.Core.Events;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Logwell.Storage.Engine;

public enum CreateOutcome
{
    Created,
    AlreadyExists,
    InvalidName,
    InvalidSettings,
}

/// <summary>
/// The embedded log engine: the index sets under <c>DATA/indexsets/</c>, each with its own store, plus the block
/// cache they share and the retention timer. An index set named <c>default</c> always exists.
/// </summary>
public sealed class LogEngine : ILogStore
{
    private readonly EngineOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly BlockCache _cache;
    private readonly string _root;
    private readonly SemaphoreSlim _catalog = new(1, 1);
    private readonly Dictionary<string, IndexSetStore> _stores = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _unavailable = new(StringComparer.Ordinal);

    /// <summary>Index sets on disk that could not be opened at start, with the reason; the others serve.</summary>
    public IReadOnlyDictionary<string, string> Unavailable
    {
        get
        {
            lock (_stores)
            {
                return new Dictionary<string, string>(_unavailable, StringComparer.Ordinal);
            }
        }
    }
    /// <summary>Segments found damaged since they were opened, in every index set that serves.</summary>
    public IReadOnlyList<string> Damage
    {
        get
        {
            List<IndexSetStore> stores;
            lock (_stores)
            {
                stores = [.. _stores.Values.OrderBy(s => s.Name, StringComparer.Ordinal)];
            }
            return [.. stores.SelectMany(s => s.DamagedSegments().Select(d => $"index set {s.Name}: segment {d.File} is damaged ({d.Detail})"))];
        }
    }

    private readonly CancellationTokenSource _stopping = new();
    private Task _retention = Task.CompletedTask;
    private int _disposed;

    private LogEngine(EngineOptions options, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _loggers = loggers;
        _logger = loggers.CreateLogger<LogEngine>();
        _time = time;
        _cache = new BlockCache(options.BlockCacheBytes);
        _root = Path.Combine(options.DataDirectory, "indexsets");
    }

    public EngineOptions Options => _options;

    /// <summary>The file whose lock an open engine holds in its data directory.</summary>
    public const string LockFile = "engine.lock";

    private FileStream? _lock;

    /// <exception cref="IOException">Another engine (another node process) has the data directory open.</exception>
    public static LogEngine Open(EngineOptions options, TimeProvider time, ILoggerFactory? loggers = null)
    {
        options.Validate();
        var engine = new LogEngine(options, loggers ?? NullLoggerFactory.Instance, time);
        engine._lock = TakeLock(options.DataDirectory);
        JoinNode(options.DataDirectory);
        try
        {
            engine.Load();
        }
        catch
        {
            engine._lock.Dispose();
            throw;
        }
        return engine;
    }

    private static readonly Dictionary<string, FileStream> NodeLocks = new(StringComparer.Ordinal);

    /// <summary>
    /// Marks this process as one of the node's on <paramref name="dataDirectory"/> for as long as it runs: a shared
    /// <c>flock</c> on <c>node.lock</c> that the engine, the task queue file and the metadata file take, so that a
    /// restore (which wants it alone) is refused while any process of the node (workers, the scheduler) still has the
    /// directory's databases open. Once per directory and process; let go when the process ends.
    /// </summary>
    public static void JoinNode(string dataDirectory)
    {
        var directory = Path.GetFullPath(dataDirectory);
        lock (NodeLocks)
        {
            if (NodeLocks.ContainsKey(directory))
            {
                return;
            }
            Directory.CreateDirectory(directory);
            try
            {
                NodeLocks[directory] = new FileStream(Path.Combine(directory, NodeLockFile), FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
            }
            catch (IOException)
            {
                // A restore holds it this moment: the databases it writes are opened after it, as when the node starts.
            }
        }
    }

    /// <summary>The file every process of a node holds shared (<see cref="JoinNode"/>).</summary>
    public const string NodeLockFile = "node.lock";

    /// <summary>
    /// Takes every process's lock on <paramref name="dataDirectory"/> for a restore: the engine's and the node's, alone.
    /// </summary>
    /// <exception cref="IOException">A process of the node runs on it.</exception>
    public static IDisposable TakeForRestore(string dataDirectory)
    {
        var engine = TakeLock(dataDirectory);
        try
        {
            var directory = Path.GetFullPath(dataDirectory);
            var node = new FileStream(Path.Combine(directory, NodeLockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            return new Held(engine, node);
        }
        catch (IOException e)
        {
            engine.Dispose();
            throw new IOException($"a process of the node on {Path.GetFullPath(dataDirectory)} (a worker, the scheduler, an API process) still has it open: stop every process of the node first (`logwell ctl stop all`, or its service) ({e.Message})", e);
        }
    }

    private sealed class Held(FileStream engine, FileStream node) : IDisposable
    {
        public void Dispose()
        {
            node.Dispose();
            engine.Dispose();
        }
    }

    /// <summary>
    /// Takes the data directory's lock (an advisory <c>flock</c>, let go when the process ends however it ends): two
    /// engines writing the same logs and manifests would corrupt them, and a restore must not write under a running node.
    /// </summary>
    /// <exception cref="IOException">Another process (or engine) holds it.</exception>
    public static FileStream TakeLock(string dataDirectory)
    {
        var directory = Path.GetFullPath(dataDirectory);
        Directory.CreateDirectory(directory);
        try
        {
            return new FileStream(Path.Combine(directory, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new IOException($"another Logwell process has {directory} open (it holds {LockFile}): stop every process of the node first (`logwell ctl stop all`, or its service) ({e.Message})", e);
        }
    }

    private void Load()
    {
        Directory.CreateDirectory(_root);
        if (Directory.Exists(Path.Combine(_options.DataDirectory, ".restoring")))
        {
            _logger.LogWarning("{Directory} holds what a restore cut short left (.restoring/): the node runs without it; run the restore again with the node stopped", _options.DataDirectory);
        }
        foreach (var directory in Directory.EnumerateDirectories(_root).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(directory);
            if (!File.Exists(Path.Combine(directory, IndexSetSettings.FileName)))
            {
                // A creation or deletion cut short: no settings file, so it was never acknowledged.
                Directory.Delete(directory, recursive: true);
                continue;
            }
            try
            {
                _stores[name] = IndexSetStore.Open(directory, _options, _cache, _loggers.CreateLogger<IndexSetStore>(), _time);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One index set that cannot be opened does not keep the others from serving: it is reported (log,
                // health, API) and left as it is on disk for the operator.
                _logger.LogError(e, "Index set {Name} cannot be opened and is unavailable: {Reason}", name, e.Message);
                _unavailable[name] = $"{e.GetType().Name}: {e.Message}";
            }
        }
        if (!_stores.ContainsKey(IndexSetName.Default) && !_unavailable.ContainsKey(IndexSetName.Default))
        {
            var settings = new IndexSetSettings(IndexSetName.Default, _options.DefaultRetentionDays, _time.GetUtcNow());
            _stores[IndexSetName.Default] = IndexSetStore.Create(Path.Combine(_root, IndexSetName.Default), settings, _options, _cache, _loggers.CreateLogger<IndexSetStore>(), _time);
        }
        _retention = Task.Run(RetentionLoopAsync);
    }

    public bool TryGet(string name, out IndexSetStore store)
    {
        lock (_stores)
        {
            return _stores.TryGetValue(name, out store!);
        }
    }

    /// <summary>The engine is in this process: always reachable.</summary>
    string? ILogStore.Unreachable => null;

    bool ILogStore.TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ILogIndexSet? indexSet)
    {
        var found = TryGet(name, out var store);
        indexSet = store;
        return found;
    }

    public IReadOnlyList<string> Names()
    {
        lock (_stores)
        {
            return [.. _stores.Keys.Order(StringComparer.Ordinal)];
        }
    }

    Task<IReadOnlyList<IndexSetInfo>> ILogStore.ListAsync(CancellationToken cancellationToken) => Task.FromResult(List());

    async Task<(CreateOutcome Outcome, string Error, ILogIndexSet? IndexSet)> ILogStore.CreateAsync(string name, int? retentionDays, bool system) =>
        await CreateAsync(name, retentionDays, system).ConfigureAwait(false);

    async Task<ILogIndexSet> ILogStore.GetOrCreateAsync(string name) => await GetOrCreateAsync(name).ConfigureAwait(false);

    Task ILogStore.ApplyRetentionAsync(CancellationToken cancellationToken) => ApplyRetentionAsync();

    public IReadOnlyList<IndexSetInfo> List()
    {
        List<IndexSetStore> stores;
        lock (_stores)
        {
            stores = [.. _stores.Values.OrderBy(s => s.Name, StringComparer.Ordinal)];
        }
        return [.. stores.Select(s => s.Info())];
    }

    /// <param name="system">A system index set of the node's own (<c>_audit</c>), whose name no client may use.</param>
    public async Task<(CreateOutcome Outcome, string Error, IndexSetStore? Store)> CreateAsync(string name, int? retentionDays, bool system = false)
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
            if (TryGet(name, out var existing))
            {
                return (CreateOutcome.AlreadyExists, $"index set '{name}' already exists", existing);
            }
            if (_unavailable.TryGetValue(name, out var reason))
            {
                return (CreateOutcome.AlreadyExists, $"index set '{name}' exists but is unavailable ({reason}); delete it to start afresh", null);
            }
            var settings = new IndexSetSettings(name, days, _time.GetUtcNow());
            var directory = Path.Combine(_root, name);
            IndexSetStore store;
            try
            {
                store = IndexSetStore.Create(directory, settings, _options, _cache, _loggers.CreateLogger<IndexSetStore>(), _time);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Half-made (a full disk): nothing of it may stay behind to be opened as a broken index set.
                try
                {
                    Directory.Delete(directory, recursive: true);
                }
                catch (DirectoryNotFoundException)
                {
                }
                throw;
            }
            lock (_stores)
            {
                _stores[name] = store;
            }
            _logger.LogInformation("Created index set {Name} (retention {Days} days)", name, days);
            return (CreateOutcome.Created, "", store);
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>Returns the index set, creating it with default settings when it does not exist.</summary>
    public async Task<IndexSetStore> GetOrCreateAsync(string name)
    {
        if (TryGet(name, out var store))
        {
            return store;
        }
        var (_, error, created) = await CreateAsync(name, null).ConfigureAwait(false);
        return created ?? throw new ArgumentException(error, nameof(name));
    }

    public async Task<bool> DeleteAsync(string name)
    {
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            IndexSetStore? store;
            string directory;
            lock (_stores)
            {
                if (_stores.Remove(name, out store))
                {
                    directory = store.Directory;
                }
                else if (_unavailable.Remove(name))
                {
                    // An index set that could not be opened is deleted from disk as it is.
                    directory = Path.Combine(_root, name);
                }
                else
                {
                    return false;
                }
            }
            if (store is not null)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }
            // Remove the settings file first: a directory without it is discarded on the next start.
            File.Delete(Path.Combine(directory, IndexSetSettings.FileName));
            Encoding.DurableFile.SyncDirectory(directory);
            Directory.Delete(directory, recursive: true);
            _logger.LogInformation("Deleted index set {Name}", name);
            return true;
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>
    /// Changes how long an index set keeps its events; the next retention pass applies it. Null when the index set
    /// does not exist; an error when the number is out of range.
    /// </summary>
    public Task<(bool Found, string? Error, IndexSetInfo? Info)> SetRetentionAsync(string name, int retentionDays) =>
        ChangeAsync(name, retentionDays, setArchive: false, archiveAfterDays: null);

    /// <summary>
    /// Turns an index set's pattern ids at ingest on or off, under the lock of every other settings change; false when
    /// there is no index set by that name (or it is being deleted).
    /// </summary>
    public async Task<bool> SetPatternsAsync(string name, bool on)
    {
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!TryGet(name, out var store))
            {
                return false;
            }
            store.SetPatterns(on);
            _logger.LogInformation("Index set {Name} gives events pattern ids: {On}", name, on ? "on" : "off");
            return true;
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>
    /// Changes an index set's retention and (when <paramref name="setArchive"/>) its <c>archive_after_days</c> together:
    /// both are checked against each other's new value before either is saved. Not found when the index set does not
    /// exist; an error when a number is out of range or the archive would come at or after retention.
    /// </summary>
    public async Task<(bool Found, string? Error, IndexSetInfo? Info)> ChangeAsync(string name, int? retentionDays, bool setArchive, int? archiveAfterDays)
    {
        if (retentionDays is < 1 or > 36_500)
        {
            return (true, $"retention_days must be between 1 and 36500, not {retentionDays}", null);
        }
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!TryGet(name, out var store))
            {
                return (false, null, null);
            }
            var retention = retentionDays ?? store.Settings.RetentionDays;
            var archive = setArchive ? archiveAfterDays : store.ArchiveAfterDays;
            if (setArchive && archive is not null && store.Restored is not null)
            {
                return (true, $"index set '{name}' was restored from the archive; it is not archived again", null);
            }
            if (archive is { } after && (after < 1 || after >= retention))
            {
                return (true, setArchive
                    ? $"archive_after_days must be at least 1 and less than the index set's retention_days ({retention}), not {after}"
                    : $"retention_days must be more than archive_after_days ({after}): lower that first, or stop archiving", null);
            }
            if (retention != store.Settings.RetentionDays)
            {
                store.SetRetention(retention);
                _logger.LogInformation("Index set {Name} keeps events for {Days} days", name, retention);
            }
            if (setArchive)
            {
                store.SetArchiveAfter(archive);
                _logger.LogInformation("Index set {Name} moves days older than {Days} days to the archive", name, archive?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(never)");
            }
            return (true, null, store.Info());
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>
    /// Where an index set restored from the archive is put together before <see cref="AdoptRestoredAsync"/>: under
    /// <c>indexsets/</c>, by a name no index set can have; without a settings file, so that a node started on what a
    /// restore cut short left deletes it.
    /// </summary>
    public string RestoreStaging(string name) => Path.Combine(_root, "." + name + ".restoring");

    /// <summary>
    /// Makes the segments put under <see cref="RestoreStaging"/>'s <c>segments/</c> the index set
    /// <paramref name="name"/>, listing them by <paramref name="segments"/> (their manifest entries as the archive kept
    /// them): it serves from then on, and is deleted by itself at <see cref="RestoredRange.Expires"/>.
    /// </summary>
    public async Task<(CreateOutcome Outcome, string Error)> AdoptRestoredAsync(string name, IReadOnlyList<string> segments, RestoredRange restored)
    {
        if (!IndexSetName.IsValid(name, out var error, system: false))
        {
            return (CreateOutcome.InvalidName, error);
        }
        await _catalog.WaitAsync().ConfigureAwait(false);
        try
        {
            if (TryGet(name, out _) || _unavailable.ContainsKey(name))
            {
                return (CreateOutcome.AlreadyExists, $"index set '{name}' already exists");
            }
            var staging = RestoreStaging(name);
            var infos = segments.Select(json => System.Text.Json.JsonSerializer.Deserialize(json, ManifestJson.Default.SegmentInfo)
                ?? throw new InvalidDataException("an archived segment's entry is empty")).ToList();
            foreach (var info in infos)
            {
                // Named as this engine names segments, and each once: no entry may point out of the index set's directory.
                if (!System.Text.RegularExpressions.Regex.IsMatch(info.File, @"^seg-[0-9]{10}\.lws\z"))
                {
                    throw new InvalidDataException($"'{info.File}' is no segment name");
                }
                if (!File.Exists(Path.Combine(staging, IndexSetStore.SegmentDirectoryName, info.File)))
                {
                    throw new InvalidDataException($"the restored segment {info.File} is not in {staging}");
                }
            }
            if (infos.Select(i => i.File).Distinct(StringComparer.Ordinal).Count() != infos.Count)
            {
                throw new InvalidDataException("two restored segments have the same name");
            }
            var ids = infos.Select(i => long.Parse(i.File.AsSpan(4, 10), System.Globalization.CultureInfo.InvariantCulture));
            var manifest = new Manifest
            {
                FlushedSeq = infos.Count == 0 ? 0 : infos.Max(i => i.MaxSeq),
                NextSegmentId = (infos.Count == 0 ? 0 : ids.Max()) + 1,
                Segments = infos,
            };
            Directory.CreateDirectory(Path.Combine(staging, IndexSetStore.SegmentDirectoryName));
            manifest.Save(staging);
            var target = Path.Combine(_root, name);
            Directory.Move(staging, target);
            // The settings file last: until it is there, a start discards the directory as a restore cut short.
            new IndexSetSettings(name, 36_500, _time.GetUtcNow()) { Restored = restored }.Save(target);
            Encoding.DurableFile.SyncDirectory(_root);
            var store = IndexSetStore.Open(target, _options, _cache, _loggers.CreateLogger<IndexSetStore>(), _time);
            lock (_stores)
            {
                _stores[name] = store;
            }
            _logger.LogInformation("Restored index set {Name} from the archive of {From} ({First}..{Last}, {Segments} segments), deleted at {Expires:u}", name, restored.From, restored.FirstDay, restored.LastDay, infos.Count, restored.Expires);
            return (CreateOutcome.Created, "");
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>Starts a merge pass on every index set.</summary>
    public void RequestMerges()
    {
        lock (_stores)
        {
            foreach (var store in _stores.Values)
            {
                store.RequestMerge();
            }
        }
    }

    public async Task ApplyRetentionAsync()
    {
        List<IndexSetStore> stores;
        lock (_stores)
        {
            stores = [.. _stores.Values];
        }
        foreach (var store in stores)
        {
            if (store.Restored is { } restored && restored.Expires <= _time.GetUtcNow())
            {
                // Restored from the archive for a while: that while is over.
                _logger.LogInformation("Index set {Name}, restored from the archive of {From}, expired at {Expires:u}", store.Name, restored.From, restored.Expires);
                await DeleteAsync(store.Name).ConfigureAwait(false);
                continue;
            }
            try
            {
                await store.ApplyRetentionAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // Deleted meanwhile.
            }
        }
    }

    private async Task RetentionLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await ApplyRetentionAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogError(e, "Retention pass failed");
            }
            try
            {
                await Task.Delay(_options.RetentionInterval, _time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _retention.ConfigureAwait(false);
        List<IndexSetStore> stores;
        lock (_stores)
        {
            stores = [.. _stores.Values];
            _stores.Clear();
        }
        try
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _stopping.Dispose();
            _catalog.Dispose();
            _lock?.Dispose();
        }
    }
}
