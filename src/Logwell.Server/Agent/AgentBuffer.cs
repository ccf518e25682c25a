using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Logwell.Hosting;
using Logwell.Storage.Encoding;

namespace Logwell.Server.Agent;

/// <summary>Where a batch leaves one file: the offset after its last event there, and the marker of the bytes before it.</summary>
internal sealed record BatchFile(FileIdentity Identity, string Path, long Offset, ulong Marker, string Input, long CopiesBefore = 0);

/// <summary>A batch in the on-disk buffer: ready to send as it is stored (gzip), in sequence order.</summary>
internal sealed record QueuedBatch(long Seq, string IndexSet, int Events, long RawBytes, long StoredBytes, IReadOnlyList<BatchFile> Files, string File);

/// <summary>
/// The agent's durable state in its data directory: the on-disk buffer of batches waiting for the server
/// (<c>buffer/SEQ.batch</c>, each written whole: temp file, fsync, rename) and the checkpoint (<c>checkpoint.json</c>,
/// replaced atomically) with the last batch the server acknowledged and where each file stands. A file's reading
/// resumes after its last buffered batch, so nothing buffered is read twice; the checkpoint moves only on the server's
/// acknowledgement, and a batch is deleted only once the checkpoint says so.
/// </summary>
internal sealed class AgentBuffer
{
    private const string Magic = "LOGWELL-AGENT-BATCH 1";

    private readonly string _directory;
    private readonly string _checkpointPath;
    private readonly long _maxBytes;
    private readonly Lock _lock = new();
    private readonly LinkedList<QueuedBatch> _queue = [];
    private readonly Dictionary<FileIdentity, int> _queuedPerFile = [];
    private readonly Dictionary<FileIdentity, FilePosition> _checkpoint = [];
    private readonly Dictionary<FileIdentity, long> _retired = [];
    private readonly SemaphoreSlim _added = new(0, int.MaxValue);
    private long _acked;
    private long _next;
    private long _bytes;
    private string[] _inputs;
    private byte[] _saved = [];

    private AgentBuffer(string dataDir, long maxBytes)
    {
        _directory = Path.Combine(dataDir, "buffer");
        _checkpointPath = Path.Combine(dataDir, "checkpoint.json");
        _maxBytes = maxBytes;
        _inputs = [];
    }

    /// <summary>Events of the batch that was being sent when the agent last stopped without its answer: the server may hold them twice.</summary>
    public int Redelivered { get; private set; }

    /// <summary>Bytes in the buffer.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public int Batches
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>The buffer holds its limit: reading waits.</summary>
    public bool Full => Bytes >= _maxBytes;

    public IReadOnlyList<string> ScannedInputs => _inputs;

    public static AgentBuffer Open(string dataDir, long maxBytes)
    {
        var buffer = new AgentBuffer(dataDir, maxBytes);
        Directory.CreateDirectory(buffer._directory);
        buffer.LoadCheckpoint();
        foreach (var path in Directory.EnumerateFiles(buffer._directory, "*.batch.tmp"))
        {
            File.Delete(path);
        }
        var batches = new List<QueuedBatch>();
        foreach (var path in Directory.EnumerateFiles(buffer._directory, "*.batch"))
        {
            if (ReadHeader(path) is { } batch)
            {
                batches.Add(batch);
            }
            else
            {
                // Not a batch the agent wrote whole (renamed only once complete): kept aside for a person to look at.
                File.Move(path, path + ".damaged", overwrite: true);
            }
        }
        foreach (var batch in batches.OrderBy(b => b.Seq))
        {
            if (batch.Seq <= buffer._acked)
            {
                // Acknowledged and checkpointed, but not yet deleted when the agent stopped.
                File.Delete(batch.File);
                continue;
            }
            buffer.Enqueue(batch);
        }
        if (buffer._queue.First is { } first)
        {
            // The first one waiting may have reached the server before the agent stopped; it is sent again.
            buffer.Redelivered = first.Value.Events;
        }
        buffer._next = Math.Max(buffer._acked, buffer._queue.Last?.Value.Seq ?? 0) + 1;
        return buffer;
    }

    /// <summary>Where each file resumes: after its last buffered batch, else at its checkpoint.</summary>
    public IReadOnlyList<FilePosition> Positions()
    {
        lock (_lock)
        {
            var positions = new Dictionary<FileIdentity, FilePosition>(_checkpoint);
            foreach (var batch in _queue)
            {
                foreach (var file in batch.Files)
                {
                    positions[file.Identity] = new FilePosition(file.Identity, file.Path, file.Offset, file.Marker, file.Input, file.CopiesBefore);
                }
            }
            return [.. positions.Values];
        }
    }

    /// <summary>Stores a batch durably (the caller stops reading while <see cref="Full"/>).</summary>
    public QueuedBatch Append(string indexSet, int events, long rawBytes, IReadOnlyList<BatchFile> files, ReadOnlySpan<byte> body)
    {
        long seq;
        lock (_lock)
        {
            seq = _next++;
        }
        var path = Path.Combine(_directory, seq.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".batch");
        var header = new JsonObject
        {
            ["seq"] = seq,
            ["indexset"] = indexSet,
            ["events"] = events,
            ["raw_bytes"] = rawBytes,
            ["body_bytes"] = body.Length,
            ["body_crc32"] = Crc32.HashToUInt32(body),
            ["files"] = new JsonArray([.. files.Select(FileJson)]),
        };
        using var content = new MemoryStream();
        content.Write(Encoding.UTF8.GetBytes(Magic + "\n" + header.ToJsonString() + "\n"));
        content.Write(body);
        DurableFile.WriteAtomically(path, content.GetBuffer().AsSpan(0, (int)content.Length));
        var batch = new QueuedBatch(seq, indexSet, events, rawBytes, content.Length, files, path);
        lock (_lock)
        {
            Enqueue(batch);
        }
        _added.Release();
        return batch;
    }

    /// <summary>The oldest batch not yet acknowledged, once there is one.</summary>
    public async Task<QueuedBatch> NextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_queue.First is { } first)
                {
                    return first.Value;
                }
            }
            await _added.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A batch's body as stored; null (and the file set aside) when its checksum says the disk changed it.</summary>
    public static byte[]? ReadBody(QueuedBatch batch)
    {
        var content = File.ReadAllBytes(batch.File);
        var headerStart = content.AsSpan().IndexOf((byte)'\n') + 1;
        var headerEnd = content.AsSpan(headerStart).IndexOf((byte)'\n') + headerStart;
        var header = JsonNode.Parse(content.AsSpan(headerStart, headerEnd - headerStart))!;
        var body = content[(headerEnd + 1)..];
        return body.Length == header["body_bytes"]!.GetValue<long>() && Crc32.HashToUInt32(body) == header["body_crc32"]!.GetValue<uint>() ? body : null;
    }

    /// <summary>
    /// The server acknowledged the oldest batch: the checkpoint moves past it (durably), then its file goes. A
    /// <paramref name="damaged"/> batch is moved aside instead of deleted.
    /// </summary>
    public void Acked(QueuedBatch batch, bool damaged = false)
    {
        lock (_lock)
        {
            if (_queue.First?.Value != batch)
            {
                throw new InvalidOperationException($"batch {batch.Seq} acknowledged out of order");
            }
            _queue.RemoveFirst();
            _acked = batch.Seq;
            foreach (var file in batch.Files)
            {
                _checkpoint[file.Identity] = new FilePosition(file.Identity, file.Path, file.Offset, file.Marker, file.Input, file.CopiesBefore);
                if (--_queuedPerFile[file.Identity] == 0)
                {
                    _queuedPerFile.Remove(file.Identity);
                }
                if (_retired.TryGetValue(file.Identity, out var end) && file.Offset >= end)
                {
                    _retired.Remove(file.Identity);
                    _checkpoint.Remove(file.Identity);
                }
            }
            Interlocked.Add(ref _bytes, -batch.StoredBytes);
            SaveCheckpointLocked();
        }
        if (damaged)
        {
            File.Move(batch.File, batch.File + ".damaged", overwrite: true);
        }
        else
        {
            File.Delete(batch.File);
        }
    }

    /// <summary>
    /// A file with no event waiting anywhere (none read and unsent, none buffered) stands at <paramref name="position"/>:
    /// everything before it was acknowledged or filtered out. Checkpointed at the next save.
    /// </summary>
    public void Settled(FilePosition position)
    {
        lock (_lock)
        {
            if (!_queuedPerFile.ContainsKey(position.Identity))
            {
                _checkpoint[position.Identity] = position;
            }
        }
    }

    /// <summary>A file the agent is done with (rotated away, read to its end): forgotten once its events up to <paramref name="offset"/> are acknowledged.</summary>
    public void Retired(FileIdentity identity, long offset)
    {
        lock (_lock)
        {
            if (_queuedPerFile.ContainsKey(identity))
            {
                _retired[identity] = offset;
            }
            else
            {
                _checkpoint.Remove(identity);
            }
        }
    }

    /// <summary>Remembers the inputs scanned, so a restart reads files new to them from their beginning.</summary>
    public void Scanned(IEnumerable<string> inputs)
    {
        lock (_lock)
        {
            _inputs = [.. inputs.Order(StringComparer.Ordinal)];
        }
    }

    /// <summary>Writes the checkpoint when it changed.</summary>
    public void SaveCheckpoint()
    {
        lock (_lock)
        {
            SaveCheckpointLocked();
        }
    }

    private void Enqueue(QueuedBatch batch)
    {
        _queue.AddLast(batch);
        foreach (var file in batch.Files)
        {
            _queuedPerFile[file.Identity] = _queuedPerFile.GetValueOrDefault(file.Identity) + 1;
        }
        Interlocked.Add(ref _bytes, batch.StoredBytes);
    }

    private void SaveCheckpointLocked()
    {
        var json = new JsonObject
        {
            ["version"] = 1,
            ["acked_seq"] = _acked,
            ["inputs"] = new JsonArray([.. _inputs.Select(i => JsonValue.Create(i))]),
            ["files"] = new JsonArray([.. _checkpoint.Values.OrderBy(p => p.Path, StringComparer.Ordinal)
                .Select(p => FileJson(new BatchFile(p.Identity, p.Path, p.Offset, p.Marker, p.Input ?? "", p.CopiesBefore)))]),
        };
        var bytes = Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (!bytes.AsSpan().SequenceEqual(_saved))
        {
            DurableFile.WriteAtomically(_checkpointPath, bytes);
            _saved = bytes;
        }
    }

    private void LoadCheckpoint()
    {
        if (!File.Exists(_checkpointPath))
        {
            return;
        }
        JsonNode json;
        try
        {
            json = JsonNode.Parse(File.ReadAllBytes(_checkpointPath)) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{_checkpointPath} is not a checkpoint the agent wrote ({e.Message}); move it away to start over");
        }
        if (json["version"]?.GetValue<int>() != 1)
        {
            throw new InvalidDataException($"{_checkpointPath} has a version this agent does not read");
        }
        _acked = json["acked_seq"]!.GetValue<long>();
        _inputs = [.. json["inputs"]!.AsArray().Select(i => i!.GetValue<string>())];
        foreach (var file in json["files"]!.AsArray())
        {
            var parsed = ParseFile(file!);
            _checkpoint[parsed.Identity] = new FilePosition(parsed.Identity, parsed.Path, parsed.Offset, parsed.Marker, parsed.Input, parsed.CopiesBefore);
        }
        _saved = File.ReadAllBytes(_checkpointPath);
    }

    private static QueuedBatch? ReadHeader(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            if (reader.ReadLine() != Magic || reader.ReadLine() is not { } line)
            {
                return null;
            }
            var header = JsonNode.Parse(line)!;
            return new QueuedBatch(header["seq"]!.GetValue<long>(), header["indexset"]!.GetValue<string>(), header["events"]!.GetValue<int>(),
                header["raw_bytes"]!.GetValue<long>(), stream.Length, [.. header["files"]!.AsArray().Select(f => ParseFile(f!))], path);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or NullReferenceException)
        {
            return null;
        }
    }

    private static JsonObject FileJson(BatchFile file) => new()
    {
        ["dev"] = file.Identity.Device,
        ["ino"] = file.Identity.Inode,
        ["path"] = file.Path,
        ["offset"] = file.Offset,
        ["marker"] = file.Marker.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
        ["input"] = file.Input,
        ["copies_before"] = file.CopiesBefore,
    };

    private static BatchFile ParseFile(JsonNode file) => new(new FileIdentity(file["dev"]!.GetValue<ulong>(), file["ino"]!.GetValue<ulong>()),
        file["path"]!.GetValue<string>(), file["offset"]!.GetValue<long>(),
        ulong.Parse(file["marker"]!.GetValue<string>(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture),
        file["input"]?.GetValue<string>() ?? "", file["copies_before"]?.GetValue<long>() ?? 0);
}
