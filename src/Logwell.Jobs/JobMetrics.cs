using System.Diagnostics.Metrics;

namespace Logwell.Jobs;

/// <summary>What workers do, published as .NET metrics (a node's <c>/metrics</c> exports those of its own process).</summary>
internal static class JobMetrics
{
    private static readonly Meter Meter = new("Logwell.Jobs");

    /// <summary>Finished task runs by name and outcome: completed, failed, lost (its lease passed to another worker), handed_back.</summary>
    public static readonly Counter<long> Tasks = Meter.CreateCounter<long>("tasks", "{task}", "Task runs by outcome");

    public static readonly Histogram<double> TaskDuration = Meter.CreateHistogram<double>("task.duration", "s", "How long task runs took");

    public static readonly UpDownCounter<long> Running = Meter.CreateUpDownCounter<long>("tasks.running", "{task}", "Tasks running in this process");

    /// <summary>Worker recycles by reason: max_tasks, max_memory, hard_limit.</summary>
    public static readonly Counter<long> Recycles = Meter.CreateCounter<long>("worker.recycles", "{recycle}", "Workers that ended to be replaced");

    public static void Finished(LeasedTask task, string outcome, TimeSpan took)
    {
        Tasks.Add(1, new KeyValuePair<string, object?>("name", task.Name), new KeyValuePair<string, object?>("outcome", outcome));
        TaskDuration.Record(took.TotalSeconds, new KeyValuePair<string, object?>("name", task.Name));
    }
}
