using Logwell.Jobs;

namespace Logwell.Tests;

/// <summary>An embedded task queue in a temporary directory, with retries shortened to milliseconds.</summary>
internal sealed class QueueFile : IAsyncDisposable
{
    public QueueFile() => Queue = new SqliteTaskQueue(Path.Combine(Directory.Path, "queue.db"), retryBase: TimeSpan.FromMilliseconds(20));

    public TempDirectory Directory { get; } = new();

    public SqliteTaskQueue Queue { get; }

    public async ValueTask DisposeAsync()
    {
        await Queue.DisposeAsync();
        Directory.Dispose();
    }
}
