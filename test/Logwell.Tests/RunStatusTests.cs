using Logwell.Hosting;

namespace Logwell.Tests;

public sealed class RunStatusTests
{
    [Fact]
    public void AStatusIsReadWhileFreshByTheWritersClockNotTheFileSystems()
    {
        using var dir = new TempDirectory();
        // A writer whose clock is far from the file system's: the age comes from the time in the file.
        var written = new DateTimeOffset(2031, 6, 1, 12, 0, 0, TimeSpan.Zero);
        RunStatus.Write(Path.Combine(dir.Path, "master.status.json"), written, """{"workers":4}""");
        using (var fresh = RunStatus.Read(dir.Path, "master.status.json", written.AddSeconds(9)))
        {
            Assert.Equal(4, fresh!.RootElement.GetProperty("workers").GetInt32());
        }
        Assert.Null(RunStatus.Read(dir.Path, "master.status.json", written.AddSeconds(10)));
        Assert.Null(RunStatus.Read(dir.Path, "nothing.status.json", written));
        // A file in the format before the time was written into it counts as stale.
        File.WriteAllText(Path.Combine(dir.Path, "old.status.json"), """{"workers":4}""");
        Assert.Null(RunStatus.Read(dir.Path, "old.status.json", written));
    }
}
