using System.Diagnostics.Metrics;

namespace Logwell.Storage.Engine;

/// <summary>The engine's measurements, published as .NET metrics (the node's <c>/metrics</c> exports them).</summary>
internal static class StorageMetrics
{
    private static readonly Meter Meter = new("Logwell.Storage");

    /// <summary>Events made durable (acknowledged), by index set.</summary>
    public static readonly Counter<long> IngestedEvents = Meter.CreateCounter<long>("ingest.events", "{event}", "Events written to the write-ahead log and acknowledged");
}
