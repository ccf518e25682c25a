using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>
/// <c>logwell backup</c> and <c>logwell restore</c> as an operator runs them: a backup taken while ingest goes on,
/// the node killed and its data directory deleted, the restore, and the node serving again.
/// </summary>
public sealed class BackupTests
{
    [Fact]
    public async Task ABackupTakenMidStreamRestoresEveryEventAcknowledgedBeforeItExactlyOnce()
    {
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var backups = Path.Combine(dir.Path, "backups");
        var acknowledged = new ConcurrentBag<long>();
        long[] beforeFirst, beforeSecond;
        string firstOutput, secondOutput;
        var node = await LogwellNode.StartAsync(data, env: DurabilityTests.SmallMemTables);
        try
        {
            using var stop = new CancellationTokenSource();
            var clients = Enumerable.Range(0, 2).Select(client => Task.Run(async () =>
            {
                for (var batch = 0; !stop.IsCancellationRequested; batch++)
                {
                    var first = (client * 10_000_000L) + (batch * 100L);
                    var body = string.Concat(Enumerable.Range(0, 100).Select(i => $"{{\"message\":\"kept event {first + i}\",\"n\":{first + i}}}\n"));
                    try
                    {
                        using var content = new StringContent(body, Encoding.UTF8, "application/x-ndjson");
                        using var response = await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content);
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            for (var i = 0; i < 100; i++)
                            {
                                acknowledged.Add(first + i);
                            }
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                    {
                        return;
                    }
                }
            })).ToList();

            await WaitForAsync(() => acknowledged.Count >= 10_000);
            beforeFirst = [.. acknowledged];
            var first = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(first.ExitCode == 0, first.Stderr + first.Stdout);
            firstOutput = first.Stdout;

            var count = acknowledged.Count;
            await WaitForAsync(() => acknowledged.Count >= count + 5_000);
            beforeSecond = [.. acknowledged];
            var second = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(second.ExitCode == 0, second.Stderr + second.Stdout);
            secondOutput = second.Stdout;

            // Ingest goes on past the backup point; then the machine dies and the disk with it.
            count = acknowledged.Count;
            await WaitForAsync(() => acknowledged.Count >= count + 2_000);
            await node.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(clients);
        }
        finally
        {
            await node.DisposeAsync();
        }
        Directory.Delete(data, recursive: true);

        // The second backup stored only what the first lacked: the segments and logs written since, not the whole node again.
        static (int Files, int New) Counts(string output)
        {
            var match = System.Text.RegularExpressions.Regex.Match(output, @": (\d+) files, .*; (\d+) new");
            return (int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.True(Counts(secondOutput).New < Counts(secondOutput).Files, $"first: {firstOutput} second: {secondOutput}");

        var list = await CliTests.RunAsync(node, null, "backup", "list", "--from", backups);
        Assert.Equal(2, list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1);
        var verify = await CliTests.RunAsync(node, null, "backup", "verify", "--from", backups);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);

        var restore = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", data);
        Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);
        var again = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", data);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("not empty", again.Stderr, StringComparison.Ordinal);

        // The settings the node ran with come along, for whoever sets it up again.
        Assert.Contains("MemTableMaxEvents = 3000\n", File.ReadAllText(Path.Combine(data, "settings-at-backup.txt")), StringComparison.Ordinal);
        Assert.Contains("settings-at-backup.txt", restore.Stdout, StringComparison.Ordinal);

        // The node's credential comes back as private as it was.
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(data, "run", "node.key")));
        }

        // An older backup by its id, one index set only: its files, and no database.
        var firstId = System.Text.RegularExpressions.Regex.Match(firstOutput, @"^backup (\S+):").Groups[1].Value;
        var partial = Path.Combine(dir.Path, "partial");
        var one = await CliTests.RunAsync(node, null, "restore", "--from", $"{backups}@{firstId}", "--data", partial, "--index", "default");
        Assert.True(one.ExitCode == 0, one.Stderr + one.Stdout);
        Assert.Contains(firstId, one.Stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(partial, "indexsets", "default", "manifest.json")));
        Assert.False(File.Exists(Path.Combine(partial, "meta.db")));
        Assert.False(Directory.Exists(partial + ".restoring"));

        await using (var restored = await LogwellNode.StartAsync(data))
        {
            var found = await DurabilityTests.AllValuesOfN(restored.Http, "kept");
            Assert.Equal(found.Count, found.Distinct().Count());
            var missing = beforeSecond.Except(found).Take(5).ToList();
            Assert.True(missing.Count == 0, $"acknowledged before the backup, missing after the restore: {string.Join(", ", missing)} (of {beforeSecond.Length}; {found.Count} found)");
            Assert.True(beforeFirst.Length < beforeSecond.Length);
        }

        // A flipped byte in one stored object: verify names the damaged file and fails.
        var victim = Directory.EnumerateFiles(Path.Combine(backups, "objects"), "*.zst", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).First();
        var bytes = await File.ReadAllBytesAsync(victim);
        bytes[bytes.Length / 2] ^= 0x5A;
        await File.WriteAllBytesAsync(victim, bytes);
        var damaged = await CliTests.RunAsync(node, null, "backup", "verify", "--from", backups);
        Assert.Equal(2, damaged.ExitCode);
        Assert.Contains(Path.GetFileNameWithoutExtension(victim), damaged.Stdout, StringComparison.Ordinal);
        Assert.Contains("damaged", damaged.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABackupIntoTheDataDirectoryOrToARelativePathIsRefused()
    {
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        await using var node = await LogwellNode.StartAsync(data);
        var inside = await CliTests.RunAsync(node, null, "backup", "--to", Path.Combine(data, "b"));
        Assert.Equal(1, inside.ExitCode);
        Assert.Contains("inside the data directory", inside.Stderr, StringComparison.Ordinal);
        using var response = await node.Http.PostAsync("/api/v1/maintenance/backup", new StringContent("{\"to\":\"relative/dir\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("absolute", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScheduledBackupsRunPruneAndReportOnHealthAndMetrics()
    {
        using var dir = new TempDirectory();
        var backups = Path.Combine(dir.Path, "backups");
        var env = new Dictionary<string, string>
        {
            ["LOGWELL_Schedule__nightly__Task"] = "store.backup",
            ["LOGWELL_Schedule__nightly__Queue"] = "schedule",
            ["LOGWELL_Schedule__nightly__Every"] = "00:00:01",
            ["LOGWELL_Schedule__nightly__Arguments"] = JsonSerializer.Serialize(new Dictionary<string, object> { ["to"] = backups, ["keep_last"] = 2 }),
            // A destination no backup can be written to: its entry fails, and health says so once two intervals pass.
            ["LOGWELL_Schedule__broken__Task"] = "store.backup",
            ["LOGWELL_Schedule__broken__Queue"] = "schedule",
            ["LOGWELL_Schedule__broken__Every"] = "00:00:01",
            ["LOGWELL_Schedule__broken__Arguments"] = "{\"to\": \"/proc/logwell-backups\"}",
        };
        var node = await LogwellNode.StartAsync(Path.Combine(dir.Path, "data"), env: env);
        using (var content = new StringContent("{\"message\":\"backed up\"}\n", Encoding.UTF8, "application/x-ndjson"))
        {
            (await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content)).EnsureSuccessStatusCode();
        }

        static long Count(string metrics, string outcome) =>
            System.Text.RegularExpressions.Regex.Match(metrics, $@"logwell_server_backups\{{outcome=""{outcome}""\}} (\d+)") is { Success: true } m ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        string metrics = "";
        var listed = 0;
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90)))
        {
            // Four backups done, each followed by a prune keeping two: at most one more than two is listed (taken, not yet pruned).
            while (true)
            {
                using (var repository = new Logwell.Storage.Backup.BackupRepository(new Logwell.Storage.Backup.DirectoryBackupStorage(backups)))
                {
                    listed = (await repository.ListAsync(timeout.Token)).Count;
                }
                metrics = await node.Http.GetStringAsync("/metrics", timeout.Token);
                if (Count(metrics, "done") >= 4 && Count(metrics, "failed") >= 2)
                {
                    break;
                }
                await Task.Delay(200, timeout.Token);
            }
        }
        Assert.InRange(listed, 1, 3);
        Assert.Matches(@"logwell_server_backup_last_success [1-9]", metrics);

        // A verify holding the directory (shared) makes the prunes after backups fail, and they are counted.
        using var verifying = new Logwell.Storage.Backup.BackupRepository(new Logwell.Storage.Backup.DirectoryBackupStorage(backups));
        await using (await verifying.LockAsync(Logwell.Storage.Backup.BackupLockKind.Read, CancellationToken.None))
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (Count(metrics, "prune_failed") == 0)
            {
                await Task.Delay(200, timeout.Token);
                metrics = await node.Http.GetStringAsync("/metrics", timeout.Token);
            }
        }

        using var answer = await node.Http.GetAsync("/healthz?format=json&include=backup");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        using var health = JsonDocument.Parse(await answer.Content.ReadAsStringAsync());
        var detail = health.RootElement.GetProperty("components")[0].GetProperty("detail").GetString()!;
        Assert.Equal("unhealthy", health.RootElement.GetProperty("status").GetString());
        Assert.Contains("broken: no backup in /proc/logwell-backups yet", detail, StringComparison.Ordinal);
        Assert.Contains($"nightly: last backup ", detail, StringComparison.Ordinal);

        // With the node stopped (no prune under them), the listed backups verify and restore.
        await node.DisposeAsync();
        var restored = Path.Combine(dir.Path, "restored");
        var restore = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", restored);
        Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);
        var verify = await CliTests.RunAsync(node, null, "backup", "verify", "--from", backups);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);
    }

    [Fact]
    public async Task ADamagedSegmentIsReportedVerifiedAndRepairedByRestoringItsIndexSet()
    {
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var backups = Path.Combine(dir.Path, "backups");
        var segments = Path.Combine(data, "indexsets", "default", "segments");
        // The first blocks of the older segment only: blocks a read has decoded are served from the cache, and the damage below must not be.
        const string ExportOfOlder = "/api/v1/export?q=older%20AND%20n:%5B0%20TO%201999%5D&format=ndjson";
        string exported, beforeDamage;
        var node = await LogwellNode.StartAsync(data, env: DurabilityTests.SmallMemTables);
        try
        {
            async Task IngestAsync(string indexSet, string word, int count)
            {
                var body = string.Concat(Enumerable.Range(0, count).Select(i => $"{{\"message\":\"{word} event {i} of host h{i % 7}\",\"n\":{i}}}\n"));
                using var content = new StringContent(body, Encoding.UTF8, "application/x-ndjson");
                (await node.Http.PostAsync($"/api/v1/indexsets/{indexSet}/ingest", content)).EnsureSuccessStatusCode();
            }
            await IngestAsync("default", "older", 20_000);
            await IngestAsync("other", "elsewhere", 1_000);
            await WaitForAsync(() => Directory.Exists(segments) && Directory.EnumerateFiles(segments, "*.lws").Any());
            var backup = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(backup.ExitCode == 0, backup.Stderr + backup.Stdout);
            beforeDamage = System.Text.RegularExpressions.Regex.Match(backup.Stdout, @"^backup (\S+):").Groups[1].Value;
            exported = await node.Http.GetStringAsync(ExportOfOlder);
            Assert.Equal(2_000, exported.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            await IngestAsync("default", "newer", 20_000);
            await WaitForAsync(() => Directory.EnumerateFiles(segments, "*.lws").Count() >= 2);

            // The disk changes the middle third of a segment of older events under the running node: one that does not
            // hold the exported ones if there is one (their blocks are in the cache now), else the largest, whose middle
            // third is past them. Chosen once flushes and merges have settled, so no merge retires it meanwhile.
            var manifest = Path.Combine(data, "indexsets", "default", "manifest.json");
            string previous = "", current = File.ReadAllText(manifest);
            while (previous != current)
            {
                await Task.Delay(1_500);
                (previous, current) = (current, File.ReadAllText(manifest));
            }
            using var listed = JsonDocument.Parse(current);
            var ofOlder = listed.RootElement.GetProperty("segments").EnumerateArray().Where(seg => seg.GetProperty("max_seq").GetInt64() <= 20_000).ToList();
            var chosen = ofOlder.FirstOrDefault(seg => seg.GetProperty("min_seq").GetInt64() > 2_000);
            if (chosen.ValueKind == JsonValueKind.Undefined)
            {
                chosen = ofOlder.MaxBy(seg => seg.GetProperty("events").GetInt64());
            }
            var victim = Path.Combine(segments, chosen.GetProperty("file").GetString()!);
            var bytes = await File.ReadAllBytesAsync(victim);
            for (var i = bytes.Length / 3; i < 2 * bytes.Length / 3; i++)
            {
                bytes[i] ^= 0x5A;
            }
            await File.WriteAllBytesAsync(victim, bytes);

            // A search that reads the older segment's texts says which segment is damaged; one that needs other segments answers.
            using var damaged = await node.Http.GetAsync("/api/v1/search?q=*lde*&limit=10");
            var error = await damaged.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.InternalServerError, damaged.StatusCode);
            Assert.Contains($"segment {Path.GetFileName(victim)} is damaged", error, StringComparison.Ordinal);
            Assert.Contains("checksum mismatch", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
            using var newer = JsonDocument.Parse(await node.Http.GetStringAsync("/api/v1/search?q=newer&limit=1"));
            Assert.Equal(20_000, newer.RootElement.GetProperty("total").GetInt64());
            using var other = JsonDocument.Parse(await node.Http.GetStringAsync("/api/v1/search?indexset=other&q=*lsewher*&limit=1"));
            Assert.Equal(1_000, other.RootElement.GetProperty("total").GetInt64());
            using var health = await node.Http.GetAsync("/healthz?include=log-store");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Contains(Path.GetFileName(victim), await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            // logwell verify names it, beside the running node.
            var verify = await CliTests.RunAsync(node, null, "verify", "--data", data);
            Assert.Equal(2, verify.ExitCode);
            Assert.Contains($"segment {Path.GetFileName(victim)}: ", verify.Stdout, StringComparison.Ordinal);
            Assert.Matches(@"other: \d+ segments, [\d,]+ events, [\d,]+ bytes: whole", verify.Stdout);

            // A backup taken now stores the damaged segment as it is, and says so.
            var after = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(after.ExitCode == 0, after.Stderr + after.Stdout);
            Assert.Contains($"segment {Path.GetFileName(victim)} is damaged", after.Stderr, StringComparison.Ordinal);
            var list = await CliTests.RunAsync(node, null, "backup", "list", "--from", backups);
            Assert.Contains("holds 1 damaged segments", list.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await node.DisposeAsync();
        }

        // A process of the node still running (a worker, the scheduler: here this test, as one) keeps a restore out.
        using (new FileStream(Path.Combine(data, "node.lock"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            var early = await CliTests.RunAsync(node, null, "restore", "--from", $"{backups}@{beforeDamage}", "--data", data, "--index", "default", "--force");
            Assert.Equal(1, early.ExitCode);
            Assert.Contains("still has it open", early.Stderr, StringComparison.Ordinal);
        }

        // With the node stopped, the index set comes back from the backup: whole, every event it held, the others as they were.
        var restore = await CliTests.RunAsync(node, null, "restore", "--from", $"{backups}@{beforeDamage}", "--data", data, "--index", "default", "--force");
        Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);
        Assert.False(Directory.Exists(Path.Combine(data, ".restoring")));
        var whole = await CliTests.RunAsync(node, null, "verify", "--data", data);
        Assert.True(whole.ExitCode == 0, whole.Stdout + whole.Stderr);
        await using var restored = await LogwellNode.StartAsync(data);
        var older = await DurabilityTests.AllValuesOfN(restored.Http, "older");
        Assert.Equal(Enumerable.Range(0, 20_000).Select(i => (long)i), older.Order());
        // Byte for byte what the node exported before the damage.
        Assert.Equal(exported, await restored.Http.GetStringAsync(ExportOfOlder));
        using var again = JsonDocument.Parse(await restored.Http.GetStringAsync("/api/v1/search?q=*lde*&limit=1"));
        Assert.Equal(20_000, again.RootElement.GetProperty("total").GetInt64());
        using var kept = JsonDocument.Parse(await restored.Http.GetStringAsync("/api/v1/search?indexset=other&q=elsewhere&limit=1"));
        Assert.Equal(1_000, kept.RootElement.GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task ARestoreOfSomeDaysBringsTheirEventsAlone()
    {
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var backups = Path.Combine(dir.Path, "backups");
        var today = DateTimeOffset.UtcNow.UtcDateTime.Date;
        var days = new[] { 3, 2, 1 }.Select(ago => today.AddDays(-ago)).ToList();
        await using (var node = await LogwellNode.StartAsync(data, env: DurabilityTests.SmallMemTables))
        {
            var body = new StringBuilder();
            foreach (var (day, d) in days.Select((day, d) => (day, d)))
            {
                for (var i = 0; i < 1_000; i++)
                {
                    body.Append(System.Globalization.CultureInfo.InvariantCulture, $"{{\"t\":\"{day.AddHours(12).AddSeconds(i):yyyy-MM-ddTHH:mm:ssZ}\",\"message\":\"day {d} event {i}\",\"n\":{(d * 1_000) + i}}}\n");
                }
            }
            // Today's events after them fill the memory table, so the three days are written out as segments.
            for (var i = 0; i < 3_000; i++)
            {
                body.Append(System.Globalization.CultureInfo.InvariantCulture, $"{{\"message\":\"today event {i}\",\"n\":{10_000 + i}}}\n");
            }
            using (var content = new StringContent(body.ToString(), Encoding.UTF8, "application/x-ndjson"))
            {
                (await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content)).EnsureSuccessStatusCode();
            }
            var manifest = Path.Combine(data, "indexsets", "default", "manifest.json");
            long EventsOfPastDays()
            {
                try
                {
                    using var document = JsonDocument.Parse(File.ReadAllText(manifest));
                    return document.RootElement.GetProperty("segments").EnumerateArray()
                        .Where(s => string.CompareOrdinal(s.GetProperty("day").GetString(), today.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)) < 0)
                        .Sum(s => s.GetProperty("events").GetInt64());
                }
                catch (Exception e) when (e is IOException or JsonException)
                {
                    return 0;
                }
            }
            await WaitForAsync(() => EventsOfPastDays() == 3_000);
            var backup = await CliTests.RunAsync(node, null, "backup", "--to", backups);
            Assert.True(backup.ExitCode == 0, backup.Stderr + backup.Stdout);

            var bad = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", Path.Combine(dir.Path, "x"), "--days", "2026-13-01");
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains("--days '2026-13-01'", bad.Stderr, StringComparison.Ordinal);
            var middle = days[1].ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
            var last = days[2].ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
            var restore = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", Path.Combine(dir.Path, "two-days"), "--days", $"{middle}..{last}");
            Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);

            // Not over a data directory that holds more: its index sets would be replaced by those days alone.
            var over = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", data, "--days", middle, "--force");
            Assert.Equal(1, over.ExitCode);
            Assert.Contains("empty data directory", over.Stderr, StringComparison.Ordinal);
            // Nor under a running node.
            var under = await CliTests.RunAsync(node, null, "restore", "--from", backups, "--data", data, "--force");
            Assert.Equal(1, under.ExitCode);
            Assert.Contains("another Logwell process", under.Stderr, StringComparison.Ordinal);
        }
        // Restored days are not expired at once by the index set's retention.
        using (var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "two-days", "indexsets", "default", "indexset.json"))))
        {
            Assert.Equal(36_500, settings.RootElement.GetProperty("retention_days").GetInt32());
        }

        // The two days, whole; none of the day before; of today, at most what was not yet in a segment.
        await using var restored = await LogwellNode.StartAsync(Path.Combine(dir.Path, "two-days"));
        var found = await DurabilityTests.AllValuesOfN(restored.Http, "event");
        Assert.Equal(Enumerable.Range(1_000, 2_000).Select(i => (long)i), found.Where(n => n < 10_000).Order());
        Assert.True(found.Count(n => n >= 10_000) < 3_000);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!condition())
        {
            await Task.Delay(50, timeout.Token);
        }
    }
}
