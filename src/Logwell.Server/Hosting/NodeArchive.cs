using System.Globalization;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Storage;
using Logwell.Storage.Backup;
using Logwell.Storage.Encoding;
using Logwell.Storage.Engine;

namespace Logwell.Server.Hosting;

/// <summary>One day of an index set moved to the archive by a pass.</summary>
public sealed record ArchivedDay(string IndexSet, string Day, int Segments, long Events, long Bytes);

/// <summary>What an archive pass did: the days it moved, the archived days it deleted past retention, and what it could not do.</summary>
public sealed record ArchivePass(IReadOnlyList<ArchivedDay> Archived, int Expired, IReadOnlyList<string> Problems);

/// <summary>A restore of archived days of <paramref name="IndexSet"/> into the index set <paramref name="As"/>, deleted by itself after <paramref name="ExpireDays"/>.</summary>
public sealed record ArchiveRestoreRequest(string IndexSet, DateOnly From, DateOnly To, string As, int ExpireDays);

/// <summary>The index set a restore would make exists already (and holds something else).</summary>
public sealed class RestoreConflictException(string message) : Exception(message);

/// <summary>A restore in progress, as its progress file tells.</summary>
public sealed record ArchiveRestoreProgress(string As, string From, string FirstDay, string LastDay, long BytesDone, long BytesTotal)
{
    public int Percent => BytesTotal == 0 ? 0 : (int)Math.Min(99, BytesDone * 100 / BytesTotal);
}

/// <summary>
/// The archive of a node on the embedded engine (<see cref="LogwellOptions.ArchiveTo"/>): a pass moves the whole days
/// of each index set older than its <c>archive_after_days</c> into the archive (its segments stored as a backup stores
/// them, content-addressed, then dropped from the hot disk) and deletes archived days past the index set's retention;
/// a restore brings a range of archived days back as an index set of its own that deletes itself after a while.
/// </summary>
public static class NodeArchive
{
    /// <summary>The node's archive task (the periodic pass).</summary>
    private static readonly SemaphoreSlim OnePass = new(1, 1);

    /// <summary>One restore at a time per node: each writes and reports its own staging directory.</summary>
    private static readonly SemaphoreSlim OneRestore = new(1, 1);

    private const string ProgressFile = "progress.json";

    private static LogEngine Engine(ILogStore store) => store as LogEngine
        ?? throw new NotSupportedException("this node keeps its events in ClickHouse: archive old partitions with ClickHouse's own TTL moves (docs/operations/backup-and-recovery.md)");

    private static BackupRepository Open(LogwellOptions options, TimeProvider time) => options.ArchiveTo.Length == 0
        ? throw new ArgumentException("no archive is set up: set Logwell:ArchiveTo to a directory or s3://bucket/prefix")
        : BackupRepository.Open(options.ArchiveTo, time);

    /// <summary>Moves every whole day past its index set's <c>archive_after_days</c> to the archive, and deletes archived days past retention.</summary>
    public static async Task<ArchivePass> RunAsync(LogwellOptions options, ILogStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        var engine = Engine(store);
        if (options.ArchiveTo.Length == 0)
        {
            var waiting = engine.Names().Where(name => engine.TryGet(name, out var set) && set.ArchiveAfterDays is not null).ToList();
            return new ArchivePass([], 0, waiting.Count == 0 ? [] : [$"{string.Join(", ", waiting)} would move days to the archive, but Logwell:ArchiveTo is not set: they stay on the hot disk"]);
        }
        await OnePass.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var repository = Open(options, time);
            var archived = new List<ArchivedDay>();
            var problems = new List<string>();
            var held = await repository.LockAsync(BackupLockKind.Write, cancellationToken).ConfigureAwait(false);
            await using (held.ConfigureAwait(false))
            {
                foreach (var name in engine.Names())
                {
                    if (!engine.TryGet(name, out var indexSet))
                    {
                        continue;
                    }
                    foreach (var day in indexSet.DaysToArchive())
                    {
                        try
                        {
                            if (await ArchiveDayAsync(repository, indexSet, day, time, problems, cancellationToken).ConfigureAwait(false) is { } done)
                            {
                                archived.Add(done);
                            }
                        }
                        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
                        {
                            // The day stays on the hot disk; the others go on.
                            problems.Add($"index set {name}, {day}: {e.Message}");
                        }
                    }
                }
            }
            var expired = await ExpireAsync(repository, engine, time, problems, cancellationToken).ConfigureAwait(false);
            return new ArchivePass(archived, expired, problems);
        }
        finally
        {
            OnePass.Release();
        }
    }

    private static async Task<ArchivedDay?> ArchiveDayAsync(BackupRepository repository, IndexSetStore indexSet, string day, TimeProvider time, List<string> problems, CancellationToken cancellationToken)
    {
        var (files, entries) = await indexSet.OpenDayAsync(day, cancellationToken).ConfigureAwait(false);
        using var _ = files;
        var segments = new List<ArchivedSegment>();
        long events = 0;
        foreach (var (path, content, length) in files.Files)
        {
            var (file, _, _) = await repository.AddAsync($"indexsets/{indexSet.Name}/{path}", content, length, cancellationToken).ConfigureAwait(false);
            if (files.VerifySegment(path, cancellationToken) is { } damage)
            {
                // Kept on the hot disk, where it is reported: the archive takes whole segments only.
                problems.Add($"index set {indexSet.Name}, {day}: segment {Path.GetFileName(path)} is damaged ({damage}); the day stays on the hot disk");
                return null;
            }
            var entry = entries[Path.GetFileName(path)];
            using (var parsed = JsonDocument.Parse(entry))
            {
                events += parsed.RootElement.GetProperty("events").GetInt64();
            }
            segments.Add(new ArchivedSegment(file, entry));
        }
        if (segments.Count == 0)
        {
            return null;
        }
        var created = time.GetUtcNow();
        var record = new ArchiveRecord(NodeBackup.NewId(created), indexSet.Name, day, created, events, segments);
        // Listed in the archive before it leaves the hot disk: an event is in one of them, or both, at every moment.
        await repository.SaveArchiveAsync(record, cancellationToken).ConfigureAwait(false);
        if (!await indexSet.DropArchivedAsync([.. entries.Keys]).ConfigureAwait(false))
        {
            // A merge replaced the day's segments meanwhile: the record goes, the next pass archives the merged ones.
            await repository.DeleteArchiveAsync(record, cancellationToken).ConfigureAwait(false);
            return null;
        }
        return new ArchivedDay(indexSet.Name, day, segments.Count, events, record.Bytes);
    }

    /// <summary>
    /// Deletes the archive records of days past their index set's retention (records of an index set deleted since
    /// are kept: deleting the index set does not delete its archive), then the objects no record or backup lists.
    /// </summary>
    private static async Task<int> ExpireAsync(BackupRepository repository, LogEngine engine, TimeProvider time, List<string> problems, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var expired = 0;
        var unreadable = new List<string>();
        foreach (var record in await repository.ListArchivesAsync(null, cancellationToken, unreadable).ConfigureAwait(false))
        {
            if (!engine.TryGet(record.IndexSet, out var indexSet))
            {
                continue;
            }
            var dayEnd = DateOnly.ParseExact(record.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1);
            if (dayEnd <= now.UtcDateTime.AddDays(-indexSet.Info().RetentionDays))
            {
                await repository.DeleteArchiveAsync(record, cancellationToken).ConfigureAwait(false);
                expired++;
            }
        }
        problems.AddRange(unreadable);
        if (expired > 0 && unreadable.Count == 0)
        {
            try
            {
                // No backup rule given: every backup stays; only what no list names goes.
                await repository.PruneAsync(new BackupRetention(0, 0, 0), cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                problems.Add($"the objects of expired archived days stay until the next pass: {e.Message}");
            }
        }
        return expired;
    }

    /// <summary>The archived days of <paramref name="indexSet"/>, oldest first, each with its events and bytes.</summary>
    public static async Task<IReadOnlyList<ArchivedDay>> ListAsync(LogwellOptions options, string indexSet, TimeProvider time, CancellationToken cancellationToken)
    {
        if (options.ArchiveTo.Length == 0)
        {
            return [];
        }
        using var repository = Open(options, time);
        var records = await repository.ListArchivesAsync(indexSet, cancellationToken).ConfigureAwait(false);
        return [.. records.GroupBy(r => r.Day, StringComparer.Ordinal).Select(g => new ArchivedDay(indexSet, g.Key, g.Sum(r => r.Segments.Count), g.Sum(r => r.Events), g.Sum(r => r.Bytes)))];
    }

    /// <summary>The restores in progress on this node, from their staging directories.</summary>
    public static IReadOnlyList<ArchiveRestoreProgress> InProgress(ILogStore store)
    {
        if (store is not LogEngine engine)
        {
            return [];
        }
        var root = Path.GetDirectoryName(engine.RestoreStaging("x"))!;
        var found = new List<ArchiveRestoreProgress>();
        foreach (var directory in Directory.Exists(root) ? Directory.EnumerateDirectories(root, ".*.restoring") : [])
        {
            try
            {
                var progress = JsonSerializer.Deserialize<ArchiveRestoreProgress>(File.ReadAllBytes(Path.Combine(directory, ProgressFile)), JsonOptions);
                if (progress is not null)
                {
                    found.Add(progress);
                }
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                // Starting, or finishing this moment.
            }
        }
        return found;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Brings the archived days of the request's range back as the index set <c>As</c>: every segment read from the
    /// archive and checked against its checksum into a staging directory (its progress kept there), then adopted whole.
    /// </summary>
    /// <exception cref="ArgumentException">Nothing is archived in the range, or the new index set's name is taken or not valid.</exception>
    public static async Task<IndexSetInfo> RestoreAsync(LogwellOptions options, ILogStore store, ArchiveRestoreRequest request, TimeProvider time, CancellationToken cancellationToken)
    {
        var engine = Engine(store);
        if (!IndexSetName.IsValid(request.As, out var invalid, system: false))
        {
            throw new ArgumentException(invalid);
        }
        await OneRestore.WaitAsync(cancellationToken).ConfigureAwait(false);
        var staging = engine.RestoreStaging(request.As);
        try
        {
            if (engine.TryGet(request.As, out var existing))
            {
                // The same restore done already (a worker's retry after its request to the node timed out): done.
                if (existing.Restored is { } same && same.From == request.IndexSet && same.FirstDay == request.From && same.LastDay == request.To)
                {
                    return existing.Info();
                }
                throw new RestoreConflictException($"index set '{request.As}' already exists: restore under another name (--as)");
            }
            using var repository = Open(options, time);
            var held = await repository.LockAsync(BackupLockKind.Read, cancellationToken).ConfigureAwait(false);
            await using (held.ConfigureAwait(false))
            {
                var records = (await repository.ListArchivesAsync(request.IndexSet, cancellationToken).ConfigureAwait(false))
                    .Where(r => DateOnly.ParseExact(r.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture) is var day && day >= request.From && day <= request.To)
                    .ToList();
                if (records.Count == 0)
                {
                    throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"no day of index set '{request.IndexSet}' from {request.From:yyyy-MM-dd} to {request.To:yyyy-MM-dd} is in the archive (logwell archive list --index {request.IndexSet})"));
                }
                if (Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true); // what a restore cut short left
                }
                var segments = Path.Combine(staging, "segments");
                Directory.CreateDirectory(segments);
                // A segment archived twice (a pass cut short between its record and the drop) is restored once; each is
                // renamed in order, so that names from different histories of the index set (deleted and made again,
                // restored from a backup) cannot meet.
                var chosen = records.SelectMany(r => r.Segments).DistinctBy(s => s.File.Sha256, StringComparer.Ordinal).ToList();
                var progress = new ArchiveRestoreProgress(request.As, request.IndexSet, request.From.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), request.To.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                    0, chosen.Sum(s => s.File.Bytes));
                DurableFile.WriteAtomically(Path.Combine(staging, ProgressFile), JsonSerializer.SerializeToUtf8Bytes(progress, JsonOptions));
                var entries = new List<string>(chosen.Count);
                foreach (var segment in chosen)
                {
                    var name = $"seg-{(entries.Count + 1).ToString("D10", CultureInfo.InvariantCulture)}.lws";
                    var target = Path.Combine(segments, name);
                    await using (var output = new FileStream(target + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                    {
                        await repository.ReadFileAsync(segment.File, output, cancellationToken).ConfigureAwait(false);
                        output.Flush(flushToDisk: true);
                    }
                    File.Move(target + ".tmp", target, overwrite: true);
                    var entry = System.Text.Json.Nodes.JsonNode.Parse(segment.Entry) as System.Text.Json.Nodes.JsonObject
                        ?? throw new InvalidDataException($"the archived entry of {segment.File.Path} is no JSON object");
                    entry["file"] = name;
                    entries.Add(entry.ToJsonString());
                    progress = progress with { BytesDone = progress.BytesDone + segment.File.Bytes };
                    DurableFile.WriteAtomically(Path.Combine(staging, ProgressFile), JsonSerializer.SerializeToUtf8Bytes(progress, JsonOptions));
                }
                DurableFile.SyncDirectory(segments);
                File.Delete(Path.Combine(staging, ProgressFile));
                var restored = new RestoredRange(request.IndexSet, request.From, request.To, time.GetUtcNow().AddDays(request.ExpireDays));
                var (outcome, error) = await engine.AdoptRestoredAsync(request.As, entries, restored).ConfigureAwait(false);
                if (outcome == CreateOutcome.AlreadyExists)
                {
                    throw new RestoreConflictException(error);
                }
                if (outcome != CreateOutcome.Created)
                {
                    throw new ArgumentException(error);
                }
                return engine.TryGet(request.As, out var adopted) ? adopted.Info() : throw new InvalidOperationException($"index set '{request.As}' was restored and is gone");
            }
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
            OneRestore.Release();
        }
    }
}
