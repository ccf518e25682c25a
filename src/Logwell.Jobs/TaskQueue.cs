namespace Logwell.Jobs;

/// <summary>A task to enqueue: what to run, where, when, and how hard to try.</summary>
/// <param name="Name">The task's name, which a worker maps to the code that runs it.</param>
/// <param name="Arguments">The task's arguments as JSON.</param>
public sealed record TaskRequest(string Name, string Arguments, string Queue = "default")
{
    /// <summary>Not before this time (a delay or a run-at); now when null.</summary>
    public DateTimeOffset? RunAt { get; init; }

    /// <summary>Failures retried before the task goes dead.</summary>
    public int MaxRetries { get; init; } = 3;

    /// <summary>After this the task is asked to stop (its cancellation token fires).</summary>
    public TimeSpan? SoftTimeLimit { get; init; }

    /// <summary>After this the task is abandoned and its worker process replaced.</summary>
    public TimeSpan? HardTimeLimit { get; init; }

    /// <summary>While a task with this key is pending or running, enqueueing another with it returns the first.</summary>
    public string? UniqueKey { get; init; }
}

/// <summary>
/// A task handed to one worker under a lease. <see cref="Token"/> fences it: once the lease is lost (it expired and
/// another worker took the task), renewing, completing or failing with this token does nothing.
/// </summary>
public sealed record LeasedTask(long Id, string Queue, string Name, string Arguments, int Attempt, int MaxRetries, long Token, TimeSpan? SoftTimeLimit, TimeSpan? HardTimeLimit);

/// <summary>Counts of one queue's tasks by state, and how long its oldest pending task has waited.</summary>
/// <param name="DoneLastMinute">Tasks completed in the last 60 seconds: the queue's throughput.</param>
public sealed record QueueStats(string Queue, long Pending, long Delayed, long Running, long Failed, long Dead, long Done, TimeSpan? OldestPendingAge, long DoneLastMinute);

/// <summary>Who holds a named lease, with its fencing token, until when.</summary>
public sealed record LeaseHolder(string Holder, long Token, DateTimeOffset Until);

/// <summary>One run of a periodic task, issued by the holder of <see cref="Lease"/> with its fencing <see cref="Token"/>.</summary>
public sealed record ScheduledSlot(string Lease, string Holder, long Token, string Entry, DateTimeOffset Slot);

/// <summary>
/// Durable task queues, shared by every process of a node (or of several nodes with a shared backend). At least once:
/// a task is done only once its worker completes it; a running task holds a lease its worker renews, so a live task
/// is never handed to a second worker; a task whose lease expired (its worker died) is handed out again. Failures are
/// retried with exponential back-off and full jitter, then the task is dead, keeping its last error.
/// </summary>
public interface ITaskQueue : IAsyncDisposable
{
    /// <summary>The task's id (with a unique key that is already pending or running: that task's id).</summary>
    Task<long> EnqueueAsync(TaskRequest request, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="max"/> tasks ready to run in these queues, oldest first, leased to <paramref name="owner"/>.</summary>
    Task<IReadOnlyList<LeasedTask>> LeaseAsync(IReadOnlyList<string> queues, string owner, int max, TimeSpan lease, CancellationToken cancellationToken = default);

    /// <summary>Extends the lease; false when it was lost.</summary>
    Task<bool> RenewAsync(LeasedTask task, TimeSpan lease, CancellationToken cancellationToken = default);

    /// <summary>Marks the task done; false when the lease was lost (another worker has the task).</summary>
    Task<bool> CompleteAsync(LeasedTask task, CancellationToken cancellationToken = default);

    /// <summary>Schedules a retry after back-off, or marks the task dead after its last retry; false when the lease was lost.</summary>
    Task<bool> FailAsync(LeasedTask task, string error, CancellationToken cancellationToken = default);

    /// <summary>Hands a task back untouched (a warm shutdown): it runs again without counting an attempt.</summary>
    Task<bool> ReleaseAsync(LeasedTask task, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<QueueStats>> StatsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// At most <paramref name="perSecond"/> tasks of this name start per second, across every worker and process
    /// (null removes the limit). Tasks over the limit wait in their queue; others pass them.
    /// </summary>
    Task SetRateLimitAsync(string name, int? perSecond, CancellationToken cancellationToken = default);

    /// <summary>Dead tasks of a queue back to pending with fresh attempts; how many.</summary>
    Task<long> RetryDeadAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Deletes a queue's dead tasks; how many.</summary>
    Task<long> PurgeDeadAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>
    /// Running tasks whose lease expired (their worker died or hung) back to pending, or dead once they used up their
    /// retries; how many. Leasing does the same for the tasks it hands out; this keeps the counts true in between.
    /// </summary>
    Task<long> RecoverExpiredAsync(CancellationToken cancellationToken = default);

    /// <summary>Deletes tasks done before this time; how many.</summary>
    Task<long> PurgeDoneAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes or extends the named lease for <paramref name="holder"/>: its fencing token while it holds it, null while
    /// another holds it. A new holding gets a higher token than every earlier one.
    /// </summary>
    Task<long?> HoldLeaseAsync(string name, string holder, TimeSpan duration, CancellationToken cancellationToken = default);

    /// <summary>Gives the lease up at once (so another can take it without waiting); false when it was not held.</summary>
    Task<bool> ReleaseLeaseAsync(string name, string holder, long token, CancellationToken cancellationToken = default);

    /// <summary>The lease's current holder; null when nobody holds it.</summary>
    Task<LeaseHolder?> LeaseHolderAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>The last slot issued for a periodic entry.</summary>
    Task<DateTimeOffset?> LastSlotAsync(string entry, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records <paramref name="slot"/> as the entry's last and enqueues <paramref name="request"/> (none: only records
    /// it), atomically, only while the slot's holder still holds the lease with that token and the entry has no later
    /// or equal slot. False otherwise: a slot is issued once, and never by a holder that lost its lease.
    /// </summary>
    Task<bool> IssueSlotAsync(ScheduledSlot slot, TaskRequest? request, CancellationToken cancellationToken = default);

    /// <summary>A task's state, attempts so far and last error; null when there is no such task.</summary>
    Task<(string State, int Attempts, string? LastError)?> InspectAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>A task's name and arguments (what it is for); null when there is no such task.</summary>
    Task<(string Name, string Arguments)?> DescribeAsync(long id, CancellationToken cancellationToken = default);
}

/// <summary>Retry delays: exponential from a base, capped, with full jitter (a uniform draw below the bound).</summary>
public static class Backoff
{
    public static TimeSpan Delay(int attempt, TimeSpan baseDelay, TimeSpan cap, Random random)
    {
        var bound = Math.Min(cap.TotalMilliseconds, baseDelay.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempt - 1, 0, 30)));
        return TimeSpan.FromMilliseconds(random.NextDouble() * bound);
    }
}
