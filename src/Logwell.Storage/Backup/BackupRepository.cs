using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Backup;

/// <summary>The repository is locked by a backup (for a prune) or a prune (for a backup).</summary>
public sealed class BackupBusyException(string message, Exception inner) : IOException(message, inner);

/// <summary>One file of a backup: where it goes under the data directory, and the object that holds it.</summary>
public sealed record BackupFile(string Path, string Sha256, long Bytes, long StoredBytes)
{
    /// <summary>The objects holding the file in order, when it is stored in chunks (null: one object named <see cref="Sha256"/>).</summary>
    public IReadOnlyList<BackupChunk>? Chunks { get; init; }

    /// <summary>What the file was read from, as its source tells it apart (a ClickHouse partition's parts): the same again means the same content.</summary>
    public string? Fingerprint { get; init; }

    /// <summary>The objects holding the file, in order.</summary>
    [JsonIgnore]
    public IReadOnlyList<BackupChunk> Objects => Chunks ?? [new BackupChunk(Sha256, Bytes, StoredBytes)];
}

/// <summary>One object of a file stored in chunks: a run of its bytes, by the SHA-256 of that run.</summary>
public sealed record BackupChunk(string Sha256, long Bytes, long StoredBytes);

/// <summary>What one backup holds: every file, each by the checksum of its content.</summary>
public sealed record BackupManifest(string Id, DateTimeOffset Created, string Source, IReadOnlyList<BackupFile> Files)
{
    /// <summary>2: files may be stored in chunks (<see cref="BackupFile.Chunks"/>), which format 1 readers would not see.</summary>
    public const int CurrentVersion = 2;

    public int Version { get; init; } = CurrentVersion;

    /// <summary>Objects this backup added to the repository (the others it shares with earlier backups).</summary>
    public int NewObjects { get; init; }

    /// <summary>Bytes those new objects take in the repository.</summary>
    public long NewStoredBytes { get; init; }

    /// <summary>
    /// Segments the node knew were damaged when it took the backup (copied as they were); null when none. Restore a
    /// damaged index set from a backup taken before the damage.
    /// </summary>
    public IReadOnlyList<string>? Damaged { get; init; }

    public long Bytes => Files.Sum(f => f.Bytes);
}

/// <summary>One segment in the archive: its object(s), and its entry in the index set's manifest (JSON) as it was.</summary>
public sealed record ArchivedSegment(BackupFile File, string Entry);

/// <summary>
/// Segments of one day of an index set moved to the archive in one pass (a day's events flushed later go in another
/// record of the same day).
/// </summary>
public sealed record ArchiveRecord(string Id, string IndexSet, string Day, DateTimeOffset Created, long Events, IReadOnlyList<ArchivedSegment> Segments)
{
    public long Bytes => Segments.Sum(s => s.File.Bytes);

    /// <summary>Where the record was listed from (null for one not stored yet).</summary>
    [JsonIgnore]
    public string? Key { get; init; }
}

/// <summary>
/// A repository of backups in a directory or a bucket (<see cref="IBackupStorage"/>): <c>objects/ab/abcdef….zst</c>
/// holds each distinct file content once, compressed with zstd and named by the SHA-256 of the content, and
/// <c>backups/ID.json</c> lists a backup's files by those names. Segments never change once written, so a backup after
/// the first stores only the segments and logs that are new, and a chain of backups costs little more than its largest
/// member. Objects are stored whole or not at all, and a backup's list is written last: a backup interrupted half way
/// leaves no list, only objects a later one may reuse.
/// </summary>
public sealed class BackupRepository(IBackupStorage storage) : IDisposable
{
    private const string ObjectsPrefix = "objects/";
    private const string BackupsPrefix = "backups/";
    private const string ArchivesPrefix = "archives/";

    /// <summary>The repository at <paramref name="destination"/>: <c>s3://bucket[/prefix]</c>, or a directory.</summary>
    public static BackupRepository Open(string destination, TimeProvider time) =>
        new(S3BackupStorage.Names(destination) ? S3BackupStorage.Open(destination, time) : new DirectoryBackupStorage(destination));

    public IBackupStorage Storage { get; } = storage;

    /// <summary>The destination as the user names it.</summary>
    public string Location => Storage.Location;

    private static string ObjectKey(string sha256) => $"{ObjectsPrefix}{sha256[..2]}/{sha256}.zst";

    private static string ManifestKey(string id) => $"{BackupsPrefix}{id}.json";

    /// <summary>
    /// Stores the first <paramref name="length"/> bytes of <paramref name="content"/> (all of it when null) as the file
    /// at <paramref name="path"/> (relative, with <c>/</c>): as one object, or with <paramref name="chunkBytes"/> as
    /// objects of that many bytes each, so that a file that only grows (a write-ahead log) shares all but its last
    /// chunk with the previous backup. Gives the objects and bytes this call added to the repository.
    /// </summary>
    public async Task<(BackupFile File, int NewObjects, long NewStoredBytes)> AddAsync(string path, Stream content, long? length, CancellationToken cancellationToken, int? chunkBytes = null)
    {
        using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunks = new List<BackupChunk>();
        long bytes = 0, stored = 0, added = 0;
        var newObjects = 0;
        var buffer = new byte[1 << 16];
        do
        {
            var limit = length is { } total ? total - bytes : long.MaxValue;
            if (chunkBytes is { } size)
            {
                limit = Math.Min(limit, size);
            }
            var (chunk, isNew) = await StoreObjectAsync(content, limit, whole, buffer, keepEmpty: chunks.Count == 0, cancellationToken).ConfigureAwait(false);
            if (chunk.Bytes == 0 && chunks.Count > 0)
            {
                break;
            }
            chunks.Add(chunk);
            bytes += chunk.Bytes;
            stored += chunk.StoredBytes;
            if (isNew)
            {
                newObjects++;
                added += chunk.StoredBytes;
            }
            if (chunk.Bytes < limit || chunkBytes is null)
            {
                break;
            }
        }
        while (length is null || bytes < length);
        if (length is { } expected && bytes != expected)
        {
            throw new IOException($"{path} ended at {bytes} bytes of the {expected} the backup point holds");
        }
        var sha = Convert.ToHexStringLower(whole.GetHashAndReset());
        var file = chunkBytes is null
            ? new BackupFile(path, sha, bytes, stored)
            : new BackupFile(path, sha, bytes, stored) { Chunks = chunks };
        return (file, newObjects, added);
    }

    /// <summary>Stores up to <paramref name="limit"/> bytes of <paramref name="content"/> as one object (also hashed into <paramref name="whole"/>).</summary>
    /// <param name="keepEmpty">Store nothing read as an (empty) object too; else nothing is stored for it.</param>
    private async Task<(BackupChunk Chunk, bool New)> StoreObjectAsync(Stream content, long limit, IncrementalHash whole, byte[] buffer, bool keepEmpty, CancellationToken cancellationToken)
    {
        // Compressed into a temporary file first: the object's name is the checksum of its content, known at the end.
        var temporary = TemporaryPath();
        long bytes = 0;
        try
        {
            string sha;
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                await using (var output = DirectoryBackupStorage.CreatePrivateFile(temporary, FileMode.CreateNew))
                {
                    await using (var zstd = new ZstdSharp.CompressionStream(output, 3, leaveOpen: true))
                    {
                        while (bytes < limit)
                        {
                            var read = await content.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit - bytes)), cancellationToken).ConfigureAwait(false);
                            if (read == 0)
                            {
                                break;
                            }
                            hash.AppendData(buffer, 0, read);
                            whole.AppendData(buffer, 0, read);
                            await zstd.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                            bytes += read;
                        }
                    }
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    output.Flush(flushToDisk: true);
                }
                sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            }
            if (bytes == 0 && !keepEmpty)
            {
                return (new BackupChunk(sha, 0, 0), false);
            }
            var key = ObjectKey(sha);
            if (await Storage.SizeAsync(key, cancellationToken).ConfigureAwait(false) is { } size)
            {
                return (new BackupChunk(sha, bytes, size), false);
            }
            var storedBytes = new FileInfo(temporary).Length;
            // Another backup storing the same content at once writes the same bytes: either is whole.
            await Storage.PutAsync(key, temporary, cancellationToken).ConfigureAwait(false);
            return (new BackupChunk(sha, bytes, storedBytes), true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>A path for a private temporary file (in the repository itself when it is a directory).</summary>
    public string TemporaryPath() => System.IO.Path.Combine(Storage.ScratchDirectory(), $".{Guid.NewGuid():N}.tmp");

    /// <summary>Records a backup: from here on it is listed and can be restored.</summary>
    public Task SaveAsync(BackupManifest manifest, CancellationToken cancellationToken) =>
        PutJsonAsync(ManifestKey(manifest.Id), manifest, BackupJson.Default.BackupManifest, cancellationToken);

    /// <summary>Stores <paramref name="value"/> as JSON under <paramref name="key"/>, whole (written to a temporary file, flushed, then put).</summary>
    private async Task PutJsonAsync<T>(string key, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        var temporary = TemporaryPath();
        try
        {
            await using (var output = DirectoryBackupStorage.CreatePrivateFile(temporary, FileMode.CreateNew))
            {
                await JsonSerializer.SerializeAsync(output, value, type, cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
            await Storage.PutAsync(key, temporary, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>
    /// Holds the repository until disposed: shared by backups (several may write at once: objects are content-addressed
    /// and stored whole) and by readers, alone for a prune, which must not delete an object a backup in progress has
    /// found already stored and is about to list. A reader that cannot take a lock here (read-only access) holds none.
    /// </summary>
    /// <exception cref="BackupBusyException">The other kind of holder has it now.</exception>
    public Task<IAsyncDisposable> LockAsync(BackupLockKind kind, CancellationToken cancellationToken) => Storage.LockAsync(kind, cancellationToken);

    /// <summary>
    /// Deletes the backups <paramref name="retention"/> does not keep, then every object no remaining backup lists and
    /// what interrupted backups left. Lists go first, so a prune cut short leaves only unlisted objects, which the next
    /// one deletes; every remaining backup stays whole.
    /// </summary>
    public async Task<PruneResult> PruneAsync(BackupRetention retention, CancellationToken cancellationToken)
    {
        var held = await LockAsync(BackupLockKind.Prune, cancellationToken).ConfigureAwait(false);
        await using (held.ConfigureAwait(false))
        {
            var all = await ListAsync(cancellationToken).ConfigureAwait(false);
            var keep = retention.Keep(all);
            var removed = new List<string>();
            foreach (var manifest in all.Where(m => !keep.Contains(m.Id)))
            {
                await Storage.DeleteAsync(ManifestKey(manifest.Id), cancellationToken).ConfigureAwait(false);
                removed.Add(manifest.Id);
            }
            var listed = new HashSet<string>(all.Where(m => keep.Contains(m.Id)).SelectMany(m => m.Files.SelectMany(f => f.Objects.Select(o => o.Sha256))), StringComparer.Ordinal);
            // The archive's segments stay as long as their records do (an archive may share the repository with backups).
            // (A record that cannot be read fails the prune: the objects it names may be all there is of a day.)
            listed.UnionWith((await ListArchivesAsync(null, cancellationToken).ConfigureAwait(false)).SelectMany(a => a.Segments.SelectMany(s => s.File.Objects.Select(o => o.Sha256))));
            var objects = 0;
            long freed = 0;
            var unlisted = new List<StoredObject>();
            await foreach (var item in Storage.ListAsync(ObjectsPrefix, cancellationToken).ConfigureAwait(false))
            {
                var name = item.Key[(item.Key.LastIndexOf('/') + 1)..];
                var stale = name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal);
                if (stale || (name.EndsWith(".zst", StringComparison.Ordinal) && !listed.Contains(name[..^4])))
                {
                    unlisted.Add(item);
                    objects += stale ? 0 : 1;
                    freed += item.Size;
                }
            }
            foreach (var item in unlisted)
            {
                await Storage.DeleteAsync(item.Key, cancellationToken).ConfigureAwait(false);
            }
            if (Storage is DirectoryBackupStorage directory)
            {
                // What killed backups left beside the objects.
                foreach (var file in Directory.EnumerateFiles(directory.Root, ".*.tmp"))
                {
                    File.Delete(file);
                }
            }
            return new PruneResult(removed, keep.Count, objects, freed);
        }
    }

    private static string ArchiveKey(ArchiveRecord record) => $"{ArchivesPrefix}{record.IndexSet}/{record.Day}/{record.Id}.json";

    /// <summary>Records segments moved to the archive: from here on they are listed and can be restored.</summary>
    public Task SaveArchiveAsync(ArchiveRecord record, CancellationToken cancellationToken) =>
        PutJsonAsync(ArchiveKey(record), record, BackupJson.Default.ArchiveRecord, cancellationToken);

    /// <summary>Deletes an archive record (its objects go with the next prune that finds no list naming them).</summary>
    public Task DeleteArchiveAsync(ArchiveRecord record, CancellationToken cancellationToken) => Storage.DeleteAsync(record.Key ?? ArchiveKey(record), cancellationToken);

    /// <summary>
    /// The archive records of <paramref name="indexSet"/> (of every index set when null), by day, then time. A record
    /// that cannot be read or does not hold together is skipped and named in <paramref name="problems"/> (when given;
    /// else it fails the listing).
    /// </summary>
    public async Task<IReadOnlyList<ArchiveRecord>> ListArchivesAsync(string? indexSet, CancellationToken cancellationToken, List<string>? problems = null)
    {
        var records = new List<ArchiveRecord>();
        await foreach (var item in Storage.ListAsync(indexSet is null ? ArchivesPrefix : $"{ArchivesPrefix}{indexSet}/", cancellationToken).ConfigureAwait(false))
        {
            if (!item.Key.EndsWith(".json", StringComparison.Ordinal) || item.Key[(item.Key.LastIndexOf('/') + 1)..].StartsWith('.'))
            {
                continue;
            }
            try
            {
                ArchiveRecord? record;
                await using (var input = await Storage.OpenReadAsync(item.Key, cancellationToken).ConfigureAwait(false))
                {
                    record = await JsonSerializer.DeserializeAsync(input, BackupJson.Default.ArchiveRecord, cancellationToken).ConfigureAwait(false);
                }
                if ((record is null ? "it is empty" : WhatIsWrong(record, item.Key)) is { } wrong)
                {
                    throw new InvalidDataException(wrong);
                }
                records.Add(record! with { Key = item.Key });
            }
            catch (FileNotFoundException)
            {
                // Deleted (expired) while listing.
            }
            catch (Exception e) when (e is JsonException or InvalidDataException)
            {
                var problem = $"{Location}/{item.Key} is no archive record: {e.Message}";
                if (problems is null)
                {
                    throw new InvalidDataException(problem, e);
                }
                problems.Add(problem);
            }
        }
        return [.. records.OrderBy(r => r.IndexSet, StringComparer.Ordinal).ThenBy(r => r.Day, StringComparer.Ordinal).ThenBy(r => r.Created).ThenBy(r => r.Id, StringComparer.Ordinal)];
    }

    /// <summary>What does not hold together in a record listed at <paramref name="key"/>: its place, day, names and checksums; null when it holds.</summary>
    private static string? WhatIsWrong(ArchiveRecord record, string key)
    {
        if (record.Segments is null || record.IndexSet is null || record.Day is null || record.Id is null)
        {
            return "a field is missing";
        }
        if (!DateOnly.TryParseExact(record.Day, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out _))
        {
            return $"its day '{record.Day}' is no day";
        }
        if (key != ArchiveKey(record))
        {
            return $"it names index set '{record.IndexSet}', day {record.Day} and id '{record.Id}', not where it lies";
        }
        static bool IsSha(string sha) => sha is { Length: 64 } && sha.All(char.IsAsciiHexDigitLower);
        return record.Segments.FirstOrDefault(s => s?.File is null || s.Entry is null || !IsSha(s.File.Sha256) || !s.File.Objects.All(o => IsSha(o.Sha256))) is not null
            ? "a segment is named by an object name that is no SHA-256, or has no entry"
            : null;
    }

    /// <summary>Writes a stored file's content to <paramref name="output"/>, checked against its checksum.</summary>
    /// <exception cref="InvalidDataException">An object is missing or not what was stored.</exception>
    public async Task ReadFileAsync(BackupFile file, Stream output, CancellationToken cancellationToken)
    {
        if (await CheckAsync(file, output, cancellationToken).ConfigureAwait(false) is { } problem)
        {
            throw new InvalidDataException(problem);
        }
    }

    /// <summary>Every backup in the repository, oldest first.</summary>
    public async Task<IReadOnlyList<BackupManifest>> ListAsync(CancellationToken cancellationToken)
    {
        var manifests = new List<BackupManifest>();
        foreach (var id in await IdsAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                manifests.Add(await LoadAsync(id, cancellationToken).ConfigureAwait(false));
            }
            catch (FileNotFoundException)
            {
                // Pruned between the listing and the reading (a scheduled backup's pruning, another node's): gone.
            }
        }
        return [.. manifests.OrderBy(m => m.Created).ThenBy(m => m.Id, StringComparer.Ordinal)];
    }

    private async Task<List<string>> IdsAsync(CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        await foreach (var item in Storage.ListAsync(BackupsPrefix, cancellationToken).ConfigureAwait(false))
        {
            var name = item.Key[BackupsPrefix.Length..];
            if (name.EndsWith(".json", StringComparison.Ordinal) && !name.StartsWith('.') && !name.Contains('/', StringComparison.Ordinal))
            {
                ids.Add(name[..^5]);
            }
        }
        return ids;
    }

    /// <summary>The newest backup without reading the others (ids begin with their UTC time); null when there is none.</summary>
    public async Task<BackupManifest?> NewestAsync(CancellationToken cancellationToken)
    {
        var newest = (await IdsAsync(cancellationToken).ConfigureAwait(false)).Max(StringComparer.Ordinal);
        if (newest is null)
        {
            return null;
        }
        try
        {
            return await LoadAsync(newest, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            // Pruned meanwhile: the newest of those still there.
            return (await ListAsync(cancellationToken).ConfigureAwait(false)) is { Count: > 0 } left ? left[^1] : null;
        }
    }

    /// <summary>A backup by its id; the newest for null.</summary>
    public async Task<BackupManifest> LoadAsync(string? id, CancellationToken cancellationToken)
    {
        if (id is null)
        {
            return await ListAsync(cancellationToken).ConfigureAwait(false) is { Count: > 0 } all ? all[^1] : throw new FileNotFoundException($"{Location} holds no backup");
        }
        if (id.Length == 0 || id.IndexOfAny(['/', '\\']) >= 0 || id.StartsWith('.'))
        {
            throw new ArgumentException($"'{id}' is no backup id");
        }
        var key = ManifestKey(id);
        BackupManifest? manifest;
        try
        {
            await using var input = await Storage.OpenReadAsync(key, cancellationToken).ConfigureAwait(false);
            manifest = await JsonSerializer.DeserializeAsync(input, BackupJson.Default.BackupManifest, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"{Location} holds no backup {id}", e);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{Location}/{key} is no backup list: {e.Message}", e);
        }
        if (manifest is null)
        {
            throw new InvalidDataException($"{Location}/{key} is empty");
        }
        if (manifest.Version > BackupManifest.CurrentVersion)
        {
            throw new InvalidDataException($"{Location}/{key} is a backup of format {manifest.Version}, newer than this Logwell reads ({BackupManifest.CurrentVersion}): restore it with a newer release");
        }
        static bool IsSha(string sha) => sha.Length == 64 && sha.All(char.IsAsciiHexDigitLower);
        if (manifest.Files.FirstOrDefault(f => !IsSha(f.Sha256) || !f.Objects.All(o => IsSha(o.Sha256))) is { } bad)
        {
            throw new InvalidDataException($"{Location}/{key} names {bad.Path} by an object name that is no SHA-256");
        }
        return manifest;
    }

    /// <summary>Re-reads every file of the backup and checks its checksum; the problems found, none when it is whole.</summary>
    public async Task<IReadOnlyList<string>> VerifyAsync(BackupManifest manifest, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        foreach (var file in manifest.Files)
        {
            var problem = await CheckAsync(file, null, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                problems.Add(problem);
            }
        }
        return problems;
    }

    /// <summary>
    /// Writes the backup's files under <paramref name="dataDirectory"/>, each checked against its checksum as it is
    /// written (to a temporary name, renamed when whole). <paramref name="include"/> chooses the files (all when null).
    /// Everything is written under <c>DATA/.restoring/</c> first and moved into place when whole, so a restore that fails
    /// leaves nothing a node would read (it warns of the leftover). Into a data directory that is not empty, each index
    /// set the backup holds then replaces the one there as a whole (its segments, logs and manifest belong together: files of a later state beside the
    /// backup's would be replayed or orphaned), and the databases and the credential are moved over theirs.
    /// </summary>
    /// <param name="days">
    /// Only the segments of these days (UTC, inclusive), into an empty data directory: each index set's manifest is
    /// written listing those alone, with its logs (the events not yet in segments at the backup point, of any day), and
    /// its retention raised to 36,500 days so that old days restored are not expired at once.
    /// </param>
    public async Task<int> RestoreAsync(BackupManifest manifest, string dataDirectory, Func<BackupFile, bool>? include, (DateOnly From, DateOnly To)? days, CancellationToken cancellationToken)
    {
        var root = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(dataDirectory));
        var fresh = IsEmptyDataDirectory(root);
        if (days is not null && !fresh)
        {
            throw new ArgumentException($"a restore of some days goes into an empty data directory, not {root}: it would replace the index sets there with those days alone");
        }
        var rewritten = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var segmentsOfDays = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        if (days is { } range)
        {
            foreach (var file in manifest.Files.Where(f => IndexSetOf(f.Path) is { } name && (f.Path == $"indexsets/{name}/manifest.json" || f.Path == $"indexsets/{name}/indexset.json")))
            {
                if (include is not null && !include(file))
                {
                    continue;
                }
                var content = await ReadAsync(file, cancellationToken).ConfigureAwait(false);
                var json = System.Text.Json.Nodes.JsonNode.Parse(content) as System.Text.Json.Nodes.JsonObject ?? throw new InvalidDataException($"{file.Path} in backup {manifest.Id} is no JSON object");
                if (file.Path.EndsWith("/indexset.json", StringComparison.Ordinal))
                {
                    json["retention_days"] = 36_500;
                }
                else
                {
                    segmentsOfDays[IndexSetOf(file.Path)!] = KeepDays(json, range);
                }
                rewritten[file.Path] = System.Text.Encoding.UTF8.GetBytes(json.ToJsonString());
            }
        }
        bool Chosen(BackupFile file)
        {
            if (include is not null && !include(file))
            {
                return false;
            }
            if (days is null || IndexSetOf(file.Path) is not { } indexSet)
            {
                return true;
            }
            var rest = file.Path[$"indexsets/{indexSet}/".Length..];
            return !rest.StartsWith("segments/", StringComparison.Ordinal)
                || (segmentsOfDays.TryGetValue(indexSet, out var listed) && listed.Contains(rest["segments/".Length..]));
        }

        // Staged inside the data directory, whatever it is (a mount point, a directory its owner made for the service).
        var into = System.IO.Path.Combine(root, StagingDirectory);
        if (Directory.Exists(into))
        {
            Directory.Delete(into, recursive: true);
        }
        var restored = new List<BackupFile>();
        foreach (var file in manifest.Files.Where(Chosen))
        {
            var target = System.IO.Path.GetFullPath(System.IO.Path.Combine(into, file.Path));
            if (!target.StartsWith(into + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal) || file.Path.Split('/').Any(part => part is "" or "." or ".."))
            {
                throw new InvalidDataException($"backup {manifest.Id} names a file outside the data directory: {file.Path}");
            }
            DirectoryBackupStorage.CreatePrivateDirectory(System.IO.Path.GetDirectoryName(target)!);
            var temporary = target + ".restoring";
            await using (var output = DirectoryBackupStorage.CreatePrivateFile(temporary, FileMode.Create))
            {
                if (rewritten.TryGetValue(file.Path, out var content))
                {
                    await output.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                }
                else if (await CheckAsync(file, output, cancellationToken).ConfigureAwait(false) is { } problem)
                {
                    throw new InvalidDataException(problem);
                }
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
            File.Move(temporary, target, overwrite: true);
            restored.Add(file);
        }
        if (fresh)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(into).ToList())
            {
                var target = System.IO.Path.Combine(root, System.IO.Path.GetFileName(entry));
                if (Directory.Exists(entry))
                {
                    Directory.Move(entry, target);
                }
                else
                {
                    File.Move(entry, target);
                }
            }
            Directory.Delete(into, recursive: true);
            DurableFile.SyncDirectory(root);
            return restored.Count;
        }

        // Every file is whole under .restoring/: the index sets replace theirs, then the other files theirs.
        foreach (var name in restored.Select(f => IndexSetOf(f.Path)).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            var live = System.IO.Path.Combine(root, "indexsets", name);
            var replaced = System.IO.Path.Combine(into, "replaced", name);
            if (Directory.Exists(live))
            {
                DirectoryBackupStorage.CreatePrivateDirectory(System.IO.Path.GetDirectoryName(replaced)!);
                Directory.Move(live, replaced);
            }
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(live)!);
            Directory.Move(System.IO.Path.Combine(into, "indexsets", name), live);
        }
        foreach (var file in restored.Where(f => IndexSetOf(f.Path) is null))
        {
            var target = System.IO.Path.Combine(root, file.Path);
            DirectoryBackupStorage.CreatePrivateDirectory(System.IO.Path.GetDirectoryName(target)!);
            if (file.Path.EndsWith(".db", StringComparison.Ordinal))
            {
                // The database's own log beside it would be replayed onto the restored file.
                File.Delete(target + "-wal");
                File.Delete(target + "-shm");
            }
            File.Move(System.IO.Path.Combine(into, file.Path), target, overwrite: true);
        }
        Directory.Delete(into, recursive: true);
        DurableFile.SyncDirectory(root);
        return restored.Count;
    }

    /// <summary>Where a restore stages what it writes, inside the data directory; a node warns when it finds it.</summary>
    public const string StagingDirectory = ".restoring";

    /// <summary>Absent, empty, or holding only what a restore cut short left: a restore writes it without --force.</summary>
    public static bool IsEmptyDataDirectory(string path) =>
        !Directory.Exists(path) || !Directory.EnumerateFileSystemEntries(path).Any(e => System.IO.Path.GetFileName(e) != StagingDirectory);

    /// <summary>Leaves in an index set's manifest the segments of <paramref name="days"/>; their files.</summary>
    private static HashSet<string> KeepDays(System.Text.Json.Nodes.JsonObject manifest, (DateOnly From, DateOnly To) days)
    {
        var kept = new System.Text.Json.Nodes.JsonArray();
        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var segment in manifest["segments"]?.AsArray() ?? [])
        {
            var day = DateOnly.ParseExact(segment!["day"]!.GetValue<string>(), "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
            if (day >= days.From && day <= days.To)
            {
                files.Add(segment["file"]!.GetValue<string>());
                kept.Add(segment.DeepClone());
            }
        }
        manifest["segments"] = kept;
        return files;
    }

    /// <summary>A (small) backed-up file's content, checked against its checksum.</summary>
    private async Task<byte[]> ReadAsync(BackupFile file, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream();
        if (await CheckAsync(file, content, cancellationToken).ConfigureAwait(false) is { } problem)
        {
            throw new InvalidDataException(problem);
        }
        return content.ToArray();
    }

    /// <summary>The index set a backed-up file belongs to (<c>indexsets/NAME/…</c>), or null.</summary>
    public static string? IndexSetOf(string path)
    {
        const string prefix = "indexsets/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var slash = path.IndexOf('/', prefix.Length);
        return slash > prefix.Length ? path[prefix.Length..slash] : null;
    }

    /// <summary>Reads a file's objects (copying the content to <paramref name="output"/> if given); what is wrong with it, or null.</summary>
    private async Task<string?> CheckAsync(BackupFile file, Stream? output, CancellationToken cancellationToken)
    {
        using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long bytes = 0;
        foreach (var chunk in file.Objects)
        {
            var problem = await ReadObjectAsync(file, chunk, whole, output, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }
            bytes += chunk.Bytes;
        }
        var sha = Convert.ToHexStringLower(whole.GetHashAndReset());
        return sha != file.Sha256 || bytes != file.Bytes
            ? $"{file.Path}: its objects hold {bytes} bytes with checksum {sha}, not the {file.Bytes} bytes backed up"
            : null;
    }

    public void Dispose() => Storage.Dispose();

    private async Task<string?> ReadObjectAsync(BackupFile file, BackupChunk chunk, IncrementalHash whole, Stream? output, CancellationToken cancellationToken)
    {
        var key = ObjectKey(chunk.Sha256);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long bytes = 0;
        try
        {
            await using var input = await Storage.OpenReadAsync(key, cancellationToken).ConfigureAwait(false);
            await using var zstd = new ZstdSharp.DecompressionStream(input);
            var buffer = new byte[1 << 16];
            while (true)
            {
                var read = await zstd.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                hash.AppendData(buffer, 0, read);
                whole.AppendData(buffer, 0, read);
                bytes += read;
                if (output is not null)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (FileNotFoundException)
        {
            return $"{file.Path}: its object {chunk.Sha256} is missing";
        }
        catch (Exception e) when (e is IOException or ZstdSharp.ZstdException or InvalidDataException)
        {
            return $"{file.Path}: its object {chunk.Sha256} cannot be read ({e.Message})";
        }
        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        return sha != chunk.Sha256 || bytes != chunk.Bytes
            ? $"{file.Path}: its object {chunk.Sha256} holds {bytes} bytes with checksum {sha}, not the {chunk.Bytes} bytes backed up"
            : null;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BackupManifest))]
[JsonSerializable(typeof(ArchiveRecord))]
internal sealed partial class BackupJson : JsonSerializerContext;
