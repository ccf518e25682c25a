using System.Collections.Concurrent;
using Logwell.Jobs;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>Workers in process over each queue backend; leases, limits and grace periods on a fake clock the tests move.</summary>
public sealed class WorkerTests
{
    private static WorkerOptions Options(int concurrency = 4) => new(["default"])
    {
        Concurrency = concurrency,
        Lease = TimeSpan.FromSeconds(30),
        PollInterval = TimeSpan.FromMilliseconds(20),
        GracePeriod = TimeSpan.FromMilliseconds(300),
    };

    /// <summary>A fake clock for a worker and its queue; it starts at an arbitrary fixed instant.</summary>
    private static FakeTimeProvider Clock() => new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    private static async Task<QueueStats> StatsAsync(ITaskQueue queue) => Assert.Single(await queue.StatsAsync());

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task WorkersRunEveryTaskOnceAndRecycleWithoutLosingAny(string backend)
    {
        await using var file = TestQueue.Create(backend);
        var queue = file.Queue;
        var effects = new ConcurrentDictionary<string, int>();
        var handlers = new Dictionary<string, TaskHandler>
        {
            ["count"] = (task, _) =>
            {
                effects.AddOrUpdate(task.Arguments, 1, (_, n) => n + 1);
                return Task.CompletedTask;
            },
        };
        for (var i = 0; i < 300; i++)
        {
            await queue.EnqueueAsync(new TaskRequest("count", $"{{\"n\":{i}}}"));
        }
        // Two workers, each recycled after 50 tasks and replaced, as the supervisor does, until every task is done.
        var exits = new ConcurrentBag<WorkerExit>();
        using var allDone = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var watch = Task.Run(async () =>
        {
            while ((await StatsAsync(queue)).Done < 300 && !allDone.IsCancellationRequested)
            {
                await Task.Delay(20);
            }
            await allDone.CancelAsync();
        });
        await Parallel.ForAsync(0, 2, async (w, _) =>
        {
            for (var generation = 0; ; generation++)
            {
                var worker = new Worker(queue, handlers, Options() with { MaxTasksPerChild = 50 }, $"w{w}.{generation}", TimeProvider.System);
                var exit = await worker.RunAsync(allDone.Token);
                exits.Add(exit);
                if (exit == WorkerExit.Stopped)
                {
                    return;
                }
                Assert.Equal(WorkerExit.Recycle, exit);
                Assert.Equal(50, worker.Finished);
            }
        });
        await watch;
        Assert.Equal(300, effects.Count);
        Assert.All(effects.Values, n => Assert.Equal(1, n));
        Assert.Equal(300, (await StatsAsync(queue)).Done);
        Assert.Contains(WorkerExit.Recycle, exits);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task ATaskLongerThanThreeLeasesIsNeverRunTwiceWhileAlive(string backend)
    {
        var time = Clock();
        await using var file = TestQueue.Create(backend, time);
        var queue = new InstrumentedQueue(file.Queue);
        var starts = 0;
        var handlers = new Dictionary<string, TaskHandler>
        {
            ["slow"] = async (_, ct) =>
            {
                Interlocked.Increment(ref starts);
                await Task.Delay(TimeSpan.FromMinutes(16), time, ct);
            },
        };
        await queue.EnqueueAsync(new TaskRequest("slow", "{}"));
        using var stop = new CancellationTokenSource();
        // A five-minute lease, renewed every 100 seconds, over a task of sixteen minutes; a second worker polls all along.
        // The clock moves 2 s a step: a renewal may come 100 steps (a second or more of real time) late and still hold.
        var options = Options() with { Lease = TimeSpan.FromMinutes(5) };
        var first = new Worker(queue, handlers, options, "first", time);
        var second = new Worker(queue, handlers, options, "second", time);
        var running = Task.WhenAll(first.RunAsync(stop.Token), second.RunAsync(stop.Token));
        await FakeClock.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref starts) == 1), "the task starts");
        await time.AdvanceUntilAsync(async () => (await StatsAsync(queue)).Done == 1, TimeSpan.FromSeconds(2), "the task completes");
        await stop.CancelAsync();
        await running;
        Assert.Equal(1, starts);
        // Kept across more than three lease times by its renewals.
        Assert.True(queue.Renewals >= 4, $"{queue.Renewals} renewals");
        Assert.Equal(1, (await StatsAsync(queue)).Done);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task SoftLimitsCancelAndFailThenRetryAndHardLimitsGiveUpTheProcess(string backend)
    {
        var time = Clock();
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        var attempts = 0;
        var handlers = new Dictionary<string, TaskHandler>
        {
            ["stuck"] = async (_, ct) =>
            {
                Interlocked.Increment(ref attempts);
                await Task.Delay(Timeout.InfiniteTimeSpan, time, ct);
            },
            // Ignores its cancellation token.
            ["deaf"] = (_, _) => Task.Delay(TimeSpan.FromSeconds(5), time, CancellationToken.None),
        };
        var stuck = await queue.EnqueueAsync(new TaskRequest("stuck", "{}") { SoftTimeLimit = TimeSpan.FromMilliseconds(50), MaxRetries = 1 });
        using (var stop = new CancellationTokenSource())
        {
            var run = new Worker(queue, handlers, Options(), "w", time).RunAsync(stop.Token);
            await time.AdvanceUntilAsync(async () => (await StatsAsync(queue)).Dead == 1, TimeSpan.FromMilliseconds(10), "the stuck task is dead");
            await stop.CancelAsync();
            Assert.Equal(WorkerExit.Stopped, await run);
        }
        Assert.Equal(2, attempts);
        var (state, _, error) = (await queue.InspectAsync(stuck))!.Value;
        Assert.Equal("dead", state);
        Assert.StartsWith("soft time limit of 0.05 s exceeded", error, StringComparison.Ordinal);

        await queue.EnqueueAsync(new TaskRequest("deaf", "{}") { HardTimeLimit = TimeSpan.FromMilliseconds(100) });
        using var never = new CancellationTokenSource();
        var deaf = new Worker(queue, handlers, Options(), "w2", time).RunAsync(never.Token);
        await time.AdvanceUntilAsync(() => Task.FromResult(deaf.IsCompleted), TimeSpan.FromMilliseconds(10), "the worker gives up");
        Assert.Equal(WorkerExit.HardLimit, await deaf);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task AWarmShutdownFinishesWhatItCanAndHandsBackTheRest(string backend)
    {
        var time = Clock();
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        var handlers = new Dictionary<string, TaskHandler>
        {
            ["quick"] = (_, ct) => Task.Delay(TimeSpan.FromSeconds(1), time, ct),
            ["long"] = (_, ct) => Task.Delay(Timeout.InfiniteTimeSpan, time, ct),
        };
        await queue.EnqueueAsync(new TaskRequest("quick", "{}"));
        var longId = await queue.EnqueueAsync(new TaskRequest("long", "{}"));
        using var stop = new CancellationTokenSource();
        // A grace period of a minute, inside a lease of ten: the quick task has many steps of the fake clock to record its
        // outcome before the grace ends, and no renewal is needed while the grace runs.
        var run = new Worker(queue, handlers, Options() with { GracePeriod = TimeSpan.FromMinutes(1), Lease = TimeSpan.FromMinutes(10) }, "w", time).RunAsync(stop.Token);
        await FakeClock.WaitUntilAsync(async () => (await StatsAsync(queue)).Running == 2, "both tasks run");
        // Stopped while both run: the quick one finishes within the grace period, the endless one is handed back after it.
        await stop.CancelAsync();
        await time.AdvanceUntilAsync(async () => (await StatsAsync(queue)).Done == 1, TimeSpan.FromMilliseconds(100), "the quick task completes");
        Assert.False(run.IsCompleted);
        await time.AdvanceUntilAsync(() => Task.FromResult(run.IsCompleted), TimeSpan.FromSeconds(1), "the grace period ends");
        Assert.Equal(WorkerExit.Stopped, await run);
        var stats = await StatsAsync(queue);
        Assert.Equal((1L, 1L, 0L), (stats.Done, stats.Pending, stats.Running));
        // Handed back without spending an attempt.
        Assert.Equal(("pending", 0), ((await queue.InspectAsync(longId))!.Value.State, (await queue.InspectAsync(longId))!.Value.Attempts));
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task AWorkerAboveItsMemoryBoundRecyclesAfterTheTasksItTookAndNeverBefore(string backend)
    {
        await using var file = TestQueue.Create(backend);
        var queue = file.Queue;
        var effects = new ConcurrentDictionary<string, int>();
        var handlers = new Dictionary<string, TaskHandler>
        {
            ["count"] = (task, _) =>
            {
                effects.AddOrUpdate(task.Arguments, 1, (_, n) => n + 1);
                return Task.CompletedTask;
            },
        };
        for (var i = 0; i < 9; i++)
        {
            await queue.EnqueueAsync(new TaskRequest("count", $"{{\"n\":{i}}}"));
        }
        // Every process uses more than one byte: each worker runs the tasks of one lease, then recycles.
        for (var generation = 0; effects.Count < 9; generation++)
        {
            Assert.True(generation < 20, "the workers stopped making progress");
            var worker = new Worker(queue, handlers, Options(concurrency: 2) with { MaxMemoryBytes = 1 }, $"w{generation}", TimeProvider.System);
            Assert.Equal(WorkerExit.Recycle, await worker.RunAsync(CancellationToken.None));
            Assert.InRange(worker.Finished, 1, 2);
        }
        Assert.All(effects.Values, n => Assert.Equal(1, n));
    }

    /// <summary>
    /// The real queue, counting the lease renewals that reached it; when <paramref name="unreliable"/>, every third
    /// lease, renewal and outcome fails, as with a queue server that restarts or a busy file.
    /// </summary>
    private sealed class InstrumentedQueue(ITaskQueue inner, bool unreliable = false) : ITaskQueue
    {
        private int _calls;
        private int _renewals;

        public int Renewals => Volatile.Read(ref _renewals);

        private void MaybeFail()
        {
            if (unreliable && Interlocked.Increment(ref _calls) % 3 == 0)
            {
                throw new IOException("connection reset (injected)");
            }
        }

        public Task<long> EnqueueAsync(TaskRequest request, CancellationToken cancellationToken = default) => inner.EnqueueAsync(request, cancellationToken);

        public Task<IReadOnlyList<LeasedTask>> LeaseAsync(IReadOnlyList<string> queues, string owner, int max, TimeSpan lease, CancellationToken cancellationToken = default)
        {
            MaybeFail();
            return inner.LeaseAsync(queues, owner, max, lease, cancellationToken);
        }

        public async Task<bool> RenewAsync(LeasedTask task, TimeSpan lease, CancellationToken cancellationToken = default)
        {
            MaybeFail();
            var renewed = await inner.RenewAsync(task, lease, cancellationToken);
            Interlocked.Increment(ref _renewals);
            return renewed;
        }

        public Task<bool> CompleteAsync(LeasedTask task, CancellationToken cancellationToken = default)
        {
            MaybeFail();
            return inner.CompleteAsync(task, cancellationToken);
        }

        public Task<bool> FailAsync(LeasedTask task, string error, CancellationToken cancellationToken = default)
        {
            MaybeFail();
            return inner.FailAsync(task, error, cancellationToken);
        }

        public Task<bool> ReleaseAsync(LeasedTask task, CancellationToken cancellationToken = default) => inner.ReleaseAsync(task, cancellationToken);
        public Task<IReadOnlyList<QueueStats>> StatsAsync(CancellationToken cancellationToken = default) => inner.StatsAsync(cancellationToken);
        public Task SetRateLimitAsync(string name, int? perSecond, CancellationToken cancellationToken = default) => inner.SetRateLimitAsync(name, perSecond, cancellationToken);
        public Task<long> RetryDeadAsync(string queue, CancellationToken cancellationToken = default) => inner.RetryDeadAsync(queue, cancellationToken);
        public Task<long> PurgeDeadAsync(string queue, CancellationToken cancellationToken = default) => inner.PurgeDeadAsync(queue, cancellationToken);
        public Task<long> RecoverExpiredAsync(CancellationToken cancellationToken = default) => inner.RecoverExpiredAsync(cancellationToken);
        public Task<long> PurgeDoneAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default) => inner.PurgeDoneAsync(finishedBefore, cancellationToken);
        public Task<long?> HoldLeaseAsync(string name, string holder, TimeSpan duration, CancellationToken cancellationToken = default) => inner.HoldLeaseAsync(name, holder, duration, cancellationToken);
        public Task<bool> ReleaseLeaseAsync(string name, string holder, long token, CancellationToken cancellationToken = default) => inner.ReleaseLeaseAsync(name, holder, token, cancellationToken);
        public Task<LeaseHolder?> LeaseHolderAsync(string name, CancellationToken cancellationToken = default) => inner.LeaseHolderAsync(name, cancellationToken);
        public Task<DateTimeOffset?> LastSlotAsync(string entry, CancellationToken cancellationToken = default) => inner.LastSlotAsync(entry, cancellationToken);
        public Task<bool> IssueSlotAsync(ScheduledSlot slot, TaskRequest? request, CancellationToken cancellationToken = default) => inner.IssueSlotAsync(slot, request, cancellationToken);
        public Task<(string State, int Attempts, string? LastError)?> InspectAsync(long id, CancellationToken cancellationToken = default) => inner.InspectAsync(id, cancellationToken);
        public Task<(string Name, string Arguments)?> DescribeAsync(long id, CancellationToken cancellationToken = default) => inner.DescribeAsync(id, cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task AWorkerRidesOutQueueErrorsAndStillRunsEveryTaskOnce(string backend)
    {
        var time = Clock();
        await using var file = TestQueue.Create(backend, time);
        var effects = new ConcurrentDictionary<string, int>();
        var handlers = new Dictionary<string, TaskHandler>
        {
            ["count"] = async (task, ct) =>
            {
                // Long enough for a renewal, which may fail; well inside the lease if it does.
                await Task.Delay(TimeSpan.FromSeconds(150), time, ct);
                effects.AddOrUpdate(task.Arguments, 1, (_, n) => n + 1);
            },
        };
        for (var i = 0; i < 12; i++)
        {
            await file.Queue.EnqueueAsync(new TaskRequest("count", $"{{\"n\":{i}}}"));
        }
        // A five-minute lease, renewed every 100 s; the clock moves 2 s a step, so an outcome recorded 75 steps late
        // still falls inside the lease even when the renewal failed.
        var worker = new Worker(new InstrumentedQueue(file.Queue, unreliable: true), handlers, Options() with { Lease = TimeSpan.FromMinutes(5) }, "w", time);
        using var stop = new CancellationTokenSource();
        var run = worker.RunAsync(stop.Token);
        await time.AdvanceUntilAsync(async () => (await StatsAsync(file.Queue)).Done == 12, TimeSpan.FromSeconds(2), "every task is done");
        await stop.CancelAsync();
        Assert.Equal(WorkerExit.Stopped, await run);
        Assert.Equal(12, (await StatsAsync(file.Queue)).Done);
        Assert.Equal(12, effects.Count);
        Assert.All(effects.Values, n => Assert.Equal(1, n));
    }
}
