using System.Security.Cryptography;
using Logwell.Server.Hosting;
using System.Data.Common;

namespace Logwell.Server.Exports;

/// <summary>The states of an export, in order; <c>done</c>, <c>failed</c> and <c>expired</c> are final.</summary>
public static class ExportState
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Packaging = "packaging";
    public const string Done = "done";
    public const string Failed = "failed";
    public const string Expired = "expired";

    public static bool IsActive(string state) => state is Queued or Running or Packaging;
}

/// <summary>One export: what it selects, who asked, how far it got, where its file is.</summary>
public sealed record ExportRecord(
    string Id,
    string Owner,
    string IndexSet,
    string Query,
    long? From,
    long? To,
    IReadOnlyList<string> Fields,
    string Format,
    bool DefaultOr,
    long MaxEvents,
    string State,
    long EventsWritten,
    long? EventsTotal,
    bool Truncated,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset? FinishedAt,
    DateTimeOffset? ExpiresAt,
    long? FileBytes,
    long? TaskId)
{
    /// <summary>Written events as a share of the events to write (0 to 100); null before the total is known.</summary>
    public double? Percent => EventsTotal is { } total
        ? total == 0 ? 100 : Math.Round(100.0 * EventsWritten / Math.Min(total, MaxEvents), 1)
        : null;

    public string FileName => $"{Id}.{Format}.gz";

    /// <summary>
    /// The filters of the grants that let the owner export from the index set, any of which an exported event matches;
    /// null when a grant lets them export everything.
    /// </summary>
    public IReadOnlyList<string>? Restriction { get; init; }

    /// <summary>The owner lacked view_raw when they asked: the index set's masking rules apply to what is written.</summary>
    public bool Masked { get; init; }
}

/// <summary>Thrown when an owner already has as many exports running as allowed.</summary>
public sealed class ExportLimitException(string message) : Exception(message);

/// <summary>
/// Export records in the metadata database, shared by the API and the workers (of every node, on a server). Every
/// change is one transaction; the per-owner limit is checked in the transaction that creates.
/// </summary>
public sealed class ExportStore
{
    private readonly MetaDatabase _database;
    private readonly TimeProvider _time;

    /// <param name="filesDirectory">Where export files are written.</param>
    public ExportStore(MetaDatabase database, string filesDirectory, TimeProvider time)
    {
        FilesDirectory = filesDirectory;
        Directory.CreateDirectory(FilesDirectory);
        _database = database;
        _time = time;
    }

    /// <summary>The exports in the <c>meta.db</c> of <paramref name="dataDirectory"/>, their files in its <c>exports/</c>.</summary>
    public ExportStore(string dataDirectory, TimeProvider time)
        : this(MetaDatabase.Open(dataDirectory), Path.Combine(dataDirectory, "exports"), time)
    {
    }

    /// <summary>Where export files are written (<c>exports/</c> in the data directory).</summary>
    public string FilesDirectory { get; }

    public string FilePath(ExportRecord record) => Path.Combine(FilesDirectory, record.FileName);

    private DbConnection Open() => _database.Connect();

    /// <summary>The metadata file the records are in.</summary>
    public MetaDatabase Database => _database;

    /// <summary>The store's clock: what creation, finish and expiry times are read against.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();

    private long NowMs => Now.ToUnixTimeMilliseconds();

    /// <summary>A new queued export with a fresh id.</summary>
    /// <exception cref="ExportLimitException">The owner has <paramref name="maxActive"/> exports queued or running.</exception>
    /// <param name="maxEvents">The most events this export writes (the newest ones).</param>
    public ExportRecord Create(string owner, string indexSet, string query, long? from, long? to, IReadOnlyList<string> fields, string format, bool defaultOr, long maxEvents, int maxActive, IReadOnlyList<string>? restriction = null, bool masked = false)
    {
        using var connection = Open();
        using var transaction = _database.BeginWrite(connection);
        using (var count = connection.CreateCommand())
        {
            count.Transaction = transaction;
            count.CommandText = "SELECT COUNT(*) FROM exports WHERE owner = @owner AND state IN ('queued', 'running', 'packaging')";
            count.Add("@owner", owner);
            var active = count.ScalarLong();
            if (active >= maxActive)
            {
                throw new ExportLimitException($"'{owner}' already has {active} exports in progress (at most {maxActive}); wait for one to finish");
            }
        }
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO exports (id, owner, indexset, query, from_ticks, to_ticks, fields, format, default_or, max_events, state, created_at, restriction, masked)
            VALUES (@id, @owner, @indexset, @query, @from, @to, @fields, @format, @or, @max, 'queued', @now, @restriction, @masked)
            """;
        insert.Add("@id", id);
        insert.Add("@owner", owner);
        insert.Add("@indexset", indexSet);
        insert.Add("@query", query);
        insert.Add("@from", (object?)from ?? DBNull.Value);
        insert.Add("@to", (object?)to ?? DBNull.Value);
        insert.Add("@fields", string.Join('\n', fields));
        insert.Add("@format", format);
        insert.Add("@or", defaultOr ? 1 : 0);
        insert.Add("@max", maxEvents);
        insert.Add("@masked", masked ? 1 : 0);
        insert.Add("@restriction", restriction is null ? DBNull.Value : System.Text.Json.JsonSerializer.Serialize(restriction));
        insert.Add("@now", NowMs);
        insert.ExecuteNonQuery();
        transaction.Commit();
        return Get(id)!;
    }

    public ExportRecord? Get(string id)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT * FROM exports WHERE id = @id";
        command.Add("@id", id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? Read(reader) : null;
    }

    /// <summary>The newest exports first (of one owner, or of everyone).</summary>
    public IReadOnlyList<ExportRecord> List(string? owner, int limit = 100)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = owner is null
            ? "SELECT * FROM exports ORDER BY created_at DESC, id LIMIT @limit"
            : "SELECT * FROM exports WHERE owner = @owner ORDER BY created_at DESC, id LIMIT @limit";
        command.Add("@owner", (object?)owner ?? DBNull.Value);
        command.Add("@limit", limit);
        var records = new List<ExportRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            records.Add(Read(reader));
        }
        return records;
    }

    /// <summary>The export starts (again): nothing written yet. False when it is no longer queued or running.</summary>
    public bool Start(string id)
    {
        // The state is read, not taken from the update's count: MariaDB counts only rows an update changed, and a start
        // again after a worker died before its first progress changes nothing.
        using var connection = Open();
        using var transaction = _database.BeginWrite(connection);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT state FROM exports WHERE id = @id";
        command.Add("@id", id);
        if (command.ExecuteScalar() is not string state || !ExportState.IsActive(state))
        {
            return false;
        }
        command.CommandText = "UPDATE exports SET state = 'running', events_written = 0, events_total = NULL, truncated = 0, error = NULL WHERE id = @id AND state IN ('queued', 'running', 'packaging')";
        command.ExecuteNonQuery();
        transaction.Commit();
        return true;
    }

    public void Progress(string id, long written, long? total, bool truncated) => Execute(
        "UPDATE exports SET events_written = @written, events_total = COALESCE(@total, events_total), truncated = @truncated WHERE id = @id AND state = 'running'",
        id, ("@written", written), ("@total", (object?)total ?? DBNull.Value), ("@truncated", truncated ? 1 : 0));

    public void Packaging(string id) => Execute("UPDATE exports SET state = 'packaging' WHERE id = @id AND state = 'running'", id);

    public void Done(string id, long fileBytes, TimeSpan validFor)
    {
        var now = NowMs;
        Execute("UPDATE exports SET state = 'done', finished_at = @now, expires_at = @expires, file_bytes = @bytes WHERE id = @id AND state = 'packaging'",
            id, ("@now", now), ("@expires", now + (long)validFor.TotalMilliseconds), ("@bytes", fileBytes));
    }

    /// <summary>The export failed for good (its task used up its retries), or is queued again after an error.</summary>
    public void Failed(string id, string error, bool final) => Execute(
        final
            ? "UPDATE exports SET state = 'failed', error = @error, finished_at = @now WHERE id = @id AND state IN ('queued', 'running', 'packaging')"
            : "UPDATE exports SET state = 'queued', error = @error WHERE id = @id AND state IN ('queued', 'running', 'packaging')",
        id, ("@error", error), ("@now", NowMs));

    /// <summary>Done exports past their download time become expired; their ids.</summary>
    public IReadOnlyList<string> ExpireDownloads()
    {
        // Each expiry is its own conditional update: of two nodes expiring at once, the one whose update changed the
        // row has the id (MariaDB has no UPDATE ... RETURNING).
        var expired = new List<string>();
        foreach (var record in Select("state = 'done' AND expires_at < @before", Now))
        {
            if (Execute("UPDATE exports SET state = 'expired' WHERE id = @id AND state = 'done'", record.Id) == 1)
            {
                expired.Add(record.Id);
            }
        }
        return expired;
    }

    /// <summary>Finished exports (done, failed or expired) that finished before this time.</summary>
    public IReadOnlyList<ExportRecord> FinishedBefore(DateTimeOffset before) =>
        Select("state IN ('done', 'failed', 'expired') AND finished_at < @before", before);

    /// <summary>The records matching a condition on <c>@before</c> (milliseconds since the epoch).</summary>
    private List<ExportRecord> Select(string condition, DateTimeOffset before)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT * FROM exports WHERE {condition}";
        command.Add("@before", before.ToUnixTimeMilliseconds());
        var records = new List<ExportRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            records.Add(Read(reader));
        }
        return records;
    }

    public void Delete(string id) => Execute("DELETE FROM exports WHERE id = @id", id);

    /// <summary>How many exports are queued, running or packaging (it also shows the file answers).</summary>
    public long CountActive()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM exports WHERE state IN ('queued', 'running', 'packaging')";
        return command.ScalarLong();
    }

    /// <summary>Records the task that writes the export.</summary>
    public void SetTask(string id, long taskId) => Execute("UPDATE exports SET task_id = @task WHERE id = @id", id, ("@task", taskId));

    /// <summary>Exports still queued, running or packaging that were created before this time.</summary>
    public IReadOnlyList<ExportRecord> ActiveCreatedBefore(DateTimeOffset before) =>
        Select("state IN ('queued', 'running', 'packaging') AND created_at < @before", before);

    private int Execute(string sql, string id, params (string Name, object Value)[] parameters)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Add("@id", id);
        foreach (var (name, value) in parameters)
        {
            command.Add(name, value);
        }
        if (sql.Contains("@now", StringComparison.Ordinal) && !command.Parameters.Contains("@now"))
        {
            command.Add("@now", NowMs);
        }
        return command.ExecuteNonQuery();
    }

    private static ExportRecord Read(DbDataReader r)
    {
        long? Long(string column) => r.IsDBNull(r.GetOrdinal(column)) ? null : r.GetInt64(r.GetOrdinal(column));
        DateTimeOffset? Time(string column) => Long(column) is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
        var fields = r.GetString(r.GetOrdinal("fields"));
        return new ExportRecord(
            r.GetString(r.GetOrdinal("id")),
            r.GetString(r.GetOrdinal("owner")),
            r.GetString(r.GetOrdinal("indexset")),
            r.GetString(r.GetOrdinal("query")),
            Long("from_ticks"),
            Long("to_ticks"),
            fields.Length == 0 ? [] : fields.Split('\n'),
            r.GetString(r.GetOrdinal("format")),
            r.GetInt64(r.GetOrdinal("default_or")) != 0,
            r.GetInt64(r.GetOrdinal("max_events")),
            r.GetString(r.GetOrdinal("state")),
            r.GetInt64(r.GetOrdinal("events_written")),
            Long("events_total"),
            r.GetInt64(r.GetOrdinal("truncated")) != 0,
            r.IsDBNull(r.GetOrdinal("error")) ? null : r.GetString(r.GetOrdinal("error")),
            Time("created_at")!.Value,
            Time("finished_at"),
            Time("expires_at"),
            Long("file_bytes"),
            Long("task_id"))
        {
            Restriction = r.IsDBNull(r.GetOrdinal("restriction")) ? null : System.Text.Json.JsonSerializer.Deserialize<string[]>(r.GetString(r.GetOrdinal("restriction"))),
            Masked = r.GetInt64(r.GetOrdinal("masked")) != 0,
        };
    }
}
