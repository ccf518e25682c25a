using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Logwell.Bench.Systems;

/// <summary>
/// SQLite with FTS5, the embedded full-text peer: a table of events with indexes on the fields users filter by, and an
/// FTS5 index over the message and trace id (external content, so text is stored once). Durable commits (WAL mode,
/// synchronous=FULL), 10,000 events a transaction.
/// </summary>
internal sealed class SqliteFtsSystem : IBenchSystem
{
    private readonly SqliteConnection _connection;

    public SqliteFtsSystem(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        _connection = new SqliteConnection($"Data Source={Path.Combine(dataDirectory, "logs.db")}");
        _connection.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-262144;");
        Execute("""
            CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, host TEXT, level TEXT, service TEXT, trace_id TEXT, message TEXT);
            CREATE INDEX IF NOT EXISTS events_t ON events(t);
            CREATE INDEX IF NOT EXISTS events_level ON events(level);
            CREATE INDEX IF NOT EXISTS events_host ON events(host);
            CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(message, trace_id, content='events', content_rowid='id');
            """);
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public Task IngestAsync(Corpus corpus)
    {
        using var insert = _connection.CreateCommand();
        insert.CommandText = "INSERT INTO events(id, t, host, level, service, trace_id, message) VALUES ($id, $t, $host, $level, $service, $trace, $message)";
        var parameters = new[] { "$id", "$t", "$host", "$level", "$service", "$trace", "$message" }.Select(n => insert.Parameters.Add(n, SqliteType.Text)).ToArray();
        parameters[0].SqliteType = SqliteType.Integer;
        parameters[1].SqliteType = SqliteType.Integer;
        using var index = _connection.CreateCommand();
        index.CommandText = "INSERT INTO fts(rowid, message, trace_id) VALUES ($id, $message, $trace)";
        var indexId = index.Parameters.Add("$id", SqliteType.Integer);
        var indexMessage = index.Parameters.Add("$message", SqliteType.Text);
        var indexTrace = index.Parameters.Add("$trace", SqliteType.Text);

        long id = 0;
        SqliteTransaction? transaction = null;
        foreach (var line in CorpusReader.Lines(corpus.Path))
        {
            if (id % 10_000 == 0)
            {
                transaction?.Commit();
                transaction?.Dispose();
                transaction = _connection.BeginTransaction();
                insert.Transaction = transaction;
                index.Transaction = transaction;
            }
            id++;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var message = root.GetProperty("message").GetString();
            var trace = root.GetProperty("trace_id").GetString();
            parameters[0].Value = id;
            parameters[1].Value = DateTimeOffset.Parse(root.GetProperty("t").GetString()!, CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();
            parameters[2].Value = root.GetProperty("host").GetString();
            parameters[3].Value = root.GetProperty("level").GetString();
            parameters[4].Value = root.GetProperty("service").GetString();
            parameters[5].Value = trace;
            parameters[6].Value = message;
            insert.ExecuteNonQuery();
            indexId.Value = id;
            indexMessage.Value = message;
            indexTrace.Value = trace;
            index.ExecuteNonQuery();
        }
        transaction?.Commit();
        transaction?.Dispose();
        Execute("PRAGMA wal_checkpoint(TRUNCATE);");
        return Task.CompletedTask;
    }

    public Task<long?> QueryAsync(string name, QueryParameters p)
    {
        var from = new DateTimeOffset(p.NarrowFrom).ToUnixTimeMilliseconds();
        var to = new DateTimeOffset(p.NarrowTo).ToUnixTimeMilliseconds();
        long? result = name switch
        {
            "needle" => Scalar("SELECT count(*) FROM fts WHERE fts MATCH $q", ("$q", $"\"{p.Needle}\"")),
            "phrase" => Scalar("SELECT count(*) FROM fts WHERE fts MATCH $q", ("$q", $"message : \"{p.PhraseText}\"")),
            "and_terms" => Scalar("SELECT count(*) FROM fts WHERE fts MATCH $q", ("$q", $"message : ({p.AndTerms[0]} AND {p.AndTerms[1]})")),
            "field_eq" => Scalar("SELECT count(*) FROM events WHERE level = $v", ("$v", p.Level)),
            "wildcard" => Scalar("SELECT count(*) FROM events WHERE host GLOB $v", ("$v", p.HostPrefix + "*")),
            "narrow_time" => Scalar("SELECT count(*) FROM fts JOIN events ON events.id = fts.rowid WHERE fts MATCH $q AND events.t >= $a AND events.t < $b",
                ("$q", $"message : {p.NarrowTerm}"), ("$a", from), ("$b", to)),
            "count_by" => Scalar("SELECT sum(n) FROM (SELECT level, count(*) AS n FROM events GROUP BY level)"),
            "histogram" => Scalar("SELECT sum(n) FROM (SELECT t / $span AS bucket, count(*) AS n FROM events GROUP BY bucket)", ("$span", (long)p.HistogramSpan.TotalMilliseconds)),
            _ => null,
        };
        return Task.FromResult(result);
    }

    private long Scalar(string sql, params (string Name, object Value)[] parameters)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (parameterName, value) in parameters)
        {
            command.Parameters.AddWithValue(parameterName, value);
        }
        return Convert.ToInt64(command.ExecuteScalar() ?? 0L, CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}
