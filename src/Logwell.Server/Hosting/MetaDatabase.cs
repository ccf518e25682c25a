using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using Logwell.Jobs;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Logwell.Server.Hosting;

/// <summary>The database engines the metadata can live in.</summary>
public enum MetaDialect
{
    /// <summary><c>meta.db</c> in the data directory: one node, or the processes of one machine.</summary>
    Sqlite,

    /// <summary>A PostgreSQL database that every node of a cluster shares.</summary>
    PostgreSql,

    /// <summary>A MariaDB database that every node of a cluster shares.</summary>
    MariaDb,
}

/// <summary>
/// The metadata: saved searches, export records, users, keys, roles, grants, spaces, sessions and (on a server) the node
/// registry. One node keeps it in <c>meta.db</c> in its data directory; a cluster in one PostgreSQL or MariaDB database
/// that all its nodes share. The schema changes only through the numbered migrations below, the same numbers on every
/// engine, applied in order at start by whichever process gets there first while the others wait on a lock (SQLite's
/// write lock, PostgreSQL's advisory lock, MariaDB's <c>GET_LOCK</c>), and recorded (SQLite's <c>user_version</c>, the
/// <c>logwell_schema</c> table on a server), so that every process and every version of Logwell agrees on what the
/// database holds. A database written by a newer Logwell is refused rather than guessed at.
/// </summary>
/// <remarks>
/// Statements are written once for all three engines: named parameters as <c>@name</c>, and the few places where the
/// dialects part (an insert that may conflict, an upsert, transactions) go through <see cref="InsertOrIgnore"/>,
/// <see cref="Upsert"/>, <see cref="BeginWrite"/> and <see cref="BeginSnapshot"/>. On MariaDB every table compares
/// text byte for byte (<c>utf8mb4_bin</c>): names are case-sensitive there as on the other two.
/// </remarks>
public sealed class MetaDatabase
{
    /// <summary>
    /// One schema change: its number (1, 2, ...), what it is for, its SQL for SQLite, and its SQL for PostgreSQL and
    /// MariaDB, in which <c>{table}</c> stands for the table options, <c>{text}</c> for the long-text type and
    /// <c>{insert}</c> for an insert that a row already there leaves alone. Every server statement can run again (IF NOT
    /// EXISTS): a MariaDB migration cut off half-way, its DDL committed statement by statement, is run again whole.
    /// </summary>
    public sealed record Migration(int Version, string Purpose, string Sqlite, string Server);

    /// <summary>Every schema change, oldest first. Append only: a migration that has shipped is never edited.</summary>
    public static readonly IReadOnlyList<Migration> Migrations =
    [
        // The tables the saved-search and export stores created for themselves before migrations existed: a file of
        // that time has them already, hence IF NOT EXISTS.
        new(1, "saved searches and exports",
            """
            CREATE TABLE IF NOT EXISTS saved_searches (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                indexset TEXT NOT NULL,
                query TEXT NOT NULL,
                from_text TEXT,
                to_text TEXT,
                created_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS exports (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                indexset TEXT NOT NULL,
                query TEXT NOT NULL,
                from_ticks INTEGER,
                to_ticks INTEGER,
                fields TEXT NOT NULL,
                format TEXT NOT NULL,
                default_or INTEGER NOT NULL,
                max_events INTEGER NOT NULL,
                state TEXT NOT NULL,
                events_written INTEGER NOT NULL DEFAULT 0,
                events_total INTEGER,
                truncated INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                created_at INTEGER NOT NULL,
                finished_at INTEGER,
                expires_at INTEGER,
                file_bytes INTEGER,
                task_id INTEGER
            );
            CREATE INDEX IF NOT EXISTS exports_owner ON exports (owner, state);
            """,
            """
            CREATE TABLE IF NOT EXISTS saved_searches (
                id VARCHAR(64) PRIMARY KEY,
                name VARCHAR(200) NOT NULL UNIQUE,
                indexset VARCHAR(255) NOT NULL,
                query {text} NOT NULL,
                from_text {text},
                to_text {text},
                created_at BIGINT NOT NULL
            ){table};
            CREATE TABLE IF NOT EXISTS exports (
                id VARCHAR(64) PRIMARY KEY,
                owner VARCHAR(255) NOT NULL,
                indexset VARCHAR(255) NOT NULL,
                query {text} NOT NULL,
                from_ticks BIGINT,
                to_ticks BIGINT,
                fields {text} NOT NULL,
                format VARCHAR(32) NOT NULL,
                default_or BIGINT NOT NULL,
                max_events BIGINT NOT NULL,
                state VARCHAR(32) NOT NULL,
                events_written BIGINT NOT NULL DEFAULT 0,
                events_total BIGINT,
                truncated BIGINT NOT NULL DEFAULT 0,
                error {text},
                created_at BIGINT NOT NULL,
                finished_at BIGINT,
                expires_at BIGINT,
                file_bytes BIGINT,
                task_id BIGINT
            ){table};
            CREATE INDEX IF NOT EXISTS exports_owner ON exports (owner, state);
            """),
        new(2, "users, groups, roles, spaces, API keys and grants",
            """
            CREATE TABLE access_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
            INSERT INTO access_version (id, version) VALUES (1, 0);
            CREATE TABLE users (
                name TEXT PRIMARY KEY,
                password_hash TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                disabled INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE groups (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
            CREATE TABLE group_members (
                group_name TEXT NOT NULL,
                user_name TEXT NOT NULL,
                PRIMARY KEY (group_name, user_name)
            );
            CREATE TABLE roles (name TEXT PRIMARY KEY, actions TEXT NOT NULL, created_at INTEGER NOT NULL);
            CREATE TABLE spaces (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
            INSERT INTO spaces (name, created_at) VALUES ('default', 0);
            CREATE TABLE indexset_spaces (indexset TEXT PRIMARY KEY, space TEXT NOT NULL);
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                owner TEXT,
                secret_hash TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                expires_at INTEGER,
                revoked_at INTEGER
            );
            CREATE TABLE grants (
                id TEXT PRIMARY KEY,
                principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'group', 'key')),
                principal TEXT NOT NULL,
                role TEXT NOT NULL,
                scope_kind TEXT NOT NULL CHECK (scope_kind IN ('all', 'space', 'indexset')),
                scope_name TEXT,
                filter TEXT,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX grants_principal ON grants (principal_kind, principal);
            """,
            """
            CREATE TABLE IF NOT EXISTS access_version (id BIGINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL){table};
            {insert} INTO access_version (id, version) VALUES (1, 0);
            CREATE TABLE IF NOT EXISTS users (
                name VARCHAR(64) PRIMARY KEY,
                password_hash VARCHAR(255) NOT NULL,
                created_at BIGINT NOT NULL,
                disabled BIGINT NOT NULL DEFAULT 0
            ){table};
            CREATE TABLE IF NOT EXISTS groups (name VARCHAR(64) PRIMARY KEY, created_at BIGINT NOT NULL){table};
            CREATE TABLE IF NOT EXISTS group_members (
                group_name VARCHAR(64) NOT NULL,
                user_name VARCHAR(64) NOT NULL,
                PRIMARY KEY (group_name, user_name)
            ){table};
            CREATE TABLE IF NOT EXISTS roles (name VARCHAR(64) PRIMARY KEY, actions {text} NOT NULL, created_at BIGINT NOT NULL){table};
            CREATE TABLE IF NOT EXISTS spaces (name VARCHAR(64) PRIMARY KEY, created_at BIGINT NOT NULL){table};
            {insert} INTO spaces (name, created_at) VALUES ('default', 0);
            CREATE TABLE IF NOT EXISTS indexset_spaces (indexset VARCHAR(255) PRIMARY KEY, space VARCHAR(64) NOT NULL){table};
            CREATE TABLE IF NOT EXISTS api_keys (
                id VARCHAR(64) PRIMARY KEY,
                name VARCHAR(64) NOT NULL,
                owner VARCHAR(64),
                secret_hash VARCHAR(64) NOT NULL UNIQUE,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT
            ){table};
            CREATE TABLE IF NOT EXISTS grants (
                id VARCHAR(64) PRIMARY KEY,
                principal_kind VARCHAR(16) NOT NULL CHECK (principal_kind IN ('user', 'group', 'key')),
                principal VARCHAR(64) NOT NULL,
                role VARCHAR(64) NOT NULL,
                scope_kind VARCHAR(16) NOT NULL CHECK (scope_kind IN ('all', 'space', 'indexset')),
                scope_name VARCHAR(255),
                filter {text},
                created_at BIGINT NOT NULL
            ){table};
            CREATE INDEX IF NOT EXISTS grants_principal ON grants (principal_kind, principal);
            """),
        new(3, "the grant filters an export is restricted to",
            """
            ALTER TABLE exports ADD COLUMN restriction TEXT;
            """,
            """
            ALTER TABLE exports ADD COLUMN IF NOT EXISTS restriction {text};
            """),
        new(4, "masking rules read by viewers without view_raw",
            """
            CREATE TABLE masking_rules (indexset TEXT PRIMARY KEY, definition TEXT NOT NULL, updated_at INTEGER NOT NULL);
            ALTER TABLE exports ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
            """,
            """
            CREATE TABLE IF NOT EXISTS masking_rules (indexset VARCHAR(255) PRIMARY KEY, definition {text} NOT NULL, updated_at BIGINT NOT NULL){table};
            ALTER TABLE exports ADD COLUMN IF NOT EXISTS masked BIGINT NOT NULL DEFAULT 0;
            """),
        new(5, "personal API keys, which act as their owner (logwell login)",
            """
            ALTER TABLE api_keys ADD COLUMN as_owner INTEGER NOT NULL DEFAULT 0;
            """,
            """
            ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS as_owner BIGINT NOT NULL DEFAULT 0;
            """),
        new(6, "web UI sessions: the SHA-256 of each session cookie, its user and its times",
            """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                user_name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                seen_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
            );
            CREATE INDEX sessions_user ON sessions (user_name);
            """,
            """
            CREATE TABLE IF NOT EXISTS sessions (
                id VARCHAR(64) PRIMARY KEY,
                user_name VARCHAR(64) NOT NULL,
                created_at BIGINT NOT NULL,
                seen_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            ){table};
            CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_name);
            """),
        new(7, "the node registry (SQLite keeps it in RegistryFile, meta.db unless set, where NodeRegistry makes its table)",
            """
            -- nothing: NodeRegistry makes its table in the file RegistryFile names
            """,
            """
            CREATE TABLE IF NOT EXISTS nodes (
                id VARCHAR(255) PRIMARY KEY,
                address VARCHAR(255) NOT NULL,
                port BIGINT NOT NULL,
                role VARCHAR(32) NOT NULL,
                version VARCHAR(64) NOT NULL,
                tags {text} NOT NULL,
                registered_at BIGINT NOT NULL,
                heartbeat_at BIGINT NOT NULL,
                checks {text} NOT NULL
            ){table};
            """),
        new(8, "secrets every node shares: the key of the web UI's anti-forgery tokens",
            """
            CREATE TABLE shared_secrets (name TEXT PRIMARY KEY, secret TEXT NOT NULL);
            """,
            """
            CREATE TABLE IF NOT EXISTS shared_secrets (name VARCHAR(64) PRIMARY KEY, secret VARCHAR(255) NOT NULL){table};
            """),
        new(9, "collection configs (which files agents collect) and the agents that report to the node",
            """
            CREATE TABLE collection_configs (
                name TEXT PRIMARY KEY,
                input TEXT NOT NULL,
                hosts TEXT NOT NULL,
                tags TEXT NOT NULL,
                updated_at INTEGER NOT NULL
            );
            CREATE TABLE agents (
                name TEXT PRIMARY KEY,
                id TEXT NOT NULL,
                version TEXT NOT NULL,
                tags TEXT NOT NULL,
                address TEXT NOT NULL,
                first_seen INTEGER NOT NULL,
                last_seen INTEGER NOT NULL,
                health TEXT NOT NULL,
                config_version TEXT NOT NULL
            );
            """,
            """
            CREATE TABLE IF NOT EXISTS collection_configs (
                name VARCHAR(128) PRIMARY KEY,
                input {text} NOT NULL,
                hosts {text} NOT NULL,
                tags {text} NOT NULL,
                updated_at BIGINT NOT NULL
            ){table};
            CREATE TABLE IF NOT EXISTS agents (
                name VARCHAR(255) PRIMARY KEY,
                id VARCHAR(64) NOT NULL,
                version VARCHAR(64) NOT NULL,
                tags {text} NOT NULL,
                address VARCHAR(255) NOT NULL,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                health {text} NOT NULL,
                config_version VARCHAR(64) NOT NULL
            ){table};
            """),
        new(10, "log patterns: the templates ingest found per index set, when their events happened, and a few of their messages",
            """
            CREATE TABLE patterns (
                index_set TEXT NOT NULL,
                id TEXT NOT NULL,
                template TEXT NOT NULL,
                examples TEXT NOT NULL,
                first_seen INTEGER NOT NULL,
                last_seen INTEGER NOT NULL,
                events INTEGER NOT NULL,
                examples_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (index_set, id)
            );
            CREATE INDEX patterns_examples ON patterns (index_set, examples_at);
            """,
            """
            CREATE TABLE IF NOT EXISTS patterns (
                index_set VARCHAR(255) NOT NULL,
                id VARCHAR(16) NOT NULL,
                template {text} NOT NULL,
                examples {text} NOT NULL,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                events BIGINT NOT NULL,
                examples_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (index_set, id)
            ){table};
            CREATE INDEX IF NOT EXISTS patterns_examples ON patterns (index_set, examples_at);
            """),
    ];

    private static readonly ConcurrentDictionary<string, MetaDatabase> Opened = new(StringComparer.Ordinal);

    /// <summary>A number of Logwell's own for PostgreSQL's advisory lock that serializes migrations.</summary>
    private const long MigrationLock = 0x4c6f6777656c6c;

    private readonly string _connectionString;
    private readonly NpgsqlDataSource? _postgres;

    private MetaDatabase(MetaDialect dialect, string connectionString, string location)
    {
        Dialect = dialect;
        Location = location;
        _connectionString = connectionString;
        if (dialect == MetaDialect.PostgreSql)
        {
            _postgres = NpgsqlDataSource.Create(connectionString);
        }
    }

    public MetaDialect Dialect { get; }

    /// <summary>Where the metadata is, for messages: the file, or the server and database (no password).</summary>
    public string Location { get; }

    /// <summary>The SQLite file (<see cref="Location"/>).</summary>
    public string Path => Location;

    /// <summary>The metadata file of <paramref name="dataDirectory"/>, brought to the current schema (once per process).</summary>
    public static MetaDatabase Open(string dataDirectory)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetFullPath(dataDirectory), "meta.db");
        if (Opened.TryGetValue(path, out var opened) && File.Exists(path))
        {
            return opened;
        }
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        Logwell.Storage.Engine.LogEngine.JoinNode(dataDirectory);
        var database = new MetaDatabase(MetaDialect.Sqlite, SqliteFiles.ConnectionString(path), path);
        database.Migrate();
        Opened[path] = database;
        return database;
    }

    /// <summary>
    /// The metadata database on a server (<paramref name="dialect"/> PostgreSql or MariaDb, and its ADO.NET connection
    /// string), brought to the current schema (once per process).
    /// </summary>
    /// <exception cref="DbException">The server cannot be reached, or refuses.</exception>
    public static MetaDatabase Open(MetaDialect dialect, string connectionString)
    {
        var key = dialect + "\0" + connectionString;
        if (Opened.TryGetValue(key, out var opened))
        {
            return opened;
        }
        var database = dialect switch
        {
            MetaDialect.PostgreSql => new MetaDatabase(dialect, connectionString, DescribePostgres(connectionString)),
            MetaDialect.MariaDb => new MetaDatabase(dialect, MariaDbConnectionString(connectionString), DescribeMariaDb(connectionString)),
            _ => throw new ArgumentException("a server's dialect is PostgreSql or MariaDb", nameof(dialect)),
        };
        try
        {
            database.Migrate();
        }
        catch
        {
            // A start that waits for its server tries again with a new one: the failed one's pool goes now.
            database._postgres?.Dispose();
            throw;
        }
        var kept = Opened.GetOrAdd(key, database);
        if (!ReferenceEquals(kept, database))
        {
            database._postgres?.Dispose();
        }
        return kept;
    }

    /// <summary>
    /// The metadata database the settings name, brought to the current schema. A server that does not answer yet is
    /// tried again every second, each failure logged, for <c>MetadataConnectTimeoutSeconds</c>; then the reason is thrown.
    /// </summary>
    public static MetaDatabase Open(LogwellOptions options, TimeProvider time, Action<string>? log = null)
    {
        if (options.MetadataDialect == MetaDialect.Sqlite)
        {
            return Open(options.DataDirectory);
        }
        var location = options.MetadataDialect == MetaDialect.PostgreSql
            ? DescribePostgres(options.MetadataConnectionString)
            : DescribeMariaDb(options.MetadataConnectionString);
        var deadline = time.GetUtcNow() + TimeSpan.FromSeconds(options.MetadataConnectTimeoutSeconds);
        while (true)
        {
            try
            {
                return Open(options.MetadataDialect, options.MetadataConnectionString);
            }
            catch (DbException e) when (time.GetUtcNow() < deadline)
            {
                log?.Invoke($"the metadata database ({location}) does not answer: {e.Message}; trying again");
                Task.Delay(TimeSpan.FromSeconds(1), time).GetAwaiter().GetResult();
            }
            catch (DbException e)
            {
                throw new MetadataUnreachableException($"the metadata database ({location}) did not answer within {options.MetadataConnectTimeoutSeconds} s: {e.Message}", e);
            }
        }
    }

    /// <summary>What a connection string names, without its password: <c>PostgreSQL at host:port, database db</c>.</summary>
    public static string DescribePostgres(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"PostgreSQL at {builder.Host}:{builder.Port}, database {builder.Database ?? builder.Username}";
    }

    /// <inheritdoc cref="DescribePostgres"/>
    public static string DescribeMariaDb(string connectionString)
    {
        var builder = new MySqlConnectionStringBuilder(connectionString);
        return $"MariaDB at {builder.Server}:{builder.Port}, database {builder.Database}";
    }

    // Affected rows, not found rows: an insert that met its duplicate reports 0, as on the other engines.
    private static string MariaDbConnectionString(string connectionString) =>
        new MySqlConnectionStringBuilder(connectionString) { UseAffectedRows = true }.ConnectionString;

    /// <summary>An open connection; a commit is durable (on disk, or on the server) before it returns.</summary>
    public DbConnection Connect()
    {
        switch (Dialect)
        {
            case MetaDialect.Sqlite:
                return SqliteFiles.Open(_connectionString, fullSync: true);
            case MetaDialect.PostgreSql:
                return _postgres!.OpenConnection();
            default:
                var connection = new MySqlConnection(_connectionString);
                try
                {
                    connection.Open();
                    return connection;
                }
                catch
                {
                    connection.Dispose();
                    throw;
                }
        }
    }

    /// <summary>A transaction for a change: on SQLite it takes the write lock at once (BEGIN IMMEDIATE), so that a check and the write that depends on it see one state.</summary>
    public DbTransaction BeginWrite(DbConnection connection) =>
        connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : connection.BeginTransaction(IsolationLevel.ReadCommitted);

    /// <summary>A transaction that reads one consistent state without blocking writers.</summary>
    public DbTransaction BeginSnapshot(DbConnection connection) =>
        connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: true) : connection.BeginTransaction(IsolationLevel.RepeatableRead);

    /// <summary>The end of an <c>INSERT</c> that does nothing (0 rows) when a row with the same <paramref name="key"/> (its unique columns) exists.</summary>
    public string InsertOrIgnore(string key) => InsertOrIgnore(Dialect, key);

    /// <inheritdoc cref="InsertOrIgnore(string)"/>
    public static string InsertOrIgnore(MetaDialect dialect, string key) => dialect == MetaDialect.MariaDb
        ? $"ON DUPLICATE KEY UPDATE {key.Split(',')[0].Trim()} = {key.Split(',')[0].Trim()}"
        : $"ON CONFLICT ({key}) DO NOTHING";

    /// <summary>The end of an <c>INSERT</c> that, when a row with the same <paramref name="key"/> exists, sets its <paramref name="columns"/> to the values given instead.</summary>
    public string Upsert(string key, params string[] columns) => Upsert(Dialect, key, columns);

    /// <inheritdoc cref="Upsert(string, string[])"/>
    public static string Upsert(MetaDialect dialect, string key, params string[] columns) => dialect == MetaDialect.MariaDb
        ? "ON DUPLICATE KEY UPDATE " + string.Join(", ", columns.Select(c => $"{c} = VALUES({c})"))
        : $"ON CONFLICT ({key}) DO UPDATE SET " + string.Join(", ", columns.Select(c => $"{c} = excluded.{c}"));

    /// <summary>
    /// A random 256-bit secret under <paramref name="name"/> that every process over this database shares, made by the
    /// first that asks: what lets a token one node issued be checked by any other.
    /// </summary>
    public string SharedSecret(string name)
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO shared_secrets (name, secret) VALUES (@name, @secret) " + InsertOrIgnore("name");
        command.Add("@name", name);
        command.Add("@secret", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        command.ExecuteNonQuery();
        command.Parameters.Clear();
        command.CommandText = "SELECT secret FROM shared_secrets WHERE name = @name";
        command.Add("@name", name);
        return (string)command.ExecuteScalar()!;
    }

    /// <summary>The schema version the database is at.</summary>
    public int Version()
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = Dialect == MetaDialect.Sqlite ? "PRAGMA user_version" : "SELECT coalesce(max(version), 0) FROM logwell_schema";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static int Latest => Migrations[^1].Version;

    private InvalidOperationException Newer(int current) => new(
        $"{Location} is at schema version {current}, written by a newer Logwell; this one knows versions up to {Latest}: run the newer Logwell, or restore a backup of this version");

    private void Migrate()
    {
        switch (Dialect)
        {
            case MetaDialect.Sqlite:
                MigrateSqlite();
                break;
            case MetaDialect.PostgreSql:
                MigratePostgres();
                break;
            default:
                MigrateMariaDb();
                break;
        }
    }

    private void MigrateSqlite()
    {
        using var connection = Connect();
        using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL";
            wal.ExecuteNonQuery();
        }
        // BEGIN IMMEDIATE: of two processes starting at once, one migrates and the other then finds the file current.
        using var transaction = BeginWrite(connection);
        var current = Convert.ToInt32(Scalar(connection, transaction, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        if (current > Latest)
        {
            throw Newer(current);
        }
        foreach (var migration in Migrations.Where(m => m.Version > current))
        {
            Execute(connection, transaction, migration.Sqlite + $"\nPRAGMA user_version = {migration.Version};");
        }
        transaction.Commit();
    }

    // PostgreSQL's DDL is transactional: the whole way to the current version is one transaction, after an advisory
    // lock that the other nodes starting at the same time wait on (their CREATE TABLE IF NOT EXISTS would otherwise race).
    private void MigratePostgres()
    {
        using var connection = Connect();
        using var transaction = connection.BeginTransaction(IsolationLevel.ReadCommitted);
        Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock})");
        var current = SchemaVersion(connection, transaction);
        foreach (var migration in Migrations.Where(m => m.Version > current))
        {
            Execute(connection, transaction, ServerSql(migration));
            Record(connection, transaction, migration);
        }
        transaction.Commit();
    }

    // MariaDB commits each DDL statement by itself: the migrations run under a named lock, one recorded as soon as it
    // is applied, so that a node that died half-way leaves the next one where to go on.
    private void MigrateMariaDb()
    {
        using var connection = Connect();
        if (Convert.ToInt64(Scalar(connection, null, "SELECT GET_LOCK('logwell_schema', 120)"), System.Globalization.CultureInfo.InvariantCulture) != 1)
        {
            throw new InvalidOperationException($"{Location}: another node held the migration lock for 120 s");
        }
        try
        {
            var current = SchemaVersion(connection, null);
            foreach (var migration in Migrations.Where(m => m.Version > current))
            {
                Execute(connection, null, ServerSql(migration));
                Record(connection, null, migration);
            }
        }
        finally
        {
            Execute(connection, null, "SELECT RELEASE_LOCK('logwell_schema')");
        }
    }

    private int SchemaVersion(DbConnection connection, DbTransaction? transaction)
    {
        Execute(connection, transaction, "CREATE TABLE IF NOT EXISTS logwell_schema (version BIGINT PRIMARY KEY, purpose TEXT NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)" + TableOptions);
        var current = Convert.ToInt32(Scalar(connection, transaction, "SELECT coalesce(max(version), 0) FROM logwell_schema"), System.Globalization.CultureInfo.InvariantCulture);
        return current > Latest ? throw Newer(current) : current;
    }

    private static void Record(DbConnection connection, DbTransaction? transaction, Migration migration)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO logwell_schema (version, purpose) VALUES (@version, @purpose)";
        command.Add("@version", (long)migration.Version);
        command.Add("@purpose", migration.Purpose);
        command.ExecuteNonQuery();
    }

    private string TableOptions => Dialect == MetaDialect.MariaDb ? " ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin" : "";

    private string ServerSql(Migration migration) => migration.Server
        .Replace("{table}", TableOptions, StringComparison.Ordinal)
        .Replace("{text}", Dialect == MetaDialect.MariaDb ? "MEDIUMTEXT" : "TEXT", StringComparison.Ordinal)
        // PostgreSQL runs a migration in one transaction: it never meets its own rows again.
        .Replace("{insert}", Dialect == MetaDialect.MariaDb ? "INSERT IGNORE" : "INSERT", StringComparison.Ordinal);

    private static void Execute(DbConnection connection, DbTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(DbConnection connection, DbTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}

/// <summary>The metadata database did not answer while the node started: nothing was accepted, and the message says why.</summary>
public sealed class MetadataUnreachableException(string message, Exception inner) : Exception(message, inner);

/// <summary>Parameters the same way on every engine.</summary>
public static class DbCommandExtensions
{
    /// <summary>Adds the parameter <paramref name="name"/> (<c>@name</c>) with <paramref name="value"/>; null is SQL's NULL.</summary>
    public static DbCommand Add(this DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return command;
    }

    /// <summary>The first column of the first row as a number (engines differ in the integer type they answer with).</summary>
    public static long ScalarLong(this DbCommand command) => Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
}
