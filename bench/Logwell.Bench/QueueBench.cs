using System.Diagnostics;
using System.Globalization;
using Logwell.Jobs;

namespace Logwell.Bench;

/// <summary>
/// No-op tasks per second through a task queue backend (the embedded SQLite file, or Redis with <c>--redis host:port</c>):
/// enqueue them all, then drain them with N workers.
/// </summary>
internal static class QueueBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var tasks = 20_000;
        var workers = 3;
        var dir = Path.Combine(Path.GetTempPath(), "logwell-queue-bench-" + Guid.NewGuid().ToString("N"));
        string? redis = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--tasks":
                    tasks = int.Parse(Next(), CultureInfo.InvariantCulture);
                    break;
                case "--workers":
                    workers = int.Parse(Next(), CultureInfo.InvariantCulture);
                    break;
                case "--out":
                    dir = Next();
                    break;
                case "--redis":
                    redis = Next();
                    break;
                default:
                    throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        Directory.CreateDirectory(dir);
        await using ITaskQueue queue = redis is null
            ? new SqliteTaskQueue(Path.Combine(dir, "queue.db"), TimeProvider.System)
            : RedisTaskQueue.Connect(redis, $"bench-{Guid.NewGuid():N}:", TimeProvider.System);
        var clock = Stopwatch.StartNew();
        // Enqueued by 4 producers at once, as API workers would.
        await Parallel.ForAsync(0, tasks, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) => await queue.EnqueueAsync(new TaskRequest("noop", "{}"), ct));
        var enqueueSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var done = 0;
        await Parallel.ForAsync(0, workers, async (worker, ct) =>
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
                    if (await queue.CompleteAsync(task, ct))
                    {
                        Interlocked.Increment(ref done);
                    }
                }
            }
        });
        var drainSeconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(redis is null ? "embedded (SQLite, full sync)" : $"redis at {redis}")}: {tasks} no-op tasks; enqueue {tasks / enqueueSeconds:0} tasks/s (4 producers); lease+complete {done / drainSeconds:0} tasks/s ({workers} workers, leases of 16)"));
        return done == tasks ? 0 : 1;
    }
}
