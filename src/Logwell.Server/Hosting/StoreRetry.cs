using Microsoft.Extensions.Logging;

namespace Logwell.Server.Hosting;

/// <summary>
/// For the node's own writers (the audit log, syslog): work on the log store retried while the store fails (a
/// ClickHouse server that does not answer yet), once a second, rather than lost or left to stop the node.
/// </summary>
internal static class StoreRetry
{
    /// <summary>
    /// Runs <paramref name="work"/> until it succeeds; after <paramref name="stopping"/> is signalled, once more, and
    /// its failure is thrown.
    /// </summary>
    public static async Task<T> UntilDoneAsync<T>(Func<Task<T>> work, TimeProvider time, ILogger logger, string what, CancellationToken stopping)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                var result = await work().ConfigureAwait(false);
                if (failures > 0)
                {
                    logger.LogInformation("{What}: done after {Failures} failed tries", what, failures);
                }
                return result;
            }
            catch (Exception e) when (e is not (OperationCanceledException or ObjectDisposedException or OutOfMemoryException) && !stopping.IsCancellationRequested)
            {
                if (failures++ == 0)
                {
                    logger.LogWarning("{What} failed ({Error}); trying again every second", what, e.Message);
                }
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), time, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: one last try above.
                }
            }
        }
    }
}
