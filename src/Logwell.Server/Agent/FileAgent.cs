namespace Logwell.Server.Agent;

/// <summary>
/// <c>logwell agent</c>: reads the files of its inputs (<see cref="FileTailer"/>), gathers their events into batches
/// (<see cref="Batcher"/>) that go through an on-disk buffer (<see cref="AgentBuffer"/>) to the servers
/// (<see cref="BatchShipper"/>). Files are read ahead of the servers until the buffer is full; a file's offset is
/// checkpointed once the server acknowledged its events up to it.
/// </summary>
public sealed class FileAgent(AgentOptions options, TimeProvider time, TextWriter log)
{
    private static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(250);

    private readonly AgentLog _log = new(log, time);

    internal AgentMetrics Metrics { get; } = new();

    /// <summary>Prometheus text of the agent's counters and state.</summary>
    public string MetricsText() => Metrics.Prometheus();

    /// <summary>Runs until <paramref name="stop"/>: then the batches gathered are buffered, the one being sent is finished, and the checkpoint is written.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        Directory.CreateDirectory(options.DataDir);
        // One agent per data directory: a second one would read the same files from the same checkpoint.
        using var held = HoldDataDirectory();
        var agentId = AgentId();
        var buffer = AgentBuffer.Open(options.DataDir, options.BufferMaxBytes);
        Metrics.EventsRedelivered.Add(buffer.Redelivered);
        var tailer = new FileTailer(options, time, Metrics, buffer.Positions(), buffer.ScannedInputs);
        var batcher = new Batcher(options, buffer, Metrics, time, agentId);
        tailer.Found = files =>
        {
            foreach (var file in files)
            {
                buffer.Settled(file);
            }
            buffer.SaveCheckpoint();
        };
        // The reading loop owns the tailer; others see a snapshot it takes every second.
        var snapshot = Snapshot.Of(tailer, options);
        Metrics.State = () => (buffer.Bytes, buffer.Batches, Volatile.Read(ref snapshot).Files, Volatile.Read(ref snapshot).OpenFiles, Volatile.Read(ref snapshot).Lag);
        Log($"{options}; {buffer.Batches} batches buffered ({buffer.Bytes} bytes)");
        // One client per server, for the batches and the reports.
        using var servers = new Servers([.. options.Urls.Select(url => Hosting.ApiWorker.StoreClient(url.ToString(), TimeSpan.FromSeconds(60), options.CaFile))]);
        var clients = servers.Clients;
        var shipper = new BatchShipper(options, buffer, Metrics, time, agentId, _log, clients);
        using var stopShipping = new CancellationTokenSource();
        var shipping = Task.Run(() => shipper.RunAsync(stopShipping.Token), CancellationToken.None);
        var management = options.PollInterval is null ? null : new AgentManagement(options, Metrics, time, agentId, _log, clients);
        var managing = management is null ? Task.CompletedTask : Task.Run(() => management.RunAsync(() => Health(Volatile.Read(ref snapshot), buffer), stopShipping.Token), CancellationToken.None);
        var current = options;
        var retired = new List<(TrackedFile File, long Offset)>();
        var lastScan = DateTimeOffset.MinValue;
        var lastSettle = time.GetUtcNow();
        var full = false;
        try
        {
            while (!stop.IsCancellationRequested && !shipping.IsCompleted)
            {
                var now = time.GetUtcNow();
                if (management?.TakeChanged() is { } change)
                {
                    // Collection configs from the server: the local inputs and theirs, applied now.
                    var next = options with { Inputs = [.. options.Inputs, .. change.Inputs] };
                    retired.Clear();
                    tailer.Reconfigure(next, batcher.Add, retired);
                    batcher.SealDue(all: retired.Count > 0);
                    foreach (var (file, offset) in retired)
                    {
                        buffer.Retired(file.Identity, offset);
                    }
                    batcher.Options = next;
                    current = next;
                    management.Applied = change.Version;
                    lastScan = DateTimeOffset.MinValue;
                    Volatile.Write(ref snapshot, Snapshot.Of(tailer, current));
                }
                if (now - lastScan >= options.ScanInterval)
                {
                    lastScan = now;
                    tailer.Scan();
                    buffer.Scanned(tailer.ScannedInputs);
                }
                var progress = false;
                if (buffer.Full)
                {
                    if (!full)
                    {
                        Log($"the buffer holds {buffer.Bytes} bytes (buffer.max_bytes {options.BufferMaxBytes}): reading waits for the servers");
                    }
                    full = true;
                }
                else
                {
                    full = false;
                    retired.Clear();
                    progress = tailer.Read(batcher.Add, retired);
                    batcher.SealDue(all: retired.Count > 0);
                    foreach (var (file, offset) in retired)
                    {
                        buffer.Retired(file.Identity, offset);
                    }
                }
                batcher.SealDue();
                if (now - lastSettle >= TimeSpan.FromSeconds(1))
                {
                    lastSettle = now;
                    Settle(tailer, batcher, buffer, current);
                    Volatile.Write(ref snapshot, Snapshot.Of(tailer, current));
                }
                if (!progress)
                {
                    try
                    {
                        await Task.Delay(Idle, time, stop).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }
            if (shipping.IsCompleted)
            {
                await shipping.ConfigureAwait(false);
            }
        }
        finally
        {
            // A stop: what was read goes to the buffer, the batch being sent is finished, the checkpoint is written.
            batcher.SealDue(all: true);
            await stopShipping.CancelAsync().ConfigureAwait(false);
            // The checkpoint is written whatever ended the shipper or the reports (a failed shipper ended the loop, which threw).
            await Task.WhenAll(shipping, managing).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            Settle(tailer, batcher, buffer, current);
            buffer.SaveCheckpoint();
            tailer.CloseAll();
            Log($"stopped; {buffer.Batches} batches ({buffer.Bytes} bytes) stay buffered for the next start");
        }
    }

    /// <summary>Files with no event waiting anywhere are checkpointed where they stand (files started at their end, files whose lines were all filtered out).</summary>
    private static void Settle(FileTailer tailer, Batcher batcher, AgentBuffer buffer, AgentOptions current)
    {
        foreach (var file in tailer.Files)
        {
            if (file.Handle is not null && !batcher.Holds(file.Identity) && file.Assembler.PendingBytes == 0)
            {
                buffer.Settled(new FilePosition(file.Identity, file.Path, file.Offset, FileTailer.MarkerOf(file, file.Offset), FileTailer.InputKey(current.Inputs[file.Input]), file.CopiesBefore));
            }
        }
        buffer.SaveCheckpoint();
    }

    /// <summary>What the reading loop saw at its last look: files followed and open, each file's bytes not yet read, the inputs.</summary>
    private sealed record Snapshot(int Files, int OpenFiles, IReadOnlyList<(string Path, long Behind)> Lag, IReadOnlyList<string> Inputs)
    {
        public static Snapshot Of(FileTailer tailer, AgentOptions current) => new(tailer.Files.Count(), tailer.OpenFiles,
            [.. tailer.Files.Select(f => (f.Path, Math.Max(0, f.Size - f.Position)))], [.. current.Inputs.Select(i => i.Name)]);
    }

    /// <summary>The health an agent reports to the server.</summary>
    private System.Text.Json.Nodes.JsonObject Health(Snapshot snapshot, AgentBuffer buffer) => new()
    {
        ["files"] = snapshot.Files,
        ["open_files"] = snapshot.OpenFiles,
        ["bytes_behind"] = snapshot.Lag.Sum(l => l.Behind),
        ["buffer_bytes"] = buffer.Bytes,
        ["buffer_batches"] = buffer.Batches,
        ["lines_read"] = Metrics.LinesRead.Value,
        ["events_shipped"] = Metrics.EventsShipped.Value,
        ["retries"] = Metrics.Retries.Value,
        ["last_error"] = Metrics.LastError,
        ["inputs"] = new System.Text.Json.Nodes.JsonArray([.. snapshot.Inputs.Select(i => System.Text.Json.Nodes.JsonValue.Create(i))]),
        ["poll_interval_seconds"] = options.PollInterval?.TotalSeconds,
    };

    private void Log(string line) => _log.Write(line);

    private FileStream HoldDataDirectory()
    {
        var path = Path.Combine(options.DataDir, "agent.lock");
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new InvalidOperationException($"another agent runs on {options.DataDir} (it holds {path})");
        }
    }

    /// <summary>A random id made at the first start and kept: with the batch's sequence number, the key the server recognises a batch sent again by.</summary>
    private string AgentId()
    {
        var path = Path.Combine(options.DataDir, "agent-id");
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } id)
        {
            return id;
        }
        id = Guid.NewGuid().ToString("N");
        Storage.Encoding.DurableFile.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(id + "\n"));
        return id;
    }

    private sealed class Servers(IReadOnlyList<HttpClient> clients) : IDisposable
    {
        public IReadOnlyList<HttpClient> Clients => clients;

        public void Dispose()
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}
