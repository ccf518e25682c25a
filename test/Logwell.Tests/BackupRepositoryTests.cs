using Logwell.Storage.Backup;

namespace Logwell.Tests;

public sealed class BackupRepositoryTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 2, 1, 0, 0, TimeSpan.Zero); // a Monday

    private static BackupManifest At(string id, DateTimeOffset created) => new(id, created, "/data", []);

    [Fact]
    public void RetentionKeepsTheNewestOfEachDayAndWeekThatHasABackup()
    {
        // Two backups a day for 21 days, none on the 10th and 11th day.
        var backups = Enumerable.Range(0, 21).Where(day => day is not (10 or 11))
            .SelectMany(day => new[] { At($"d{day:00}a", Start.AddDays(day)), At($"d{day:00}b", Start.AddDays(day).AddHours(12)) })
            .ToList();

        var daily = new BackupRetention(0, 3, 0).Keep(backups);
        Assert.Equal(["d18b", "d19b", "d20b"], daily.Order(StringComparer.Ordinal));

        // Weeks start on Monday: days 0–6, 7–13, 14–20.
        var weekly = new BackupRetention(0, 0, 3).Keep(backups);
        Assert.Equal(["d06b", "d13b", "d20b"], weekly.Order(StringComparer.Ordinal));

        // Days without a backup do not use up a daily slot.
        var acrossTheGap = new BackupRetention(0, 10, 0).Keep(backups);
        // (days 20 to 12 are nine, the tenth is day 9)
        Assert.Contains("d09b", acrossTheGap);
        Assert.DoesNotContain("d09a", acrossTheGap);
        Assert.DoesNotContain("d08b", acrossTheGap);

        var combined = new BackupRetention(1, 1, 2).Keep(backups);
        Assert.Equal(["d13b", "d20b"], combined.Order(StringComparer.Ordinal));

        // No rule: nothing goes; the newest always stays.
        Assert.Equal(backups.Count, new BackupRetention(0, 0, 0).Keep(backups).Count);
        Assert.Equal(["d20b"], new BackupRetention(0, 1, 0).Keep([.. backups.AsEnumerable().Reverse()]));
        Assert.Throws<ArgumentException>(() => new BackupRetention(0, -1, 0).Keep(backups));
    }

    [Fact]
    public async Task PruneDeletesUnkeptBackupsAndOnlyTheObjectsNoKeptBackupLists()
    {
        using var dir = new TempDirectory();
        using var repository = new BackupRepository(new DirectoryBackupStorage(dir.Path));
        async Task<BackupManifest> BackUp(string id, int day, params string[] contents)
        {
            var files = new List<BackupFile>();
            for (var i = 0; i < contents.Length; i++)
            {
                using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(contents[i]));
                files.Add((await repository.AddAsync($"indexsets/default/f{i}", stream, null, CancellationToken.None)).File);
            }
            var manifest = new BackupManifest(id, Start.AddDays(day), "/data", files);
            await repository.SaveAsync(manifest, CancellationToken.None);
            return manifest;
        }
        var first = await BackUp("first", 0, "shared segment", "only in the first");
        await BackUp("second", 1, "shared segment", "only in the second");
        var third = await BackUp("third", 2, "shared segment", "only in the third");
        var stale = Path.Combine(dir.Path, "objects", ".left-by-a-killed-backup.tmp");
        await File.WriteAllTextAsync(stale, "partial");

        var pruned = await repository.PruneAsync(new BackupRetention(1, 0, 0), CancellationToken.None);

        Assert.Equal(["first", "second"], pruned.Removed.Order(StringComparer.Ordinal));
        Assert.Equal(1, pruned.Kept);
        Assert.Equal(2, pruned.RemovedObjects);
        Assert.False(File.Exists(stale));
        Assert.Equal(["third"], (await repository.ListAsync(CancellationToken.None)).Select(m => m.Id));
        Assert.Empty(await repository.VerifyAsync(third, CancellationToken.None));
        // The shared object stayed; what only the first held is gone.
        Assert.Empty(await repository.VerifyAsync(third with { Files = [first.Files[0]] }, CancellationToken.None));
        Assert.NotEmpty(await repository.VerifyAsync(first, CancellationToken.None));
        Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(dir.Path, "objects"), "*.zst", SearchOption.AllDirectories).Count());
    }

    [Fact]
    public async Task AGrowingFileInChunksSharesAllButItsLastChunkWithTheBackupBefore()
    {
        using var dir = new TempDirectory();
        using var repository = new BackupRepository(new DirectoryBackupStorage(dir.Path));
        var log = new byte[10_000];
        new Random(7).NextBytes(log);
        var (first, firstObjects, _) = await repository.AddAsync("indexsets/default/wal-1.log", new MemoryStream(log), 6_500, CancellationToken.None, chunkBytes: 1_024);
        Assert.Equal(7, first.Chunks!.Count);
        Assert.Equal(7, firstObjects);
        Assert.Equal(6_500, first.Bytes);

        // The log grew: the six whole chunks are stored already; the partial seventh and the new ones are not.
        var (second, secondObjects, _) = await repository.AddAsync("indexsets/default/wal-1.log", new MemoryStream(log), log.Length, CancellationToken.None, chunkBytes: 1_024);
        Assert.Equal(10, second.Chunks!.Count);
        Assert.Equal(4, secondObjects);
        Assert.Equal(first.Chunks.Take(6).Select(c => c.Sha256), second.Chunks.Take(6).Select(c => c.Sha256));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(log)), second.Sha256);

        var manifest = new BackupManifest("b", Start, "/data", [second]);
        await repository.SaveAsync(manifest, CancellationToken.None);
        var loaded = await repository.LoadAsync("b", CancellationToken.None);
        Assert.Equal(10, loaded.Files[0].Chunks!.Count);
        Assert.Empty(await repository.VerifyAsync(loaded, CancellationToken.None));
        var restored = Path.Combine(dir.Path, "restored");
        await repository.RestoreAsync(loaded, restored, null, null, CancellationToken.None);
        Assert.Equal(log, await File.ReadAllBytesAsync(Path.Combine(restored, "indexsets", "default", "wal-1.log")));

        // A prune keeps every chunk a kept backup lists; a lost chunk is named by verify.
        await repository.PruneAsync(new BackupRetention(1, 0, 0), CancellationToken.None);
        Assert.Empty(await repository.VerifyAsync(loaded, CancellationToken.None));
        var lost = second.Chunks[3].Sha256;
        File.Delete(Path.Combine(dir.Path, "objects", lost[..2], lost + ".zst"));
        Assert.Contains(await repository.VerifyAsync(loaded, CancellationToken.None), p => p.Contains(lost, StringComparison.Ordinal) && p.Contains("missing", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(0, true)]
    [InlineData(1_024, false)]
    [InlineData(1_024, true)]
    [InlineData(3_072, true)]
    [InlineData(1_025, true)]
    public async Task ChunkedFilesOfEveryLengthComeBackWhole(int length, bool lengthKnown)
    {
        using var dir = new TempDirectory();
        using var repository = new BackupRepository(new DirectoryBackupStorage(dir.Path));
        var content = new byte[length];
        new Random(length).NextBytes(content);
        var (file, _, _) = await repository.AddAsync("indexsets/default/wal-1.log", new MemoryStream(content), lengthKnown ? length : null, CancellationToken.None, chunkBytes: 1_024);
        Assert.Equal(length, file.Bytes);
        Assert.Equal(Math.Max(1, (length + 1_023) / 1_024), file.Chunks!.Count);
        Assert.All(file.Chunks, chunk => Assert.InRange(chunk.Bytes, length == 0 ? 0 : 1, 1_024));
        // No stray object: one per distinct chunk.
        Assert.Equal(file.Chunks.Select(c => c.Sha256).Distinct().Count(), Directory.EnumerateFiles(Path.Combine(dir.Path, "objects"), "*.zst", SearchOption.AllDirectories).Count());
        var manifest = new BackupManifest("b", Start, "/data", [file]);
        await repository.SaveAsync(manifest, CancellationToken.None);
        var restored = Path.Combine(dir.Path, "restored");
        await repository.RestoreAsync(await repository.LoadAsync("b", CancellationToken.None), restored, null, null, CancellationToken.None);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(restored, "indexsets", "default", "wal-1.log")));
    }

    [Fact]
    public async Task BackupsShareTheLockAndAPruneWaitsForThemToEnd()
    {
        using var dir = new TempDirectory();
        using var repository = new BackupRepository(new DirectoryBackupStorage(dir.Path));
        using var other = new BackupRepository(new DirectoryBackupStorage(dir.Path));
        await using (await repository.LockAsync(BackupLockKind.Write, CancellationToken.None))
        await using (await other.LockAsync(BackupLockKind.Read, CancellationToken.None))
        {
            var busy = await Assert.ThrowsAsync<BackupBusyException>(() => repository.PruneAsync(new BackupRetention(1, 0, 0), CancellationToken.None));
            Assert.Contains("a backup is being written", busy.Message, StringComparison.Ordinal);
        }
        await using (await repository.LockAsync(BackupLockKind.Prune, CancellationToken.None))
        {
            var busy = await Assert.ThrowsAsync<BackupBusyException>(() => other.LockAsync(BackupLockKind.Write, CancellationToken.None));
            Assert.Contains("being pruned", busy.Message, StringComparison.Ordinal);
        }
        Assert.Empty((await repository.PruneAsync(new BackupRetention(1, 0, 0), CancellationToken.None)).Removed);
    }

    [Theory]
    [InlineData("s3://logwell-backups", "logwell-backups", "")]
    [InlineData("s3://logwell-backups/", "logwell-backups", "")]
    [InlineData("s3://logwell.backups/site-a/node1/", "logwell.backups", "site-a/node1")]
    public void ABucketDestinationNamesItsBucketAndPrefix(string destination, string bucket, string prefix)
    {
        Assert.True(S3BackupStorage.Names(destination));
        Assert.Equal((bucket, prefix), S3BackupStorage.Parse(destination));
    }

    [Theory]
    [InlineData("s3://")]
    [InlineData("s3://ab")]
    [InlineData("s3://Upper-Case")]
    [InlineData("s3://bucket/a//b")]
    [InlineData("s3://bucket/../other")]
    public void ADestinationThatNamesNoBucketIsRefusedWithTheForm(string destination)
    {
        var error = Assert.Throws<ArgumentException>(() => S3BackupStorage.Parse(destination));
        Assert.Contains("s3://bucket/prefix", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"to\": \"/backups/logwell\", \"keep_daily\": 7}", "/backups/logwell", null)]
    [InlineData("{\"to\": \"s3://logwell-backups/node1\"}", "s3://logwell-backups/node1", null)]
    [InlineData("{\"to\": \"backups\"}", null, "s3://bucket/prefix")]
    [InlineData("{\"to\": \"s3://No_Bucket\"}", null, "is not s3://bucket")]
    [InlineData("{\"to\": \"/b\", \"keep_last\": -1}", null, "keep_last must be")]
    public void ABackupRequestTakesADirectoryOrABucket(string body, string? to, string? error)
    {
        using var document = System.Text.Json.JsonDocument.Parse(body);
        if (to is not null)
        {
            Assert.Equal(to, Logwell.Server.Tasks.BuiltinTasks.BackupRequest(document.RootElement).To);
        }
        else
        {
            var refused = Assert.Throws<FormatException>(() => Logwell.Server.Tasks.BuiltinTasks.BackupRequest(document.RootElement));
            Assert.Contains(error!, refused.Message, StringComparison.Ordinal);
        }
    }
}
