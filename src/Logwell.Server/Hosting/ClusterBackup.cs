using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Logwell.Storage.Backup;
using Logwell.Storage.ClickHouse;
using MySqlConnector;
using Npgsql;

namespace Logwell.Server.Hosting;

/// <summary>
/// A backup of a cluster node's shared stores, under the same commands and into the same repositories as a node on the
/// embedded engine: every index set's day partitions in ClickHouse (<c>clickhouse/NAME/DAY.native</c>, a partition
/// whose parts are those the newest backup read is not read again), the catalog of index sets, and the metadata
/// database through its own dump tool (<c>pg_dump</c> or <c>mariadb-dump</c>; SQLite through its online backup).
/// </summary>
public static class ClusterBackup
{
    /// <summary>The catalog of index sets in a cluster backup; its presence tells a cluster backup from a node's.</summary>
    public const string CatalogFile = "clickhouse/indexsets.jsonl";

    public const string PostgreSqlDump = "metadata/postgresql.dump";

    public const string MariaDbDump = "metadata/mariadb.sql";

    internal static async Task<BackupManifest> RunAsync(LogwellOptions options, ClickHouseLogStore store, BackupRepository repository, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            return await BackUpAsync(options, store, repository, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ClickHouseException or HttpRequestException or InvalidOperationException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new IOException($"ClickHouse ({options.ClickHouseDatabase}): {e.Message}", e);
        }
    }

    private static async Task<BackupManifest> BackUpAsync(LogwellOptions options, ClickHouseLogStore store, BackupRepository repository, TimeProvider time, CancellationToken cancellationToken)
    {
        if (store.Unreachable is { } unreachable)
        {
            // Its catalog is not known yet: a backup now would hold no index set and look whole.
            throw new IOException(unreachable);
        }
        var created = time.GetUtcNow();
        var files = new List<BackupFile>();
        var newObjects = 0;
        long newBytes = 0;
        async Task<BackupFile> AddAsync(string path, Stream content, long? length, int? chunkBytes)
        {
            var (file, objects, bytes) = await repository.AddAsync(path, content, length, cancellationToken, chunkBytes).ConfigureAwait(false);
            files.Add(file);
            newObjects += objects;
            newBytes += bytes;
            return file;
        }

        // Partitions the newest backup here read from the same parts are the same rows: listed again, not read again.
        var source = $"clickhouse {options.ClickHouseDatabase} at {string.Join(", ", options.ClickHouseUrls)}";
        var previous = await repository.NewestAsync(cancellationToken).ConfigureAwait(false) is { } newest && newest.Source == source
            ? newest.Files.Where(f => f.Fingerprint is not null).ToDictionary(f => f.Path, StringComparer.Ordinal)
            : [];
        var catalog = store.CatalogRows();
        await using (var lines = new MemoryStream(ClickHouseLogStore.CatalogLines(catalog)))
        {
            await AddAsync(CatalogFile, lines, null, null).ConfigureAwait(false);
        }
        foreach (var row in catalog)
        {
            foreach (var partition in await store.PartitionsAsync(row.Name, cancellationToken).ConfigureAwait(false))
            {
                var path = $"clickhouse/{row.Name}/{partition.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}.native";
                if (previous.TryGetValue(path, out var same) && same.Fingerprint == partition.Fingerprint)
                {
                    files.Add(same);
                    continue;
                }
                var temporary = repository.TemporaryPath();
                try
                {
                    await using (var output = new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                    {
                        await store.ExportPartitionAsync(partition, output, cancellationToken).ConfigureAwait(false);
                        output.Position = 0;
                        var file = await AddAsync(path, output, null, null).ConfigureAwait(false);
                        files[^1] = file with { Fingerprint = partition.Fingerprint };
                    }
                }
                finally
                {
                    File.Delete(temporary);
                }
            }
        }

        switch (options.MetadataDialect)
        {
            case MetaDialect.PostgreSql:
                await DumpAsync(repository, PostgreSqlDump, PostgreSqlTool(options, "pg_dump", ["--format=custom", "--no-owner", "--no-privileges"]), AddAsync, cancellationToken).ConfigureAwait(false);
                break;
            case MetaDialect.MariaDb:
                await DumpAsync(repository, MariaDbDump, MariaDbTool(options, "mariadb-dump", ["--single-transaction", "--skip-lock-tables"]), AddAsync, cancellationToken).ConfigureAwait(false);
                break;
        }
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataDirectory));
        await NodeBackup.AddNodeFilesAsync(options, data, repository, async (path, content, length, chunk) => await AddAsync(path, content, length, chunk).ConfigureAwait(false)).ConfigureAwait(false);
        var manifest = new BackupManifest(NodeBackup.NewId(created), created, source, files) { NewObjects = newObjects, NewStoredBytes = newBytes };
        await repository.SaveAsync(manifest, cancellationToken).ConfigureAwait(false);
        return manifest;
    }

    /// <summary>
    /// Restores a cluster backup into the stores <paramref name="options"/> name: the metadata database (unless only some
    /// index sets are asked for) through <c>pg_restore</c> or <c>mariadb</c>, then each index set (made where it does not
    /// exist) and its day partitions. Refused, naming what is there, over index sets that hold events or a metadata
    /// database that holds tables, unless <paramref name="force"/>: then the backup's partitions replace those days, and
    /// the database is replaced.
    /// </summary>
    /// <returns>What was restored, in words.</returns>
    public static async Task<string> RestoreAsync(LogwellOptions options, BackupRepository repository, BackupManifest manifest, IReadOnlyCollection<string> only, bool force, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            return await RestoreClusterAsync(options, repository, manifest, only, force, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ClickHouseException or HttpRequestException or NpgsqlException or MySqlException or InvalidOperationException or UriFormatException
            or KeyNotFoundException or FormatException or JsonException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new IOException(e.Message, e);
        }
    }

    private static async Task<string> RestoreClusterAsync(LogwellOptions options, BackupRepository repository, BackupManifest manifest, IReadOnlyCollection<string> only, bool force, TimeProvider time, CancellationToken cancellationToken)
    {
        var catalogFile = manifest.Files.FirstOrDefault(f => f.Path == CatalogFile)
            ?? throw new ArgumentException($"backup {manifest.Id} is of a node on the embedded engine: restore it with --data DIR");
        if (options.LogStore != "clickhouse")
        {
            throw new ArgumentException("the settings name no ClickHouse (LogStore=clickhouse, ClickHouseUrl, ClickHouseDatabase): a cluster backup goes back into the cluster's stores");
        }
        if (options.MetadataDialect == MetaDialect.Sqlite && only.Count == 0)
        {
            throw new ArgumentException("these settings keep the metadata in SQLite, in each node's data directory: restore the index sets with --index NAME, and a node's meta.db from the backup by hand (docs/operations/backup-and-recovery.md)");
        }
        using var catalogText = new MemoryStream();
        await repository.ReadFileAsync(catalogFile, catalogText, cancellationToken).ConfigureAwait(false);
        var rows = ClickHouseLogStore.ParseCatalogLines(System.Text.Encoding.UTF8.GetString(catalogText.ToArray()))
            .Where(r => only.Count == 0 || only.Contains(r.Name)).ToList();
        if (only.FirstOrDefault(name => rows.All(r => r.Name != name)) is { } missing)
        {
            throw new ArgumentException($"backup {manifest.Id} holds no index set named {missing}");
        }
        var dump = only.Count > 0 ? null : options.MetadataDialect switch
        {
            MetaDialect.PostgreSql => manifest.Files.FirstOrDefault(f => f.Path == PostgreSqlDump) ?? throw new ArgumentException($"backup {manifest.Id} holds no PostgreSQL dump: its metadata was kept elsewhere ({string.Join(", ", manifest.Files.Where(f => f.Path.StartsWith("metadata/", StringComparison.Ordinal) || f.Path.EndsWith(".db", StringComparison.Ordinal)).Select(f => f.Path))})"),
            MetaDialect.MariaDb => manifest.Files.FirstOrDefault(f => f.Path == MariaDbDump) ?? throw new ArgumentException($"backup {manifest.Id} holds no MariaDB dump: its metadata was kept elsewhere ({string.Join(", ", manifest.Files.Where(f => f.Path.StartsWith("metadata/", StringComparison.Ordinal) || f.Path.EndsWith(".db", StringComparison.Ordinal)).Select(f => f.Path))})"),
            _ => null,
        };

        await using var store = await ClickHouseLogStore.OpenAsync(options.ToClickHouseOptions(), time, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!force)
        {
            // (System index sets, such as the audit log a node writes from its start, take the backup's days beside their own.)
            var holding = new List<string>();
            foreach (var row in rows.Where(r => !r.Name.StartsWith('_')))
            {
                if (await store.CountAsync(row.Name, cancellationToken).ConfigureAwait(false) is > 0 and var held)
                {
                    holding.Add(string.Create(CultureInfo.InvariantCulture, $"{row.Name} ({held:N0} events)"));
                }
            }
            if (holding.Count > 0)
            {
                throw new ArgumentException($"index sets in ClickHouse already hold events: {string.Join(", ", holding)}; add --force to replace the days the backup holds");
            }
            if (dump is not null && await MetadataTablesAsync(options, cancellationToken).ConfigureAwait(false) is > 0 and var tables)
            {
                throw new ArgumentException($"the metadata database already holds {tables} tables: add --force to replace them with the backup's, or restore only index sets (--index)");
            }
        }
        if (dump is not null)
        {
            var temporary = Path.Combine(Directory.CreateTempSubdirectory("logwell-restore-").FullName, "metadata");
            try
            {
                await using (var output = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
                {
                    await repository.ReadFileAsync(dump, output, cancellationToken).ConfigureAwait(false);
                }
                if (options.MetadataDialect == MetaDialect.PostgreSql)
                {
                    var tool = PostgreSqlTool(options, "pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction"]);
                    await RunAsync(tool with { Arguments = [.. tool.Arguments, temporary] }, null, null, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await RunAsync(MariaDbTool(options, "mariadb", []), null, temporary, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                Directory.Delete(Path.GetDirectoryName(temporary)!, recursive: true);
            }
        }
        var partitions = 0;
        foreach (var row in rows)
        {
            await store.RestoreIndexSetAsync(row, cancellationToken).ConfigureAwait(false);
            var prefix = $"clickhouse/{row.Name}/";
            foreach (var file in manifest.Files.Where(f => f.Path.StartsWith(prefix, StringComparison.Ordinal) && f.Path.EndsWith(".native", StringComparison.Ordinal)))
            {
                var day = DateOnly.ParseExact(file.Path[prefix.Length..^".native".Length], "yyyy-MM-dd", CultureInfo.InvariantCulture);
                var temporary = Path.Combine(Directory.CreateTempSubdirectory("logwell-restore-").FullName, "partition.native");
                try
                {
                    await using (var output = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
                    {
                        await repository.ReadFileAsync(file, output, cancellationToken).ConfigureAwait(false);
                    }
                    var before = force ? 0 : await store.CountDayAsync(row.Name, day, cancellationToken).ConfigureAwait(false);
                    await store.ImportPartitionAsync(row.Name, day, temporary, replace: force, cancellationToken).ConfigureAwait(false);
                    // Every row arrived (a replicated table would drop a block identical to one it took before, silently).
                    if (ClickHouseLogStore.RowsOf(file.Fingerprint) is { } expected
                        && await store.CountDayAsync(row.Name, day, cancellationToken).ConfigureAwait(false) is var after && after - before != expected)
                    {
                        throw new IOException(string.Create(CultureInfo.InvariantCulture, $"index set {row.Name}, {day:yyyy-MM-dd}: {after - before:N0} events arrived of the {expected:N0} backed up"));
                    }
                    partitions++;
                }
                finally
                {
                    Directory.Delete(Path.GetDirectoryName(temporary)!, recursive: true);
                }
            }
        }
        return $"{rows.Count} index sets ({partitions} day partitions) into ClickHouse {options.ClickHouseDatabase}{(dump is null ? "" : $", and the {options.MetadataDialect} metadata database")}";
    }

    /// <summary>How many tables the metadata database holds.</summary>
    private static async Task<long> MetadataTablesAsync(LogwellOptions options, CancellationToken cancellationToken)
    {
        System.Data.Common.DbConnection connection = options.MetadataDialect == MetaDialect.PostgreSql
            ? new NpgsqlConnection(options.MetadataConnectionString)
            : new MySqlConnection(options.MetadataConnectionString);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = options.MetadataDialect == MetaDialect.PostgreSql
                ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                : "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()";
            return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }
    }

    /// <summary>A dump tool's command line and environment (the password in the environment, never in the arguments).</summary>
    internal sealed record Tool(string Program, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment);

    /// <summary><c>pg_dump</c>/<c>pg_restore</c> for the metadata database of these settings.</summary>
    internal static Tool PostgreSqlTool(LogwellOptions options, string program, IEnumerable<string> arguments)
    {
        var connection = new NpgsqlConnectionStringBuilder(options.MetadataConnectionString);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["PGPASSWORD"] = connection.Password ?? "", ["PGCONNECT_TIMEOUT"] = "10" };
        // -w: never a password prompt (the password is in the environment or it is not needed).
        return new Tool(program, [.. arguments, "-w", "--host", connection.Host ?? "localhost", "--port", connection.Port.ToString(CultureInfo.InvariantCulture),
            "--username", connection.Username ?? "", "--dbname", connection.Database ?? ""], environment);
    }

    /// <summary><c>mariadb-dump</c>/<c>mariadb</c> for the metadata database of these settings.</summary>
    internal static Tool MariaDbTool(LogwellOptions options, string program, IEnumerable<string> arguments)
    {
        var connection = new MySqlConnectionStringBuilder(options.MetadataConnectionString);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["MYSQL_PWD"] = connection.Password ?? "" };
        // Over TCP as the connection string says (the client would take "localhost" for its Unix socket), unless it names a socket.
        string[] where = connection.ConnectionProtocol == MySqlConnectionProtocol.UnixSocket
            ? ["--socket", connection.Server]
            : ["--protocol=TCP", "--host", connection.Server, "--port", connection.Port.ToString(CultureInfo.InvariantCulture)];
        return new Tool(program, [.. arguments, .. where, "--user", connection.UserID, connection.Database], environment);
    }

    private static async Task DumpAsync(BackupRepository repository, string path, Tool tool, Func<string, Stream, long?, int?, Task<BackupFile>> add, CancellationToken cancellationToken)
    {
        var temporary = repository.TemporaryPath();
        try
        {
            await RunAsync(tool, temporary, null, cancellationToken).ConfigureAwait(false);
            await using var content = File.OpenRead(temporary);
            await add(path, content, null, null).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Runs a database tool, its output into <paramref name="output"/> and its input from <paramref name="input"/> (files, when given).</summary>
    /// <exception cref="IOException">It is not installed, or it failed (its own words).</exception>
    internal static async Task RunAsync(Tool tool, string? output, string? input, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(tool.Program) { RedirectStandardOutput = output is not null, RedirectStandardError = true, RedirectStandardInput = input is not null, UseShellExecute = false };
        foreach (var argument in tool.Arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in tool.Environment)
        {
            info.Environment[name] = value;
        }
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new IOException($"{tool.Program} did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new IOException($"{tool.Program} is not installed on this machine (Debian: postgresql-client or mariadb-client): {e.Message}", e);
        }
        using (process)
        {
            var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
            try
            {
                await PumpAsync(process, output, input, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                if (!process.HasExited)
                {
                    // Cancelled, or a pipe failed: it must not go on (a restore committing after all).
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                }
                if (e is OperationCanceledException)
                {
                    throw;
                }
                // The tool's own words say why its pipe broke.
                throw new IOException($"{tool.Program} failed ({process.ExitCode}): {(await error.ConfigureAwait(false)).Trim()} ({e.Message})", e);
            }
            if (process.ExitCode != 0)
            {
                throw new IOException($"{tool.Program} failed ({process.ExitCode}): {(await error.ConfigureAwait(false)).Trim()}");
            }
        }
    }

    /// <summary>Copies the tool's output to its file and its input from its file, and waits for it to end.</summary>
    private static async Task PumpAsync(Process process, string? output, string? input, CancellationToken cancellationToken)
    {
        var copyOut = Task.CompletedTask;
        if (output is not null)
        {
            copyOut = Task.Run(async () =>
            {
                await using var file = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await process.StandardOutput.BaseStream.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }, cancellationToken);
        }
        if (input is not null)
        {
            await using (var file = File.OpenRead(input))
            {
                await file.CopyToAsync(process.StandardInput.BaseStream, cancellationToken).ConfigureAwait(false);
            }
            process.StandardInput.Close();
        }
        await copyOut.ConfigureAwait(false);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
    }
}
