using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Logwell.Bench.Systems;

namespace Logwell.Bench;

/// <summary>Runs every system on the same corpus and writes results.json and results.md.</summary>
internal static class Harness
{
    public static async Task<int> RunAsync(Options o)
    {
        Directory.CreateDirectory(o.Out);
        var corpus = Corpus.Create(o.Out, o.Events, o.Loghub, o.LoghubSystems);
        var parameters = QueryParameters.For(corpus);
        await File.WriteAllTextAsync(Path.Combine(o.Out, "queries.json"), JsonSerializer.Serialize(parameters));
        Console.WriteLine($"corpus: {corpus.Events:N0} events, {corpus.RawBytes / 1e6:F1} MB raw, from {corpus.Source}");
        foreach (var name in QueryParameters.Names)
        {
            Console.WriteLine($"  {name,-12} {parameters.Describe(name)}");
        }
        var coldIsCold = ProcessStats.DropCaches();
        if (!coldIsCold)
        {
            Console.WriteLine("note: cannot drop the page cache (needs root); cold runs start a new process but may hit cached pages");
        }

        // Every .NET system runs from the publish: the in-process workers (logwell, SQLite FTS5, Lucene.NET) and the
        // logwell servers, whichever of them are in the run.
        if (o.Publish && o.Systems.Any(s => s.StartsWith("logwell", StringComparison.Ordinal) || s is "sqlite-fts5" or "lucene"))
        {
            await Published.PrepareAsync(o.Out);
        }

        var systems = new JsonObject();
        foreach (var name in o.Systems)
        {
            Console.WriteLine($"== {name}");
            try
            {
                systems[name] = name switch
                {
                    "logwell" or "sqlite-fts5" or "lucene" => await RunInProcessAsync(name, o, corpus),
                    "logwell-http" or "logwell-bulk" => await RunServerAsync(name, o, corpus, parameters, dir => LogwellHttpSystem.StartAsync(dir, bulk: name == "logwell-bulk", secured: o.Secured).ContinueWith(t => ((IBenchSystem)t.Result, t.Result.Server), TaskScheduler.Default)),
                    "clickhouse" => ClickHouseSystem.IsInstalled(out var why)
                        ? await RunServerAsync(name, o, corpus, parameters, dir => ClickHouseSystem.StartAsync(dir).ContinueWith(t => ((IBenchSystem)t.Result, t.Result.Server), TaskScheduler.Default))
                        : Skipped(why),
                    "logwell-cluster" => ClickHouseSystem.IsInstalled(out var clusterWhy)
                        ? await RunServerAsync(name, o, corpus, parameters, dir => LogwellClusterSystem.StartAsync(dir).ContinueWith(t => ((IBenchSystem)t.Result, t.Result.Server), TaskScheduler.Default))
                        : Skipped(clusterWhy),
                    "ripgrep" => RipgrepSystem.IsInstalled(out var rgWhy) ? await RunRipgrepAsync(o, corpus, parameters) : Skipped(rgWhy),
                    "zstd" => null,
                    _ => throw new ArgumentException(name),
                };
                if (name == "zstd")
                {
                    systems["zstd-3"] = await ZstdAsync(o, corpus, 3);
                    systems["zstd-19"] = await ZstdAsync(o, corpus, 19);
                    systems.Remove("zstd");
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"   {name} failed: {e.Message}");
                systems[name] = new JsonObject { ["error"] = e.Message };
            }
            Console.WriteLine($"   {systems[name]?.ToJsonString() ?? systems["zstd-19"]?.ToJsonString()}");
        }

        var results = new JsonObject
        {
            ["machine"] = Machine(coldIsCold),
            ["corpus"] = new JsonObject
            {
                ["events"] = corpus.Events,
                ["raw_bytes"] = corpus.RawBytes,
                ["source"] = corpus.Source,
                ["file"] = Path.GetFileName(corpus.Path),
            },
            ["queries"] = new JsonObject(QueryParameters.Names.Select(n => KeyValuePair.Create(n, (JsonNode?)JsonValue.Create(parameters.Describe(n))))),
            ["command"] = "dotnet run -c Release --project bench/Logwell.Bench -- " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            ["systems"] = systems,
        };
        var mismatches = CheckHitCounts(systems);
        results["hit_count_mismatches"] = new JsonArray([.. mismatches.Select(m => (JsonNode?)JsonValue.Create(m))]);
        await File.WriteAllTextAsync(Path.Combine(o.Out, "results.json"), results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        await File.WriteAllTextAsync(Path.Combine(o.Out, "results.md"), Report.Markdown(results));
        Console.WriteLine($"wrote {Path.Combine(o.Out, "results.json")} and results.md");
        foreach (var mismatch in mismatches)
        {
            Console.Error.WriteLine("HIT COUNTS DIFFER: " + mismatch);
        }
        return mismatches.Count == 0 ? 0 : 1;
    }

    private static JsonObject Skipped(string why)
    {
        Console.WriteLine($"   skipped: {why}");
        return new JsonObject { ["skipped"] = why };
    }

    private static List<string> CheckHitCounts(JsonObject systems)
    {
        var problems = new List<string>();
        foreach (var query in QueryParameters.Names)
        {
            var counts = systems
                .Where(s => s.Value?["queries"]?[query]?["hits"] is JsonValue)
                .Select(s => (System: s.Key, Hits: s.Value!["queries"]![query]!["hits"]!.GetValue<long>()))
                .ToList();
            if (counts.Select(c => c.Hits).Distinct().Count() > 1)
            {
                problems.Add($"{query}: {string.Join(", ", counts.Select(c => $"{c.System}={c.Hits}"))}");
            }
        }
        return problems;
    }

    private static JsonObject Machine(bool coldIsCold)
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var memory = File.Exists("/proc/meminfo")
            ? long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024
            : 0;
        return new JsonObject
        {
            ["cores"] = Environment.ProcessorCount,
            ["memory_bytes"] = memory,
            ["cpu"] = cpu,
            ["os"] = RuntimeInformation.OSDescription,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["cold_runs_drop_page_cache"] = coldIsCold,
            ["dotnet_ready_to_run"] = Published.WorkerDll is not null,
        };
    }

    private static JsonObject IngestFigures(Corpus corpus, double seconds, double cpuSeconds, long peakRss, long diskBytes) => new()
    {
        ["ingest_seconds"] = Math.Round(seconds, 3),
        ["ingest_cpu_seconds"] = Math.Round(cpuSeconds, 3),
        ["raw_mb_per_second"] = Math.Round(corpus.RawBytes / 1e6 / seconds, 2),
        ["raw_mb_per_cpu_second"] = Math.Round(corpus.RawBytes / 1e6 / cpuSeconds, 2),
        ["peak_rss_bytes"] = peakRss,
        ["disk_bytes"] = diskBytes,
    };

    private static JsonObject QueryFigures(long? hits, List<double> cold, List<double> warm) => hits is null
        ? new JsonObject { ["hits"] = null }
        : new JsonObject
        {
            ["hits"] = hits,
            ["cold_p50_ms"] = Math.Round(ProcessStats.Percentile(cold, 50), 2),
            ["warm_p50_ms"] = Math.Round(ProcessStats.Percentile(warm, 50), 2),
            ["warm_p95_ms"] = Math.Round(ProcessStats.Percentile(warm, 95), 2),
        };

    private static async Task<JsonObject> RunInProcessAsync(string name, Options o, Corpus corpus)
    {
        var data = Path.GetFullPath(Path.Combine(o.Out, "data", name));
        if (Directory.Exists(data))
        {
            Directory.Delete(data, recursive: true);
        }
        var ingest = await WorkerAsync(o, name, "ingest", corpus, data, null, 0);
        var result = IngestFigures(corpus, ingest["ingest_seconds"]!.GetValue<double>(), ingest["ingest_cpu_seconds"]!.GetValue<double>(),
            ingest["peak_rss_bytes"]!.GetValue<long>(), ProcessStats.DirectoryBytes(data));
        var queries = new JsonObject();
        foreach (var query in QueryParameters.Names)
        {
            var cold = new List<double>();
            long? hits = null;
            for (var round = 0; round < o.ColdRuns; round++)
            {
                ProcessStats.DropCaches();
                var run = await WorkerAsync(o, name, "query", corpus, data, query, 0);
                hits = run["hits"]?.GetValue<long>();
                cold.Add(run["first_ms"]!.GetValue<double>());
            }
            var warm = hits is null ? [] : (await WorkerAsync(o, name, "query", corpus, data, query, o.Runs))["runs_ms"]!.AsArray().Select(v => v!.GetValue<double>()).ToList();
            queries[query] = QueryFigures(hits, cold, warm);
        }
        result["queries"] = queries;
        return result;
    }

    private static async Task<JsonObject> WorkerAsync(Options o, string system, string phase, Corpus corpus, string data, string? query, int runs)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [Published.WorkerDll ?? typeof(Harness).Assembly.Location, "--worker", system, "--phase", phase, "--corpus", corpus.Path, "--data", data, "--out", o.Out, "--runs", runs.ToString(CultureInfo.InvariantCulture)];
        foreach (var arg in query is null ? args : [.. args, "--query", query])
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var line = (await output).Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (process.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"{system} {phase} worker failed ({process.ExitCode}): {await error}{await output}");
        }
        return JsonNode.Parse(line["RESULT ".Length..])!.AsObject();
    }

    private static async Task<JsonObject> RunServerAsync(string name, Options o, Corpus corpus, QueryParameters parameters,
        Func<string, Task<(IBenchSystem System, ServerProcess Server)>> start)
    {
        var data = Path.GetFullPath(Path.Combine(o.Out, "data", name));
        if (Directory.Exists(data))
        {
            Directory.Delete(data, recursive: true);
        }
        JsonObject result;
        var (system, server) = await start(data);
        try
        {
            var cpu = ProcessStats.CpuSeconds(server.Pid);
            var watch = Stopwatch.StartNew();
            await system.IngestAsync(corpus);
            var seconds = watch.Elapsed.TotalSeconds;
            // Background work caused by the ingest (flushes, merges) is part of its cost.
            await server.WaitUntilIdleAsync(TimeSpan.FromMinutes(10));
            var cpuSeconds = ProcessStats.CpuSeconds(server.Pid) - cpu;
            var rss = ProcessStats.PeakRssBytes(server.Pid);
            var live = await system.LiveDataBytesAsync();
            await system.DisposeAsync();
            result = IngestFigures(corpus, seconds, cpuSeconds, rss, live ?? ProcessStats.DirectoryBytes(data));
            if (live is not null)
            {
                result["disk_bytes_directory"] = ProcessStats.DirectoryBytes(data);
            }
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }

        var queries = new JsonObject();
        foreach (var query in QueryParameters.Names)
        {
            var cold = new List<double>();
            var warm = new List<double>();
            long? hits = null;
            for (var round = 0; round < o.ColdRuns; round++)
            {
                ProcessStats.DropCaches();
                var (coldSystem, _) = await start(data);
                await using (coldSystem)
                {
                    var watch = Stopwatch.StartNew();
                    hits = await coldSystem.QueryAsync(query, parameters);
                    cold.Add(watch.Elapsed.TotalMilliseconds);
                    if (hits is null)
                    {
                        break;
                    }
                    if (round == o.ColdRuns - 1)
                    {
                        await WarmUp.RunAsync(() => coldSystem.QueryAsync(query, parameters));
                        for (var i = 0; i < o.Runs; i++)
                        {
                            watch.Restart();
                            await coldSystem.QueryAsync(query, parameters);
                            warm.Add(watch.Elapsed.TotalMilliseconds);
                        }
                    }
                }
            }
            queries[query] = QueryFigures(hits, cold, warm);
        }
        result["queries"] = queries;
        return result;
    }

    private static async Task<JsonObject> RunRipgrepAsync(Options o, Corpus corpus, QueryParameters parameters)
    {
        var rg = new RipgrepSystem(corpus);
        var queries = new JsonObject();
        foreach (var query in QueryParameters.Names)
        {
            var cold = new List<double>();
            var warm = new List<double>();
            long? hits = null;
            for (var round = 0; round < o.ColdRuns; round++)
            {
                ProcessStats.DropCaches();
                var watch = Stopwatch.StartNew();
                hits = await rg.QueryAsync(query, parameters);
                cold.Add(watch.Elapsed.TotalMilliseconds);
                if (hits is null)
                {
                    break;
                }
            }
            if (hits is not null)
            {
                await WarmUp.RunAsync(() => rg.QueryAsync(query, parameters));
            }
            for (var i = 0; i < o.Runs && hits is not null; i++)
            {
                var watch = Stopwatch.StartNew();
                await rg.QueryAsync(query, parameters);
                warm.Add(watch.Elapsed.TotalMilliseconds);
            }
            queries[query] = QueryFigures(hits, cold, warm);
        }
        return new JsonObject { ["disk_bytes"] = corpus.RawBytes, ["queries"] = queries };
    }

    private static async Task<JsonObject> ZstdAsync(Options o, Corpus corpus, int level)
    {
        var cache = level >= 19 ? Path.Combine(Path.GetDirectoryName(corpus.Path)!, $"{Path.GetFileName(corpus.Path)}.zstd{level}-{corpus.Hash()}.size") : null;
        if (cache is not null && File.Exists(cache))
        {
            return new JsonObject { ["disk_bytes"] = long.Parse(await File.ReadAllTextAsync(cache), CultureInfo.InvariantCulture), ["cached"] = true };
        }
        var output = Path.Combine(o.Out, $"corpus.zst{level}");
        var info = new ProcessStartInfo("zstd") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { $"-{level}", "-T0", "-q", "-f", corpus.Path, "-o", output })
        {
            info.ArgumentList.Add(arg);
        }
        var watch = Stopwatch.StartNew();
        using (var process = Process.Start(info)!)
        {
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"zstd failed: {error}");
            }
        }
        var size = new FileInfo(output).Length;
        File.Delete(output);
        if (cache is not null)
        {
            await File.WriteAllTextAsync(cache, size.ToString(CultureInfo.InvariantCulture));
        }
        return new JsonObject { ["disk_bytes"] = size, ["seconds"] = Math.Round(watch.Elapsed.TotalSeconds, 1) };
    }
}
