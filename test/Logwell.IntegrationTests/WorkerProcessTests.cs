using System.Globalization;
using Logwell.Jobs;

namespace Logwell.IntegrationTests;

/// <summary>
/// <c>logwell worker</c> processes on a node's task queue (each backend), running <c>diag.record</c> tasks that leave a line per start
/// and per completion: the effects are counted from those lines.
/// </summary>
public sealed class WorkerProcessTests
{
    /// <summary>One line a <c>diag.record</c> task wrote.</summary>
    internal sealed record Record(string Kind, string Mark, long Task, int Attempt, int Pid);

    internal static List<Record> ReadRecords(string dataDirectory)
    {
        var directory = Path.Combine(dataDirectory, "diag");
        if (!Directory.Exists(directory))
        {
            return [];
        }
        var records = new List<Record>();
        foreach (var file in Directory.GetFiles(directory, "records-*.log"))
        {
            foreach (var line in File.ReadAllLines(file))
            {
                var parts = line.Split(' ');
                if (parts.Length == 5)
                {
                    records.Add(new Record(parts[0], parts[1], long.Parse(parts[2], CultureInfo.InvariantCulture), int.Parse(parts[3], CultureInfo.InvariantCulture), int.Parse(parts[4], CultureInfo.InvariantCulture)));
                }
            }
        }
        return records;
    }

    internal static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout, Func<string> explain)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out: " + explain());
            }
            await Task.Delay(100);
        }
    }

    private static (string, string) LeaseSeconds(int seconds) => ("LOGWELL_TaskLeaseSeconds", seconds.ToString(CultureInfo.InvariantCulture));

    private static string[] WorkerArguments(string data, params string[] more) => ["worker", "--data", data, .. more];

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task AWorkerKilledInTheMiddleOfATaskIsReplacedAndTheTaskRunsAgainAndCompletesOnce(string backend)
    {
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        var queue = queues.Queue;
        var id = await queue.EnqueueAsync(new TaskRequest("diag.record", """{"mark":"killed","ms":3000}"""));
        await using var worker = RoleProcess.Start(WorkerArguments(dir.Path, "-Q", "default", "-c", "1"), queues.With(LeaseSeconds(3)));
        await WaitForAsync(() => ReadRecords(dir.Path).Any(r => r.Kind == "start"), TimeSpan.FromSeconds(60), () => worker.Output);
        var first = ReadRecords(dir.Path).Single();
        RoleProcess.Signal(first.Pid, "KILL");

        // The standalone worker starts a new process; once the dead one's lease expires the task runs there.
        await WaitForAsync(() => ReadRecords(dir.Path).Any(r => r.Kind == "done"), TimeSpan.FromSeconds(60), () => worker.Output);
        var records = ReadRecords(dir.Path);
        var starts = records.Where(r => r.Kind == "start").ToList();
        Assert.Equal(2, starts.Count);
        Assert.Equal([1, 2], starts.Select(r => r.Attempt).Order());
        Assert.NotEqual(starts[0].Pid, starts[1].Pid);
        var done = Assert.Single(records, r => r.Kind == "done");
        Assert.Equal(2, done.Attempt);
        Assert.Contains("starting a new one", worker.Output, StringComparison.Ordinal);
        await WaitForAsync(() => queue.InspectAsync(id).Result?.State == "done", TimeSpan.FromSeconds(10), () => worker.Output);
    }

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task ATaskRunningThreeTimesItsLeaseIsNeverStartedASecondTimeWhileAlive(string backend)
    {
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        var id = await queues.Queue.EnqueueAsync(new TaskRequest("diag.record", """{"mark":"long","ms":9000}"""));
        // Two workers with free slots: either would take the task if its lease lapsed.
        await using var one = RoleProcess.Start(WorkerArguments(dir.Path, "-Q", "default", "-c", "2"), queues.With(LeaseSeconds(3)));
        await using var two = RoleProcess.Start(WorkerArguments(dir.Path, "-Q", "default", "-c", "2"), queues.With(LeaseSeconds(3)));
        await WaitForAsync(() => ReadRecords(dir.Path).Any(r => r.Kind == "done"), TimeSpan.FromSeconds(90), () => one.Output + two.Output);
        var records = ReadRecords(dir.Path);
        Assert.Single(records, r => r.Kind == "start");
        Assert.Equal(1, Assert.Single(records, r => r.Kind == "done").Attempt);
        await WaitForAsync(() => queues.Queue.InspectAsync(id).Result is ("done", 1, null), TimeSpan.FromSeconds(10), () => $"{queues.Queue.InspectAsync(id).Result}");
    }

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task TenThousandTasksAcrossThreeRecyclingWorkerProcessesEachCompleteExactlyOnce(string backend)
    {
        const int Tasks = 10_000;
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        var queue = queues.Queue;
        for (var i = 0; i < Tasks; i++)
        {
            await queue.EnqueueAsync(new TaskRequest("diag.record", $$"""{"mark":"t{{i}}"}"""));
        }
        var workers = new List<RoleProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                workers.Add(RoleProcess.Start(WorkerArguments(dir.Path, "-Q", "default", "-c", "4", "--max-tasks-per-child", "1500"), queues.Settings));
            }
            await WaitForAsync(() => queue.StatsAsync().Result.SingleOrDefault(q => q.Queue == "default")?.Done == Tasks, TimeSpan.FromMinutes(5),
                () => string.Join("\n", queue.StatsAsync().Result) + string.Concat(workers.Select(w => w.Output)));
            var records = ReadRecords(dir.Path);
            var done = records.Where(r => r.Kind == "done").ToList();
            Assert.Equal(Tasks, done.Count);
            Assert.Equal(Tasks, done.Select(r => r.Mark).Distinct().Count());
            Assert.Equal(Tasks, records.Count(r => r.Kind == "start"));
            // Every worker took part, and each replaced its process several times on the way.
            Assert.True(done.Select(r => r.Pid).Distinct().Count() >= 6, $"{done.Select(r => r.Pid).Distinct().Count()} processes ran tasks");
            Assert.All(workers, w => Assert.Contains("process recycled", w.Output, StringComparison.Ordinal));
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }
    }

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task SigtermFinishesTheRunningTaskWithinTheGraceAndHandsBackTheOneThatWouldOutliveIt(string backend)
    {
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        var queue = queues.Queue;
        var shortTask = await queue.EnqueueAsync(new TaskRequest("diag.record", """{"mark":"short","ms":1500}"""));
        var longTask = await queue.EnqueueAsync(new TaskRequest("diag.record", """{"mark":"long","ms":120000}"""));
        await using var worker = RoleProcess.Start(WorkerArguments(dir.Path, "-Q", "default", "-c", "2", "--grace", "4"), queues.Settings);
        await WaitForAsync(() => ReadRecords(dir.Path).Count(r => r.Kind == "start") == 2, TimeSpan.FromSeconds(60), () => worker.Output);

        RoleProcess.Signal(worker.Id, "TERM");
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(("done", 1, (string?)null), await queue.InspectAsync(shortTask));
        // Handed back untouched: pending, no attempt counted, ready for the next worker.
        Assert.Equal(("pending", 0, (string?)null), await queue.InspectAsync(longTask));
        Assert.DoesNotContain(ReadRecords(dir.Path), r => r.Kind == "done" && r.Mark == "long");
    }

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task ATaskPastItsHardTimeLimitGetsItsWorkerProcessReplaced(string backend)
    {
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        var queue = queues.Queue;
        // diag.record ignores nothing: without a soft limit only the hard one stops it.
        var stuck = await queue.EnqueueAsync(new TaskRequest("diag.record", """{"mark":"stuck","ms":60000}""") { HardTimeLimit = TimeSpan.FromSeconds(1), MaxRetries = 0 });
        await using var worker = RoleProcess.Start(WorkerArguments(dir.Path, "-Q", "default", "-c", "1"), queues.With(LeaseSeconds(3)));
        await WaitForAsync(() => worker.Output.Contains("replacing the process", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => worker.Output);
        // The abandoned task ran once and was never completed; with no retries left it is buried once its lease lapses.
        await WaitForAsync(() => queue.InspectAsync(stuck).Result?.State == "dead", TimeSpan.FromSeconds(60), () => $"{queue.InspectAsync(stuck).Result}\n{worker.Output}");
        Assert.Single(ReadRecords(dir.Path), r => r.Kind == "start");
        Assert.DoesNotContain(ReadRecords(dir.Path), r => r.Kind == "done");
    }
}
