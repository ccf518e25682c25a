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
        var to = new Option<string>("--to") { Description = "the backup directory, on the node's machine (a local disk or a mounted share)", Required = true };
        var backup = new Command("backup", "Back up the node while it serves: every index set at one point, its SQLite databases, its credential; only what earlier backups in the directory lack is written.") { to };
        backup.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["to"] = Path.GetFullPath(result.GetValue(to)!) });
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            // A first backup of a large node takes a while.
            client.Timeout = Timeout.InfiniteTimeSpan;
            using var response = await client.PostAsync("api/v1/maintenance/backup", content, ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"backup {root.GetProperty("id").GetString()}: {root.GetProperty("files").GetInt32()} files, {root.GetProperty("bytes").GetInt64():N0} bytes; {root.GetProperty("new_objects").GetInt32()} new, {root.GetProperty("new_stored_bytes").GetInt64():N0} bytes written to {root.GetProperty("to").GetString()}"));
            return 0;
        }));

        var listFrom = new Option<string>("--from") { Description = "the backup directory", Required = true };
        var list = new Command("list", "List the backups in a directory, oldest first.") { listFrom };
        list.SetAction((result, ct) => Run(() =>
        {
            var repository = new BackupRepository(result.GetValue(listFrom)!);
            Console.WriteLine("ID                         CREATED (UTC)         FILES          BYTES    NEW BYTES");
            foreach (var manifest in repository.List())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{manifest.Id,-26} {manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss} {manifest.Files.Count,7} {manifest.Bytes,14:N0} {manifest.NewStoredBytes,12:N0}"));
            }
            return Task.FromResult(0);
        }));

        var verifyFrom = new Option<string>("--from") { Description = "the backup directory (DIR, or DIR@ID for one backup; every backup without)", Required = true };
        var verify = new Command("verify", "Re-read every file of the backups and check it against its checksum.") { verifyFrom };
        verify.SetAction((result, ct) => Run(async () =>
        {
            var (directory, id) = Split(result.GetValue(verifyFrom)!);
            var repository = new BackupRepository(directory);
            var manifests = id is null ? repository.List() : [repository.Load(id)];
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
        backup.Subcommands.Add(list);
        backup.Subcommands.Add(verify);
        return backup;
    }

    public static Command Restore()
    {
        var from = new Option<string>("--from") { Description = "the backup directory, DIR or DIR@ID (default: its newest backup)", Required = true };
        var data = new Option<string>("--data") { Description = "the data directory to restore into (empty, or made)", Required = true };
        var force = new Option<bool>("--force") { Description = "restore into a data directory that is not empty, replacing the files the backup holds" };
        var index = new Option<string[]>("--index") { Description = "restore only these index sets (repeat the option); the databases are left as they are", AllowMultipleArgumentsPerToken = true };
        var restore = new Command("restore", "Restore a backup into a data directory; start the node on it afterwards.") { from, data, force, index };
        restore.SetAction((result, ct) => Run(async () =>
        {
            var (directory, id) = Split(result.GetValue(from)!);
            var repository = new BackupRepository(directory);
            var manifest = repository.Load(id);
            var target = Path.GetFullPath(result.GetValue(data)!);
            if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() && !result.GetValue(force))
            {
                Console.Error.WriteLine($"error: {target} is not empty; restore into an empty directory, or add --force to replace what the backup holds");
                return 1;
            }
            var only = result.GetValue(index) ?? [];
            Func<BackupFile, bool>? include = only.Length == 0 ? null : file => only.Any(name => file.Path.StartsWith($"indexsets/{name}/", StringComparison.Ordinal));
            var started = Settings.Time.GetTimestamp();
            var restored = await repository.RestoreAsync(manifest, target, include, ct).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"restored backup {manifest.Id} ({manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC): {restored} files into {target} in {Settings.Time.GetElapsedTime(started).TotalSeconds:0.0} s"));
            return 0;
        }));
        return restore;
    }

    /// <summary>DIR@ID into the directory and the id (null when there is none).</summary>
    private static (string Directory, string? Id) Split(string value)
    {
        var at = value.LastIndexOf('@');
        return at > 0 && value.IndexOf('/', at) < 0 ? (value[..at], value[(at + 1)..]) : (value, null);
    }

    private static async Task<int> Run(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or JsonException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
