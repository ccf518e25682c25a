using System.Diagnostics.Metrics;
using Logwell.Hosting;
using Logwell.Jobs;
using Prometheus;

namespace Logwell.Server.Hosting;

/// <summary>
/// The node's measurements. Ingest and queries are .NET metrics like the engine's and the workers'; prometheus-net
/// exports them all at <c>/metrics</c>, with its HTTP request histograms, the process's CPU, memory and GC figures and
/// the queue depths read at each scrape.
/// </summary>
internal static class ServerMetrics
{
    private static readonly Meter Meter = new("Logwell.Server");

    /// <summary>Request bodies read for ingest (after decompression), by index set.</summary>
    public static readonly Counter<long> IngestedBytes = Meter.CreateCounter<long>("ingest.bytes", "By", "Ingest request bytes read");

    /// <summary>How long searches, pipes, histograms, fields and context lookups took, by kind.</summary>
    public static readonly Histogram<double> QueryDuration = Meter.CreateHistogram<double>("query.duration", "s", "Query time in the engine");

    private static readonly Counter<long> Backups = Meter.CreateCounter<long>("backups", "{backup}", "Backups taken by this node, by outcome");
    private static readonly Counter<long> BackupBytes = Meter.CreateCounter<long>("backup.written", "By", "Bytes backups wrote to their repositories (new objects, compressed)");
    private static readonly Histogram<double> BackupDuration = Meter.CreateHistogram<double>("backup.duration", "s", "How long successful backups took");
    private static long _lastBackupUnixSeconds;

    /// <summary>When this process last finished a backup (Unix seconds; 0: not since it started).</summary>
    private static readonly ObservableGauge<long> LastBackup = Meter.CreateObservableGauge("backup.last_success", () => Interlocked.Read(ref _lastBackupUnixSeconds), "s", "When this process last finished a backup, in Unix seconds");

    public static void BackupDone(Logwell.Storage.Backup.BackupManifest manifest, TimeSpan took)
    {
        Backups.Add(1, new KeyValuePair<string, object?>("outcome", "done"));
        BackupBytes.Add(manifest.NewStoredBytes);
        BackupDuration.Record(took.TotalSeconds);
        Interlocked.Exchange(ref _lastBackupUnixSeconds, manifest.Created.ToUnixTimeSeconds());
    }

    public static void BackupFailed() => Backups.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));

    /// <summary>A backup was saved, but the prune after it failed.</summary>
    public static void PruneFailed() => Backups.Add(1, new KeyValuePair<string, object?>("outcome", "prune_failed"));

    private static readonly Gauge QueueTasks = Metrics.CreateGauge("logwell_queue_tasks", "Tasks in each queue by state, read at scrape time", "queue", "state");
    private static readonly Gauge QueueOldest = Metrics.CreateGauge("logwell_queue_oldest_pending_seconds", "Age of the oldest ready task of each queue", "queue");
    private static readonly Gauge SupervisedSpawns = Metrics.CreateGauge("logwell_supervisor_process_spawns", "Times the supervisor started each process (restarts are this minus one)", "process");
    private static readonly Gauge SupervisedRunning = Metrics.CreateGauge("logwell_supervisor_process_running", "1 when the process is RUNNING", "process", "state");
    private static readonly Gauge ApiWorkers = Metrics.CreateGauge("logwell_api_workers", "API worker processes serving, and the number wanted", "kind");
    private static readonly Gauge ApiWorkerEnds = Metrics.CreateGauge("logwell_api_worker_ends", "API workers ended since the master started, by reason", "reason");
    private static int _queuesWatched;

    /// <summary>
    /// Starts listening to the .NET metrics now (not at the first scrape, which would miss what came before it) and
    /// reads the queue depths before each scrape; once per process. The meters <c>Logwell.Storage</c>,
    /// <c>Logwell.Jobs</c> and <c>Logwell.Server</c> come out as <c>logwell_storage_*</c>, <c>logwell_jobs_*</c> and
    /// <c>logwell_server_*</c>.
    /// </summary>
    public static void Start(ITaskQueue queue, string dataDirectory, TimeProvider time)
    {
        if (Interlocked.Exchange(ref _queuesWatched, 1) == 1)
        {
            return;
        }
        MeterAdapter.StartListening();
        // The supervisor and the API master of this data directory write their counts to run/; they are read here.
        var run = Path.Combine(dataDirectory, "run");
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            if (RunStatus.Read(run, "supervisor.status.json", time.GetUtcNow()) is { } supervisor)
            {
                foreach (var process in supervisor.RootElement.EnumerateArray())
                {
                    var name = process.GetProperty("name").GetString()!;
                    var state = process.GetProperty("state").GetString()!;
                    SupervisedSpawns.WithLabels(name).Set(process.GetProperty("spawns").GetInt32());
                    SupervisedRunning.WithLabels(name, state).Set(state == "RUNNING" ? 1 : 0);
                }
                supervisor.Dispose();
            }
            if (RunStatus.Read(run, "api-master.status.json", time.GetUtcNow()) is { } master)
            {
                var root = master.RootElement;
                ApiWorkers.WithLabels("serving").Set(root.GetProperty("workers").GetInt32());
                ApiWorkers.WithLabels("wanted").Set(root.GetProperty("target").GetInt32());
                ApiWorkerEnds.WithLabels("recycled").Set(root.GetProperty("recycles").GetInt64());
                ApiWorkerEnds.WithLabels("died").Set(root.GetProperty("deaths").GetInt64());
                ApiWorkerEnds.WithLabels("timeout").Set(root.GetProperty("timeouts").GetInt64());
                master.Dispose();
            }
        });
        Metrics.DefaultRegistry.AddBeforeCollectCallback(async cancellationToken =>
        {
            IReadOnlyList<QueueStats> stats;
            try
            {
                stats = await queue.StatsAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Unreachable queues show as missing figures; /healthz says why.
                return;
            }
            foreach (var queueStats in stats)
            {
                QueueTasks.WithLabels(queueStats.Queue, "pending").Set(queueStats.Pending);
                QueueTasks.WithLabels(queueStats.Queue, "delayed").Set(queueStats.Delayed);
                QueueTasks.WithLabels(queueStats.Queue, "running").Set(queueStats.Running);
                QueueTasks.WithLabels(queueStats.Queue, "failed").Set(queueStats.Failed);
                QueueTasks.WithLabels(queueStats.Queue, "dead").Set(queueStats.Dead);
                QueueTasks.WithLabels(queueStats.Queue, "done").Set(queueStats.Done);
                QueueOldest.WithLabels(queueStats.Queue).Set(queueStats.OldestPendingAge?.TotalSeconds ?? 0);
            }
        });
    }
}
