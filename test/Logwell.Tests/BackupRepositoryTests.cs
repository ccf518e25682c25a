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
        var repository = new BackupRepository(dir.Path);
        async Task<BackupManifest> BackUp(string id, int day, params string[] contents)
        {
            var files = new List<BackupFile>();
            for (var i = 0; i < contents.Length; i++)
            {
                using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(contents[i]));
                files.Add((await repository.AddAsync($"indexsets/default/f{i}", stream, null, CancellationToken.None)).File);
            }
            var manifest = new BackupManifest(id, Start.AddDays(day), "/data", files);
            repository.Save(manifest);
            return manifest;
        }
        var first = await BackUp("first", 0, "shared segment", "only in the first");
        await BackUp("second", 1, "shared segment", "only in the second");
        var third = await BackUp("third", 2, "shared segment", "only in the third");
        var stale = Path.Combine(dir.Path, "objects", ".left-by-a-killed-backup.tmp");
        await File.WriteAllTextAsync(stale, "partial");

        var pruned = repository.Prune(new BackupRetention(1, 0, 0), CancellationToken.None);

        Assert.Equal(["first", "second"], pruned.Removed.Order(StringComparer.Ordinal));
        Assert.Equal(1, pruned.Kept);
        Assert.Equal(2, pruned.RemovedObjects);
        Assert.False(File.Exists(stale));
        Assert.Equal(["third"], repository.List().Select(m => m.Id));
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
        var repository = new BackupRepository(dir.Path);
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
        repository.Save(manifest);
        var loaded = repository.Load("b");
        Assert.Equal(10, loaded.Files[0].Chunks!.Count);
        Assert.Empty(await repository.VerifyAsync(loaded, CancellationToken.None));
        var restored = Path.Combine(dir.Path, "restored");
        await repository.RestoreAsync(loaded, restored, null, null, CancellationToken.None);
        Assert.Equal(log, await File.ReadAllBytesAsync(Path.Combine(restored, "indexsets", "default", "wal-1.log")));

        // A prune keeps every chunk a kept backup lists; a lost chunk is named by verify.
        repository.Prune(new BackupRetention(1, 0, 0), CancellationToken.None);
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
        var repository = new BackupRepository(dir.Path);
        var content = new byte[length];
        new Random(length).NextBytes(content);
        var (file, _, _) = await repository.AddAsync("indexsets/default/wal-1.log", new MemoryStream(content), lengthKnown ? length : null, CancellationToken.None, chunkBytes: 1_024);
        Assert.Equal(length, file.Bytes);
        Assert.Equal(Math.Max(1, (length + 1_023) / 1_024), file.Chunks!.Count);
        Assert.All(file.Chunks, chunk => Assert.InRange(chunk.Bytes, length == 0 ? 0 : 1, 1_024));
        // No stray object: one per distinct chunk.
        Assert.Equal(file.Chunks.Select(c => c.Sha256).Distinct().Count(), Directory.EnumerateFiles(Path.Combine(dir.Path, "objects"), "*.zst", SearchOption.AllDirectories).Count());
        var manifest = new BackupManifest("b", Start, "/data", [file]);
        repository.Save(manifest);
        var restored = Path.Combine(dir.Path, "restored");
        await repository.RestoreAsync(repository.Load("b"), restored, null, null, CancellationToken.None);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(restored, "indexsets", "default", "wal-1.log")));
    }

    [Fact]
    public void BackupsShareTheLockAndAPruneWaitsForThemToEnd()
    {
        using var dir = new TempDirectory();
        var repository = new BackupRepository(dir.Path);
        using (repository.Lock(exclusive: false))
        using (new BackupRepository(dir.Path).Lock(exclusive: false))
        {
            var busy = Assert.Throws<BackupBusyException>(() => repository.Prune(new BackupRetention(1, 0, 0), CancellationToken.None));
            Assert.Contains("a backup is being written", busy.Message, StringComparison.Ordinal);
        }
        using (repository.Lock(exclusive: true))
        {
            var busy = Assert.Throws<BackupBusyException>(() => repository.Lock(exclusive: false));
            Assert.Contains("being pruned", busy.Message, StringComparison.Ordinal);
        }
        Assert.Empty(repository.Prune(new BackupRetention(1, 0, 0), CancellationToken.None).Removed);
    }
}
