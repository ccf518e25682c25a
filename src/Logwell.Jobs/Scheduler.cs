using System.Globalization;
using System.Text.Json.Nodes;
using Cronos;
using Microsoft.Extensions.Logging;

namespace Logwell.Jobs;

/// <summary>
/// A task enqueued periodically: every <see cref="Every"/> (slots aligned to the Unix epoch, so every hour is on the
/// hour UTC) or at the times of a cron expression in a time zone. The task receives its slot as <c>"slot"</c> in its
/// arguments (an ISO 8601 UTC time).
/// </summary>
public sealed record PeriodicTask
{
    private readonly CronExpression? _cron;

    private PeriodicTask(string name, TaskRequest task, TimeSpan? every, CronExpression? cron, string? cronText, TimeZoneInfo zone)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        Task = task;
        Every = every;
        _cron = cron;
        Cron = cronText;
        TimeZone = zone;
    }

    public string Name { get; }
    public TaskRequest Task { get; }
    public TimeSpan? Every { get; }
    public string? Cron { get; }
    public TimeZoneInfo TimeZone { get; }

    public static PeriodicTask Interval(string name, TimeSpan every, TaskRequest task)
    {
        if (every < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(every), $"periodic task '{name}': the interval must be at least 1 second");
        }
        return new PeriodicTask(name, task, every, null, null, TimeZoneInfo.Utc);
    }

    /// <summary>A cron schedule: five fields (minute hour day month weekday) or six with seconds first.</summary>
    /// <exception cref="FormatException">The expression or the time zone is not valid.</exception>
    public static PeriodicTask CronSchedule(string name, string expression, string timeZone, TaskRequest task)
    {
        var fields = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        CronExpression cron;
        try
        {
            cron = CronExpression.Parse(expression, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            throw new FormatException($"periodic task '{name}': bad cron expression '{expression}': {e.Message}", e);
        }
        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        }
        catch (TimeZoneNotFoundException e)
        {
            throw new FormatException($"periodic task '{name}': unknown time zone '{timeZone}'", e);
        }
        return new PeriodicTask(name, task, null, cron, expression, zone);
    }

    /// <summary>The latest slot at or before <paramref name="now"/> that comes after <paramref name="last"/>; null when none.</summary>
    public DateTimeOffset? DueSlot(DateTimeOffset now, DateTimeOffset last)
    {
        if (Every is { } every)
        {
            var ms = (long)every.TotalMilliseconds;
            var slot = DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds() / ms * ms);
            return slot > last ? slot : null;
        }
        var next = _cron!.GetNextOccurrence(last.ToUniversalTime(), TimeZone);
        if (next is null || next > now)
        {
            return null;
        }
        // Runs missed while no scheduler was active collapse into the latest one.
        for (var i = 0; i < 1_000_000; i++)
        {
            var after = _cron.GetNextOccurrence(next.Value, TimeZone);
            if (after is null || after > now)
            {
                break;
            }
            next = after;
        }
        return next;
    }

    /// <summary>The second slot after <paramref name="since"/>: a task that ran at or after <paramref name="since"/> and not again by then missed a slot.</summary>
    public DateTimeOffset? SecondSlotAfter(DateTimeOffset since)
    {
        if (Every is { } every)
        {
            return since + (2 * every);
        }
        var next = _cron!.GetNextOccurrence(since.ToUniversalTime(), TimeZone);
        return next is null ? null : _cron.GetNextOccurrence(next.Value, TimeZone);
    }

    /// <summary>The task to enqueue for a slot: its arguments carry the slot, its unique key names entry and slot.</summary>
    internal TaskRequest ForSlot(DateTimeOffset slot)
    {
        var slotText = slot.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        var arguments = JsonNode.Parse(string.IsNullOrWhiteSpace(Task.Arguments) ? "{}" : Task.Arguments) as JsonObject ?? [];
        arguments["slot"] = slotText;
        return Task with { Arguments = arguments.ToJsonString(), UniqueKey = $"schedule:{Name}@{slotText}" };
    }
}

public sealed record SchedulerOptions
{
    /// <summary>How long the active scheduler holds its lease without renewing; another takes over within about this.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the scheduler renews (or tries to take) the lease and checks what is due.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromSeconds(1);

    public void Validate()
    {
        if (Tick <= TimeSpan.Zero || Tick * 3 > Lease)
        {
            throw new ArgumentException($"the scheduler's tick ({Tick}) must be positive and at most a third of its lease ({Lease})");
        }
    }
}

/// <summary>
/// Issues periodic tasks. Every scheduler process tries to hold one lease; only its holder issues, and each issue is
/// fenced by the lease's token and recorded with its slot in one transaction, so however many schedulers run, a slot is
/// issued once. A scheduler that loses its lease (it paused, or its host died) issues nothing more; a standby takes over
/// within the lease time plus a tick. Slots missed while nobody held the lease are issued once, as the latest of them.
/// A new entry starts counting from when it is first seen.
/// </summary>
public sealed class Scheduler(ITaskQueue queue, IReadOnlyList<PeriodicTask> entries, SchedulerOptions options, string holder, TimeProvider time, ILogger logger)
{
    public const string LeaseName = "scheduler";

    private readonly TimeProvider _time = time;
    private long _token;

    /// <summary>The fencing token while this scheduler is the active one, else 0.</summary>
    public long Token => Interlocked.Read(ref _token);

    public async Task RunAsync(CancellationToken stop)
    {
        options.Validate();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!names.Add(entry.Name))
            {
                throw new ArgumentException($"two periodic tasks are named '{entry.Name}'");
            }
        }
        logger.LogInformation("Scheduler {Holder}: started with {Count} periodic tasks; it issues them while it holds the lease", holder, entries.Count);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await TickAsync(stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "Scheduler {Holder}: tick failed; trying again", holder);
                }
                try
                {
                    await Task.Delay(options.Tick, _time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        finally
        {
            if (Token is var token && token != 0)
            {
                // Hand over at once rather than make the standby wait out the lease.
                try
                {
                    await queue.ReleaseLeaseAsync(LeaseName, holder, token, CancellationToken.None).ConfigureAwait(false);
                    logger.LogInformation("Scheduler {Holder}: stopped, lease {Token} released", holder, token);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning("Scheduler {Holder}: stopped; could not release lease {Token} ({Error}), it expires on its own", holder, token, e.Message);
                }
            }
        }
    }

    private async Task TickAsync(CancellationToken stop)
    {
        var token = await queue.HoldLeaseAsync(LeaseName, holder, options.Lease, stop).ConfigureAwait(false);
        if ((token ?? 0) != Token)
        {
            if (token is null)
            {
                logger.LogWarning("Scheduler {Holder}: lost the lease; standing by", holder);
            }
            else
            {
                logger.LogInformation("Scheduler {Holder}: active with lease token {Token}", holder, token);
            }
            Interlocked.Exchange(ref _token, token ?? 0);
        }
        if (token is not { } held)
        {
            return;
        }
        var now = _time.GetUtcNow();
        foreach (var entry in entries)
        {
            var last = await queue.LastSlotAsync(entry.Name, stop).ConfigureAwait(false);
            if (last is null)
            {
                await queue.IssueSlotAsync(new ScheduledSlot(LeaseName, holder, held, entry.Name, now), null, stop).ConfigureAwait(false);
                continue;
            }
            if (entry.DueSlot(now, last.Value) is not { } slot)
            {
                continue;
            }
            if (await queue.IssueSlotAsync(new ScheduledSlot(LeaseName, holder, held, entry.Name, slot), entry.ForSlot(slot), stop).ConfigureAwait(false))
            {
                logger.LogInformation("Scheduler {Holder}: issued {Entry} for {Slot:O}", holder, entry.Name, slot);
            }
        }
    }
}
