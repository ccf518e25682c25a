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
    public async Task<(bool Found, string? Error, IndexSetInfo? Info)> SetRetentionAsync(string name, int retentionDays)
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
            store.SetRetention(retentionDays);
            _logger.LogInformation("Index set {Name} keeps events for {Days} days", name, retentionDays);
            return (true, null, store.Info());
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
