using Microsoft.Extensions.Time.Testing;
using Logwell.Jobs;
using Logwell.Server.Exports;
using Logwell.Server.Hosting;
using Logwell.Server.Tasks;
using Microsoft.Extensions.Logging.Abstractions;

namespace Logwell.Tests;

/// <summary>The periodic export clean-up: exports whose task died fail, old downloads expire, old files go.</summary>
public sealed class ExportCleanupTests
{
    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task ExportsOfDeadTasksFailAndFinishedOnesExpireThenVanish(string backend)
    {
        await using var file = TestQueue.Create(backend);
        var queue = file.Queue;
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var exports = new ExportStore(dir.Path, clock);
        var options = new LogwellOptions { DataDirectory = dir.Path };
        ExportRecord Create() => exports.Create("local", "app", "", null, null, [], "csv", false, 1000, 10);

        // An export whose task went dead (its worker kept dying) without the export hearing of it.
        var orphan = Create();
        var orphanTask = await queue.EnqueueAsync(new TaskRequest(BuiltinTasks.Export, "{}", "export") { MaxRetries = 0 });
        exports.SetTask(orphan.Id, orphanTask);
        Assert.True(exports.Start(orphan.Id));
        var leased = Assert.Single(await queue.LeaseAsync(["export"], "w", 1, TimeSpan.FromMinutes(5)));
        Assert.True(await queue.FailAsync(leased, "worker killed"));
        // One still waiting for its worker.
        var waiting = Create();
        exports.SetTask(waiting.Id, await queue.EnqueueAsync(new TaskRequest(BuiltinTasks.Export, "{}", "export")));
        // One finished, with its file.
        var finished = Create();
        Assert.True(exports.Start(finished.Id));
        exports.Packaging(finished.Id);
        await File.WriteAllTextAsync(exports.FilePath(finished), "gzip bytes");
        exports.Done(finished.Id, 10, TimeSpan.FromHours(24));

        // Too young to judge: an export's task gets a minute to be recorded.
        await BuiltinTasks.CleanExportsAsync(options, queue, exports, NullLogger.Instance, CancellationToken.None);
        Assert.Equal(ExportState.Running, exports.Get(orphan.Id)!.State);

        clock.Advance(TimeSpan.FromMinutes(2));
        await BuiltinTasks.CleanExportsAsync(options, queue, exports, NullLogger.Instance, CancellationToken.None);
        var failed = exports.Get(orphan.Id)!;
        Assert.Equal(ExportState.Failed, failed.State);
        Assert.Contains("worker killed", failed.Error, StringComparison.Ordinal);
        Assert.Equal(ExportState.Queued, exports.Get(waiting.Id)!.State);
        Assert.Equal(ExportState.Done, exports.Get(finished.Id)!.State);

        clock.Advance(TimeSpan.FromHours(25));
        await BuiltinTasks.CleanExportsAsync(options, queue, exports, NullLogger.Instance, CancellationToken.None);
        Assert.Equal(ExportState.Expired, exports.Get(finished.Id)!.State);
        Assert.True(File.Exists(exports.FilePath(finished)));

        clock.Advance(TimeSpan.FromDays(2));
        await BuiltinTasks.CleanExportsAsync(options, queue, exports, NullLogger.Instance, CancellationToken.None);
        Assert.Null(exports.Get(finished.Id));
        Assert.Null(exports.Get(orphan.Id));
        Assert.False(File.Exists(exports.FilePath(finished)));
        Assert.NotNull(exports.Get(waiting.Id));
    }
}
