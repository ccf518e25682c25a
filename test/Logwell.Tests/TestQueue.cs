using Logwell.Jobs;

namespace Logwell.Tests;

/// <summary>
/// A task queue on one backend, fresh for one test, with retries shortened to milliseconds: <c>sqlite</c> on a file in
/// a temporary directory, <c>redis</c> on the shared test Redis under a key prefix of its own.
/// </summary>
internal sealed class TestQueue : IAsyncDisposable
{
    /// <summary>Every backend, for <c>[MemberData]</c>: each queue test runs on both.</summary>
    public static TheoryData<string> Backends => new() { "sqlite", "redis" };

    private readonly TempDirectory? _directory;

    private TestQueue(ITaskQueue queue, TempDirectory? directory)
    {
        Queue = queue;
        _directory = directory;
    }

    public ITaskQueue Queue { get; }

    /// <param name="time">The queue's clock (leases, retries, rate limits); the system clock unless a test moves its own.</param>
    public static TestQueue Create(string backend, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var retryBase = TimeSpan.FromMilliseconds(20);
        if (backend == "redis")
        {
            return new TestQueue(RedisTaskQueue.Connect(RedisServer.Address, $"test-{Guid.NewGuid():N}:", time, retryBase), null);
        }
        var directory = new TempDirectory();
        return new TestQueue(new SqliteTaskQueue(Path.Combine(directory.Path, "queue.db"), time, retryBase), directory);
    }

    public async ValueTask DisposeAsync()
    {
        await Queue.DisposeAsync();
        _directory?.Dispose();
    }
}
