using Logwell.Jobs;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// The task queue a test's processes share, on either backend: this process's handle on it, and the settings that
/// point a <c>logwell</c> process at it.
/// </summary>
internal sealed class QueueBackend : IAsyncDisposable
{
    public static TheoryData<string> All => new() { "sqlite", "redis" };

    private QueueBackend(ITaskQueue queue, Dictionary<string, string> settings)
    {
        Queue = queue;
        Settings = settings;
    }

    public ITaskQueue Queue { get; }

    /// <summary><c>LOGWELL_</c> variables for the processes (add more to them freely: each call gets its own copy).</summary>
    public Dictionary<string, string> Settings { get; }

    public Dictionary<string, string> With(params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string>(Settings);
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }
        return settings;
    }

    public static QueueBackend Open(string backend, string dataDirectory)
    {
        if (backend == "redis")
        {
            var address = RedisServer.Address;
            var prefix = $"it-{Guid.NewGuid():N}:";
            return new QueueBackend(RedisTaskQueue.Connect(address, prefix, TimeProvider.System), new Dictionary<string, string>
            {
                ["LOGWELL_QueueBackend"] = "redis",
                ["LOGWELL_RedisConnection"] = address,
                ["LOGWELL_RedisPrefix"] = prefix,
            });
        }
        return new QueueBackend(new SqliteTaskQueue(Path.Combine(dataDirectory, "tasks.db"), TimeProvider.System), []);
    }

    public ValueTask DisposeAsync() => Queue.DisposeAsync();
}
