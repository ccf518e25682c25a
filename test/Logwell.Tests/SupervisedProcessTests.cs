using Logwell.Hosting.Supervisor;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>supervisord's state machine for one process, on a fake clock: back-off, FATAL and the stop escalation.</summary>
public sealed class SupervisedProcessTests
{
    private static (SupervisedProcess Process, List<string> Log) Create(TempDirectory dir, string program, FakeTimeProvider time)
    {
        var config = SupervisorConfig.Parse(Path.Combine(dir.Path, "supervisor.conf"), program, dir.Path).Processes.Single();
        var log = new List<string>();
        return (new SupervisedProcess(config, line => log.Add(line), () => { }, time), log);
    }

    [Fact]
    public void AProgramThatCannotStartBacksOffOneTwoThreeSecondsThenIsFatal()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider();
        var (process, log) = Create(dir, """
            [program:missing]
            command = /nonexistent/logwell-no-such-program
            startretries = 3
            """, time);
        // Each retry waits one second more than the last; the clock is looked at just before and at each deadline.
        var spawnsAt = new List<TimeSpan>();
        process.Transition(time.GetUtcNow(), stopping: false);
        for (var tenths = 1; tenths <= 100 && process.State != ProcessState.Fatal; tenths++)
        {
            var errors = log.Count(l => l.Contains("spawnerr", StringComparison.Ordinal));
            time.Advance(TimeSpan.FromMilliseconds(100));
            process.Transition(time.GetUtcNow(), stopping: false);
            if (log.Count(l => l.Contains("spawnerr", StringComparison.Ordinal)) > errors)
            {
                spawnsAt.Add(time.GetUtcNow() - time.Start);
            }
        }
        Assert.Equal(ProcessState.Fatal, process.State);
        // Tried once at the start, then after 1 s, 2 s and 3 s.
        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(6)], spawnsAt);
        Assert.Equal(4, log.Count(l => l.StartsWith("INFO spawnerr: can't find command '/nonexistent/logwell-no-such-program'", StringComparison.Ordinal)));
        Assert.Equal("INFO gave up: missing entered FATAL state, too many start retries too quickly", log[^1]);
        Assert.Equal("can't find command '/nonexistent/logwell-no-such-program'", process.Describe(time.GetUtcNow()));
    }

    [Fact]
    public async Task AProcessThatIgnoresItsStopSignalIsKilledAtStopwaitsecsAndNotBefore()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider();
        var (process, log) = Create(dir, """
            [program:stubborn]
            command = sh -c "trap '' TERM; echo ready; while true; do sleep 0.1; done"
            stdout_logfile = %(here)s/stubborn.log
            startsecs = 1
            stopwaitsecs = 5
            """, time);
        Assert.True(process.Start());
        // startsecs is counted on the supervisor's clock.
        process.Transition(time.GetUtcNow() + TimeSpan.FromMilliseconds(999), stopping: false);
        Assert.Equal(ProcessState.Starting, process.State);
        time.Advance(TimeSpan.FromSeconds(1));
        process.Transition(time.GetUtcNow(), stopping: false);
        Assert.Equal(ProcessState.Running, process.State);
        // The shell has set its trap once it prints: a TERM before that would end it.
        await FakeClock.WaitUntilAsync(() => Task.FromResult(File.Exists(process.LogPath("stdout")) && File.ReadAllText(process.LogPath("stdout")!).Contains("ready", StringComparison.Ordinal)), "the program is ready");

        Assert.True(process.Stop());
        Assert.Equal(ProcessState.Stopping, process.State);
        time.Advance(TimeSpan.FromSeconds(4.9));
        process.Transition(time.GetUtcNow(), stopping: false);
        Assert.Equal(ProcessState.Stopping, process.State);
        Assert.DoesNotContain(log, l => l.Contains("SIGKILL", StringComparison.Ordinal));
        time.Advance(TimeSpan.FromSeconds(0.1));
        process.Transition(time.GetUtcNow(), stopping: false);
        Assert.Contains("WARN killing 'stubborn'", log[^1], StringComparison.Ordinal);
        await FakeClock.WaitUntilAsync(() =>
        {
            process.Transition(time.GetUtcNow(), stopping: false);
            return Task.FromResult(process.State == ProcessState.Stopped);
        }, "the killed program is reaped");
        Assert.Equal("INFO stopped: stubborn (terminated by SIGKILL)", log[^1]);
        process.CloseLogs();
    }
}
