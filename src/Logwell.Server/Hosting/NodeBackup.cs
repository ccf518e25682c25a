using System.Globalization;
using Logwell.Jobs;
using Logwell.Storage;
using Logwell.Storage.Backup;
using Logwell.Storage.Engine;
using System.Text.Json;
using Logwell.Server.Api;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Hosting;

/// <summary>When this node's process started, by the node's clock.</summary>
internal sealed record NodeStart(DateTimeOffset At);

/// <summary>
/// A backup of a running node on the embedded engine: every index set at one backup point (see
/// <see cref="IndexSetStore.OpenBackupAsync"/>), the SQLite databases in the data directory through SQLite's online
/// backup (never a copy of a live file), and the node's credential; into a <see cref="BackupRepository"/>, where only
/// what earlier backups lack is written. Paths in the backup are relative to the data directory, so a restore into an
/// empty one makes the node again.
/// </summary>
public static class NodeBackup
{
    /// <summary>The node's settings at the backup point (as <c>logwell config show</c> prints them), in the backup and in a restored data directory.</summary>
    public const string SettingsFile = "settings-at-backup.txt";

    /// <summary>The chunk size of write-ahead logs in a backup.</summary>
    private const int LogChunkBytes = 1 << 20;

    /// <summary>One backup at a time per node: a second waits for the first.</summary>
    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    /// <summary>
    /// <c>POST /api/v1/maintenance/backup {"to": "/absolute/directory", "keep_last", "keep_daily", "keep_weekly"}</c>:
    /// a directory on this node's machine (a local disk or a mounted share) or <c>s3://bucket/prefix</c>; with a keep
    /// rule, the backups there that it does not keep are pruned afterwards.
    /// </summary>
    internal static async Task HandleAsync(HttpContext context)
    {
        using var body = await Api.RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        string destination;
        BackupRetention retention;
        try
        {
            (destination, retention) = Tasks.BuiltinTasks.BackupRequest(body.RootElement);
        }
        catch (FormatException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
            return;
        }
        var services = context.RequestServices;
        try
        {
            var (manifest, pruned) = await RunAsync(services.GetRequiredService<IOptions<LogwellOptions>>().Value, services.GetLogStore(), destination,
                retention, services.GetTime(),
                // A client that stops waiting (a worker's request timing out on a first backup of a large node) does not stop the backup.
                services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>().ApplicationStopping).ConfigureAwait(false);
            await context.Response.WriteAsJsonAsync(new
            {
                id = manifest.Id,
                created = manifest.Created,
                to = destination,
                files = manifest.Files.Count,
                bytes = manifest.Bytes,
                new_objects = manifest.NewObjects,
                new_stored_bytes = manifest.NewStoredBytes,
                damaged = manifest.Damaged,
                pruned = pruned is null ? null : new { removed = pruned.Removed, kept = pruned.Kept, removed_objects = pruned.RemovedObjects, freed_bytes = pruned.FreedBytes, error = pruned.Error },
            }, context.RequestAborted).ConfigureAwait(false);
        }
        catch (NotSupportedException e)
        {
            await ErrorResponses.WriteAsync(context, 501, e.Message).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
        }
        catch (BackupBusyException e)
        {
            await ErrorResponses.WriteAsync(context, 409, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or SqliteException)
        {
            await ErrorResponses.WriteAsync(context, 500, $"the backup to {destination} failed: {e.Message}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Backs the node up into <paramref name="destination"/>, then, when <paramref name="retention"/> is given, prunes
    /// the backups there it does not keep.
    /// </summary>
    public static async Task<(BackupManifest Manifest, PruneResult? Pruned)> RunAsync(LogwellOptions options, ILogStore store, string destination, BackupRetention? retention, TimeProvider time, CancellationToken cancellationToken)
    {
        await OneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        var started = time.GetTimestamp();
        BackupManifest manifest;
        try
        {
            using var repository = BackupRepository.Open(destination, time);
            CheckOutsideData(options, repository);
            var held = await repository.LockAsync(BackupLockKind.Write, cancellationToken).ConfigureAwait(false);
            await using (held.ConfigureAwait(false))
            {
                manifest = store switch
                {
                    LogEngine engine => await RunAloneAsync(options, engine, repository, time, cancellationToken).ConfigureAwait(false),
                    Storage.ClickHouse.ClickHouseLogStore clickHouse => await ClusterBackup.RunAsync(options, clickHouse, repository, time, cancellationToken).ConfigureAwait(false),
                    _ => throw new NotSupportedException($"no backup for a log store of type {store.GetType().Name}"),
                };
            }
            ServerMetrics.BackupDone(manifest, time.GetElapsedTime(started));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            ServerMetrics.BackupFailed();
            throw;
        }
        finally
        {
            OneAtATime.Release();
        }
        if (retention is not { KeepsAnything: true })
        {
            return (manifest, null);
        }
        // The backup is saved whatever becomes of the prune: its failure is reported beside it, not as the backup's.
        try
        {
            using var repository = BackupRepository.Open(destination, time);
            return (manifest, await repository.PruneAsync(retention, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or JsonException or ArgumentException)
        {
            ServerMetrics.PruneFailed();
            return (manifest, new PruneResult([], 0, 0, 0) { Error = e.Message });
        }
    }

    private static void CheckOutsideData(LogwellOptions options, BackupRepository repository)
    {
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataDirectory));
        if (repository.Storage is DirectoryBackupStorage { Root: var root } && (root == data || root.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
        {
            throw new ArgumentException($"a backup cannot go inside the data directory it copies ({data})");
        }
    }

    private static async Task<BackupManifest> RunAloneAsync(LogwellOptions options, LogEngine engine, BackupRepository repository, TimeProvider time, CancellationToken cancellationToken)
    {
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataDirectory));
        var created = time.GetUtcNow();
        var id = NewId(created);
        var files = new List<BackupFile>();
        var damaged = new List<string>();
        var newObjects = 0;
        long newBytes = 0;
        async Task AddAsync(string path, Stream content, long? length, int? chunkBytes = null)
        {
            var (file, objects, bytes) = await repository.AddAsync(path, content, length, cancellationToken, chunkBytes).ConfigureAwait(false);
            files.Add(file);
            newObjects += objects;
            newBytes += bytes;
        }

        // Every index set at its own backup point, one after the other (each point is a moment while the node serves).
        foreach (var name in engine.Names())
        {
            if (!engine.TryGet(name, out var indexSet))
            {
                continue;
            }
            var directory = Path.GetRelativePath(data, indexSet.Directory).Replace(Path.DirectorySeparatorChar, '/');
            IndexSetFiles opened;
            try
            {
                opened = await indexSet.OpenBackupAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DirectoryNotFoundException) when (!Directory.Exists(indexSet.Directory))
            {
                continue; // deleted meanwhile
            }
            using var _ = opened;
            foreach (var (path, content, length) in opened.Files)
            {
                // A write-ahead log only grows: in chunks, the next backup stores only its new end again.
                var log = path.StartsWith("wal-", StringComparison.Ordinal);
                var before = newObjects;
                await AddAsync($"{directory}/{path}", content, length, log ? LogChunkBytes : null).ConfigureAwait(false);
                if (newObjects > before && opened.VerifySegment(path, cancellationToken) is { } damage)
                {
                    // Stored as it is (the rest of it may be all there is), and named in the backup's list.
                    damaged.Add($"index set {name}: segment {Path.GetFileName(path)} is damaged ({damage})");
                }
            }
        }

        await AddNodeFilesAsync(options, data, repository, AddAsync).ConfigureAwait(false);

        foreach (var known in engine.Damage)
        {
            // One line per segment: a read and the check above may have found different parts of it damaged.
            if (!damaged.Any(line => line[..line.IndexOf(" is damaged", StringComparison.Ordinal)] == known[..known.IndexOf(" is damaged", StringComparison.Ordinal)]))
            {
                damaged.Add(known);
            }
        }
        var manifest = new BackupManifest(id, created, data, files) { NewObjects = newObjects, NewStoredBytes = newBytes, Damaged = damaged.Count > 0 ? damaged : null };
        await repository.SaveAsync(manifest, cancellationToken).ConfigureAwait(false);
        return manifest;
    }

    /// <summary>
    /// What a node keeps of its own beside its events: its SQLite databases (through SQLite's online backup, never a copy
    /// of a live file), its settings as <c>logwell config show</c> prints them, and its credential.
    /// </summary>
    internal static async Task AddNodeFilesAsync(LogwellOptions options, string data, BackupRepository repository, Func<string, Stream, long?, int?, Task> AddAsync)
    {
        foreach (var database in Databases(options, data))
        {
            // The copy holds users and keys: beside the backup's own private files, never in a shared temporary directory.
            var copy = repository.TemporaryPath();
            try
            {
                using (var source = SqliteFiles.Open(SqliteFiles.ConnectionString(Path.Combine(data, database)), fullSync: false))
                using (var target = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = copy, Pooling = false }.ToString()))
                {
                    target.Open();
                    source.BackupDatabase(target);
                }
                await using var content = File.OpenRead(copy);
                await AddAsync(database, content, null, null).ConfigureAwait(false);
            }
            finally
            {
                File.Delete(copy);
            }
        }

        // The settings the node runs with (appsettings, environment), secrets hidden: for whoever sets up the node again.
        var settings = string.Join("\n", SettingsText.Describe(options).Select(s => $"{s.Name} = {s.Value}")) + "\n";
        await using (var text = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(settings)))
        {
            await AddAsync(SettingsFile, text, null, null).ConfigureAwait(false);
        }

        var key = Path.Combine("run", "node.key");
        if (File.Exists(Path.Combine(data, key)))
        {
            await using var content = File.OpenRead(Path.Combine(data, key));
            await AddAsync("run/node.key", content, null, null).ConfigureAwait(false);
        }

    }

    /// <summary>A new backup's id: its UTC time (so ids sort as backups were taken), and a random tail.</summary>
    internal static string NewId(DateTimeOffset created) =>
        created.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));

    /// <summary>The SQLite databases kept in the data directory with these settings.</summary>
    private static IEnumerable<string> Databases(LogwellOptions options, string data)
    {
        if (options.MetadataDialect == MetaDialect.Sqlite && File.Exists(Path.Combine(data, "meta.db")))
        {
            yield return "meta.db";
        }
        if (File.Exists(Path.Combine(data, "tasks.db")))
        {
            yield return "tasks.db";
        }
    }
}
