using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Logwell.Jobs;

/// <summary>Runs one task; throwing fails it (to be retried), returning completes it.</summary>
public delegate Task TaskHandler(LeasedTask task, CancellationToken cancellationToken);

/// <summary>How a worker runs: its queues, how many tasks at once, when it recycles, how it leases.</summary>
public sealed record WorkerOptions(IReadOnlyList<string> Queues)
{
    public int Concurrency { get; init; } = 4;

    /// <summary>After this many tasks the worker takes no more, finishes its own and ends with <see cref="WorkerExit.Recycle"/> (0: never).</summary>
    public int MaxTasksPerChild { get; init; }

    /// <summary>Above this working set the worker recycles the same way (0: no bound).</summary>
    public long MaxMemoryBytes { get; init; }

    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an idle worker waits before asking the queue again.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>On a warm shutdown, how long running tasks may take to finish before they are handed back.</summary>
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>Why <see cref="Worker.RunAsync"/> ended; the <c>logwell worker</c> process exits with this code.</summary>
public enum WorkerExit
{
    /// <summary>Asked to stop: running tasks finished or were handed back.</summary>
    Stopped = 0,

    /// <summary>Served its tasks (or memory) allowance and finished them: replace it.</summary>
    Recycle = 3,

    /// <summary>A task outlived its hard time limit: the process must go (the task runs again elsewhere).</summary>
    HardLimit = 4,
}

/// <summary>
/// A worker: leases tasks from its queues up to its concurrency, renews each lease while its task runs (a task whose
/// lease was lost is cancelled and not completed), cancels a task at its soft time limit, and gives up the whole
/// process at a hard one. It recycles after <see cref="WorkerOptions.MaxTasksPerChild"/> tasks or above
/// <see cref="WorkerOptions.MaxMemoryBytes"/>; no task is lost or run twice by that.
/// </summary>
/// <remarks>Every wait and every reading of the time goes through <c>time</c>, so tests can run a worker on a fake clock.</remarks>
public sealed class Worker(ITaskQueue queue, IReadOnlyDictionary<string, TaskHandler> handlers, WorkerOptions options, string owner, TimeProvider time, ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly List<(LeasedTask Task, CancellationTokenSource Cancel, Task Running)> _running = [];
    private readonly TaskCompletionSource _hardLimit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _finished;

    /// <summary>Tasks this worker completed or failed (not those handed back).</summary>
    public int Finished => Volatile.Read(ref _finished);

    public async Task<WorkerExit> RunAsync(CancellationToken stop)
    {
        var started = 0;
        // One task for the stop, made once: a wait per poll would leave a registration on the token each time.
        var stopped = Task.Delay(Timeout.InfiniteTimeSpan, time, stop);
        while (!stop.IsCancellationRequested && !_hardLimit.Task.IsCompleted)
        {
            lock (_running)
            {
                foreach (var done in _running.Where(r => r.Running.IsCompleted))
                {
                    done.Cancel.Dispose();
                }
                _running.RemoveAll(r => r.Running.IsCompleted);
            }
            if (ShouldRecycle(started))
            {
                await Task.WhenAny(Task.WhenAll(Running()), _hardLimit.Task).ConfigureAwait(false);
                var reason = _hardLimit.Task.IsCompleted ? "hard_limit" : options.MaxTasksPerChild > 0 && started >= options.MaxTasksPerChild ? "max_tasks" : "max_memory";
                JobMetrics.Recycles.Add(1, new KeyValuePair<string, object?>("reason", reason));
                return _hardLimit.Task.IsCompleted ? WorkerExit.HardLimit : WorkerExit.Recycle;
            }
            var free = options.Concurrency - Running().Count;
            if (options.MaxTasksPerChild > 0)
            {
                free = Math.Min(free, options.MaxTasksPerChild - started);
            }
            IReadOnlyList<LeasedTask> leased = [];
            if (free > 0)
            {
                try
                {
                    leased = await queue.LeaseAsync(options.Queues, owner, free, options.Lease, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The queue is unreachable or busy: tasks wait there; try again after a pause.
                    _logger.LogWarning("Worker {Owner}: cannot lease tasks ({Error}); trying again", owner, e.Message);
                    await Task.WhenAny(Task.Delay(options.PollInterval * 5, time, CancellationToken.None), stopped).ConfigureAwait(false);
                    continue;
                }
            }
            foreach (var task in leased)
            {
                started++;
                var cancel = new CancellationTokenSource();
                lock (_running)
                {
                    _running.Add((task, cancel, Task.Run(() => RunOneAsync(task, cancel), CancellationToken.None)));
                }
            }
            if (leased.Count == 0)
            {
                // Idle or full: wait for a slot, the poll interval or the stop.
                var running = Running();
                var slot = running.Count >= options.Concurrency ? Task.WhenAny(running) : Task.Delay(options.PollInterval, time, CancellationToken.None);
                await Task.WhenAny(slot, stopped, _hardLimit.Task).ConfigureAwait(false);
            }
        }
        if (_hardLimit.Task.IsCompleted)
        {
            JobMetrics.Recycles.Add(1, new KeyValuePair<string, object?>("reason", "hard_limit"));
            return WorkerExit.HardLimit;
        }
        // Warm shutdown: running tasks get the grace period, then are cancelled and handed back.
        var all = Task.WhenAll(Running());
        if (await Task.WhenAny(all, Task.Delay(options.GracePeriod, time, CancellationToken.None), _hardLimit.Task).ConfigureAwait(false) != all)
        {
            List<(LeasedTask Task, CancellationTokenSource Cancel, Task Running)> left;
            lock (_running)
            {
                left = [.. _running.Where(r => !r.Running.IsCompleted)];
            }
            foreach (var (task, cancel, _) in left)
            {
                await cancel.CancelAsync().ConfigureAwait(false);
                try
                {
                    await queue.ReleaseAsync(task, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Not handed back: it runs again once its lease expires.
                    _logger.LogWarning("Task {Id} ({Name}): cannot hand it back ({Error}); it runs again after its lease", task.Id, task.Name, e.Message);
                }
            }
        }
        return WorkerExit.Stopped;
    }

    private List<Task> Running()
    {
        lock (_running)
        {
            return [.. _running.Where(r => !r.Running.IsCompleted).Select(r => r.Running)];
        }
    }

    /// <summary>After its allowance of tasks, or above the memory bound once it has run a task (a bound below what an idle worker uses would otherwise recycle it forever).</summary>
    private bool ShouldRecycle(int started) =>
        (options.MaxTasksPerChild > 0 && started >= options.MaxTasksPerChild)
        || (options.MaxMemoryBytes > 0 && started > 0 && Environment.WorkingSet > options.MaxMemoryBytes);

    /// <param name="handBack">Cancelled by a warm shutdown that hands the task back (the loop releases it).</param>
    private async Task RunOneAsync(LeasedTask task, CancellationTokenSource handBack)
    {
        if (!handlers.TryGetValue(task.Name, out var handler))
        {
            await FinishAsync(task, $"no handler for task '{task.Name}' in this worker").ConfigureAwait(false);
            return;
        }
        using var soft = task.SoftTimeLimit is { } softLimit ? new CancellationTokenSource(softLimit, time) : new CancellationTokenSource();
        using var lost = new CancellationTokenSource();
        using var stopRenewing = new CancellationTokenSource();
        using var token = CancellationTokenSource.CreateLinkedTokenSource(handBack.Token, soft.Token, lost.Token);
        var renewal = RenewAsync(task, lost, stopRenewing.Token);
        var started = time.GetTimestamp();
        JobMetrics.Running.Add(1);
        try
        {
            var work = Task.Run(() => handler(task, token.Token), CancellationToken.None);
            if (task.HardTimeLimit is { } hard && await Task.WhenAny(work, Task.Delay(hard, time, CancellationToken.None)).ConfigureAwait(false) != work)
            {
                // The task is abandoned with its lease: it runs again once the lease expires, in another process.
                await stopRenewing.CancelAsync().ConfigureAwait(false);
                _logger.LogError("Task {Id} ({Name}) outlived its hard time limit of {Limit}; abandoning it and this worker", task.Id, task.Name, hard);
                _hardLimit.TrySetResult();
                return;
            }
            string? error = null;
            try
            {
                await work.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                error = $"soft time limit of {task.SoftTimeLimit?.TotalSeconds:0.###} s exceeded after {time.GetElapsedTime(started).TotalSeconds:0.###} s";
            }
            catch (Exception e)
            {
                error = $"{e.GetType().Name}: {e.Message}";
            }
            await stopRenewing.CancelAsync().ConfigureAwait(false);
            await renewal.ConfigureAwait(false);
            if (lost.IsCancellationRequested)
            {
                _logger.LogWarning("Task {Id} ({Name}): lease lost; another worker runs it now and this run's outcome is dropped", task.Id, task.Name);
                JobMetrics.Finished(task, "lost", time.GetElapsedTime(started));
                return;
            }
            if (handBack.IsCancellationRequested)
            {
                // Handed back by a warm shutdown: the loop releases it, so it runs again without counting an attempt.
                JobMetrics.Finished(task, "handed_back", time.GetElapsedTime(started));
                return;
            }
            JobMetrics.Finished(task, error is null ? "completed" : "failed", time.GetElapsedTime(started));
            await FinishAsync(task, error).ConfigureAwait(false);
        }
        finally
        {
            JobMetrics.Running.Add(-1);
        }
    }

    private async Task FinishAsync(LeasedTask task, string? error)
    {
        if (error is not null)
        {
            _logger.LogWarning("Task {Id} ({Name}) attempt {Attempt} of {Tries} failed: {Error}", task.Id, task.Name, task.Attempt, task.MaxRetries + 1, error);
        }
        // The outcome is retried for as long as the lease lasts; after that the task runs again elsewhere anyway.
        var until = time.GetUtcNow() + options.Lease;
        while (true)
        {
            try
            {
                var changed = error is null
                    ? await queue.CompleteAsync(task, CancellationToken.None).ConfigureAwait(false)
                    : await queue.FailAsync(task, error, CancellationToken.None).ConfigureAwait(false);
                if (changed)
                {
                    Interlocked.Increment(ref _finished);
                }
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && time.GetUtcNow() < until)
            {
                _logger.LogWarning("Task {Id} ({Name}): cannot record its outcome ({Error}); trying again", task.Id, task.Name, e.Message);
                await Task.Delay(options.PollInterval, time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogError("Task {Id} ({Name}): its outcome could not be recorded before its lease ended ({Error}); it will run again", task.Id, task.Name, e.Message);
                return;
            }
        }
    }

    /// <summary>Renews the lease every third of its length; a lost lease cancels the task.</summary>
    private async Task RenewAsync(LeasedTask task, CancellationTokenSource lost, CancellationToken stop)
    {
        var every = options.Lease / 3;
        var lastRenewal = time.GetUtcNow();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            bool renewed;
            try
            {
                renewed = await queue.RenewAsync(task, options.Lease, CancellationToken.None).ConfigureAwait(false);
                lastRenewal = time.GetUtcNow();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Unreachable for now: keep trying while the lease may still hold; past it, another worker may have the task.
                renewed = time.GetUtcNow() - lastRenewal < options.Lease;
                _logger.LogWarning("Task {Id} ({Name}): cannot renew its lease ({Error})", task.Id, task.Name, e.Message);
            }
            if (!renewed)
            {
                await lost.CancelAsync().ConfigureAwait(false);
                return;
            }
        }
    }
}
