using System.Globalization;
using System.Text;

namespace Logwell.Server.Agent;

/// <summary>A count that only grows, safe to add to from any thread.</summary>
internal sealed class AgentCounter
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Add(long amount) => Interlocked.Add(ref _value, amount);
}

/// <summary>What the agent did and where it stands, for <c>/metrics</c> (Prometheus text) and its health report.</summary>
internal sealed class AgentMetrics
{
    public AgentCounter LinesRead { get; } = new();
    public AgentCounter BytesRead { get; } = new();
    public AgentCounter EventsFiltered { get; } = new();
    public AgentCounter FilesFound { get; } = new();
    public AgentCounter Truncations { get; } = new();
    public AgentCounter RecoveredFromCopies { get; } = new();
    public AgentCounter EventsBuffered { get; } = new();
    public AgentCounter BatchesShipped { get; } = new();
    public AgentCounter EventsShipped { get; } = new();
    public AgentCounter BytesShipped { get; } = new();
    public AgentCounter Retries { get; } = new();
    public AgentCounter Failovers { get; } = new();
    public AgentCounter EventsRejected { get; } = new();
    public AgentCounter EventsRedelivered { get; } = new();
    public AgentCounter EventsAlreadyStored { get; } = new();

    public string? LastError { get; set; }

    /// <summary>Set by the agent: the buffer's bytes and batches, files followed and open, and each file's bytes not yet read.</summary>
    public Func<(long BufferBytes, int BufferBatches, int Files, int OpenFiles, IReadOnlyList<(string Path, long Behind)> Lag)>? State { get; set; }

    public string Prometheus()
    {
        var text = new StringBuilder();
        void Counter(string name, string help, AgentCounter counter)
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP logwell_agent_{name} {help}\n# TYPE logwell_agent_{name} counter\nlogwell_agent_{name} {counter.Value}\n");
        }
        void Gauge(string name, string help, long value)
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP logwell_agent_{name} {help}\n# TYPE logwell_agent_{name} gauge\nlogwell_agent_{name} {value}\n");
        }
        Counter("lines_read_total", "Lines read from files.", LinesRead);
        Counter("read_bytes_total", "Bytes read from files.", BytesRead);
        Counter("events_filtered_total", "Events left out by include_lines and exclude_lines.", EventsFiltered);
        Counter("files_found_total", "Files found by the inputs' globs.", FilesFound);
        Counter("truncations_total", "Files found truncated (copytruncate) or rewritten.", Truncations);
        Counter("recovered_from_copies_total", "Truncated files whose last lines were read from their rotated copy.", RecoveredFromCopies);
        Counter("events_buffered_total", "Events written to the on-disk buffer.", EventsBuffered);
        Counter("batches_shipped_total", "Batches the server acknowledged.", BatchesShipped);
        Counter("events_shipped_total", "Events the server acknowledged.", EventsShipped);
        Counter("shipped_bytes_total", "Bytes sent in acknowledged batches (gzip).", BytesShipped);
        Counter("retries_total", "Batches sent again after a failure.", Retries);
        Counter("failovers_total", "Times the agent moved to the next server.", Failovers);
        Counter("events_rejected_total", "Events the server refused for good (set aside in the data directory's rejected/).", EventsRejected);
        Counter("events_redelivered_total", "Events sent again after a restart whose earlier sending's answer was lost: the server may hold them twice.", EventsRedelivered);
        Counter("events_already_stored_total", "Bulk items an Elasticsearch endpoint already held from an earlier sending of their batch (409 by their _id): not stored twice.", EventsAlreadyStored);
        if (State?.Invoke() is { } state)
        {
            Gauge("buffer_bytes", "Bytes in the on-disk buffer.", state.BufferBytes);
            Gauge("buffer_batches", "Batches in the on-disk buffer.", state.BufferBatches);
            Gauge("files", "Files followed.", state.Files);
            Gauge("open_files", "Files open.", state.OpenFiles);
            text.Append("# HELP logwell_agent_file_lag_bytes Bytes of a file not yet read.\n# TYPE logwell_agent_file_lag_bytes gauge\n");
            foreach (var (path, behind) in state.Lag)
            {
                text.Append(CultureInfo.InvariantCulture, $"logwell_agent_file_lag_bytes{{path=\"{path.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"}} {behind}\n");
            }
        }
        return text.ToString();
    }
}
