using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Logwell.Storage.Backup;

namespace Logwell.Cli;

/// <summary>
/// <c>logwell backup --to DIR</c> (the running node takes it, online), <c>logwell backup list|verify --from DIR</c>
/// and <c>logwell restore --from DIR[@ID] --data DIR</c> (on the repository directly, no node needed).
/// </summary>
internal static class BackupCommands
{
    public static Command Backup(Option<string> server)
    {
        var to = new Option<string>("--to") { Description = "where to: a directory on the node's machine (a local disk or a mounted share), or s3://bucket/prefix (with the node's AWS credentials)", Required = true };
        var (last, daily, weekly) = KeepOptions();
        var backup = new Command("backup", "Back up the node while it serves: every index set at one point, its SQLite databases, its credential; only what earlier backups in the directory lack is written. With --keep-*, the backups there that are not kept are pruned afterwards.") { to, last, daily, weekly };
        backup.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            var destination = result.GetValue(to)!;
            var request = new Dictionary<string, object> { ["to"] = S3BackupStorage.Names(destination) ? destination : Path.GetFullPath(destination) };
            foreach (var (option, name) in new[] { (last, "keep_last"), (daily, "keep_daily"), (weekly, "keep_weekly") })
            {
                if (result.GetValue(option) is { } keep)
                {
                    request[name] = keep;
                }
            }
            var body = JsonSerializer.Serialize(request);
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            // A first backup of a large node takes a while.
            client.Timeout = Timeout.InfiniteTimeSpan;
            using var response = await client.PostAsync("api/v1/maintenance/backup", content, ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"backup {root.GetProperty("id").GetString()}: {root.GetProperty("files").GetInt32()} files, {root.GetProperty("bytes").GetInt64():N0} bytes; {root.GetProperty("new_objects").GetInt32()} new, {root.GetProperty("new_stored_bytes").GetInt64():N0} bytes written to {root.GetProperty("to").GetString()}"));
            if (root.TryGetProperty("damaged", out var damaged) && damaged.ValueKind == JsonValueKind.Array)
            {
                Console.Error.WriteLine("warning: the node knows of damaged segments, copied as they are; to repair them, restore from a backup taken before the damage:");
                foreach (var item in damaged.EnumerateArray())
                {
                    Console.Error.WriteLine($"  {item.GetString()}");
                }
            }
            if (root.TryGetProperty("pruned", out var pruned) && pruned.ValueKind == JsonValueKind.Object && pruned.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String)
            {
                Console.Error.WriteLine($"the backup is saved, but the prune after it failed: {error.GetString()}");
                return 1;
            }
            if (pruned.ValueKind == JsonValueKind.Object)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"pruned: {pruned.GetProperty("removed").GetArrayLength()} backups removed, {pruned.GetProperty("kept").GetInt32()} kept; {pruned.GetProperty("removed_objects").GetInt32()} objects, {pruned.GetProperty("freed_bytes").GetInt64():N0} bytes freed"));
            }
            return 0;
        }));

        var listFrom = new Option<string>("--from") { Description = "the backup directory or s3://bucket/prefix", Required = true };
        var list = new Command("list", "List the backups in a directory, oldest first.") { listFrom };
        list.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var repository = BackupRepository.Open(result.GetValue(listFrom)!, Settings.Time);
            var manifests = await repository.ListAsync(ct).ConfigureAwait(false);
            Console.WriteLine("ID                         CREATED (UTC)         FILES          BYTES    NEW BYTES");
            foreach (var manifest in manifests)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{manifest.Id,-26} {manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss} {manifest.Files.Count,7} {manifest.Bytes,14:N0} {manifest.NewStoredBytes,12:N0}{(manifest.Damaged is { Count: > 0 } d ? $"  holds {d.Count} damaged segments" : "")}"));
            }
            return 0;
        }));

        var verifyFrom = new Option<string>("--from") { Description = "the backup directory or s3://bucket/prefix (with @ID for one backup; every backup without)", Required = true };
        var verify = new Command("verify", "Re-read every file of the backups and check it against its checksum.") { verifyFrom };
        verify.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            var (directory, id) = Split(result.GetValue(verifyFrom)!);
            using var repository = BackupRepository.Open(directory, Settings.Time);
            var held = await repository.LockAsync(BackupLockKind.Read, ct).ConfigureAwait(false);
            await using var _ = held.ConfigureAwait(false);
            var manifests = id is null ? await repository.ListAsync(ct).ConfigureAwait(false) : [await repository.LoadAsync(id, ct).ConfigureAwait(false)];
            var failed = 0;
            foreach (var manifest in manifests)
            {
                var problems = await repository.VerifyAsync(manifest, ct).ConfigureAwait(false);
                Console.WriteLine(problems.Count == 0 ? $"{manifest.Id}: {manifest.Files.Count} files whole" : $"{manifest.Id}: {problems.Count} of {manifest.Files.Count} files damaged");
                foreach (var problem in problems)
                {
                    Console.WriteLine($"  {problem}");
                }
                failed += problems.Count == 0 ? 0 : 1;
            }
            return failed == 0 ? 0 : 2;
        }));
        var pruneFrom = new Option<string>("--from") { Description = "the backup directory or s3://bucket/prefix", Required = true };
        var (pruneLast, pruneDaily, pruneWeekly) = KeepOptions();
        var prune = new Command("prune", "Delete the backups the --keep-* rules do not keep (the newest is always kept), then the stored files no remaining backup lists.") { pruneFrom, pruneLast, pruneDaily, pruneWeekly };
        prune.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            var retention = new BackupRetention(result.GetValue(pruneLast) ?? 0, result.GetValue(pruneDaily) ?? 0, result.GetValue(pruneWeekly) ?? 0);
            if (!retention.KeepsAnything)
            {
                Console.Error.WriteLine("error: say what to keep: --keep-last, --keep-daily and/or --keep-weekly");
                return 1;
            }
            using var repository = BackupRepository.Open(result.GetValue(pruneFrom)!, Settings.Time);
            var pruned = await repository.PruneAsync(retention, ct).ConfigureAwait(false);
            foreach (var id in pruned.Removed)
            {
                Console.WriteLine($"removed {id}");
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{pruned.Removed.Count} backups removed, {pruned.Kept} kept; {pruned.RemovedObjects} stored files, {pruned.FreedBytes:N0} bytes freed"));
            return 0;
        }));
        backup.Subcommands.Add(list);
        backup.Subcommands.Add(verify);
        backup.Subcommands.Add(prune);
        return backup;
    }

    public static Command Restore()
    {
        var from = new Option<string>("--from") { Description = "the backup directory or s3://bucket/prefix, with @ID for one backup (default: the newest)", Required = true };
        var data = new Option<string>("--data") { Description = "the data directory to restore into (empty, or made); for --cluster, the data directory whose settings name the stores" };
        var cluster = new Option<bool>("--cluster") { Description = "restore a cluster backup into the ClickHouse and metadata database the settings name (appsettings, LOGWELL_ variables)" };
        var force = new Option<bool>("--force") { Description = "restore into a data directory that is not empty (its node stopped): each index set the backup holds replaces the one there as a whole, the databases are written over" };
        var index = new Option<string[]>("--index") { Description = "restore only these index sets (repeat the option); the databases are left as they are", AllowMultipleArgumentsPerToken = true };
        var days = new Option<string>("--days") { Description = "only these days, UTC (2026-10-01, or 2026-10-01..2026-10-07), into an empty directory: the segments of those days and the events not yet in segments at the backup point; the index sets' retention is raised to 36,500 days" };
        var restore = new Command("restore", "Restore a backup into a data directory (start the node on it afterwards), or with --cluster a cluster backup into its ClickHouse and metadata database.") { from, data, cluster, force, index, days };
        restore.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            var (directory, id) = Split(result.GetValue(from)!);
            using var repository = BackupRepository.Open(directory, Settings.Time);
            var reading = await repository.LockAsync(BackupLockKind.Read, ct).ConfigureAwait(false);
            await using var _ = reading.ConfigureAwait(false);
            var manifest = await repository.LoadAsync(id, ct).ConfigureAwait(false);
            if (result.GetValue(cluster))
            {
                if (result.GetValue(days) is not null)
                {
                    Console.Error.WriteLine("error: --days restores days of a node's index sets into a data directory, not a cluster");
                    return 1;
                }
                var options = Settings.Load(result.GetValue(data));
                var clusterStarted = Settings.Time.GetTimestamp();
                var what = await Logwell.Server.Hosting.ClusterBackup.RestoreAsync(options, repository, manifest, result.GetValue(index) ?? [], result.GetValue(force), Settings.Time, ct).ConfigureAwait(false);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"restored backup {manifest.Id} ({manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC): {what} in {Settings.Time.GetElapsedTime(clusterStarted).TotalSeconds:0.0} s"));
                return 0;
            }
            if (result.GetValue(data) is not { } dataDirectory)
            {
                Console.Error.WriteLine("error: say where to restore: --data DIR (a node's data directory), or --cluster (the stores the settings name)");
                return 1;
            }
            if (manifest.Files.Any(f => f.Path == Logwell.Server.Hosting.ClusterBackup.CatalogFile))
            {
                Console.Error.WriteLine($"error: backup {manifest.Id} is of a cluster node's stores: restore it with --cluster");
                return 1;
            }
            var target = Path.GetFullPath(dataDirectory);
            if (!BackupRepository.IsEmptyDataDirectory(target) && !result.GetValue(force))
            {
                Console.Error.WriteLine($"error: {target} is not empty; restore into an empty directory, or add --force to replace what the backup holds");
                return 1;
            }
            var only = result.GetValue(index) ?? [];
            var missing = only.Where(name => manifest.Files.All(f => BackupRepository.IndexSetOf(f.Path) != name)).ToList();
            if (missing.Count > 0)
            {
                Console.Error.WriteLine($"error: backup {manifest.Id} holds no index set named {string.Join(", ", missing)}; it holds {string.Join(", ", manifest.Files.Select(f => BackupRepository.IndexSetOf(f.Path)).OfType<string>().Distinct().Order(StringComparer.Ordinal))}");
                return 1;
            }
            Func<BackupFile, bool>? include = only.Length == 0 ? null : file => BackupRepository.IndexSetOf(file.Path) is { } name && only.Contains(name);
            var started = Settings.Time.GetTimestamp();
            (DateOnly, DateOnly)? range = null;
            if (result.GetValue(days) is { } text)
            {
                var parts = text.Split("..");
                if (parts.Length > 2 || !DateOnly.TryParseExact(parts[0], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var first)
                    || !DateOnly.TryParseExact(parts[^1], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var last) || last < first)
                {
                    Console.Error.WriteLine($"error: --days '{text}' is not a day or a range of days such as 2026-10-01..2026-10-07");
                    return 1;
                }
                range = (first, last);
                if (!BackupRepository.IsEmptyDataDirectory(target))
                {
                    Console.Error.WriteLine($"error: a restore of some days goes into an empty data directory, not {target}: it would replace the index sets there with those days alone");
                    return 1;
                }
            }
            // Not under a running node: it would go on writing the files being replaced. (A node's data directory is never empty.)
            using var held = BackupRepository.IsEmptyDataDirectory(target) ? null : Logwell.Storage.Engine.LogEngine.TakeForRestore(target);
            var restored = await repository.RestoreAsync(manifest, target, include, range, ct).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"restored backup {manifest.Id} ({manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC): {restored} files into {target} in {Settings.Time.GetElapsedTime(started).TotalSeconds:0.0} s"));
            if (include is null && manifest.Files.Any(f => f.Path == Logwell.Server.Hosting.NodeBackup.SettingsFile))
            {
                Console.WriteLine($"the node's settings at the backup point (secrets hidden) are in {Path.Combine(target, Logwell.Server.Hosting.NodeBackup.SettingsFile)}");
            }
            return 0;
        }));
        return restore;
    }

    public static Command Verify()
    {
        var data = new Option<string>("--data") { Description = "the data directory (its node may be running)", Required = true };
        var index = new Option<string[]>("--index") { Description = "only these index sets (repeat the option)", AllowMultipleArgumentsPerToken = true };
        var verify = new Command("verify", "Read every segment of the index sets in a data directory and check each part against its checksum; exit 2 naming each damaged segment.") { data, index };
        verify.SetAction((result, ct) => ClientCommands.Guard(() => Task.Run(() =>
        {
            var damaged = 0;
            foreach (var indexSet in Logwell.Storage.Engine.DataVerifier.Verify(result.GetValue(data)!, result.GetValue(index), ct))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{indexSet.Name}: {indexSet.Segments} segments, {indexSet.Events:N0} events, {indexSet.Bytes:N0} bytes: {(indexSet.Problems.Count == 0 ? "whole" : $"{indexSet.Problems.Count} damaged")}"));
                foreach (var problem in indexSet.Problems)
                {
                    Console.WriteLine($"  {problem}");
                }
                damaged += indexSet.Problems.Count;
            }
            if (damaged > 0)
            {
                Console.WriteLine("restore each damaged index set from a backup: logwell restore --from DIR --data DATA --index NAME --force (with its node stopped)");
            }
            return damaged == 0 ? 0 : 2;
        }, ct)));
        return verify;
    }

    private static (Option<int?> Last, Option<int?> Daily, Option<int?> Weekly) KeepOptions() => (
        new Option<int?>("--keep-last") { Description = "keep the newest N backups" },
        new Option<int?>("--keep-daily") { Description = "keep the newest backup of each of the last N days that have one (UTC)" },
        new Option<int?>("--keep-weekly") { Description = "keep the newest backup of each of the last N weeks that have one (ISO weeks, UTC)" });

    /// <summary>DIR@ID into the directory and the id (null when there is none).</summary>
    private static (string Directory, string? Id) Split(string value)
    {
        var at = value.LastIndexOf('@');
        return at > 0 && value.IndexOf('/', at) < 0 ? (value[..at], value[(at + 1)..]) : (value, null);
    }
}
