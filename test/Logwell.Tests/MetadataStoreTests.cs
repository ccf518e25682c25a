using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Server.Exports;
using Logwell.Server.Hosting;
using Logwell.Server.SavedSearches;
using Logwell.Server.Security;
using Logwell.Storage;
using Logwell.Storage.Engine;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>
/// The metadata held to the same behaviour on every engine it can live in: SQLite (<c>meta.db</c>), and a real
/// PostgreSQL and MariaDB server, a database of each test's own. What one engine does, the others must do, so that a
/// cluster behaves as one node does.
/// </summary>
public sealed class MetadataStoreTests
{
    public static TheoryData<string> Stores => ["sqlite", "postgresql", "mariadb"];

    /// <summary>A fresh metadata database of the kind, and what to dispose.</summary>
    private static (MetaDatabase Database, IDisposable Cleanup) Open(string store)
    {
        if (store == "sqlite")
        {
            var directory = new TempDirectory();
            return (MetaDatabase.Open(directory.Path), directory);
        }
        var (dialect, connectionString) = EmptyDatabase(store);
        return (MetaDatabase.Open(dialect, connectionString), new TempDirectory());
    }

    /// <summary>A new empty database on the server of <paramref name="store"/> (postgresql or mariadb), not yet migrated.</summary>
    private static (MetaDialect Dialect, string ConnectionString) EmptyDatabase(string store) =>
        (store == "postgresql" ? MetaDialect.PostgreSql : MetaDialect.MariaDb, SqlServer.Of(store).CreateDatabase());

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public async Task LogPatternsAreStoredAddedUpAndLearnedByTheNextProcess(string store)
    {
        var (database, cleanup) = Open(store);
        using var _ = cleanup;
        var users = new[] { "alice", "bob", "carol", "dave", "erin" };
        List<LogEvent> Logins(int from, int count) => [.. Enumerable.Range(from, count)
            .Select(i => new LogEvent(EventTime.Yesterday.AddMinutes(i).UtcTicks, $"Accepted password for {users[i % users.Length]} from 10.0.0.{i} port {2000 + i} ssh2", []))];
        var zed = "Accepted password for zed from 10.9.9.9 port 4242 ssh2";
        string firstId;
        using (var dir = new TempDirectory())
        {
            await using var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, DefaultRetentionDays = 30 }, TimeProvider.System);
            var set = await ((ILogStore)engine).GetOrCreateAsync("default");
            var catalog = new PatternCatalog(database, engine, TimeProvider.System, NullLogger<PatternCatalog>.Instance);
            await set.AppendAsync(Logins(0, 20));
            catalog.Pass();
            var stored = catalog.List("default", 100);
            Assert.Equal(20, stored.Sum(p => p.Events));
            var general = Assert.Single(stored, p => p.Template == "Accepted password for <*> from <*> port <*> ssh2");
            Assert.Equal(EventTime.Yesterday.AddMinutes(19), general.LastSeen);
            Assert.InRange(general.Examples.Count, 1, PatternTagger.ExamplesKept);

            // A second pass adds to the rows: counts grow, times widen.
            await set.AppendAsync(Logins(20, 10));
            catalog.Pass();
            general = Assert.Single(catalog.List("default", 100), p => p.Id == general.Id);
            Assert.Equal(EventTime.Yesterday.AddMinutes(29), general.LastSeen);
            Assert.Equal(30, catalog.List("default", 100).Sum(p => p.Events));
            // Messages stored in different passes add up, different ones only, to a few.
            Assert.Equal(PatternTagger.ExamplesKept, general.Examples.Count);
            Assert.Equal(general.Examples.Count, general.Examples.Distinct().Count());

            var line = new List<LogEvent> { new(EventTime.Yesterday.AddHours(1).UtcTicks, zed, []) };
            await set.AppendAsync(line);
            firstId = PatternTagger.IdOf(line[0])!;
            Assert.Equal(general.Id, firstId);
        }

        // The next process (a restart, another node) learns the stored templates before its first event: a user it
        // never saw gets the same id.
        using (var dir = new TempDirectory())
        {
            await using var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, DefaultRetentionDays = 30 }, TimeProvider.System);
            var set = await ((ILogStore)engine).GetOrCreateAsync("default");
            var catalog = new PatternCatalog(database, engine, TimeProvider.System, NullLogger<PatternCatalog>.Instance);
            catalog.Pass();
            var line = new List<LogEvent> { new(EventTime.Yesterday.AddHours(2).UtcTicks, zed.Replace("zed", "yolanda", StringComparison.Ordinal), []) };
            await set.AppendAsync(line);
            Assert.Equal(firstId, PatternTagger.IdOf(line[0]));

            // A deleted index set's templates go with it.
            catalog.Forget("default");
            Assert.Empty(catalog.List("default", 100));
        }
    }

    [SkippableTheory]
    [InlineData("postgresql")]
    [InlineData("mariadb")]
    public void ThreeNodesStartingAtOnceMigrateTheSchemaOnce(string store)
    {
        var (dialect, connectionString) = EmptyDatabase(store);
        using var start = new Barrier(3);
        // Three connection strings that differ only in the application name: three databases' worth of caching, one database.
        var opened = Enumerable.Range(0, 3).Select(i => Task.Run(() =>
        {
            start.SignalAndWait();
            return MetaDatabase.Open(dialect, connectionString + $";Application Name=node{i}");
        })).ToArray();
        Task.WaitAll(opened);
        Assert.All(opened, task => Assert.Equal(MetaDatabase.Migrations[^1].Version, task.Result.Version()));
        using var connection = opened[0].Result.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*), count(DISTINCT version) FROM logwell_schema";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.Equal(MetaDatabase.Migrations.Count, reader.GetInt64(0));
        Assert.Equal(MetaDatabase.Migrations.Count, reader.GetInt64(1));
    }

    [SkippableFact]
    public void AMariaDbMigrationCutOffBeforeItWasRecordedRunsAgainWhole()
    {
        // MariaDB commits DDL statement by statement (PostgreSQL migrates in one transaction): a node that died inside
        // a migration leaves its tables without the row that records it. Here every migration after the first lost its
        // row, its tables and rows kept.
        var connectionString = SqlServer.MariaDbServer.CreateDatabase();
        var dialect = MetaDialect.MariaDb;
        var database = MetaDatabase.Open(dialect, connectionString);
        new AccessStore(database, TimeProvider.System).CreateUser("alice", "long enough");
        using (var connection = database.Connect())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "DELETE FROM logwell_schema WHERE version > 1";
            command.ExecuteNonQuery();
        }
        var again = MetaDatabase.Open(dialect, connectionString + ";Application Name=restarted");
        Assert.Equal(MetaDatabase.Migrations[^1].Version, again.Version());
        var rules = new AccessStore(again, TimeProvider.System).Load();
        Assert.Equal(["alice"], rules.Users.Keys);
        Assert.Contains("default", rules.Spaces);
    }

    // AccessTests holds the SQLite file to the same.
    [SkippableTheory]
    [InlineData("postgresql")]
    [InlineData("mariadb")]
    public void ADatabaseOfANewerLogwellIsRefused(string store)
    {
        var (dialect, connectionString) = EmptyDatabase(store);
        var database = MetaDatabase.Open(dialect, connectionString);
        using (var connection = database.Connect())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "INSERT INTO logwell_schema (version, purpose) VALUES (999, 'from the future')";
            command.ExecuteNonQuery();
        }
        var refused = Assert.Throws<InvalidOperationException>(() => MetaDatabase.Open(dialect, connectionString + ";Application Name=newer"));
        Assert.Contains("newer Logwell", refused.Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public void AccessRulesReadBackTheSameOnEveryEngine(string store)
    {
        var (database, cleanup) = Open(store);
        using var _ = cleanup;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var access = new AccessStore(database, time);
        var before = access.Version();
        access.CreateUser("alice", "long enough");
        Assert.Equal(409, Assert.Throws<AccessException>(() => access.CreateUser("alice", "another one")).Status);
        access.CreateUser("bob", "long enough too");
        access.CreateGroup("ops");
        Assert.Equal(409, Assert.Throws<AccessException>(() => access.CreateGroup("ops")).Status);
        access.AddMember("ops", "alice");
        access.AddMember("ops", "alice");
        access.CreateRole("reader", [Actions.Search, Actions.ViewSpace]);
        access.CreateSpace("shop");
        access.PlaceIndexSet("orders", "shop");
        access.PlaceIndexSet("orders", "default");
        access.PlaceIndexSet("orders", "shop");
        access.SetMasking("orders", """{"rules": [{"field": "card", "keep_last": 4}]}""");
        access.SetMasking("orders", """{"rules": [{"field": "email", "with": "#"}]}""");
        var grant = access.AddGrant("group", "ops", "reader", new Scope(ScopeKind.Space, "shop"), "level:error AND 'quoted \\' value'");
        var (key, secret) = access.CreateKey("ci", null, time.GetUtcNow().AddDays(1));
        access.AddGrant("key", key.Id, "viewer", new Scope(ScopeKind.IndexSet, "orders"), null);
        var (personal, _) = access.CreateKey("laptop", "bob", null, asOwner: true);
        access.SetDisabled("bob", true);
        Assert.True(access.Version() > before);

        var rules = access.Load();
        Assert.Equal(["alice", "bob"], rules.Users.Keys.Order(StringComparer.Ordinal));
        Assert.True(rules.Users["bob"].Disabled);
        Assert.True(AccessStore.VerifyPassword(rules.Users["alice"], "long enough"));
        Assert.Equal(["ops"], rules.GroupsOf("alice"));
        Assert.Equal("shop", rules.SpaceOf("orders"));
        Assert.True(rules.Masks["orders"].Masks("email"));
        Assert.False(rules.Masks["orders"].Masks("card"));
        Assert.Equal(AccessStore.HashSecret(secret), rules.Keys.Single(k => k.Id == key.Id).SecretHash);
        Assert.True(rules.Keys.Single(k => k.Id == personal.Id).AsOwner);
        var stored = rules.Grants.Single(g => g.Id == grant.Id);
        Assert.Equal(("group", "ops", "reader", "shop", "level:error AND 'quoted \\' value'"), (stored.PrincipalKind, stored.Principal, stored.Role, stored.Scope.Name, stored.Filter));
        Assert.True(rules.ForUser("alice").Can(Actions.Search, "orders"));

        Assert.Equal(409, Assert.Throws<AccessException>(() => access.DeleteRole("reader")).Status);
        access.RemoveGrant(grant.Id);
        access.DeleteRole("reader");
        access.DeleteUser("bob");
        Assert.Equal(404, Assert.Throws<AccessException>(() => access.DeleteUser("bob")).Status);
        access.RemoveMember("ops", "alice");
        access.DeleteGroup("ops");
        Assert.True(access.RemoveMasking("orders"));
        Assert.False(access.RemoveMasking("orders"));
        access.ForgetIndexSet("orders");
        access.DeleteSpace("shop");
        rules = access.Load();
        Assert.Equal(["alice"], rules.Users.Keys);
        Assert.NotNull(rules.Keys.Single(k => k.Id == personal.Id).RevokedAt);
        Assert.Empty(rules.GroupsOf("alice"));
        Assert.Empty(rules.PlacedIndexSets);
    }

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public void SessionsEndAsTheyDoOnOneNode(string store)
    {
        var (database, cleanup) = Open(store);
        using var _ = cleanup;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var access = new AccessStore(database, time);
        access.CreateUser("alice", "long enough");
        var key = database.SharedSecret("csrf");
        Assert.Equal(key, database.SharedSecret("csrf"));
        Assert.NotEqual(key, database.SharedSecret("other"));
        var sessions = new Sessions(database, time, key, TimeSpan.FromMinutes(30), TimeSpan.FromDays(1));
        var (session, secret) = sessions.Create("alice", access.Version());
        // Another node over the same database finds it, and takes the page's anti-forgery token.
        var elsewhere = new Sessions(database, time, database.SharedSecret("csrf"), TimeSpan.FromMinutes(30), TimeSpan.FromDays(1));
        Assert.Equal(session.Id, elsewhere.Find(secret, access.Version())?.Id);
        Assert.True(elsewhere.CsrfMatches(secret, sessions.CsrfToken(secret)));
        time.Advance(TimeSpan.FromMinutes(20));
        Assert.NotNull(sessions.Find(secret, access.Version()));
        // Used through the first node only: the second's copy says 35 idle minutes, the database 15, and it stays.
        time.Advance(TimeSpan.FromMinutes(15));
        Assert.NotNull(elsewhere.Find(secret, access.Version()));
        access.SetPassword("alice", "a new password");
        Assert.Null(elsewhere.Find(secret, access.Version()));

        // Signed out on one node: the other, which held the session, refuses it from the next version of the rules.
        var (_, second) = sessions.Create("alice", access.Version());
        Assert.NotNull(elsewhere.Find(second, access.Version()));
        sessions.End(second);
        Assert.Null(elsewhere.Find(second, access.Version()));
    }

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public void CollectionConfigsReachTheAgentsTheyNameAndAgentReportsUpdateInPlace(string store)
    {
        var (database, cleanup) = Open(store);
        using var _ = cleanup;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var configs = new Logwell.Server.Agent.CollectionConfigStore(database, time);
        Assert.True(configs.Put("nginx", """{"paths":["/var/log/nginx/*.log"],"index_set":"nginx"}""", [], ["web"]));
        Assert.True(configs.Put("db-1-only", """{"paths":["/var/log/pg/*.log"],"index_set":"db"}""", ["db-1"], []));
        Assert.True(configs.Put("all", """{"paths":["/var/log/syslog"],"index_set":"syslog"}""", [], []));
        Assert.False(configs.Put("all", """{"paths":["/var/log/messages"],"index_set":"syslog"}""", [], []));
        var (web, webVersion) = configs.For("web-1", ["web", "eu"]);
        Assert.Equal(["all", "nginx"], web.Select(c => c.Name));
        Assert.Contains("/var/log/messages", web[0].Input, StringComparison.Ordinal);
        var (db, dbVersion) = configs.For("db-1", []);
        Assert.Equal(["all", "db-1-only"], db.Select(c => c.Name));
        Assert.NotEqual(webVersion, dbVersion);
        Assert.True(configs.Delete("nginx"));
        Assert.False(configs.Delete("nginx"));
        Assert.NotEqual(webVersion, configs.For("web-1", ["web"]).Version);

        var first = time.GetUtcNow();
        configs.Report("web-1", "a1", "1.0", ["web"], "10.0.0.7", """{"files": 3}""", webVersion);
        time.Advance(TimeSpan.FromMinutes(5));
        configs.Report("web-1", "a1", "1.1", ["web", "eu"], "10.0.0.7", """{"files": 4}""", dbVersion);
        var agent = Assert.Single(configs.Agents());
        Assert.Equal(("1.1", 2, first.ToUnixTimeMilliseconds(), time.GetUtcNow().ToUnixTimeMilliseconds(), dbVersion),
            (agent.Version, agent.Tags.Count, agent.FirstSeen.ToUnixTimeMilliseconds(), agent.LastSeen.ToUnixTimeMilliseconds(), agent.ConfigVersion));
        Assert.Contains("4", agent.Health, StringComparison.Ordinal);
        Assert.True(configs.Forget("web-1"));
        Assert.Empty(configs.Agents());
    }

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public void SavedSearchesKeepEveryCharacterAndOneNamePerSearch(string store)
    {
        var (database, cleanup) = Open(store);
        using var _ = cleanup;
        var searches = new SavedSearchStore(database, TimeProvider.System);
        var texts = NastyStrings.All.Where(s => !s.Contains('\0', StringComparison.Ordinal)).ToList();
        for (var i = 0; i < texts.Count; i++)
        {
            Assert.NotNull(searches.Create($"search {i} {texts[i]}", "app", texts[i], i % 2 == 0 ? "now-1h" : null, null));
        }
        Assert.Null(searches.Create("search 0 ", "app", "other", null, null));
        // Names differ in case only: two searches.
        Assert.NotNull(searches.Create("Errors", "app", "level:error", null, null));
        Assert.NotNull(searches.Create("errors", "app", "level:error", null, null));
        var listed = searches.List();
        Assert.Equal(texts.Count + 2, listed.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            var found = listed.Single(s => s.Name == $"search {i} {texts[i]}");
            Assert.Equal((texts[i], i % 2 == 0 ? "now-1h" : null), (found.Query, found.From));
        }
        Assert.True(searches.Delete(listed[0].Id));
        Assert.False(searches.Delete(listed[0].Id));
    }

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public void ExportsMoveThroughTheirStatesOnce(string store)
    {
        var (database, cleanup) = Open(store);
        using var directory = new TempDirectory();
        using var _ = cleanup;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var exports = new ExportStore(database, directory.Path, time);
        var first = exports.Create("alice", "app", "level:error", 1, null, ["message", "host"], "ndjson", false, 1000, maxActive: 2, restriction: ["team:a"], masked: true);
        exports.Create("alice", "app", "*", null, null, [], "csv", true, 10, maxActive: 2);
        Assert.Throws<ExportLimitException>(() => exports.Create("alice", "app", "*", null, null, [], "csv", true, 10, maxActive: 2));
        Assert.Equal(2, exports.CountActive());
        Assert.True(exports.Start(first.Id));
        exports.SetTask(first.Id, 42);
        exports.Progress(first.Id, 500, 1000, truncated: false);
        exports.Progress(first.Id, 1000, null, truncated: true);
        exports.Packaging(first.Id);
        exports.Done(first.Id, 12345, TimeSpan.FromHours(1));
        var done = exports.Get(first.Id)!;
        Assert.Equal((ExportState.Done, 1000L, 1000L, true, 12345L, 42L), (done.State, done.EventsWritten, done.EventsTotal, done.Truncated, done.FileBytes, done.TaskId));
        Assert.Equal(["message", "host"], done.Fields);
        Assert.Equal(["team:a"], done.Restriction);
        Assert.True(done.Masked);
        Assert.False(exports.Start(first.Id));
        Assert.Empty(exports.ExpireDownloads());
        time.Advance(TimeSpan.FromHours(2));
        Assert.Equal([first.Id], exports.ExpireDownloads());
        Assert.Empty(exports.ExpireDownloads());
        Assert.Equal([first.Id], exports.FinishedBefore(time.GetUtcNow()).Select(e => e.Id));
        Assert.Equal(2, exports.List("alice").Count);
        exports.Delete(first.Id);
        Assert.Null(exports.Get(first.Id));
    }

    [SkippableTheory]
    [MemberData(nameof(Stores))]
    public void TheRegistryAgesAndRemovesSilentNodes(string store)
    {
        var (database, cleanup) = Open(store);
        using var _ = cleanup;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var registry = store == "sqlite" ? new NodeRegistry(database.Path, time) : new NodeRegistry(database, time);
        registry.Register("a", "10.0.0.1", 5080, "serve", "1.0.0", ["eu", "ssd"]);
        registry.Register("b", "10.0.0.2", 5080, "serve", "1.0.0", []);
        registry.Register("a", "10.0.0.9", 5081, "serve", "1.0.1", ["eu"]);
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.True(registry.Heartbeat("a", """[{"name":"log-store","status":"healthy"}]"""));
        var nodes = registry.List(TimeSpan.FromSeconds(30));
        Assert.Equal([("a", "10.0.0.9", 5081, "passing", "1.0.1"), ("b", "10.0.0.2", 5080, "critical", "1.0.0")],
            nodes.Select(n => (n.Id, n.Address, n.Port, n.Health, n.Version)));
        Assert.Equal(["eu"], nodes[0].Tags);
        Assert.Contains("log-store", nodes[0].Checks, StringComparison.Ordinal);
        time.Advance(TimeSpan.FromSeconds(60));
        Assert.True(registry.Heartbeat("a"));
        Assert.Equal(["b"], registry.RemoveSilent(TimeSpan.FromSeconds(90)));
        Assert.Empty(registry.RemoveSilent(TimeSpan.FromSeconds(90)));
        Assert.True(registry.Deregister("a"));
        Assert.Empty(registry.List(TimeSpan.FromSeconds(30)));
    }
}
