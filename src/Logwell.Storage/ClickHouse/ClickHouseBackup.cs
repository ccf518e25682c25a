using Microsoft.Extensions.Logging;
using System.Globalization;
using System.Text.Json;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// One day partition of an index set's table: its rows, and a fingerprint of its parts that changes whenever its data
/// does (an insert or a merge makes new parts), so that a backup can pass over a partition it already holds.
/// </summary>
public sealed record ClickHousePartition(string IndexSet, DateOnly Day, long Rows, string Fingerprint);

/// <summary>An index set as the catalog holds it, for a backup.</summary>
public sealed record ClickHouseIndexSetRow(string Name, int RetentionDays, DateTimeOffset Created, string Pipeline)
{
    /// <summary>The <c>patterns</c> setting (on in backups made before it existed).</summary>
    public bool Patterns { get; init; } = true;
}

/// <summary>
/// Backup and restore of the events in ClickHouse: each index set's day partitions read as ClickHouse's Native format
/// (ordered, so the same data gives the same bytes) and written back with <c>INSERT … FORMAT Native</c>; the catalog as
/// rows. Through the HTTP interface, so it works on every server release Logwell supports and needs no access to the
/// servers' disks (<c>ALTER TABLE … FREEZE</c> leaves hard links on each server's own disk, and <c>BACKUP</c> is not in 18.16).
/// </summary>
public sealed partial class ClickHouseLogStore
{
    /// <summary>The index sets of the catalog as this node knows them now.</summary>
    public IReadOnlyList<ClickHouseIndexSetRow> CatalogRows()
    {
        lock (_sets)
        {
            return [.. _sets.Values.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => new ClickHouseIndexSetRow(s.Name, s.RetentionDays, s.Created, s.Pipeline?.Definition ?? "") { Patterns = s.Patterns is not null })];
        }
    }

    /// <summary>
    /// The day partitions of an index set's table, oldest first. The fingerprint is the partition's rows, then a hash of
    /// the index set's creation time and its active parts' names, rows and modification times (part numbers start again
    /// in a table made anew, so names alone could meet other data).
    /// </summary>
    public async Task<IReadOnlyList<ClickHousePartition>> PartitionsAsync(string indexSet, CancellationToken cancellationToken)
    {
        var created = TryGet(indexSet, out var known) && known is ClickHouseIndexSet set ? set.Created.UtcTicks : 0;
        var parts = new List<(string Partition, string Part)>();
        var sql = $"SELECT partition_id, name, rows, toUnixTimestamp(modification_time) AS modified FROM system.parts WHERE database = currentDatabase() AND table = {ClickHouseSql.Literal(ClickHouseEvents.Table(indexSet))} AND active";
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (var row in Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var partition = row.GetProperty("partition_id").GetString()!;
            var count = row.GetProperty("rows").GetInt64();
            parts.Add((partition, string.Create(CultureInfo.InvariantCulture, $"{row.GetProperty("name").GetString()}/{count}/{row.GetProperty("modified").GetInt64()}")));
            rows[partition] = rows.GetValueOrDefault(partition) + count;
        }
        return [.. parts.GroupBy(p => p.Partition, StringComparer.Ordinal)
            .Select(g => new ClickHousePartition(indexSet, DateOnly.ParseExact(g.Key, "yyyyMMdd", CultureInfo.InvariantCulture), rows[g.Key],
                string.Create(CultureInfo.InvariantCulture, $"{rows[g.Key]}:") + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
                    string.Create(CultureInfo.InvariantCulture, $"{created};") + string.Join(',', g.Select(p => p.Part).Order(StringComparer.Ordinal)))))))
            .OrderBy(p => p.Day)];
    }

    /// <summary>The rows a partition held when a backup read it, from its fingerprint (null when it does not say).</summary>
    public static long? RowsOf(string? fingerprint) =>
        fingerprint is not null && fingerprint.IndexOf(':') is > 0 and var colon && long.TryParse(fingerprint.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var rows) ? rows : null;

    /// <summary>How many events one day of an index set's table holds.</summary>
    public async Task<long> CountDayAsync(string indexSet, DateOnly day, CancellationToken cancellationToken)
    {
        var sql = $"SELECT count() AS n FROM {ClickHouseSql.Identifier(ClickHouseEvents.Table(indexSet))} WHERE day = toDate({ClickHouseSql.Literal(day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))})";
        await foreach (var row in Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            return row.GetProperty("n").GetInt64();
        }
        return 0;
    }

    /// <summary>Writes a partition's rows in Native format, ordered, to <paramref name="output"/> (from its start again if a replica fails half way).</summary>
    public Task ExportPartitionAsync(ClickHousePartition partition, FileStream output, CancellationToken cancellationToken) =>
        Client.OnAnyAsync(async client =>
        {
            output.SetLength(0);
            // The answer is sent once it is whole (an error half way is an error, not a short file), and a day larger
            // than memory is sorted on disk.
            var settings = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["wait_end_of_query"] = "1",
                ["max_bytes_before_external_sort"] = (1L << 30).ToString(CultureInfo.InvariantCulture),
            };
            await client.ExportAsync($"SELECT * FROM {ClickHouseSql.Identifier(ClickHouseEvents.Table(partition.IndexSet))} WHERE day = toDate({ClickHouseSql.Literal(partition.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))}) ORDER BY t, seq FORMAT Native", output, settings, cancellationToken).ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            return true;
        });

    /// <summary>How many events an index set's table holds (0 when it has no table).</summary>
    public async Task<long> CountAsync(string indexSet, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var row in Client.QueryAsync($"SELECT count() AS n FROM {ClickHouseSql.Identifier(ClickHouseEvents.Table(indexSet))}", cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                return row.GetProperty("n").GetInt64();
            }
            return 0;
        }
        catch (ClickHouseException e) when (e.Code == 60)
        {
            return 0; // no such table
        }
    }

    /// <summary>
    /// Makes an index set from a backup's catalog row where there is none (its table, then its row, as
    /// <see cref="CreateAsync"/> does); one that exists (<c>default</c>, made when the store opens) takes the row's
    /// retention and pipeline.
    /// </summary>
    public async Task RestoreIndexSetAsync(ClickHouseIndexSetRow row, CancellationToken cancellationToken)
    {
        if (TryGet(row.Name, out var existing))
        {
            await SetRetentionAsync(row.Name, row.RetentionDays).ConfigureAwait(false);
            if (ParsePipeline(row.Name, row.Pipeline) is { } kept && existing is ClickHouseIndexSet set)
            {
                await set.SetPipelineAsync(kept, cancellationToken).ConfigureAwait(false);
            }
            if ((existing.Patterns is not null) != row.Patterns)
            {
                await SetPatternsAsync(row.Name, row.Patterns).ConfigureAwait(false);
            }
            return;
        }
        await _catalog.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (await ReadRowAsync(row.Name, cancellationToken).ConfigureAwait(false) is not null)
            {
                return;
            }
            await Client.OnEachAsync(ClickHouseEvents.CreateTable(row.Name, _options.ReplicationPath), cancellationToken).ConfigureAwait(false);
            var pipeline = ParsePipeline(row.Name, row.Pipeline);
            await WriteCatalogAsync(row.Name, row.RetentionDays, row.Created, pipeline, row.Patterns, deleted: false, cancellationToken).ConfigureAwait(false);
            lock (_sets)
            {
                _sets[row.Name] = new ClickHouseIndexSet(this, row.Name, row.RetentionDays, row.Created, pipeline, row.Patterns, _loggers.CreateLogger<ClickHouseIndexSet>());
            }
        }
        finally
        {
            _catalog.Release();
        }
    }

    /// <summary>
    /// Writes a partition's rows back from Native format read from <paramref name="file"/>; with
    /// <paramref name="replace"/>, the partition is dropped first, so that it holds the backup's rows alone.
    /// </summary>
    public async Task ImportPartitionAsync(string indexSet, DateOnly day, string file, bool replace, CancellationToken cancellationToken)
    {
        var table = ClickHouseEvents.Table(indexSet);
        if (replace)
        {
            await AlterAsync($"ALTER TABLE {ClickHouseSql.Identifier(table)} DROP PARTITION {ClickHouseSql.Literal(day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))}").ConfigureAwait(false);
        }
        await Client.OnAnyAsync(async client =>
        {
            await using var body = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
            await client.ImportAsync(table, "Native", body, cancellationToken).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
    }

    /// <summary>The catalog rows as JSON lines (a backup's <c>clickhouse/indexsets.jsonl</c>).</summary>
    public static byte[] CatalogLines(IEnumerable<ClickHouseIndexSetRow> rows) =>
        System.Text.Encoding.UTF8.GetBytes(string.Concat(rows.Select(r => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["name"] = r.Name,
            ["retention_days"] = r.RetentionDays,
            ["created"] = r.Created.UtcTicks,
            ["pipeline"] = r.Pipeline,
            ["patterns"] = r.Patterns,
        }) + "\n")));

    /// <summary>Reads catalog rows written by <see cref="CatalogLines"/>.</summary>
    public static IReadOnlyList<ClickHouseIndexSetRow> ParseCatalogLines(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            using var row = JsonDocument.Parse(line);
            var root = row.RootElement;
            return new ClickHouseIndexSetRow(root.GetProperty("name").GetString()!, root.GetProperty("retention_days").GetInt32(),
                new DateTimeOffset(root.GetProperty("created").GetInt64(), TimeSpan.Zero), root.GetProperty("pipeline").GetString() ?? "")
            {
                Patterns = !root.TryGetProperty("patterns", out var patterns) || patterns.ValueKind != JsonValueKind.False,
            };
        })];
}
