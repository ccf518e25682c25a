using Microsoft.Extensions.Time.Testing;
using System.Collections.Concurrent;
using Logwell.Jobs;

namespace Logwell.Tests;

/// <summary>The queue semantics, the same on both backends (a real SQLite file, a real Redis), with the lease times shortened.</summary>
public sealed class TaskQueueTests
{
    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task ATaskIsLeasedToOneWorkerCompletedOnceAndCounted(string backend)
    {
        await using var file = TestQueue.Create(backend);
        var queue = file.Queue;
        var id = await queue.EnqueueAsync(new TaskRequest("export", """{"q":"error"}""", "export"));
        Assert.Empty(await queue.LeaseAsync(["default"], "w1", 10, TimeSpan.FromSeconds(30)));
        var leased = Assert.Single(await queue.LeaseAsync(["export", "default"], "w1", 10, TimeSpan.FromSeconds(30)));
        Assert.Equal((id, "export", """{"q":"error"}""", 1), (leased.Id, leased.Name, leased.Arguments, leased.Attempt));
        Assert.Empty(await queue.LeaseAsync(["export"], "w2", 10, TimeSpan.FromSeconds(30)));
        var running = Assert.Single(await queue.StatsAsync());
        Assert.Equal(("export", 0L, 1L), (running.Queue, running.Pending, running.Running));
        Assert.True(await queue.CompleteAsync(leased));
        Assert.False(await queue.CompleteAsync(leased));
        Assert.Equal(1, Assert.Single(await queue.StatsAsync()).Done);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task ALiveLeaseKeepsItsTaskAndAnExpiredOneHandsItOverFenced(string backend)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        await queue.EnqueueAsync(new TaskRequest("long", "{}"));
        var lease = TimeSpan.FromMilliseconds(1500);
        var first = Assert.Single(await queue.LeaseAsync(["default"], "w1", 1, lease));
        // Renewed three times over more than the lease time: never handed to another worker.
        for (var i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(500));
            Assert.True(await queue.RenewAsync(first, lease));
            Assert.Empty(await queue.LeaseAsync(["default"], "w2", 1, lease));
        }
        // The worker stops renewing (it died): once the lease runs out the task goes to another worker.
        time.Advance(TimeSpan.FromMilliseconds(1700));
        var second = Assert.Single(await queue.LeaseAsync(["default"], "w2", 1, TimeSpan.FromSeconds(30)));
        Assert.Equal((first.Id, 2), (second.Id, second.Attempt));
        // The first worker, were it still alive, can no longer renew, complete or fail the task.
        Assert.False(await queue.RenewAsync(first, TimeSpan.FromSeconds(1)));
        Assert.False(await queue.CompleteAsync(first));
        Assert.False(await queue.FailAsync(first, "late"));
        Assert.True(await queue.CompleteAsync(second));
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task FailuresAreRetriedWithBackoffThenTheTaskIsDeadWithItsLastError(string backend)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        var id = await queue.EnqueueAsync(new TaskRequest("flaky", "{\"n\": 1}") { MaxRetries = 2 });
        Assert.Equal(("flaky", "{\"n\": 1}"), (await queue.DescribeAsync(id))!.Value);
        Assert.Null(await queue.DescribeAsync(id + 1_000));
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            LeasedTask? task = null;
            for (var wait = 0; wait < 100 && task is null; wait++)
            {
                task = (await queue.LeaseAsync(["default"], "w", 1, TimeSpan.FromSeconds(30))).SingleOrDefault();
                if (task is null)
                {
                    // Backing off: not yet due.
                    time.Advance(TimeSpan.FromMilliseconds(20));
                }
            }
            Assert.NotNull(task);
            Assert.Equal(attempt, task.Attempt);
            Assert.True(await queue.FailAsync(task, $"boom {attempt}"));
        }
        Assert.Equal(("dead", 3, "boom 3"), (await queue.InspectAsync(id))!.Value);
        Assert.Empty(await queue.LeaseAsync(["default"], "w", 1, TimeSpan.FromSeconds(30)));
        Assert.Equal(1, Assert.Single(await queue.StatsAsync()).Dead);

        Assert.Equal(1, await queue.RetryDeadAsync("default"));
        var again = Assert.Single(await queue.LeaseAsync(["default"], "w", 1, TimeSpan.FromSeconds(30)));
        Assert.Equal(1, again.Attempt);
        Assert.True(await queue.FailAsync(again, "still"));
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task UniqueKeysDelaysAndReleasesBehaveAsTold(string backend)
    {
        await using var file = TestQueue.Create(backend);
        var queue = file.Queue;
        var first = await queue.EnqueueAsync(new TaskRequest("merge", "{}") { UniqueKey = "merge:app" });
        Assert.Equal(first, await queue.EnqueueAsync(new TaskRequest("merge", "{}") { UniqueKey = "merge:app" }));
        var later = await queue.EnqueueAsync(new TaskRequest("report", "{}") { RunAt = DateTimeOffset.UtcNow.AddHours(1) });
        var stats = Assert.Single(await queue.StatsAsync());
        Assert.Equal((1L, 1L), (stats.Pending, stats.Delayed));

        var leased = Assert.Single(await queue.LeaseAsync(["default"], "w", 10, TimeSpan.FromSeconds(30)));
        Assert.Equal(first, leased.Id);
        // Still running: the key still holds.
        Assert.Equal(first, await queue.EnqueueAsync(new TaskRequest("merge", "{}") { UniqueKey = "merge:app" }));
        // Handed back at shutdown: it runs again, and the attempt does not count.
        Assert.True(await queue.ReleaseAsync(leased));
        var again = Assert.Single(await queue.LeaseAsync(["default"], "w", 10, TimeSpan.FromSeconds(30)));
        Assert.Equal((first, 1), (again.Id, again.Attempt));
        Assert.True(await queue.CompleteAsync(again));
        // Done: the key is free again.
        Assert.NotEqual(first, await queue.EnqueueAsync(new TaskRequest("merge", "{}") { UniqueKey = "merge:app" }));
        Assert.NotEqual(later, first);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task AWorkerThatKeepsDyingMakesItsTaskDeadInsteadOfLooping(string backend)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        var id = await queue.EnqueueAsync(new TaskRequest("poison", "{}") { MaxRetries = 1 });
        for (var i = 0; i < 2; i++)
        {
            Assert.Single(await queue.LeaseAsync(["default"], $"w{i}", 1, TimeSpan.FromMilliseconds(50)));
            // Its worker dies: the lease runs out unrenewed.
            time.Advance(TimeSpan.FromMilliseconds(120));
        }
        Assert.Empty(await queue.LeaseAsync(["default"], "w9", 1, TimeSpan.FromSeconds(30)));
        var (state, _, error) = (await queue.InspectAsync(id))!.Value;
        Assert.Equal("dead", state);
        Assert.Contains("stopped renewing the lease 2 times", error, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task ARateLimitPerNameHoldsAcrossWorkersWhileOtherTasksPass(string backend)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 10, 0, 0, 100, TimeSpan.Zero));
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        await queue.SetRateLimitAsync("mail", 5);
        for (var i = 0; i < 12; i++)
        {
            await queue.EnqueueAsync(new TaskRequest("mail", $"{{\"n\":{i}}}"));
        }
        for (var i = 0; i < 10; i++)
        {
            await queue.EnqueueAsync(new TaskRequest("thumbnail", "{}"));
        }
        // Within one second, three workers leasing until nothing comes start 5 mails and every thumbnail.
        async Task<List<string>> DrainAsync()
        {
            var started = new ConcurrentBag<string>();
            await Parallel.ForAsync(0, 3, async (w, ct) =>
            {
                while (await queue.LeaseAsync(["default"], $"w{w}", 2, TimeSpan.FromMinutes(5), ct) is { Count: > 0 } leased)
                {
                    foreach (var task in leased)
                    {
                        started.Add(task.Name);
                    }
                }
            });
            return [.. started];
        }
        var first = await DrainAsync();
        Assert.Equal((5, 10), (first.Count(n => n == "mail"), first.Count(n => n == "thumbnail")));
        time.Advance(TimeSpan.FromMilliseconds(850));
        Assert.Empty(await DrainAsync());
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(5, (await DrainAsync()).Count);
        // Without the limit the rest starts at once.
        await queue.SetRateLimitAsync("mail", null);
        Assert.Equal(2, (await DrainAsync()).Count);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task ConcurrentWorkersCompleteEveryTaskExactlyOnce(string backend)
    {
        await using var file = TestQueue.Create(backend);
        var queue = file.Queue;
        const int tasks = 2000;
        await Parallel.ForAsync(0, tasks, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) => await queue.EnqueueAsync(new TaskRequest("noop", $"{{\"n\":{i}}}"), ct));
        var completed = new ConcurrentDictionary<long, int>();
        await Parallel.ForAsync(0, 4, async (worker, ct) =>
        {
            while (true)
            {
                var leased = await queue.LeaseAsync(["default"], $"w{worker}", 16, TimeSpan.FromSeconds(30), ct);
                if (leased.Count == 0)
                {
                    return;
                }
                foreach (var task in leased)
                {
                    Assert.True(await queue.CompleteAsync(task, ct));
                    completed.AddOrUpdate(task.Id, 1, (_, n) => n + 1);
                }
            }
        });
        Assert.Equal(tasks, completed.Count);
        Assert.All(completed.Values, n => Assert.Equal(1, n));
        Assert.Equal(tasks, Assert.Single(await queue.StatsAsync()).Done);
    }
}
