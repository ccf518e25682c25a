using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using Logwell.Jobs;
using Logwell.Server.Exports;
using Logwell.Server.Hosting;
using Logwell.Storage.Backup;
using Microsoft.Extensions.Logging;

namespace Logwell.Server.Tasks;

/// <summary>The tasks every Logwell worker knows, by name, and the periodic ones the scheduler issues.</summary>
public static class BuiltinTasks
{
    public const string Export = "export.run";
    public const string ExportCleanup = "export.cleanup";
    public const string Retention = "store.retention";
    public const string Merge = "store.merge";
    public const string RecoverLeases = "queues.recover";
    public const string Backup = "store.backup";
    public const string Archive = "store.archive";
    public const string ArchiveRestore = "store.archive_restore";

    /// <summary>The queues of the default deployment.</summary>
    public static readonly IReadOnlyList<string> Queues = ["default", "export", "pipeline", "schedule"];

    public static IReadOnlyDictionary<string, TaskHandler> Create(LogwellOptions options, ITaskQueue queue, ExportStore exports, ILogStoreAccess store, TimeProvider time, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger("Logwell.Tasks");
        var runner = new ExportRunner(options, exports, store, logger);
        return new Dictionary<string, TaskHandler>(StringComparer.Ordinal)
        {
            [Export] = runner.RunAsync,
            [ExportCleanup] = (_, ct) => CleanExportsAsync(options, queue, exports, logger, ct),
            [Retention] = (_, ct) => store.ApplyRetentionAsync(ct),
            [Merge] = (_, ct) => store.MergeAsync(ct),
            [Backup] = (task, ct) =>
            {
                var (to, retention) = BackupArguments(task.Arguments);
                return store.BackupAsync(to, retention, ct);
            },
            [Archive] = (_, ct) => store.ArchiveAsync(ct),
            [ArchiveRestore] = (task, ct) =>
            {
                using var document = JsonDocument.Parse(task.Arguments);
                return store.RestoreArchiveAsync(ArchiveRestoreRequest(document.RootElement, null), ct);
            },
            [RecoverLeases] = async (_, ct) =>
            {
                var recovered = await queue.RecoverExpiredAsync(ct).ConfigureAwait(false);
                var purged = await queue.PurgeDoneAsync(time.GetUtcNow() - TimeSpan.FromDays(options.TaskKeepDays), ct).ConfigureAwait(false);
                if (recovered > 0 || purged > 0)
                {
                    logger.LogInformation("Queues: {Recovered} tasks with expired leases recovered, {Purged} old done tasks deleted", recovered, purged);
                }
            },
            ["diag.noop"] = (_, _) => Task.CompletedTask,
            ["diag.sleep"] = (task, ct) => Task.Delay(TimeSpan.FromMilliseconds(Argument(task, "ms", 0)), time, ct),
            ["diag.record"] = (task, ct) => RecordAsync(options, task, time, ct),
            ["diag.fail"] = (task, _) => throw new InvalidOperationException(ArgumentText(task, "error") ?? "diag.fail always fails"),
        };
    }

    /// <summary>The periodic tasks of every node, then those configured under <c>Logwell:Schedule</c>.</summary>
    public static IReadOnlyList<PeriodicTask> Schedule(LogwellOptions options)
    {
        var entries = new List<PeriodicTask>
        {
            PeriodicTask.Interval(Retention, TimeSpan.FromHours(1), new TaskRequest(Retention, "{}", "schedule") { MaxRetries = 1 }),
            PeriodicTask.Interval(Merge, TimeSpan.FromMinutes(10), new TaskRequest(Merge, "{}", "schedule") { MaxRetries = 1 }),
            PeriodicTask.Interval(ExportCleanup, TimeSpan.FromMinutes(10), new TaskRequest(ExportCleanup, "{}", "schedule") { MaxRetries = 1 }),
            PeriodicTask.Interval(RecoverLeases, TimeSpan.FromMinutes(1), new TaskRequest(RecoverLeases, "{}", "schedule") { MaxRetries = 1 }),
        };
        if (options.ArchiveTo.Length > 0)
        {
            entries.Add(PeriodicTask.Interval(Archive, TimeSpan.FromHours(1), new TaskRequest(Archive, "{}", "schedule") { MaxRetries = 1 }));
        }
        foreach (var (name, entry) in options.Schedule.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            entries.Add(entry.ToPeriodicTask(name));
        }
        return entries;
    }

    /// <summary>
    /// <c>store.backup {"to": "/absolute/directory", "keep_last", "keep_daily", "keep_weekly"}</c>: where the node backs
    /// itself up, and which backups there a prune keeps afterwards (no keep rule: none is pruned).
    /// </summary>
    /// <exception cref="FormatException">The arguments say no absolute directory, or a keep rule is no whole number ≥ 0.</exception>
    public static (string To, BackupRetention Retention) BackupArguments(string arguments)
    {
        using var document = JsonDocument.Parse(arguments);
        return BackupRequest(document.RootElement);
    }

    /// <summary>
    /// <c>{"to": "/absolute/directory" or "s3://bucket/prefix", "keep_last", "keep_daily", "keep_weekly"}</c>, as the
    /// task's arguments and as the backup endpoint's body.
    /// </summary>
    /// <exception cref="FormatException">No absolute directory or bucket, or a keep rule that is no whole number ≥ 0.</exception>
    public static (string To, BackupRetention Retention) BackupRequest(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("to", out var to) || to.ValueKind != JsonValueKind.String)
        {
            throw new FormatException("{\"to\": \"/absolute/directory\"} or {\"to\": \"s3://bucket/prefix\"} is required: where the backup goes (a directory on the node's machine, or a bucket)");
        }
        var directory = Destination(to.GetString()!);
        var keep = new int[3];
        string[] names = ["keep_last", "keep_daily", "keep_weekly"];
        for (var i = 0; i < names.Length; i++)
        {
            if (root.TryGetProperty(names[i], out var value) && (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out keep[i]) || keep[i] < 0))
            {
                throw new FormatException($"{names[i]} must be a whole number, 0 or more");
            }
        }
        return (directory, new BackupRetention(keep[0], keep[1], keep[2]));
    }

    /// <summary>
    /// <c>{"index", "from": "2026-10-01", "to": "2026-10-07", "as", "expire_days"}</c> (the index set from the route when
    /// <paramref name="indexSet"/> is given): a range of archived days to restore as the index set <c>as</c>
    /// (default <c>INDEX-restored</c>), deleted by itself after <c>expire_days</c> (default 7).
    /// </summary>
    /// <exception cref="FormatException">A field is missing or not what it should be.</exception>
    public static ArchiveRestoreRequest ArchiveRestoreRequest(JsonElement root, string? indexSet)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("expected a JSON object such as {\"from\": \"2026-10-01\", \"to\": \"2026-10-07\", \"as\": \"app-october\", \"expire_days\": 7}");
        }
        string? Text(string name) => root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw new FormatException($"'{name}' must be a string")
            : null;
        DateOnly Day(string name) => Text(name) is { } text && DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            ? day
            : throw new FormatException($"'{name}' is required: a day such as 2026-10-01 (UTC)");
        var index = indexSet ?? Text("index") ?? throw new FormatException("'index' is required: the index set whose archive to restore");
        var from = Day("from");
        var to = Day("to");
        if (to < from)
        {
            throw new FormatException($"'to' ({to:yyyy-MM-dd}) is before 'from' ({from:yyyy-MM-dd})");
        }
        var expire = 7;
        if (root.TryGetProperty("expire_days", out var days) && days.ValueKind != JsonValueKind.Null
            && (days.ValueKind != JsonValueKind.Number || !days.TryGetInt32(out expire) || expire is < 1 or > 3650))
        {
            throw new FormatException("'expire_days' must be a whole number of days from 1 to 3650");
        }
        return new ArchiveRestoreRequest(index, from, to, Text("as") ?? $"{index}-restored", expire);
    }

    /// <summary>A backup or archive destination: an absolute directory, or <c>s3://bucket/prefix</c>.</summary>
    /// <exception cref="FormatException">It is neither.</exception>
    public static string Destination(string destination)
    {
        if (S3BackupStorage.Names(destination))
        {
            try
            {
                S3BackupStorage.Parse(destination);
            }
            catch (ArgumentException e)
            {
                throw new FormatException(e.Message, e);
            }
            return destination;
        }
        if (destination.Length == 0 || !Path.IsPathFullyQualified(destination))
        {
            throw new FormatException($"'{destination}' is neither an absolute directory on the node's machine nor s3://bucket/prefix");
        }
        return destination;
    }

    private static int Argument(LeasedTask task, string name, int fallback)
    {
        using var document = JsonDocument.Parse(task.Arguments);
        return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(name, out var value) && value.TryGetInt32(out var number)
            ? number
            : fallback;
    }

    internal static string? ArgumentText(LeasedTask task, string name)
    {
        using var document = JsonDocument.Parse(task.Arguments);
        return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
    }

    /// <summary>
    /// <c>diag.record {"mark", "ms"}</c>: appends <c>start</c>, waits <c>ms</c>, appends <c>done</c> to this process's
    /// file under <c>diag/</c> in the data directory — a visible effect for checking a deployment's workers.
    /// </summary>
    private static async Task RecordAsync(LogwellOptions options, LeasedTask task, TimeProvider time, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(Path.GetFullPath(options.DataDirectory), "diag");
        Directory.CreateDirectory(directory);
        var file = Path.Combine(directory, $"records-{Environment.ProcessId}.log");
        var mark = ArgumentText(task, "mark") ?? ArgumentText(task, "slot") ?? task.Id.ToString(CultureInfo.InvariantCulture);
        var line = string.Create(CultureInfo.InvariantCulture, $"{mark} {task.Id} {task.Attempt} {Environment.ProcessId}");
        Append(file, $"start {line}\n");
        await Task.Delay(TimeSpan.FromMilliseconds(Argument(task, "ms", 0)), time, cancellationToken).ConfigureAwait(false);
        Append(file, $"done {line}\n");
    }

    private static readonly Lock RecordLock = new();

    /// <summary>One writer at a time: appends from parallel tasks of a process would otherwise overwrite each other.</summary>
    private static void Append(string file, string text)
    {
        lock (RecordLock)
        {
            File.AppendAllText(file, text);
        }
    }

    /// <summary>
    /// Exports whose task ended without finishing them (it went dead after its worker died again and again, or was
    /// purged) fail; done exports past their download time expire; files and records of finished exports older than
    /// the keep time go.
    /// </summary>
    internal static async Task CleanExportsAsync(LogwellOptions options, ITaskQueue queue, ExportStore exports, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var record in exports.ActiveCreatedBefore(exports.Now - TimeSpan.FromMinutes(1)))
        {
            if (record.TaskId is not { } taskId)
            {
                continue;
            }
            var task = await queue.InspectAsync(taskId, cancellationToken).ConfigureAwait(false);
            if (task is null or { State: "dead" or "done" })
            {
                var reason = task is { State: "dead" } ? $"its task went dead: {task.Value.LastError}" : "its task ended without finishing it";
                exports.Failed(record.Id, reason, final: true);
                File.Delete(exports.FilePath(record) + ".tmp");
                logger.LogWarning("Export {Id}: failed, {Reason}", record.Id, reason);
            }
        }
        await Task.Run(() => DeleteOldExports(options, exports, logger, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private static void DeleteOldExports(LogwellOptions options, ExportStore exports, ILogger logger, CancellationToken cancellationToken)
    {
        var expired = exports.ExpireDownloads();
        foreach (var record in exports.FinishedBefore(exports.Now - TimeSpan.FromDays(options.ExportKeepDays)))
        {
            cancellationToken.ThrowIfCancellationRequested();
            File.Delete(exports.FilePath(record));
            File.Delete(exports.FilePath(record) + ".tmp");
            exports.Delete(record.Id);
            logger.LogInformation("Export {Id}: deleted after {Days} days", record.Id, options.ExportKeepDays);
        }
        if (expired.Count > 0)
        {
            logger.LogInformation("Exports past their download time: {Ids}", string.Join(", ", expired));
        }
    }
}

/// <summary>
/// <c>export.run {"id"}</c>: writes an export's events, newest first, to <c>exports/ID.FORMAT.gz</c>, reporting
/// progress after each page. Every attempt starts the file over, so a re-run after a crash gives the same file.
/// </summary>
internal sealed class ExportRunner(LogwellOptions options, ExportStore exports, ILogStoreAccess store, ILogger logger)
{
    private const int PageSize = 5_000;

    public async Task RunAsync(LeasedTask task, CancellationToken cancellationToken)
    {
        var id = BuiltinTasks.ArgumentText(task, "id") ?? throw new InvalidOperationException("export.run needs {\"id\": ...}");
        var record = exports.Get(id);
        if (record is null || !ExportState.IsActive(record.State) || !exports.Start(id))
        {
            return;
        }
        var path = exports.FilePath(record);
        var temporary = path + ".tmp";
        try
        {
            await WriteAsync(record, temporary, cancellationToken).ConfigureAwait(false);
            exports.Packaging(id);
            File.Move(temporary, path, overwrite: true);
            exports.Done(id, new FileInfo(path).Length, TimeSpan.FromHours(options.ExportDownloadHours));
            logger.LogInformation("Export {Id}: done, {Bytes} bytes", id, new FileInfo(path).Length);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            File.Delete(temporary);
            exports.Failed(id, e.Message, final: task.Attempt > task.MaxRetries);
            throw;
        }
    }

    private async Task WriteAsync(ExportRecord record, string temporary, CancellationToken cancellationToken)
    {
        var selection = new EventSelection(record.IndexSet, record.Query, record.From, record.To, record.DefaultOr, record.Restriction);
        var max = record.MaxEvents;
        await using var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        long written = 0;
        long? total = null;
        await using (var gzip = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true))
        {
            using var writer = new ExportWriter(gzip, record.Format, record.Fields);
            // The index set's masking rules as they are now, for an owner who could not read values unmasked.
            var mask = record.Masked ? Logwell.Server.Security.AccessStore.MaskOf(exports.Database, record.IndexSet) : null;
            string? cursor = null;
            do
            {
                var limit = (int)Math.Min(PageSize, max - written);
                var page = await store.PageAsync(selection, cursor, limit, total is null ? max + 1 : 0, cancellationToken).ConfigureAwait(false);
                total ??= page.Total;
                writer.Write(mask is null ? page.Events : [.. page.Events.Select(mask.Apply)]);
                written += page.Events.Count;
                cursor = page.NextCursor;
                exports.Progress(record.Id, written, total, truncated: total > max);
            }
            while (cursor is not null && written < max);
            writer.Finish();
        }
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        file.Flush(flushToDisk: true);
    }
}
