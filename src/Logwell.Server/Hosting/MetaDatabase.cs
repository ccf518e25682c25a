using System.Collections.Concurrent;
using Logwell.Jobs;
using Microsoft.Data.Sqlite;

namespace Logwell.Server.Hosting;

/// <summary>
/// The node's metadata file (<c>meta.db</c> in the data directory): saved searches, export records, users, keys,
/// roles, grants and spaces. Its schema changes only through the numbered migrations below, applied in order in one
/// transaction each and recorded in SQLite's <c>user_version</c>, so every process of a node (and every version of
/// Logwell) agrees on what the file holds. A file written by a newer Logwell is refused rather than guessed at.
/// </summary>
public sealed class MetaDatabase
{
    /// <summary>One schema change: its number (1, 2, ...), what it is for, and its SQL.</summary>
    public sealed record Migration(int Version, string Purpose, string Sql);

    /// <summary>Every schema change, oldest first. Append only: a migration that has shipped is never edited.</summary>
    public static readonly IReadOnlyList<Migration> Migrations =
    [
        // The tables the saved-search and export stores created for themselves before migrations existed: a file of
        // that time has them already, hence IF NOT EXISTS.
        new(1, "saved searches and exports", """
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
            """),
        new(2, "users, groups, roles, spaces, API keys and grants", """
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
            """),
        new(3, "the grant filters an export is restricted to", """
            ALTER TABLE exports ADD COLUMN restriction TEXT;
            """),
        new(4, "masking rules read by viewers without view_raw", """
            CREATE TABLE masking_rules (indexset TEXT PRIMARY KEY, definition TEXT NOT NULL, updated_at INTEGER NOT NULL);
            ALTER TABLE exports ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
            """),
        new(5, "personal API keys, which act as their owner (logwell login)", """
            ALTER TABLE api_keys ADD COLUMN as_owner INTEGER NOT NULL DEFAULT 0;
            """),
        new(6, "web UI sessions: the SHA-256 of each session cookie, its user and its times", """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                user_name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                seen_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
            );
            CREATE INDEX sessions_user ON sessions (user_name);
            """),
    ];

    private static readonly ConcurrentDictionary<string, MetaDatabase> Opened = new(StringComparer.Ordinal);

    private readonly string _connectionString;

    private MetaDatabase(string path)
    {
        Path = path;
        _connectionString = SqliteFiles.ConnectionString(path);
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The metadata file of <paramref name="dataDirectory"/>, brought to the current schema (once per process).</summary>
    public static MetaDatabase Open(string dataDirectory)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetFullPath(dataDirectory), "meta.db");
        if (Opened.TryGetValue(path, out var opened) && File.Exists(path))
        {
            return opened;
        }
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var database = new MetaDatabase(path);
        database.Migrate();
        Opened[path] = database;
        return database;
    }

    /// <summary>A connection to the file; every commit is on disk before it returns.</summary>
    public SqliteConnection Connect() => SqliteFiles.Open(_connectionString, fullSync: true);

    /// <summary>The schema version the file is at.</summary>
    public int Version()
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private void Migrate()
    {
        using var connection = Connect();
        using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL";
            wal.ExecuteNonQuery();
        }
        // BEGIN IMMEDIATE: of two processes starting at once, one migrates and the other then finds the file current.
        using var transaction = connection.BeginTransaction(deferred: false);
        int current;
        using (var read = connection.CreateCommand())
        {
            read.Transaction = transaction;
            read.CommandText = "PRAGMA user_version";
            current = Convert.ToInt32(read.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        var latest = Migrations[^1].Version;
        if (current > latest)
        {
            throw new InvalidOperationException(
                $"{Path} is at schema version {current}, written by a newer Logwell; this one knows versions up to {latest}: run the newer Logwell, or restore a backup of this version");
        }
        foreach (var migration in Migrations.Where(m => m.Version > current))
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = migration.Sql + $"\nPRAGMA user_version = {migration.Version};";
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }
}
