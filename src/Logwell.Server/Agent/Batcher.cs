using System.Buffers;
using System.IO.Compression;
using System.Text.Json;
using Logwell.Hosting;

namespace Logwell.Server.Agent;

/// <summary>
/// Gathers events into one batch per index set, as the server takes them (JSON lines for Logwell's ingest endpoint, or
/// an Elasticsearch bulk body), and hands a batch to the on-disk buffer, gzip-compressed, when it holds
/// <see cref="AgentOptions.BatchBytes"/> or is <see cref="AgentOptions.BatchWait"/> old.
/// </summary>
internal sealed class Batcher(AgentOptions options, AgentBuffer buffer, AgentMetrics metrics, TimeProvider time, string agentId)
{
    /// <summary>The inputs events are added under: replaced when central management changes them.</summary>
    public AgentOptions Options { get; set; } = options;

    private sealed class OpenBatch(DateTimeOffset started)
    {
        public ArrayBufferWriter<byte> Body { get; } = new(64 << 10);
        public int Events { get; set; }
        public DateTimeOffset Started { get; } = started;
        public Dictionary<FileIdentity, (TrackedFile File, long End, string Input, ulong? Marker)> Files { get; } = [];
    }

    private readonly Dictionary<string, OpenBatch> _open = new(StringComparer.Ordinal);
    private readonly HashSet<FileIdentity> _unsent = [];

    // One writer, pointed at each batch in turn: no allocation per event.
    private readonly Utf8JsonWriter _json = new(Stream.Null);

    // Each bulk item's _id: the agent, a random name for this run of it and a count, so that a batch sent again after
    // some of its items went in makes Elasticsearch answer 409 for those, not store them twice. Lines read again
    // after a crash are new items.
    private readonly string _idPrefix = $"{agentId}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6))}-";
    private long _items;

    /// <summary>Whether events of the file wait in a batch not yet buffered.</summary>
    public bool Holds(FileIdentity file) => _unsent.Contains(file);

    public void Add(FileEvent e)
    {
        var input = Options.Inputs[e.File.Input];
        var now = time.GetUtcNow();
        if (!_open.TryGetValue(input.IndexSet, out var batch))
        {
            _open[input.IndexSet] = batch = new OpenBatch(now);
        }
        var json = _json;
        json.Reset(batch.Body);
        if (Options.Protocol == OutputProtocol.Elasticsearch)
        {
            json.WriteStartObject();
            json.WriteStartObject("create");
            json.WriteString("_index", input.IndexSet);
            Span<char> id = stackalloc char[_idPrefix.Length + 16];
            _idPrefix.CopyTo(id);
            (++_items).TryFormat(id[_idPrefix.Length..], out var digits, "x", System.Globalization.CultureInfo.InvariantCulture);
            json.WriteString("_id", id[..(_idPrefix.Length + digits)]);
            json.WriteEndObject();
            json.WriteEndObject();
            json.Flush();
            batch.Body.Write("\n"u8);
            json.Reset(batch.Body);
        }
        json.WriteStartObject();
        // The time the line was read: the event's time unless the server finds one in the line itself, and the
        // same when a batch is sent again.
        json.WriteString("@timestamp", now);
        json.WriteString("message", e.Text);
        json.WriteString("host", Options.Name);
        json.WriteString("file", e.File.Path);
        json.WriteNumber("offset", e.Start);
        foreach (var (name, value) in input.Fields)
        {
            json.WriteString(name, value);
        }
        json.WriteEndObject();
        json.Flush();
        batch.Body.Write("\n"u8);
        batch.Events++;
        batch.Files[e.File.Identity] = (e.File, e.End, FileTailer.InputKey(input), e.Marker);
        _unsent.Add(e.File.Identity);
        if (batch.Body.WrittenCount >= Options.BatchBytes)
        {
            Seal(input.IndexSet, batch);
        }
    }

    /// <summary>Buffers the batches that waited long enough, or all of them.</summary>
    public void SealDue(bool all = false)
    {
        var now = time.GetUtcNow();
        foreach (var (indexSet, batch) in _open.ToList())
        {
            if (all || now - batch.Started >= Options.BatchWait)
            {
                Seal(indexSet, batch);
            }
        }
    }

    private void Seal(string indexSet, OpenBatch batch)
    {
        _open.Remove(indexSet);
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(batch.Body.WrittenSpan);
        }
        var files = batch.Files.Values.Select(f => new BatchFile(f.File.Identity, f.File.Path, f.End, f.Marker ?? FileTailer.MarkerOf(f.File, f.End), f.Input, f.File.CopiesBefore)).ToList();
        buffer.Append(indexSet, batch.Events, batch.Body.WrittenCount, files, compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        metrics.EventsBuffered.Add(batch.Events);
        foreach (var file in batch.Files.Keys)
        {
            _unsent.Remove(file);
        }
    }
}
