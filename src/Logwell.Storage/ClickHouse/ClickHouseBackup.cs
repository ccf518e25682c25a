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
public sealed record ClickHouseIndexSetRow(string Name, int RetentionDays, DateTimeOffset Created, string Pipeline);

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
            return [.. _sets.Values.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => new ClickHouseIndexSetRow(s.Name, s.RetentionDays, s.Created, s.Pipeline?.Definition ?? ""))];
        }
    }

    /// <summary>The day partitions of an index set's table, oldest first.</summary>
    public async Task<IReadOnlyList<ClickHousePartition>> PartitionsAsync(string indexSet, CancellationToken cancellationToken)
    {
        var parts = new List<(string Partition, string Name, long Rows)>();
        var sql = $"SELECT partition_id, name, rows FROM system.parts WHERE database = currentDatabase() AND table = {ClickHouseSql.Literal(ClickHouseEvents.Table(indexSet))} AND active";
        await foreach (var row in Client.QueryAsync(sql, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            parts.Add((row.GetProperty("partition_id").GetString()!, row.GetProperty("name").GetString()!, row.GetProperty("rows").GetInt64()));
        }
        return [.. parts.GroupBy(p => p.Partition, StringComparer.Ordinal)
            .Select(g => new ClickHousePartition(indexSet, DateOnly.ParseExact(g.Key, "yyyyMMdd", CultureInfo.InvariantCulture), g.Sum(p => p.Rows),
                Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join(',', g.Select(p => p.Name).Order(StringComparer.Ordinal)))))))
            .OrderBy(p => p.Day)];
    }

    /// <summary>Writes a partition's rows in Native format, ordered, to <paramref name="output"/> (from its start again if a replica fails half way).</summary>
    public Task ExportPartitionAsync(ClickHousePartition partition, FileStream output, CancellationToken cancellationToken) =>
        Client.OnAnyAsync(async client =>
        {
            output.SetLength(0);
            await client.ExportAsync($"SELECT * FROM {ClickHouseSql.Identifier(ClickHouseEvents.Table(partition.IndexSet))} WHERE day = toDate({ClickHouseSql.Literal(partition.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))}) ORDER BY t, seq FORMAT Native", output, cancellationToken).ConfigureAwait(false);
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
    /// <see cref="CreateAsync"/> does); an index set that exists keeps its settings.
    /// </summary>
    public async Task RestoreIndexSetAsync(ClickHouseIndexSetRow row, CancellationToken cancellationToken)
    {
        await _catalog.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (TryGet(row.Name, out _) || await ReadRowAsync(row.Name, cancellationToken).ConfigureAwait(false) is not null)
            {
                return;
            }
            await Client.OnEachAsync(ClickHouseEvents.CreateTable(row.Name, _options.ReplicationPath), cancellationToken).ConfigureAwait(false);
            var pipeline = ParsePipeline(row.Name, row.Pipeline);
            await WriteCatalogAsync(row.Name, row.RetentionDays, row.Created, pipeline, deleted: false, cancellationToken).ConfigureAwait(false);
            lock (_sets)
            {
                _sets[row.Name] = new ClickHouseIndexSet(this, row.Name, row.RetentionDays, row.Created, pipeline, _loggers.CreateLogger<ClickHouseIndexSet>());
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
        }) + "\n")));

    /// <summary>Reads catalog rows written by <see cref="CatalogLines"/>.</summary>
    public static IReadOnlyList<ClickHouseIndexSetRow> ParseCatalogLines(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            using var row = JsonDocument.Parse(line);
            var root = row.RootElement;
            return new ClickHouseIndexSetRow(root.GetProperty("name").GetString()!, root.GetProperty("retention_days").GetInt32(),
                new DateTimeOffset(root.GetProperty("created").GetInt64(), TimeSpan.Zero), root.GetProperty("pipeline").GetString() ?? "");
        })];
}
