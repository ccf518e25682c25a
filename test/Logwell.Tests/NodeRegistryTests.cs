using Logwell.Server.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

public sealed class NodeRegistryTests
{
    [Fact]
    public void HeartbeatsCarryTheNodesComponentsAndKeepThemWhenTheyCarryNone()
    {
        using var dir = new TempDirectory();
        var registry = new NodeRegistry(Path.Combine(dir.Path, "meta.db"), new FakeTimeProvider());
        registry.Register("a", "127.0.0.1", 5080, "serve", "1.0.0", []);
        Assert.Equal("[]", registry.List(TimeSpan.FromMinutes(1)).Single().Checks);
        Assert.True(registry.Heartbeat("a", """[{"name":"log-store","status":"healthy","detail":"ok"}]"""));
        Assert.True(registry.Heartbeat("a"));
        Assert.Contains("log-store", registry.List(TimeSpan.FromMinutes(1)).Single().Checks, StringComparison.Ordinal);
        Assert.False(registry.Heartbeat("gone", "[]"));
    }

    [Fact]
    public void ARegistryFileFromBeforeComponentsIsUpgradedInPlace()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "meta.db");
        using (var connection = new SqliteConnection($"Data Source={file};Pooling=false"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE nodes (id TEXT PRIMARY KEY, address TEXT NOT NULL, port INTEGER NOT NULL, role TEXT NOT NULL,
                    version TEXT NOT NULL, tags TEXT NOT NULL, registered_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL);
                INSERT INTO nodes VALUES ('old', '10.0.0.1', 5080, 'serve', '0.9.0', '', 0, 0);
                """;
            command.ExecuteNonQuery();
        }
        var time = new FakeTimeProvider();
        var registry = new NodeRegistry(file, time);
        var old = registry.List(TimeSpan.FromMinutes(1)).Single();
        Assert.Equal(("old", "[]", "critical"), (old.Id, old.Checks, old.Health));
        registry.Register("new", "127.0.0.1", 5081, "serve", "1.0.0", []);
        Assert.True(registry.Heartbeat("new", """[{"name":"queues","status":"healthy","detail":"no tasks"}]"""));
        // Opened again: the column is there already.
        Assert.Contains("queues", new NodeRegistry(file, time).List(TimeSpan.FromMinutes(1)).Single(n => n.Id == "new").Checks, StringComparison.Ordinal);
    }
}
