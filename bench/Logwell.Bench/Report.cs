using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Logwell.Bench;

/// <summary>results.md: the same figures as results.json, as tables with logwell/peer ratios.</summary>
internal static class Report
{
    private const string Reference = "logwell";

    public static string Markdown(JsonObject results)
    {
        var sb = new StringBuilder();
        var machine = results["machine"]!;
        var corpus = results["corpus"]!;
        var systems = results["systems"]!.AsObject();
        var rawBytes = corpus["raw_bytes"]!.GetValue<long>();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine["cores"]} cores, {machine["memory_bytes"]!.GetValue<long>() / (1L << 30)} GiB, {machine["cpu"]}, {machine["os"]}, {machine["dotnet"]}; {machine["date"]}.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Cold runs {(machine["cold_runs_drop_page_cache"]!.GetValue<bool>() ? "start a new process after dropping the page cache" : "start a new process (page cache not dropped)")}.");
        if (machine["dotnet_ready_to_run"] is { } readyToRun)
        {
            sb.AppendLine(readyToRun.GetValue<bool>()
                ? "The .NET systems (logwell's, SQLite FTS5 through Microsoft.Data.Sqlite, Lucene.NET) run from a ReadyToRun publish, as a node is deployed."
                : "The .NET systems run from the build output (--no-publish): their first queries run in the JIT.");
        }
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Corpus: {corpus["events"]!.GetValue<long>():N0} events, {rawBytes / 1e6:F1} MB of JSON lines, messages from {corpus["source"]}.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `{results["command"]}`");
        sb.AppendLine();

        sb.AppendLine("### Ingest and disk");
        sb.AppendLine();
        sb.AppendLine("| system | ingest s | CPU s | raw MB/s | raw MB per CPU-s | peak RSS MB | on disk MB | disk / raw |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, node) in systems)
        {
            if (node is null || node["skipped"] is not null || node["error"] is not null)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {(node?["skipped"] ?? node?["error"])} | | | | | | |");
                continue;
            }
            var disk = Number(node, "disk_bytes");
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {Format(Number(node, "ingest_seconds"))} | {Format(Number(node, "ingest_cpu_seconds"))} | {Format(Number(node, "raw_mb_per_second"))} | {Format(Number(node, "raw_mb_per_cpu_second"))} | {Format(Number(node, "peak_rss_bytes") / 1e6)} | {Format(disk / 1e6)} | {(disk is null ? "" : $"{disk / rawBytes * 100:F1}% (1/{rawBytes / disk:F1})")} |");
        }
        sb.AppendLine();
        var reference = systems[Reference];
        if (reference?["disk_bytes"] is not null)
        {
            sb.AppendLine("Ratios (logwell ÷ peer; above 1 means logwell is higher):");
            sb.AppendLine();
            sb.AppendLine("| peer | raw MB/s | raw MB per CPU-s | peak RSS | on disk |");
            sb.AppendLine("|---|---:|---:|---:|---:|");
            foreach (var (name, node) in systems)
            {
                if (name == Reference || node is null || node["disk_bytes"] is null)
                {
                    continue;
                }
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {name} | {Ratio(reference, node, "raw_mb_per_second")} | {Ratio(reference, node, "raw_mb_per_cpu_second")} | {Ratio(reference, node, "peak_rss_bytes")} | {Ratio(reference, node, "disk_bytes")} |");
            }
            sb.AppendLine();
        }

        sb.AppendLine("### Queries");
        sb.AppendLine();
        foreach (var (query, description) in results["queries"]!.AsObject())
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"`{query}`: {description}");
            sb.AppendLine();
            sb.AppendLine("| system | hits | cold p50 ms | warm p50 ms | warm p95 ms | logwell ÷ system (warm p50) |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|");
            var referenceQuery = reference?["queries"]?[query];
            foreach (var (name, node) in systems)
            {
                var q = node?["queries"]?[query];
                if (q is null)
                {
                    continue;
                }
                if (q["hits"] is null)
                {
                    sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | n/a | | | | |");
                    continue;
                }
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {name} | {q["hits"]!.GetValue<long>():N0} | {Format(Number(q, "cold_p50_ms"))} | {Format(Number(q, "warm_p50_ms"))} | {Format(Number(q, "warm_p95_ms"))} | {(name == Reference || referenceQuery?["warm_p50_ms"] is null ? "" : Ratio(referenceQuery, q, "warm_p50_ms"))} |");
            }
            sb.AppendLine();
        }
        var mismatches = results["hit_count_mismatches"]!.AsArray();
        sb.AppendLine(mismatches.Count == 0
            ? "Every system that expressed a query returned the same hit count."
            : "HIT COUNTS DIFFER: " + string.Join("; ", mismatches.Select(m => m!.GetValue<string>())));
        return sb.ToString();
    }

    private static double? Number(JsonNode? node, string key) =>
        node?[key] is JsonValue value && value.GetValueKind() == System.Text.Json.JsonValueKind.Number
            ? double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture)
            : null;

    private static string Format(double? value) => value switch
    {
        null => "",
        >= 100 => value.Value.ToString("N0", CultureInfo.InvariantCulture),
        >= 10 => value.Value.ToString("F1", CultureInfo.InvariantCulture),
        _ => value.Value.ToString("F2", CultureInfo.InvariantCulture),
    };

    private static string Ratio(JsonNode? reference, JsonNode? peer, string key)
    {
        var a = Number(reference, key);
        var b = Number(peer, key);
        return a is null || b is null || b == 0 ? "" : (a.Value / b.Value).ToString("F2", CultureInfo.InvariantCulture);
    }
}
