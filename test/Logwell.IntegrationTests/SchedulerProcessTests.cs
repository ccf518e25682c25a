using System.Globalization;
using Logwell.Jobs;
using Microsoft.Data.Sqlite;

namespace Logwell.IntegrationTests;

/// <summary>Two <c>logwell scheduler</c> processes on one node: one issues, the other takes over when it dies.</summary>
public sealed class SchedulerProcessTests
{
    private const int LeaseSeconds = 3;

    /// <summary>A periodic <c>diag.record</c> every second, and a short scheduler lease.</summary>
    private static Dictionary<string, string> Settings() => new()
    {
        ["LOGWELL_SchedulerLeaseSeconds"] = LeaseSeconds.ToString(CultureInfo.InvariantCulture),
        ["LOGWELL_Schedule__tick__Task"] = "diag.record",
        ["LOGWELL_Schedule__tick__Every"] = "00:00:01",
    };

    /// <summary>The slots issued for <c>tick</c>, in the order they were enqueued.</summary>
    private static List<DateTimeOffset> IssuedSlots(string dataDirectory)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(dataDirectory, "tasks.db")};Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT unique_key FROM tasks WHERE name = 'diag.record' ORDER BY id";
        var slots = new List<DateTimeOffset>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var key = reader.GetString(0);
            Assert.StartsWith("schedule:tick@", key, StringComparison.Ordinal);
            slots.Add(DateTimeOffset.Parse(key["schedule:tick@".Length..], CultureInfo.InvariantCulture));
        }
        return slots;
    }

    [Fact]
    public async Task WhenTheActiveSchedulerIsKilledTheOtherTakesOverWithinTwoLeasesAndNoSlotIsIssuedTwice()
    {
        using var dir = new TempDirectory();
        var queueFile = Path.Combine(dir.Path, "tasks.db");
        await using var first = RoleProcess.Start(["scheduler", "--data", dir.Path], Settings());
        await using (var queue = new SqliteTaskQueue(queueFile))
        {
            await WorkerProcessTests.WaitForAsync(() => queue.LeaseHolderAsync(Scheduler.LeaseName).Result?.Holder.Contains($":{first.Id}:", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(60), () => first.Output);
        }
        await using var second = RoleProcess.Start(["scheduler", "--data", dir.Path], Settings());
        await WorkerProcessTests.WaitForAsync(() => IssuedSlots(dir.Path).Count >= 3, TimeSpan.FromSeconds(60), () => first.Output + second.Output);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(second.HasExited, second.Output);
        Assert.DoesNotContain("active with lease", second.Output, StringComparison.Ordinal);

        LeaseHolder before;
        await using (var queue = new SqliteTaskQueue(queueFile))
        {
            before = (await queue.LeaseHolderAsync(Scheduler.LeaseName))!;
        }
        RoleProcess.Signal(first.Id, "KILL");
        var killed = DateTimeOffset.UtcNow;
        var lastBeforeKill = IssuedSlots(dir.Path).Max();
        await WorkerProcessTests.WaitForAsync(() => second.Output.Contains("active with lease", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => second.Output);
        var tookOverAt = DateTimeOffset.UtcNow;
        var takeover = tookOverAt - killed;
        Assert.True(takeover < TimeSpan.FromSeconds(2 * LeaseSeconds), $"took over after {takeover.TotalSeconds:0.0} s");
        await using (var queue = new SqliteTaskQueue(queueFile))
        {
            var after = (await queue.LeaseHolderAsync(Scheduler.LeaseName))!;
            Assert.Contains($":{second.Id}:", after.Holder, StringComparison.Ordinal);
            Assert.True(after.Token > before.Token, "the new holder's fencing token is higher");
        }
        var issuedAtTakeover = IssuedSlots(dir.Path).Count;
        await WorkerProcessTests.WaitForAsync(() => IssuedSlots(dir.Path).Count >= issuedAtTakeover + 3, TimeSpan.FromSeconds(60), () => second.Output);
        RoleProcess.Signal(second.Id, "TERM");
        Assert.Equal(0, await second.WaitAsync(TimeSpan.FromSeconds(30)));

        var slots = IssuedSlots(dir.Path);
        Assert.Equal(slots.Count, slots.Distinct().Count());
        // In issue order, slots only move forward, on whole seconds.
        for (var i = 1; i < slots.Count; i++)
        {
            Assert.True(slots[i] > slots[i - 1], $"slot {slots[i]:O} issued after {slots[i - 1]:O}");
        }
        Assert.All(slots, s => Assert.Equal(0, s.ToUnixTimeMilliseconds() % 1000));
        // The slots missed while nobody held the lease were issued once, as the latest of them, not one by one.
        var missed = slots.Where(s => s > lastBeforeKill && s < tookOverAt - TimeSpan.FromSeconds(1.5)).ToList();
        Assert.True(missed.Count == 0, $"missed slots issued one by one: {string.Join(", ", missed)}; killed at {killed:O}, took over at {tookOverAt:O}");
    }
}
