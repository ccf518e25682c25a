using Logwell.Hosting.Supervisor;

namespace Logwell.Tests;

public sealed class RotatingLogTests
{
    [Fact]
    public async Task ProgramsSharingAFileKeepEveryLineThroughItsRotations()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "shared.log");
        // 3 writers x 500 lines of 20 bytes (30,000 bytes) through a 4,000-byte file with 10 backups: nothing is dropped.
        var logs = Enumerable.Range(0, 3).Select(_ => RotatingLog.Open(new LogTarget(path, 4_000, 10))).ToList();
        Assert.Same(logs[0], logs[2]);
        await Task.WhenAll(logs.Select((log, writer) => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                log.Write(System.Text.Encoding.ASCII.GetBytes($"writer {writer} line {i:000}\n"));
            }
        })));
        var files = Directory.GetFiles(dir.Path, "shared.log*");
        Assert.All(files, file => Assert.True(new FileInfo(file).Length <= 4_000, $"{file} is {new FileInfo(file).Length} bytes"));
        var lines = files.SelectMany(File.ReadAllLines).ToList();
        Assert.Equal(1_500, lines.Count);
        Assert.Equal(1_500, lines.Distinct().Count());
        Assert.All(lines, line => Assert.Matches(@"^writer \d line \d{3}$", line));

        // The file stays open until the last program lets go of it; then a new one is opened afresh.
        logs[0].Dispose();
        logs[1].Dispose();
        logs[2].Write("after\n"u8);
        logs[2].Dispose();
        using var next = RotatingLog.Open(new LogTarget(path, 4_000, 10));
        Assert.NotSame(logs[0], next);
        Assert.EndsWith("after", File.ReadAllLines(path)[^1], StringComparison.Ordinal);
    }

    [Fact]
    public void AWriteLandsAtTheEndWhateverElseWritesTheFile()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "out.log");
        using var log = RotatingLog.Open(new LogTarget(path, 0, 0));
        log.Write("first\n"u8);
        File.AppendAllText(path, "another process\n");
        log.Write("second\n"u8);
        Assert.Equal(["first", "another process", "second"], File.ReadAllLines(path));
    }

    [Fact]
    public void AFailedRotationLeavesTheLogWritable()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "out.log");
        // A directory where the first backup goes: the rotation's rename fails.
        Directory.CreateDirectory(path + ".1");
        using var log = RotatingLog.Open(new LogTarget(path, 100, 3));
        log.Write(System.Text.Encoding.ASCII.GetBytes(new string('a', 60) + "\n"));
        Assert.ThrowsAny<IOException>(() => log.Write(System.Text.Encoding.ASCII.GetBytes(new string('b', 60) + "\n")));
        Directory.Delete(path + ".1");
        log.Write("after\n"u8);
        Assert.EndsWith("after", File.ReadAllLines(path)[^1], StringComparison.Ordinal);
    }
}
