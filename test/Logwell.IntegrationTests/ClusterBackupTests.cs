using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Logwell.Storage.ClickHouse;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// <c>logwell backup</c> and <c>logwell restore --cluster</c> on a node over ClickHouse and a metadata database (a real
/// PostgreSQL, then a real MariaDB): the stores lost, new empty ones restored, a node on them serving the same.
/// </summary>
public sealed class ClusterBackupTests(ClickHouseFixture fixture) : IClassFixture<ClickHouseFixture>
{
    [SkippableTheory]
    [InlineData("postgresql", "/usr/bin/pg_dump")]
    [InlineData("mariadb", "/usr/bin/mariadb-dump")]
    public async Task AClusterBackupRestoresEventsIndexSetsAndMetadataIntoNewStores(string metadata, string tool)
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        Skip.IfNot(File.Exists(tool), $"{tool} is not installed (the {metadata} client tools come with the server package test.sh installs)");
        var server = SqlServer.Of(metadata);
        async Task<Dictionary<string, string>> StoresAsync()
        {
            var database = "logwell_" + Guid.NewGuid().ToString("N");
            using var admin = new ClickHouseHttp(fixture.Server!.Endpoint);
            await admin.ExecuteAsync($"CREATE DATABASE {database}");
            return new Dictionary<string, string>
            {
                ["LOGWELL_LogStore"] = "clickhouse",
                ["LOGWELL_ClickHouseUrl"] = fixture.Server.Endpoint.ToString(),
                ["LOGWELL_ClickHouseDatabase"] = database,
                ["LOGWELL_MetadataStore"] = metadata,
                ["LOGWELL_MetadataConnectionString"] = server.CreateDatabase(),
            };
        }
        var lost = await StoresAsync();
        using var dir = new TempDirectory();
        var backups = Path.Combine(dir.Path, "backups");
        var node = await LogwellNode.StartAsync(Path.Combine(dir.Path, "node"), env: lost);
        string second;
        try
        {
            await WorkerProcessTests.WaitForAsync(() => node.Http.GetAsync("/readyz").Result.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), () => "ready");
            (await node.Http.PostAsync("/api/v1/indexsets", new StringContent("""{"name":"app","retention_days":30}""", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
            var now = DateTimeOffset.UtcNow;
            async Task IngestAsync(int first, int count, int daysAgo)
            {
                var lines = new StringBuilder();
                for (var i = first; i < first + count; i++)
                {
                    // Earlier days at their noon (whatever the hour now); today's just before now (yesterday's, just after midnight).
                    var at = daysAgo == 0 ? now.AddSeconds(-i) : new DateTimeOffset(now.UtcDateTime.Date.AddDays(-daysAgo).AddHours(12).AddSeconds(i), TimeSpan.Zero);
                    lines.Append(CultureInfo.InvariantCulture, $"{{\"@timestamp\":\"{at:O}\",\"message\":\"kept event {i}\",\"n\":{i}}}\n");
                }
                (await node.Http.PostAsync("/api/v1/indexsets/app/ingest", new StringContent(lines.ToString(), Encoding.UTF8, "application/x-ndjson"))).EnsureSuccessStatusCode();
            }
            await IngestAsync(0, 100, 2);
            await IngestAsync(100, 100, 1);
            await IngestAsync(200, 100, 0);
            (await node.Http.PostAsync("/api/v1/saved-searches", new StringContent("""{"name":"Kept","indexset":"app","q":"kept"}""", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();

            var first = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(first.ExitCode == 0, first.Stderr + first.Stdout);
            await IngestAsync(300, 50, 0);
            var again = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(again.ExitCode == 0, again.Stderr + again.Stdout);
            second = again.Stdout;
            await node.KillAsync();
        }
        finally
        {
            await node.DisposeAsync();
        }
        // The second backup read again only today's partition (and the small files): the other days' parts had not changed.
        using (var manifest = JsonDocument.Parse(File.ReadAllText(Directory.EnumerateFiles(Path.Combine(backups, "backups")).Order(StringComparer.Ordinal).Last())))
        {
            var files = manifest.RootElement.GetProperty("files").EnumerateArray().ToList();
            var days = files.Select(f => f.GetProperty("path").GetString()!).Where(p => p.StartsWith("clickhouse/app/", StringComparison.Ordinal)).ToList();
            Assert.True(days.Count >= 2, string.Join(", ", files.Select(f => f.GetProperty("path").GetString())));
            Assert.Contains(files, f => f.GetProperty("path").GetString()!.StartsWith("metadata/", StringComparison.Ordinal));
        }
        Assert.Matches(@"; [1-9]\d* new", second);

        // New, empty stores: the restore fills them; a node on them serves the events, the index set and the saved search.
        var fresh = await StoresAsync();
        var restore = await CliTests.RunWithAsync(dir.Path, node, null, fresh, "restore", "--from", backups, "--cluster", "--data", Path.Combine(dir.Path, "cli"));
        Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);
        Assert.Contains("index sets", restore.Stdout, StringComparison.Ordinal);
        var twice = await CliTests.RunWithAsync(dir.Path, node, null, fresh, "restore", "--from", backups, "--cluster", "--data", Path.Combine(dir.Path, "cli"));
        Assert.Equal(1, twice.ExitCode);
        Assert.Contains("already hold events: app (350 events); add --force", twice.Stderr, StringComparison.Ordinal);
        // With --force the backup's days replace those there: the same events once, not twice.
        var forced = await CliTests.RunWithAsync(dir.Path, node, null, fresh, "restore", "--from", backups, "--cluster", "--force", "--data", Path.Combine(dir.Path, "cli"));
        Assert.True(forced.ExitCode == 0, forced.Stderr + forced.Stdout);
        var wrong = await CliTests.RunWithAsync(dir.Path, node, null, fresh, "restore", "--from", backups, "--data", Path.Combine(dir.Path, "node2"));
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("restore it with --cluster", wrong.Stderr, StringComparison.Ordinal);

        await using var restored = await LogwellNode.StartAsync(Path.Combine(dir.Path, "restored"), env: fresh);
        await WorkerProcessTests.WaitForAsync(() => restored.Http.GetAsync("/readyz").Result.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), () => "ready");
        await WorkerProcessTests.WaitForAsync(() => restored.Http.GetAsync("/api/v1/search?indexset=app&limit=0").Result.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(10), () => "index set app");
        var found = await DurabilityTests.AllValuesOfN(restored.Http, "kept&indexset=app");
        Assert.Equal(Enumerable.Range(0, 350).Select(i => (long)i), found.Order());
        using var saved = JsonDocument.Parse(await restored.Http.GetStringAsync("/api/v1/saved-searches"));
        Assert.Contains(saved.RootElement.GetProperty("saved_searches").EnumerateArray(), s => s.GetProperty("name").GetString() == "Kept");
        using var sets = JsonDocument.Parse(await restored.Http.GetStringAsync("/api/v1/indexsets"));
        Assert.Equal(30, sets.RootElement.GetProperty("indexsets").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "app").GetProperty("retention_days").GetInt32());
    }
}
