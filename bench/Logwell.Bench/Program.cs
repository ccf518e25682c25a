using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Logwell.Bench;
using Logwell.Bench.Systems;

// Logwell's benchmark harness: one corpus, every system, the same queries, figures and ratios.
//   dotnet run -c Release --project bench/Logwell.Bench -- --events N --out DIR [--loghub DIR] [--loghub-systems HDFS,Spark]
//       [--systems logwell,logwell-http,logwell-bulk,sqlite-fts5,lucene,clickhouse,ripgrep,zstd] [--runs 10] [--cold-runs 3]
//       [--secured]   (logwell-http and logwell-bulk with a user: every request carries an API key and is authorized)
//       [--no-publish] (the .NET systems run from the build output, in the JIT, instead of a ReadyToRun publish as deployed)
//       LOGWELL_BENCH_PATTERNS=off: the logwell systems' index set gives no pattern ids (on by default, as in a node)
//   dotnet run -c Release --project bench/Logwell.Bench -- queue [--tasks N] [--workers N] [--out DIR] [--redis HOST:PORT]   (no-op tasks/s)
//   dotnet run -c Release --project bench/Logwell.Bench -- ui [--events N] [--runs N] [--out DIR] [--loghub DIR]   (the web UI in Chromium)
//   dotnet run -c Release --project bench/Logwell.Bench -- patterns [--loghub DIR] [--verbose] [--shuffle SEED]   (the template miner against Loghub's ground truth)
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "queue")
{
    return await QueueBench.RunAsync(args[1..]);
}
if (args.Length > 0 && args[0] == "patterns")
{
    return PatternsBench.Run(args[1..]);
}
if (args.Length > 0 && args[0] == "ui")
{
    return await UiBench.RunAsync(args[1..]);
}
var options = Options.Parse(args);
if (options.Worker is not null)
{
    return await Worker.RunAsync(options);
}
return await Harness.RunAsync(options);

internal sealed record Options
{
    public static readonly string[] AllSystems = ["logwell", "logwell-http", "logwell-bulk", "sqlite-fts5", "lucene", "clickhouse", "logwell-cluster", "ripgrep", "zstd"];

    public long Events { get; init; } = 1_000_000;
    public string Out { get; init; } = "bench-out";
    public string? Loghub { get; init; } = Environment.GetEnvironmentVariable("LOGWELL_LOGHUB_DIR");
    public string[]? LoghubSystems { get; init; }
    public string[] Systems { get; init; } = AllSystems;
    public int Runs { get; init; } = 10;
    public int ColdRuns { get; init; } = 3;
    public bool Secured { get; init; }
    public bool Publish { get; init; } = true;

    // Worker mode: one system, one phase, in a child process so its CPU and memory are its own.
    public string? Worker { get; init; }
    public string? Phase { get; init; }
    public string? Corpus { get; init; }
    public string? Data { get; init; }
    public string? Query { get; init; }

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--events" => o with { Events = long.Parse(Next(), CultureInfo.InvariantCulture) },
                "--out" => o with { Out = Next() },
                "--loghub" => o with { Loghub = Next() },
                "--loghub-systems" => o with { LoghubSystems = Next().Split(',') },
                "--systems" => o with { Systems = Next().Split(',') },
                "--runs" => o with { Runs = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--cold-runs" => o with { ColdRuns = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--secured" => o with { Secured = true },
                "--no-publish" => o with { Publish = false },
                "--worker" => o with { Worker = Next() },
                "--phase" => o with { Phase = Next() },
                "--corpus" => o with { Corpus = Next() },
                "--data" => o with { Data = Next() },
                "--query" => o with { Query = Next() },
                _ => throw new ArgumentException($"unknown argument {args[i]}"),
            };
        }
        var unknown = o.Systems.Except(AllSystems).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"unknown systems {string.Join(", ", unknown)}; known: {string.Join(", ", AllSystems)}");
        }
        return o;
    }
}

/// <summary>The child process side: ingest, or run one query, and print the figures as one JSON line.</summary>
internal static class Worker
{
    public static async Task<int> RunAsync(Options o)
    {
        var corpus = new Corpus { Path = o.Corpus!, Events = 0, RawBytes = new FileInfo(o.Corpus!).Length, Source = "", NeedleTraceId = "" };
        var parameters = JsonSerializer.Deserialize<QueryParameters>(await File.ReadAllTextAsync(Path.Combine(o.Out, "queries.json")))!;
        await using IBenchSystem system = o.Worker switch
        {
            "logwell" => new LogwellEngineSystem(o.Data!),
            "sqlite-fts5" => new SqliteFtsSystem(o.Data!),
            "lucene" => new LuceneSystem(o.Data!),
            _ => throw new ArgumentException($"{o.Worker} does not run in process"),
        };
        var result = new JsonObject();
        if (o.Phase == "ingest")
        {
            var cpu = ProcessStats.CpuSeconds(Environment.ProcessId);
            var watch = Stopwatch.StartNew();
            await system.IngestAsync(corpus);
            result["ingest_seconds"] = watch.Elapsed.TotalSeconds;
            result["ingest_cpu_seconds"] = ProcessStats.CpuSeconds(Environment.ProcessId) - cpu;
            result["peak_rss_bytes"] = ProcessStats.PeakRssBytes(Environment.ProcessId);
        }
        else
        {
            var watch = Stopwatch.StartNew();
            var hits = await system.QueryAsync(o.Query!, parameters);
            result["first_ms"] = watch.Elapsed.TotalMilliseconds;
            result["hits"] = hits;
            var runs = new JsonArray();
            if (hits is not null && o.Runs > 0)
            {
                await WarmUp.RunAsync(() => system.QueryAsync(o.Query!, parameters));
            }
            for (var i = 0; i < o.Runs && hits is not null; i++)
            {
                watch.Restart();
                await system.QueryAsync(o.Query!, parameters);
                runs.Add(watch.Elapsed.TotalMilliseconds);
            }
            result["runs_ms"] = runs;
        }
        Console.WriteLine("RESULT " + result.ToJsonString());
        return 0;
    }
}
