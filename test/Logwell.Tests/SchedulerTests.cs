using Logwell.Jobs;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>Slots of periodic tasks, and the lease and fencing that let one scheduler issue each slot once.</summary>
public sealed class SchedulerTests
{
    private static readonly TaskRequest Tick = new("tick", "{}");

    private static DateTimeOffset Utc(int day, int hour, int minute, int second = 0) => new(2026, 3, day, hour, minute, second, TimeSpan.Zero);

    [Fact]
    public void IntervalSlotsAreAlignedToTheEpochAndMissedOnesCollapseIntoTheLatest()
    {
        var every5m = PeriodicTask.Interval("five", TimeSpan.FromMinutes(5), Tick);
        Assert.Null(every5m.DueSlot(Utc(1, 10, 4, 59), Utc(1, 10, 0)));
        Assert.Equal(Utc(1, 10, 5), every5m.DueSlot(Utc(1, 10, 5, 0), Utc(1, 10, 0)));
        // Down for an hour: one run, for the latest slot.
        Assert.Equal(Utc(1, 11, 5), every5m.DueSlot(Utc(1, 11, 7), Utc(1, 10, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => PeriodicTask.Interval("fast", TimeSpan.FromMilliseconds(100), Tick));
    }

    [Fact]
    public void TheSecondSlotAfterABackupFollowsTheScheduleNotItsShortestGap()
    {
        // Weekdays at 02:00: a run on Friday is due again Monday, late only after Tuesday's slot.
        var weekdays = PeriodicTask.CronSchedule("backup", "0 2 * * 1-5", "UTC", Tick);
        var friday = new DateTimeOffset(2026, 12, 4, 2, 0, 0, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 12, 8, 2, 0, 0, TimeSpan.Zero), weekdays.SecondSlotAfter(friday));
        // Twice a night, an hour apart: the second slot after the 03:00 run is the next night's 03:00.
        var twice = PeriodicTask.CronSchedule("backup", "0 2,3 * * *", "UTC", Tick);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 3, 0, 0, TimeSpan.Zero), twice.SecondSlotAfter(friday.AddHours(1)));
        Assert.Equal(friday.AddHours(2), PeriodicTask.Interval("backup", TimeSpan.FromHours(1), Tick).SecondSlotAfter(friday));
    }

    [Fact]
    public void CronSlotsFollowTheirTimeZoneAcrossDaylightSavingTime()
    {
        // 02:30 every day in Paris; on 29 March 2026 clocks jump from 02:00 to 03:00, so that day runs at 03:00 local.
        var nightly = PeriodicTask.CronSchedule("nightly", "30 2 * * *", "Europe/Paris", Tick);
        Assert.Equal(Utc(27, 1, 30), nightly.DueSlot(Utc(27, 1, 30), Utc(26, 23, 0)));
        Assert.Null(nightly.DueSlot(Utc(27, 1, 29), Utc(26, 23, 0)));
        Assert.Equal(Utc(29, 1, 0), nightly.DueSlot(Utc(29, 1, 0), Utc(28, 12, 0)));
        Assert.Equal(Utc(30, 0, 30), nightly.DueSlot(Utc(30, 0, 30), Utc(29, 1, 0)));
        // Three nights missed: one run.
        Assert.Equal(Utc(30, 0, 30), nightly.DueSlot(Utc(30, 8, 0), Utc(26, 23, 0)));
        // Six fields: seconds first.
        var everyTenSeconds = PeriodicTask.CronSchedule("ten", "*/10 * * * * *", "UTC", Tick);
        Assert.Equal(Utc(1, 0, 0, 20), everyTenSeconds.DueSlot(Utc(1, 0, 0, 25), Utc(1, 0, 0, 10)));
        Assert.Contains("bad cron expression", Assert.Throws<FormatException>(() => PeriodicTask.CronSchedule("bad", "61 * * * *", "UTC", Tick)).Message, StringComparison.Ordinal);
        Assert.Contains("unknown time zone", Assert.Throws<FormatException>(() => PeriodicTask.CronSchedule("bad", "0 * * * *", "Mars/Olympus", Tick)).Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task OnlyTheLeaseHolderIssuesAndEachSlotOnce(string backend)
    {
        var time = new FakeTimeProvider(Utc(1, 10, 0));
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        var lease = TimeSpan.FromMilliseconds(400);
        var a = await queue.HoldLeaseAsync("scheduler", "a", lease);
        Assert.NotNull(a);
        Assert.Null(await queue.HoldLeaseAsync("scheduler", "b", lease));
        Assert.Equal(a, await queue.HoldLeaseAsync("scheduler", "a", lease));
        Assert.Equal("a", (await queue.LeaseHolderAsync("scheduler"))!.Holder);

        var slot = new DateTimeOffset(2026, 11, 26, 10, 0, 0, TimeSpan.Zero);
        Assert.True(await queue.IssueSlotAsync(new ScheduledSlot("scheduler", "a", a.Value, "tick", slot), Tick with { UniqueKey = "tick@1" }));
        Assert.False(await queue.IssueSlotAsync(new ScheduledSlot("scheduler", "a", a.Value, "tick", slot), Tick with { UniqueKey = "tick@1b" }));
        Assert.False(await queue.IssueSlotAsync(new ScheduledSlot("scheduler", "a", a.Value, "tick", slot.AddSeconds(-1)), Tick));
        Assert.False(await queue.IssueSlotAsync(new ScheduledSlot("scheduler", "b", a.Value, "tick", slot.AddSeconds(1)), Tick));
        Assert.Equal(slot, await queue.LastSlotAsync("tick"));

        // a stops renewing: b takes over with a higher token, and a, paused meanwhile, can issue nothing.
        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Null(await queue.LeaseHolderAsync("scheduler"));
        var b = await queue.HoldLeaseAsync("scheduler", "b", lease);
        Assert.True(b > a);
        Assert.Null(await queue.HoldLeaseAsync("scheduler", "a", lease));
        Assert.False(await queue.IssueSlotAsync(new ScheduledSlot("scheduler", "a", a.Value, "tick", slot.AddSeconds(1)), Tick));
        Assert.True(await queue.IssueSlotAsync(new ScheduledSlot("scheduler", "b", b!.Value, "tick", slot.AddSeconds(1)), Tick with { UniqueKey = "tick@2" }));
        Assert.Equal(2, Assert.Single(await queue.StatsAsync()).Pending);

        // Released: the next holder need not wait for it to expire, and still gets a higher token.
        Assert.True(await queue.ReleaseLeaseAsync("scheduler", "b", b.Value));
        Assert.True(await queue.HoldLeaseAsync("scheduler", "c", lease) > b);
    }

    [SkippableTheory]
    [MemberData(nameof(TestQueue.Backends), MemberType = typeof(TestQueue))]
    public async Task TwoSchedulersIssueEverySlotOnceBetweenThem(string backend)
    {
        var time = new FakeTimeProvider(Utc(1, 10, 0));
        await using var file = TestQueue.Create(backend, time);
        var queue = file.Queue;
        var options = new SchedulerOptions { Lease = TimeSpan.FromMilliseconds(900), Tick = TimeSpan.FromMilliseconds(100) };
        var entries = new[] { PeriodicTask.Interval("second", TimeSpan.FromSeconds(1), Tick) };
        using var stop = new CancellationTokenSource();
        var one = new Scheduler(queue, entries, options, "one", time, NullLogger.Instance).RunAsync(stop.Token);
        var two = new Scheduler(queue, entries, options, "two", time, NullLogger.Instance).RunAsync(stop.Token);
        // Four seconds on the schedulers' clock, half a tick at a time, each second until its slot (or a later one) is issued.
        var start = time.GetUtcNow();
        for (var second = 1; second <= 4; second++)
        {
            var slot = start + TimeSpan.FromSeconds(second);
            await time.AdvanceUntilAsync(async () => await queue.LastSlotAsync("second") >= slot, options.Tick / 2, $"slot {slot:T}");
        }
        await stop.CancelAsync();
        await Task.WhenAll(one, two);
        var issued = new List<LeasedTask>();
        while (await queue.LeaseAsync(["default"], "reader", 100, TimeSpan.FromMinutes(1)) is { Count: > 0 } leased)
        {
            issued.AddRange(leased);
        }
        var slots = issued.Select(t => System.Text.Json.JsonDocument.Parse(t.Arguments).RootElement.GetProperty("slot").GetString()).ToList();
        Assert.InRange(slots.Count, 2, 5);
        Assert.Equal(slots.Count, slots.Distinct().Count());
    }
}
