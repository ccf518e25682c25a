using System.Globalization;
using Logwell.Jobs;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>Two <c>logwell scheduler</c> processes on one node: one issues, the other takes over when it dies.</summary>
public sealed class SchedulerProcessTests
{
    private const int LeaseSeconds = 3;

    /// <summary>A periodic <c>diag.record</c> every second, and a short scheduler lease.</summary>
    private static Dictionary<string, string> Settings(QueueBackend queues) => queues.With(
        ("LOGWELL_SchedulerLeaseSeconds", LeaseSeconds.ToString(CultureInfo.InvariantCulture)),
        ("LOGWELL_Schedule__tick__Task", "diag.record"),
        ("LOGWELL_Schedule__tick__Every", "00:00:01"));

    /// <summary>Takes the issued <c>tick</c> tasks off the queue: their slots, in the order they were enqueued.</summary>
    private static async Task<List<DateTimeOffset>> TakeIssuedAsync(ITaskQueue queue)
    {
        var tasks = new List<LeasedTask>();
        while (await queue.LeaseAsync(["default"], "test", 100, TimeSpan.FromHours(1)) is { Count: > 0 } leased)
        {
            tasks.AddRange(leased);
        }
        return [.. tasks.OrderBy(t => t.Id).Select(t => DateTimeOffset.Parse(JsonDocument.Parse(t.Arguments).RootElement.GetProperty("slot").GetString()!, CultureInfo.InvariantCulture))];
    }

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task WhenTheActiveSchedulerIsKilledTheOtherTakesOverAndNoSlotIsIssuedTwice(string backend)
    {
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        var queue = queues.Queue;
        var slots = new List<DateTimeOffset>();
        async Task<int> IssuedAsync()
        {
            slots.AddRange(await TakeIssuedAsync(queue));
            return slots.Count;
        }
        await using var first = RoleProcess.Start(["scheduler", "--data", dir.Path], Settings(queues));
        await WorkerProcessTests.WaitForAsync(() => queue.LeaseHolderAsync(Scheduler.LeaseName).Result?.Holder.Contains($":{first.Id}:", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(60), () => first.Output);
        await using var second = RoleProcess.Start(["scheduler", "--data", dir.Path], Settings(queues));
        await WorkerProcessTests.WaitForAsync(() => second.Output.Contains("started with", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => second.Output);
        // The first goes on issuing while the second, up and ticking, stands by.
        var issuedBeforeSecond = await IssuedAsync();
        await WorkerProcessTests.WaitForAsync(() => IssuedAsync().Result >= issuedBeforeSecond + 3, TimeSpan.FromSeconds(60), () => first.Output + second.Output);
        Assert.False(second.HasExited, second.Output);
        Assert.DoesNotContain("active with lease", second.Output, StringComparison.Ordinal);

        var before = (await queue.LeaseHolderAsync(Scheduler.LeaseName))!;
        RoleProcess.Signal(first.Id, "KILL");
        await IssuedAsync();
        var lastBeforeKill = slots.Max();
        await WorkerProcessTests.WaitForAsync(() => second.Output.Contains("active with lease", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => second.Output);
        var after = (await queue.LeaseHolderAsync(Scheduler.LeaseName))!;
        Assert.Contains($":{second.Id}:", after.Holder, StringComparison.Ordinal);
        Assert.True(after.Token > before.Token, "the new holder's fencing token is higher");
        var issuedAtTakeover = await IssuedAsync();
        await WorkerProcessTests.WaitForAsync(() => IssuedAsync().Result >= issuedAtTakeover + 3, TimeSpan.FromSeconds(60), () => second.Output);
        RoleProcess.Signal(second.Id, "TERM");
        Assert.Equal(0, await second.WaitAsync(TimeSpan.FromSeconds(30)));
        await IssuedAsync();

        Assert.Equal(slots.Count, slots.Distinct().Count());
        // In issue order, slots only move forward, on whole seconds.
        for (var i = 1; i < slots.Count; i++)
        {
            Assert.True(slots[i] > slots[i - 1], $"slot {slots[i]:O} issued after {slots[i - 1]:O}");
        }
        Assert.All(slots, s => Assert.Equal(0, s.ToUnixTimeMilliseconds() % 1000));
        // The slots missed while nobody held the lease were issued once, as the latest of them, not one by one. The
        // killed scheduler's lease ran on for 3 s after the tick in which it last renewed it and issued its last slot,
        // so at least two slots fell due unheld: the first slot after the kill is two seconds or more after the last
        // one before it (issued one by one, it would be the next second).
        var firstAfterKill = slots.Where(s => s > lastBeforeKill).Min();
        Assert.True(firstAfterKill - lastBeforeKill >= TimeSpan.FromSeconds(2), $"slots after the kill issued one by one: {lastBeforeKill:O} then {firstAfterKill:O}");
    }

    [Fact]
    public async Task ABadPeriodicTaskSettingStopsTheSchedulerWithItsName()
    {
        using var dir = new TempDirectory();
        await using var scheduler = RoleProcess.Start(["scheduler", "--data", dir.Path], new Dictionary<string, string>
        {
            ["LOGWELL_Schedule__report__Task"] = "diag.noop",
            ["LOGWELL_Schedule__report__Cron"] = "0 25 * * *",
        });
        Assert.Equal(2, await scheduler.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("error: invalid settings: Logwell:Schedule:report: periodic task 'report': bad cron expression '0 25 * * *'", scheduler.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", scheduler.Output, StringComparison.Ordinal);
    }
}
