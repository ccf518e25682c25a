using Logwell.Jobs;
using Logwell.Server.Exports;
using Logwell.Server.Tasks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Hosting;

/// <summary>Opens the task queue backend the settings name.</summary>
public static class TaskQueues
{
    public static ITaskQueue Open(LogwellOptions options, TimeProvider time)
    {
        if (options.QueueBackend == "redis")
        {
            return RedisTaskQueue.Connect(options.RedisConnection, options.RedisPrefix, time);
        }
        // The queue file is in the data directory: this process is one of the node's there (a restore waits for it to end).
        Logwell.Storage.Engine.LogEngine.JoinNode(options.DataDirectory);
        return new SqliteTaskQueue(LogwellApp.TaskQueueFile(options), time);
    }

    /// <summary>A name for a worker or scheduler that is unique on the network: host, process and a random part.</summary>
    public static string ProcessName(string role) =>
        $"{role}@{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..6]}";

    public static IReadOnlyList<string> ParseQueues(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal)];
}

/// <summary>Under <c>serve</c>: a worker in the node's own process, on the queues <c>ServeWorkerQueues</c> names.</summary>
internal sealed class WorkerHost(IOptions<LogwellOptions> settings, ITaskQueue queue, ExportStore exports, ILogStoreAccess store, TimeProvider time, ILoggerFactory loggers) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var options = settings.Value;
        var queues = TaskQueues.ParseQueues(options.ServeWorkerQueues);
        if (queues.Count == 0)
        {
            return;
        }
        var logger = loggers.CreateLogger<WorkerHost>();
        var handlers = BuiltinTasks.Create(options, queue, exports, store, time, loggers);
        var workerOptions = new WorkerOptions(queues)
        {
            Concurrency = options.ServeWorkerConcurrency,
            Lease = TimeSpan.FromSeconds(options.TaskLeaseSeconds),
            GracePeriod = TimeSpan.FromSeconds(10),
        };
        logger.LogInformation("Worker: running queues {Queues} with concurrency {Concurrency}", string.Join(",", queues), workerOptions.Concurrency);
        while (!stoppingToken.IsCancellationRequested)
        {
            var exit = await new Worker(queue, handlers, workerOptions, TaskQueues.ProcessName("serve"), time, logger).RunAsync(stoppingToken).ConfigureAwait(false);
            if (exit == WorkerExit.HardLimit)
            {
                // A process cannot replace itself: the abandoned task keeps its lease until it expires, then runs again.
                logger.LogError("Worker: a task outlived its hard time limit; it was abandoned and will run again after its lease expires");
            }
        }
    }
}

/// <summary>Under <c>serve</c>: a scheduler that issues the periodic tasks while it holds the cluster's scheduler lease.</summary>
internal sealed class SchedulerHost(IOptions<LogwellOptions> settings, ITaskQueue queue, TimeProvider time, ILoggerFactory loggers) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var options = settings.Value;
        if (!options.ServeScheduler)
        {
            return Task.CompletedTask;
        }
        var lease = TimeSpan.FromSeconds(options.SchedulerLeaseSeconds);
        var scheduler = new Scheduler(queue, BuiltinTasks.Schedule(options), new SchedulerOptions { Lease = lease, Tick = lease / 5 },
            TaskQueues.ProcessName("serve"), time, loggers.CreateLogger<Scheduler>());
        return scheduler.RunAsync(stoppingToken);
    }
}
