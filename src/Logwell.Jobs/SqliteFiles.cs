using Microsoft.Data.Sqlite;

namespace Logwell.Jobs;

/// <summary>How Logwell's SQLite files (task queue, metadata, registry) are opened, shared by several processes.</summary>
public static class SqliteFiles
{
    public static string ConnectionString(string path) =>
        new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();

    /// <summary>An open connection that waits for a busy file rather than failing; with <paramref name="fullSync"/>, every commit is on disk before it returns.</summary>
    public static SqliteConnection Open(string connectionString, bool fullSync)
    {
        var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = fullSync ? "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000;" : "PRAGMA busy_timeout = 30000;";
        pragma.ExecuteNonQuery();
        return connection;
    }
}
