using System.Text.Json;
using Logwell.Core.Patterns;
using Logwell.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Logwell.Server.Hosting;

/// <summary>A template as the metadata database keeps it: when its events happened, how many there were, and a few of them.</summary>
public sealed record StoredPattern(string Id, string Template, DateTimeOffset FirstSeen, DateTimeOffset LastSeen, long Events, IReadOnlyList<string> Examples);

/// <summary>
/// Keeps the templates that ingest finds (each index set's <see cref="PatternTagger"/>) in the metadata database, where
/// every node and process over it reads them: every few seconds it stores what each tagger saw, and teaches each tagger
/// the templates stored since it last looked (by itself before a restart, or by another node), so that the same lines
/// get the same pattern id everywhere. Templates whose last event is past the index set's retention are deleted, and
/// so are those of a deleted index set.
/// </summary>
/// <remarks>
/// The counts are close, not exact: events are counted as they are tagged, before they are durable, so a batch that
/// fails and comes again counts twice; what a process saw in its last seconds before it stopped, or before the index
/// set's setting was switched, is not stored.
/// </remarks>
/// <param name="minFreeBytes">
/// With the metadata in a SQLite file, what is seen waits in memory while its disk has less free space than this: the
/// space is the events', and a file that grew on a full disk may not open again until space returns.
/// </param>
public sealed class PatternCatalog(MetaDatabase database, ILogStore store, TimeProvider time, ILogger<PatternCatalog> logger, long minFreeBytes = 0) : BackgroundService
{
    /// <summary>How often what the taggers saw is stored.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    // Rows stored up to this long before the newest one read are read again: a row another node committed late still
    // reaches this one.
    private const long Overlap = 60_000;

    private readonly Dictionary<string, Followed> _followed = new(StringComparer.Ordinal);
    private DateTimeOffset _prunedAt = DateTimeOffset.MinValue;

    private sealed class Followed(PatternTagger tagger)
    {
        public PatternTagger Tagger { get; } = tagger;
        public long ReadUpTo { get; set; } = long.MinValue;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Run(Pass, CancellationToken.None).ConfigureAwait(false);
                if (failing)
                {
                    logger.LogInformation("Log patterns are stored again");
                    failing = false;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever failed (the database, ClickHouse, a row that does not read), ingest goes on and so does this.
                if (!failing)
                {
                    logger.LogWarning("Log patterns could not be stored ({Error}); they are kept and tried again", e.Message);
                    failing = true;
                }
            }
            try
            {
                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        // What was seen since the last pass, before the process ends.
        try
        {
            Pass();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Log patterns seen in the last {Seconds} s could not be stored ({Error})", Interval.TotalSeconds, e.Message);
        }
    }

    private bool _waitingForSpace;

    /// <summary>Whether the disk of a SQLite metadata file has less free space than <c>minFreeBytes</c>.</summary>
    private bool LowOnSpace()
    {
        if (database.Dialect != MetaDialect.Sqlite || minFreeBytes <= 0)
        {
            return false;
        }
        var low = new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(database.Location))!).AvailableFreeSpace < minFreeBytes;
        if (low != _waitingForSpace)
        {
            _waitingForSpace = low;
            if (low)
            {
                logger.LogWarning("Log patterns wait in memory: the disk of {File} has less than {Megabytes} MiB free", database.Location, minFreeBytes >> 20);
            }
            else
            {
                logger.LogInformation("Log patterns are stored again: the disk of {File} has space", database.Location);
            }
        }
        return low;
    }

    /// <summary>One pass: for each index set with patterns on, stores what its tagger saw and teaches it what others stored.</summary>
    public void Pass()
    {
        lock (_followed)
        {
            var lowOnSpace = LowOnSpace();
            var names = store.Names();
            foreach (var gone in _followed.Keys.Except(names, StringComparer.Ordinal).ToList())
            {
                _followed.Remove(gone);
            }
            foreach (var name in names)
            {
                if (!store.TryGet(name, out var set) || set.Patterns is not { } tagger)
                {
                    _followed.Remove(name);
                    continue;
                }
                if (!_followed.TryGetValue(name, out var followed) || followed.Tagger != tagger)
                {
                    _followed[name] = followed = new Followed(tagger);
                }
                Learn(name, followed);
                if (lowOnSpace)
                {
                    continue;
                }
                var seen = tagger.TakeSeen();
                try
                {
                    Store(name, seen);
                }
                catch
                {
                    tagger.Restore(seen);
                    throw;
                }
            }
            if (!lowOnSpace && time.GetUtcNow() - _prunedAt > TimeSpan.FromHours(1))
            {
                Prune(names);
                _prunedAt = time.GetUtcNow();
            }
        }
    }

    /// <summary>
    /// Teaches a tagger the templates whose messages were stored since it last looked; the first time, those of the
    /// newest 10,000 (a miner's bound of clusters).
    /// </summary>
    private void Learn(string indexSet, Followed followed)
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        var first = followed.ReadUpTo == long.MinValue;
        command.CommandText = "SELECT id, template, examples, examples_at FROM patterns WHERE index_set = @set AND examples_at > @since ORDER BY last_seen DESC LIMIT 10000";
        command.Add("@set", indexSet);
        command.Add("@since", first ? long.MinValue : followed.ReadUpTo - Overlap);
        var rows = new List<(string Id, string Template, string Examples)>();
        var newest = followed.ReadUpTo;
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
                newest = Math.Max(newest, reader.GetInt64(3));
            }
        }
        // Oldest first: the miner keeps the clusters it saw last when it has to drop some.
        for (var i = rows.Count - 1; i >= 0; i--)
        {
            followed.Tagger.Learn(rows[i].Id, rows[i].Template, Examples(rows[i].Examples));
        }
        followed.ReadUpTo = Math.Max(newest, first ? 0 : followed.ReadUpTo);
    }

    private void Store(string indexSet, List<PatternSeen> seen)
    {
        if (seen.Count == 0)
        {
            return;
        }
        using var connection = database.Connect();
        using var transaction = database.BeginWrite(connection);
        // New messages join those stored (another process may have stored some): up to ExamplesKept, different.
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pattern in seen.Where(p => p.Examples.Count > 0))
        {
            using var read = connection.CreateCommand();
            read.Transaction = transaction;
            read.CommandText = "SELECT examples FROM patterns WHERE index_set = @set AND id = @id";
            read.Add("@set", indexSet);
            read.Add("@id", pattern.Id);
            var stored = read.ExecuteScalar() is string json ? Examples(json) : [];
            var examples = stored.Concat(pattern.Examples).Distinct(StringComparer.Ordinal).Take(PatternTagger.ExamplesKept).ToList();
            if (examples.Count > stored.Count)
            {
                merged[pattern.Id] = JsonSerializer.Serialize(examples);
            }
        }
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO patterns (index_set, id, template, examples, first_seen, last_seen, events, examples_at, updated_at) "
            + "VALUES (@set, @id, @template, @examples, @first, @last, @events, @now, @now) " + UpsertSql();
        var set = command.CreateParameter();
        set.ParameterName = "@set";
        command.Parameters.Add(set);
        var parameters = new[] { "@id", "@template", "@examples", "@first", "@last", "@events", "@now" }.Select(name =>
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            command.Parameters.Add(parameter);
            return parameter;
        }).ToArray();
        set.Value = indexSet;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var pattern in seen)
        {
            parameters[0].Value = pattern.Id;
            parameters[1].Value = pattern.Template;
            // Empty when nothing is to change: the stored messages stay.
            parameters[2].Value = merged.GetValueOrDefault(pattern.Id) ?? "[]";
            parameters[3].Value = pattern.FirstSeen;
            parameters[4].Value = pattern.LastSeen;
            parameters[5].Value = pattern.Count;
            parameters[6].Value = now;
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    /// <summary>
    /// Adds to a stored template: its times widen, its count grows, and the merged messages (when there are) replace
    /// the stored ones, marked with when, so that other processes learn them.
    /// </summary>
    private string UpsertSql() => database.Dialect == MetaDialect.MariaDb
        // MariaDB sets the columns left to right, each seeing the ones before: examples_at first, from the row as it was.
        ? "ON DUPLICATE KEY UPDATE examples_at = IF(VALUES(examples) = '[]', examples_at, VALUES(examples_at)), "
            + "examples = IF(VALUES(examples) = '[]', examples, VALUES(examples)), "
            + "first_seen = LEAST(first_seen, VALUES(first_seen)), last_seen = GREATEST(last_seen, VALUES(last_seen)), events = events + VALUES(events), "
            + "updated_at = VALUES(updated_at)"
        : "ON CONFLICT (index_set, id) DO UPDATE SET "
            + "examples_at = CASE WHEN excluded.examples = '[]' THEN patterns.examples_at ELSE excluded.examples_at END, "
            + "examples = CASE WHEN excluded.examples = '[]' THEN patterns.examples ELSE excluded.examples END, "
            + "first_seen = CASE WHEN excluded.first_seen < patterns.first_seen THEN excluded.first_seen ELSE patterns.first_seen END, "
            + "last_seen = CASE WHEN excluded.last_seen > patterns.last_seen THEN excluded.last_seen ELSE patterns.last_seen END, "
            + "events = patterns.events + excluded.events, updated_at = excluded.updated_at";

    /// <summary>Deletes the templates whose last event is past their index set's retention, and those of index sets gone.</summary>
    private void Prune(IReadOnlyList<string> names)
    {
        var retention = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (store.TryGet(name, out var set))
            {
                retention[name] = set.RetentionDays;
            }
        }
        using var connection = database.Connect();
        var stored = new List<string>();
        using (var list = connection.CreateCommand())
        {
            list.CommandText = "SELECT DISTINCT index_set FROM patterns";
            using var reader = list.ExecuteReader();
            while (reader.Read())
            {
                stored.Add(reader.GetString(0));
            }
        }
        var now = time.GetUtcNow();
        foreach (var indexSet in stored)
        {
            using var delete = connection.CreateCommand();
            if (retention.TryGetValue(indexSet, out var days))
            {
                delete.CommandText = "DELETE FROM patterns WHERE index_set = @set AND last_seen < @cutoff";
                delete.Add("@cutoff", now.UtcTicks - days * TimeSpan.TicksPerDay);
            }
            else if (store.Unreachable is null)
            {
                // Not listed here: deleted (by a node that could not delete its templates), or made by another node a
                // moment ago and not read here yet. Only rows no process has added to for a day go.
                delete.CommandText = "DELETE FROM patterns WHERE index_set = @set AND updated_at < @cutoff";
                delete.Add("@cutoff", (now - TimeSpan.FromDays(1)).ToUnixTimeMilliseconds());
            }
            else
            {
                continue;
            }
            delete.Add("@set", indexSet);
            delete.ExecuteNonQuery();
        }
    }

    /// <summary>Deletes the templates of an index set (deleted): one of the same name made later starts with none.</summary>
    public void Forget(string indexSet)
    {
        lock (_followed)
        {
            _followed.Remove(indexSet);
            using var connection = database.Connect();
            using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM patterns WHERE index_set = @set";
            command.Add("@set", indexSet);
            command.ExecuteNonQuery();
        }
    }

    /// <summary>The templates stored for an index set, most recently seen first.</summary>
    public IReadOnlyList<StoredPattern> List(string indexSet, int limit)
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, template, first_seen, last_seen, events, examples FROM patterns WHERE index_set = @set ORDER BY last_seen DESC, id LIMIT @limit";
        command.Add("@set", indexSet);
        command.Add("@limit", (long)limit);
        using var reader = command.ExecuteReader();
        var patterns = new List<StoredPattern>();
        while (reader.Read())
        {
            patterns.Add(new StoredPattern(reader.GetString(0), reader.GetString(1), new DateTimeOffset(reader.GetInt64(2), TimeSpan.Zero),
                new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero), reader.GetInt64(4), Examples(reader.GetString(5))));
        }
        return patterns;
    }

    private static List<string> Examples(string json) => JsonSerializer.Deserialize<List<string>>(json) ?? [];
}
