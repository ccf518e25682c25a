using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>Driving code that runs on a <see cref="FakeTimeProvider"/> while its I/O runs for real.</summary>
internal static class FakeClock
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Moves the clock on by <paramref name="step"/> until <paramref name="condition"/> holds. Between steps the real
    /// clock runs a little, for the work a step woke (queue I/O on the thread pool); the fake clock's step is kept small
    /// against the intervals under test, so that work is never late by the fake clock. Fails after a minute of real time.
    /// </summary>
    public static async Task AdvanceUntilAsync(this FakeTimeProvider time, Func<Task<bool>> condition, TimeSpan step, string what)
    {
        var started = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(started.Elapsed < Deadline, $"{what}: not reached after {time.GetUtcNow() - time.Start} on the fake clock");
            time.Advance(step);
            await Task.Delay(10);
        }
    }

    /// <summary>Waits, in real time, until <paramref name="condition"/> holds; fails after a minute.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var started = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(started.Elapsed < Deadline, $"{what}: not reached after a minute");
            await Task.Delay(10);
        }
    }
}
