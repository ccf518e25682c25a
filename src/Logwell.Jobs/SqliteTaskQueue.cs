using Microsoft.Data.Sqlite;

namespace Logwell.Jobs;

/// <summary>
/// The embedded task queue: one SQLite file (write-ahead journal, full sync) that every process of a node opens. Each
/// change is one immediate transaction, so processes take turns and a task is leased to one worker at a time; an
/// acknowledged enqueue or completion is on disk before the call returns.
/// </summary>
public sealed class SqliteTaskQueue : ITaskQueue
{
    private static readonly TimeSpan RetryBase = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RetryCap = TimeSpan.FromMinutes(10);

    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly Random _random = new();
    private readonly TimeSpan _retryBase;

    /// <param name="retryBase">The first retry's bound (tests shorten it); later ones double up to 10 minutes.</param>
    public SqliteTaskQueue(string path, TimeProvider time, TimeSpan? retryBase = null)
    {
        _connectionString = SqliteFiles.ConnectionString(path);
        _time = time;
        _retryBase = retryBase ?? RetryBase;
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS tasks (
                id INTEGER PRIMARY KEY,
                queue TEXT NOT NULL,
                name TEXT NOT NULL,
                args TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
                run_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                max_retries INTEGER NOT NULL,
                soft_ms INTEGER,
                hard_ms INTEGER,
                unique_key TEXT,
                lease_owner TEXT,
                lease_until INTEGER,
                lease_token INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                enqueued_at INTEGER NOT NULL,
                finished_at INTEGER
            );
            CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (queue, state, run_at);
            CREATE INDEX IF NOT EXISTS tasks_unique ON tasks (unique_key) WHERE unique_key IS NOT NULL;
            CREATE TABLE IF NOT EXISTS leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                token INTEGER NOT NULL,
                until INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS schedule_slots (
                entry TEXT PRIMARY KEY,
                slot INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS rate_limits (
                name TEXT PRIMARY KEY,
                per_second INTEGER NOT NULL,
                second INTEGER NOT NULL DEFAULT 0,
                used INTEGER NOT NULL DEFAULT 0
            );
            """;
        command.ExecuteNonQuery();
    }

    // Every acknowledged change survives a power loss.
    private SqliteConnection Open() => SqliteFiles.Open(_connectionString, fullSync: true);

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public Task<long> EnqueueAsync(TaskRequest request, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        Validate(request);
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        var id = Enqueue(connection, request);
        transaction.Commit();
        return id;
    }, cancellationToken);

    private static void Validate(TaskRequest request)
    {
        ArgumentException.ThrowIfNullOrEmpty(request.Name);
        ArgumentException.ThrowIfNullOrEmpty(request.Queue);
        ArgumentOutOfRangeException.ThrowIfNegative(request.MaxRetries);
    }

    /// <summary>Inserts the task inside the caller's transaction (or finds the pending one with its unique key).</summary>
    private long Enqueue(SqliteConnection connection, TaskRequest request)
    {
        if (request.UniqueKey is not null)
        {
            using var find = connection.CreateCommand();
            find.CommandText = "SELECT id FROM tasks WHERE unique_key = $key AND state IN ('pending', 'running') LIMIT 1";
            find.Parameters.AddWithValue("$key", request.UniqueKey);
            if (find.ExecuteScalar() is long existing)
            {
                return existing;
            }
        }
        using var insert = connection.CreateCommand();
        insert.CommandText = """
            INSERT INTO tasks (queue, name, args, state, run_at, max_retries, soft_ms, hard_ms, unique_key, enqueued_at)
            VALUES ($queue, $name, $args, 'pending', $runAt, $maxRetries, $soft, $hard, $key, $now)
            RETURNING id
            """;
        var now = Now;
        insert.Parameters.AddWithValue("$queue", request.Queue);
        insert.Parameters.AddWithValue("$name", request.Name);
        insert.Parameters.AddWithValue("$args", request.Arguments);
        insert.Parameters.AddWithValue("$runAt", request.RunAt?.ToUnixTimeMilliseconds() ?? now);
        insert.Parameters.AddWithValue("$maxRetries", request.MaxRetries);
        insert.Parameters.AddWithValue("$soft", (object?)(long?)request.SoftTimeLimit?.TotalMilliseconds ?? DBNull.Value);
        insert.Parameters.AddWithValue("$hard", (object?)(long?)request.HardTimeLimit?.TotalMilliseconds ?? DBNull.Value);
        insert.Parameters.AddWithValue("$key", (object?)request.UniqueKey ?? DBNull.Value);
        insert.Parameters.AddWithValue("$now", now);
        return (long)insert.ExecuteScalar()!;
    }

    public Task<IReadOnlyList<LeasedTask>> LeaseAsync(IReadOnlyList<string> queues, string owner, int max, TimeSpan lease, CancellationToken cancellationToken = default) => Task.Run<IReadOnlyList<LeasedTask>>(() =>
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (queues.Count == 0)
        {
            return [];
        }
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        var now = Now;
        var queueList = string.Join(", ", queues.Select((_, i) => $"$q{i}"));
        // A task whose worker died more often than it may fail is dead, not handed out again.
        using (var bury = connection.CreateCommand())
        {
            bury.CommandText = $"""
                UPDATE tasks SET state = 'dead', finished_at = $now, lease_owner = NULL, lease_until = NULL,
                    last_error = 'its worker stopped renewing the lease ' || attempts || ' times (the worker died or hung)'
                WHERE queue IN ({queueList}) AND state = 'running' AND lease_until < $now AND attempts > max_retries
                """;
            AddQueues(bury, queues);
            bury.Parameters.AddWithValue("$now", now);
            bury.ExecuteNonQuery();
        }
        // Rate limits hold across every worker: each name's starts this second are counted in the same transaction.
        bool limited;
        using (var limits = connection.CreateCommand())
        {
            limits.CommandText = "UPDATE rate_limits SET second = $second, used = 0 WHERE second <> $second; SELECT EXISTS (SELECT 1 FROM rate_limits)";
            limits.Parameters.AddWithValue("$second", now / 1000);
            limited = (long)limits.ExecuteScalar()! != 0;
        }
        const string ready = "((t.state = 'pending' AND t.run_at <= $now) OR (t.state = 'running' AND t.lease_until < $now))";
        var candidates = limited
            ? $"""
                SELECT id FROM (
                    SELECT t.id, t.run_at, r.per_second - r.used AS room,
                           ROW_NUMBER() OVER (PARTITION BY t.name ORDER BY t.run_at, t.id) AS rank
                    FROM tasks t LEFT JOIN rate_limits r ON r.name = t.name
                    WHERE t.queue IN ({queueList}) AND {ready})
                WHERE room IS NULL OR rank <= room
                ORDER BY run_at, id LIMIT $max
                """
            : $"SELECT t.id FROM tasks t WHERE t.queue IN ({queueList}) AND {ready} ORDER BY t.run_at, t.id LIMIT $max";
        using var take = connection.CreateCommand();
        take.CommandText = $"""
            UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = $owner, lease_until = $until,
                lease_token = lease_token + 1
            WHERE id IN ({candidates})
            RETURNING id, queue, name, args, attempts, max_retries, lease_token, soft_ms, hard_ms
            """;
        AddQueues(take, queues);
        take.Parameters.AddWithValue("$owner", owner);
        take.Parameters.AddWithValue("$until", now + (long)lease.TotalMilliseconds);
        take.Parameters.AddWithValue("$now", now);
        take.Parameters.AddWithValue("$max", max);
        var leased = new List<LeasedTask>();
        using (var reader = take.ExecuteReader())
        {
            while (reader.Read())
            {
                leased.Add(new LeasedTask(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4), reader.GetInt32(5), reader.GetInt64(6),
                    reader.IsDBNull(7) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(7)),
                    reader.IsDBNull(8) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(8))));
            }
        }
        if (limited)
        {
            foreach (var group in leased.GroupBy(t => t.Name))
            {
                using var count = connection.CreateCommand();
                count.CommandText = "UPDATE rate_limits SET used = used + $n WHERE name = $name";
                count.Parameters.AddWithValue("$n", group.Count());
                count.Parameters.AddWithValue("$name", group.Key);
                count.ExecuteNonQuery();
            }
        }
        transaction.Commit();
        return [.. leased.OrderBy(t => t.Id)];
    }, cancellationToken);

    private static void AddQueues(SqliteCommand command, IReadOnlyList<string> queues)
    {
        for (var i = 0; i < queues.Count; i++)
        {
            command.Parameters.AddWithValue($"$q{i}", queues[i]);
        }
    }

    public Task<bool> RenewAsync(LeasedTask task, TimeSpan lease, CancellationToken cancellationToken = default) =>
        ChangeAsync(task, "lease_until = $until", command => command.Parameters.AddWithValue("$until", Now + (long)lease.TotalMilliseconds), cancellationToken);

    public Task<bool> CompleteAsync(LeasedTask task, CancellationToken cancellationToken = default) =>
        ChangeAsync(task, "state = 'done', finished_at = $now, lease_owner = NULL, lease_until = NULL", command => command.Parameters.AddWithValue("$now", Now), cancellationToken);

    public Task<bool> ReleaseAsync(LeasedTask task, CancellationToken cancellationToken = default) =>
        ChangeAsync(task, "state = 'pending', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL", _ => { }, cancellationToken);

    public Task<bool> FailAsync(LeasedTask task, string error, CancellationToken cancellationToken = default)
    {
        var now = Now;
        if (task.Attempt > task.MaxRetries)
        {
            return ChangeAsync(task, "state = 'dead', finished_at = $now, last_error = $error, lease_owner = NULL, lease_until = NULL", command =>
            {
                command.Parameters.AddWithValue("$now", now);
                command.Parameters.AddWithValue("$error", error);
            }, cancellationToken);
        }
        var delay = Backoff.Delay(task.Attempt, _retryBase, RetryCap, _random);
        return ChangeAsync(task, "state = 'pending', run_at = $runAt, last_error = $error, lease_owner = NULL, lease_until = NULL", command =>
        {
            command.Parameters.AddWithValue("$runAt", now + (long)delay.TotalMilliseconds);
            command.Parameters.AddWithValue("$error", error);
        }, cancellationToken);
    }

    /// <summary>One update of a leased task, fenced by its token: nothing happens once the lease passed to another.</summary>
    private Task<bool> ChangeAsync(LeasedTask task, string set, Action<SqliteCommand> parameters, CancellationToken cancellationToken) => Task.Run(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE tasks SET {set} WHERE id = $id AND lease_token = $token AND state = 'running'";
        command.Parameters.AddWithValue("$id", task.Id);
        command.Parameters.AddWithValue("$token", task.Token);
        parameters(command);
        return command.ExecuteNonQuery() == 1;
    }, cancellationToken);

    public Task<IReadOnlyList<QueueStats>> StatsAsync(CancellationToken cancellationToken = default) => Task.Run<IReadOnlyList<QueueStats>>(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT queue,
                   SUM(state = 'pending' AND run_at <= $now),
                   SUM(state = 'pending' AND run_at > $now),
                   SUM(state = 'running'),
                   SUM(state = 'pending' AND attempts > 0),
                   SUM(state = 'dead'),
                   SUM(state = 'done'),
                   MIN(CASE WHEN state = 'pending' AND run_at <= $now THEN run_at END),
                   SUM(state = 'done' AND finished_at >= $now - 60000)
            FROM tasks GROUP BY queue ORDER BY queue
            """;
        var now = Now;
        command.Parameters.AddWithValue("$now", now);
        var stats = new List<QueueStats>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            stats.Add(new QueueStats(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6),
                reader.IsDBNull(7) ? null : TimeSpan.FromMilliseconds(Math.Max(0, now - reader.GetInt64(7))), reader.GetInt64(8)));
        }
        return stats;
    }, cancellationToken);

    public Task SetRateLimitAsync(string name, int? perSecond, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        if (perSecond is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(perSecond), "a rate limit is at least one task per second");
        }
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = perSecond is null
            ? "DELETE FROM rate_limits WHERE name = $name"
            : "INSERT INTO rate_limits (name, per_second) VALUES ($name, $rate) ON CONFLICT (name) DO UPDATE SET per_second = $rate";
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$rate", (object?)perSecond ?? DBNull.Value);
        command.ExecuteNonQuery();
    }, cancellationToken);

    public Task<long> RetryDeadAsync(string queue, CancellationToken cancellationToken = default) =>
        ExecuteAsync("UPDATE tasks SET state = 'pending', attempts = 0, run_at = $now, finished_at = NULL WHERE queue = $queue AND state = 'dead'", queue, cancellationToken);

    public Task<long> PurgeDeadAsync(string queue, CancellationToken cancellationToken = default) =>
        ExecuteAsync("DELETE FROM tasks WHERE queue = $queue AND state = 'dead'", queue, cancellationToken);

    private Task<long> ExecuteAsync(string sql, string queue, CancellationToken cancellationToken) => Task.Run(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$queue", queue);
        if (sql.Contains("$now", StringComparison.Ordinal))
        {
            command.Parameters.AddWithValue("$now", Now);
        }
        return (long)command.ExecuteNonQuery();
    }, cancellationToken);

    public Task<long> RecoverExpiredAsync(CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        var now = Now;
        command.CommandText = """
            UPDATE tasks SET state = 'dead', finished_at = $now, lease_owner = NULL, lease_until = NULL,
                last_error = 'its worker stopped renewing the lease ' || attempts || ' times (the worker died or hung)'
            WHERE state = 'running' AND lease_until < $now AND attempts > max_retries;
            UPDATE tasks SET state = 'pending', lease_owner = NULL, lease_until = NULL,
                last_error = 'its worker stopped renewing the lease (the worker died or hung)'
            WHERE state = 'running' AND lease_until < $now;
            """;
        command.Parameters.AddWithValue("$now", now);
        var changed = (long)command.ExecuteNonQuery();
        transaction.Commit();
        return changed;
    }, cancellationToken);

    public Task<long> PurgeDoneAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM tasks WHERE state = 'done' AND finished_at < $before";
        command.Parameters.AddWithValue("$before", finishedBefore.ToUnixTimeMilliseconds());
        return (long)command.ExecuteNonQuery();
    }, cancellationToken);

    public Task<long?> HoldLeaseAsync(string name, string holder, TimeSpan duration, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        var now = Now;
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT holder, token, until FROM leases WHERE name = $name";
        read.Parameters.AddWithValue("$name", name);
        long token;
        using (var reader = read.ExecuteReader())
        {
            if (!reader.Read())
            {
                token = 1;
            }
            else if (reader.GetString(0) == holder && reader.GetInt64(2) >= now)
            {
                token = reader.GetInt64(1);
            }
            else if (reader.GetInt64(2) < now)
            {
                // Expired: a new holding, with a token no earlier holder has.
                token = reader.GetInt64(1) + 1;
            }
            else
            {
                return (long?)null;
            }
        }
        using var write = connection.CreateCommand();
        write.CommandText = """
            INSERT INTO leases (name, holder, token, until) VALUES ($name, $holder, $token, $until)
            ON CONFLICT (name) DO UPDATE SET holder = $holder, token = $token, until = $until
            """;
        write.Parameters.AddWithValue("$name", name);
        write.Parameters.AddWithValue("$holder", holder);
        write.Parameters.AddWithValue("$token", token);
        write.Parameters.AddWithValue("$until", now + (long)duration.TotalMilliseconds);
        write.ExecuteNonQuery();
        transaction.Commit();
        return token;
    }, cancellationToken);

    public Task<bool> ReleaseLeaseAsync(string name, string holder, long token, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        // Expire it now, keeping the token so the next holder's is higher.
        command.CommandText = "UPDATE leases SET until = $now - 1 WHERE name = $name AND holder = $holder AND token = $token";
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$holder", holder);
        command.Parameters.AddWithValue("$token", token);
        command.Parameters.AddWithValue("$now", Now);
        return command.ExecuteNonQuery() == 1;
    }, cancellationToken);

    public Task<LeaseHolder?> LeaseHolderAsync(string name, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT holder, token, until FROM leases WHERE name = $name AND until >= $now";
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$now", Now);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new LeaseHolder(reader.GetString(0), reader.GetInt64(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2))) : null;
    }, cancellationToken);

    public Task<DateTimeOffset?> LastSlotAsync(string entry, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT slot FROM schedule_slots WHERE entry = $entry";
        command.Parameters.AddWithValue("$entry", entry);
        return command.ExecuteScalar() is long slot ? DateTimeOffset.FromUnixTimeMilliseconds(slot) : (DateTimeOffset?)null;
    }, cancellationToken);

    public Task<bool> IssueSlotAsync(ScheduledSlot slot, TaskRequest? request, CancellationToken cancellationToken = default) => Task.Run(() =>
    {
        if (request is not null)
        {
            Validate(request);
        }
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        using var check = connection.CreateCommand();
        // Fenced: only the current holder of the lease, within its time, and each slot of an entry once.
        check.CommandText = """
            SELECT (SELECT COUNT(*) FROM leases WHERE name = $lease AND holder = $holder AND token = $token AND until >= $now)
                 + (SELECT COUNT(*) FROM schedule_slots WHERE entry = $entry AND slot >= $slot) * 2
            """;
        check.Parameters.AddWithValue("$lease", slot.Lease);
        check.Parameters.AddWithValue("$holder", slot.Holder);
        check.Parameters.AddWithValue("$token", slot.Token);
        check.Parameters.AddWithValue("$now", Now);
        check.Parameters.AddWithValue("$entry", slot.Entry);
        check.Parameters.AddWithValue("$slot", slot.Slot.ToUnixTimeMilliseconds());
        if ((long)check.ExecuteScalar()! != 1)
        {
            return false;
        }
        using var record = connection.CreateCommand();
        record.CommandText = "INSERT INTO schedule_slots (entry, slot) VALUES ($entry, $slot) ON CONFLICT (entry) DO UPDATE SET slot = $slot";
        record.Parameters.AddWithValue("$entry", slot.Entry);
        record.Parameters.AddWithValue("$slot", slot.Slot.ToUnixTimeMilliseconds());
        record.ExecuteNonQuery();
        if (request is not null)
        {
            Enqueue(connection, request);
        }
        transaction.Commit();
        return true;
    }, cancellationToken);

    public Task<(string State, int Attempts, string? LastError)?> InspectAsync(long id, CancellationToken cancellationToken = default) => Task.Run<(string, int, string?)?>(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT state, attempts, last_error FROM tasks WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetString(0), reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2)) : null;
    }, cancellationToken);

    public Task<(string Name, string Arguments)?> DescribeAsync(long id, CancellationToken cancellationToken = default) => Task.Run<(string, string)?>(() =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, args FROM tasks WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetString(0), reader.GetString(1)) : null;
    }, cancellationToken);

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}
