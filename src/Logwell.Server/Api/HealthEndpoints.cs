using System.Globalization;
using System.Text;
using System.Text.Json;
using Logwell.Storage;
using Logwell.Jobs;
using Logwell.Server.Exports;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// <c>/livez</c> (the process answers), <c>/readyz</c> (it can serve: its stores answer) and <c>/healthz</c> (one
/// result per component). The status code says it: 200 healthy, 503 not. The text form is Kubernetes's (<c>[+]name
/// ok</c> / <c>[-]name failed: why</c>, then a last line), JSON with <c>Accept: application/json</c> or
/// <c>?format=json</c>; <c>include=</c> and <c>exclude=</c> pick components (comma-separated or repeated).
/// </summary>
internal static class HealthEndpoints
{
    internal sealed record Check(string Name, bool Healthy, string Detail);

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/livez", static context => WriteAsync(context, "livez", [new Check("process", true, "answering")])).WithMetadata(Permission.Public);
        routes.MapGet("/readyz", static async context => await WriteAsync(context, "readyz", await CheckAsync(context.RequestServices, ready: true, context.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false)).WithMetadata(Permission.Public);
        routes.MapGet("/healthz", static async context => await WriteAsync(context, "healthz", await CheckAsync(context.RequestServices, ready: false, context.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false)).WithMetadata(Permission.Public);
    }

    /// <summary>The components: with <paramref name="ready"/> only whether each store answers, else their health too.</summary>
    internal static async Task<List<Check>> CheckAsync(IServiceProvider services, bool ready, CancellationToken cancellationToken)
    {
        var options = services.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var checks = new List<Check>
        {
            Run("log-store", () =>
            {
                var engine = services.GetLogStore();
                if (engine.Unreachable is { } unreachable)
                {
                    return new Check("log-store", false, unreachable);
                }
                var backedUp = engine.Names().Where(name => engine.TryGet(name, out var store) && store.IsBackedUp).ToList();
                if (ready)
                {
                    return new Check("log-store", true, options.LogStore == "clickhouse" ? $"ClickHouse at {string.Join(", ", options.ClickHouseUrls)} answers" : "open, write-ahead logs replayed");
                }
                var free = new DriveInfo(Path.GetFullPath(options.DataDirectory)).AvailableFreeSpace;
                var minimum = (long)options.HealthMinFreeDiskMegabytes << 20;
                // Every problem at once: a full disk must not hide a damaged segment, nor the reverse.
                var problems = new List<string>();
                if (free < minimum)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"{free >> 20} MiB free on the data disk, under {options.HealthMinFreeDiskMegabytes} MiB"));
                }
                if (engine.Damage is { Count: > 0 } damage)
                {
                    // Reads that need those segments fail with the same words; the others serve.
                    problems.Add(string.Join("; ", damage) + "; restore the index set from a backup taken before the damage");
                }
                if (engine.Unavailable is { Count: > 0 } unavailable)
                {
                    // The other index sets serve; this one needs the operator.
                    problems.AddRange(unavailable.Select(u => $"index set {u.Key} is unavailable: {u.Value}"));
                }
                if (backedUp.Count > 0)
                {
                    problems.Add($"write-ahead log backlog over {options.MaxQueuedEvents} events in {string.Join(", ", backedUp)}");
                }
                return problems.Count > 0
                    ? new Check("log-store", false, string.Join("; ", problems))
                    : new Check("log-store", true, string.Create(CultureInfo.InvariantCulture, $"{free >> 20} MiB free, no write-ahead log backlog"));
            }),
            Run("metadata", () =>
            {
                var exports = services.GetRequiredService<ExportStore>();
                var database = exports.Database;
                return new Check("metadata", true, database.Dialect == MetaDialect.Sqlite
                    ? $"{exports.CountActive()} exports in progress"
                    : $"{database.Location} answers; {exports.CountActive()} exports in progress");
            }),
        };
        var queue = services.GetRequiredService<ITaskQueue>();
        checks.Add(await RunAsync("queues", async () =>
        {
            var stats = await queue.StatsAsync(cancellationToken).ConfigureAwait(false);
            var over = stats.Where(s => s.Pending >= options.HealthQueueBacklog).ToList();
            if (ready || over.Count == 0)
            {
                return new Check("queues", true, stats.Count == 0 ? "no tasks" : string.Join(", ", stats.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Queue} {s.Pending} pending"))));
            }
            return new Check("queues", false, string.Join(", ", over.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Queue} has {s.Pending} pending (threshold {options.HealthQueueBacklog})"))));
        }).ConfigureAwait(false));
        if (!ready)
        {
            // An API worker over a shared log store has no registration of its own (its master has one).
            var registryHost = services.GetService<RegistryHost>();
            checks.Add(Run("registry", () =>
            {
                var host = registryHost;
                if (host is null)
                {
                    return new Check("registry", true, "registered by the API master");
                }
                var age = services.GetTime().GetUtcNow() - host.LastHeartbeat;
                return host.NodeId is null
                    ? new Check("registry", false, "this node is not registered yet")
                    : age > TimeSpan.FromSeconds(options.RegistryCriticalSeconds)
                        ? new Check("registry", false, string.Create(CultureInfo.InvariantCulture, $"{host.NodeId}: no heartbeat recorded for {age?.TotalSeconds:0} s"))
                        : new Check("registry", true, $"registered as {host.NodeId}");
            }));
            if (options.Schedule.Any(e => e.Value.Task == Tasks.BuiltinTasks.Backup))
            {
                checks.Add(await RunAsync("backup", () => BackupCheckAsync(options, services.GetRequiredService<NodeStart>().At, services.GetTime(), cancellationToken)).ConfigureAwait(false));
            }
            checks.Add(await RunAsync("scheduler", async () =>
            {
                var holder = await queue.LeaseHolderAsync(Scheduler.LeaseName, cancellationToken).ConfigureAwait(false);
                return holder is null
                    ? new Check("scheduler", false, "no scheduler holds the lease: periodic tasks are not issued")
                    : new Check("scheduler", true, $"active: {holder.Holder}");
            }).ConfigureAwait(false));
        }
        return checks;
    }

    /// <summary>
    /// Each scheduled backup (a <c>store.backup</c> entry of <c>Logwell:Schedule</c>) has a backup in its directory no
    /// older than two of its intervals; a node that has not run that long yet is given the time from its start.
    /// </summary>
    private static async Task<Check> BackupCheckAsync(LogwellOptions options, DateTimeOffset started, TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var healthy = true;
        var details = new List<string>();
        foreach (var (name, entry) in options.Schedule.Where(e => e.Value.Task == Tasks.BuiltinTasks.Backup).OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            var (to, _) = Tasks.BuiltinTasks.BackupArguments(entry.Arguments);
            using var repository = Storage.Backup.BackupRepository.Open(to, time);
            var newest = await repository.NewestAsync(cancellationToken).ConfigureAwait(false);
            // Late: two slots of the schedule passed since the newest backup (since the node started, when there is none).
            var since = newest?.Created ?? started;
            var late = entry.ToPeriodicTask(name).SecondSlotAfter(since) is { } due && now > due;
            healthy &= !late;
            details.Add(newest is null
                ? string.Create(CultureInfo.InvariantCulture, $"{name}: no backup in {to} yet{(late ? $", {Hours(now - started)} since the node started: two of its slots passed" : "")}")
                : string.Create(CultureInfo.InvariantCulture, $"{name}: last backup {newest.Id} in {to}, {Hours(now - newest.Created)} ago{(late ? ": two of its slots passed since" : "")}"));
        }
        return new Check("backup", healthy, string.Join("; ", details));

        static string Hours(TimeSpan span) => span.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalHours:0.#} h")
            : span.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalMinutes:0} min")
            : string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, span.TotalSeconds):0} s");
    }

    /// <summary>The components as the registry keeps them with each heartbeat: <c>[{"name", "status", "detail"}]</c>.</summary>
    internal static string ToJson(List<Check> checks)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteComponents(writer, checks);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteComponents(Utf8JsonWriter writer, IEnumerable<Check> checks)
    {
        writer.WriteStartArray();
        foreach (var check in checks)
        {
            writer.WriteStartObject();
            writer.WriteString("name", check.Name);
            writer.WriteString("status", check.Healthy ? "healthy" : "unhealthy");
            writer.WriteString("detail", check.Detail);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    private static Check Run(string name, Func<Check> check)
    {
        try
        {
            return check();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new Check(name, false, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static async Task<Check> RunAsync(string name, Func<Task<Check>> check)
    {
        try
        {
            return await check().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new Check(name, false, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static async Task WriteAsync(HttpContext context, string endpoint, List<Check> checks)
    {
        var query = context.Request.Query;
        static HashSet<string> Names(Microsoft.Extensions.Primitives.StringValues values) =>
            [.. values.SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];
        var include = Names(query["include"]);
        var exclude = Names(query["exclude"]);
        var unknown = include.Concat(exclude).Where(name => checks.All(c => c.Name != name)).ToList();
        if (unknown.Count > 0)
        {
            await ErrorResponses.WriteAsync(context, 400, $"no component named {string.Join(", ", unknown)}: {endpoint} has {string.Join(", ", checks.Select(c => c.Name))}").ConfigureAwait(false);
            return;
        }
        var chosen = checks.Where(c => (include.Count == 0 || include.Contains(c.Name)) && !exclude.Contains(c.Name)).ToList();
        var healthy = chosen.All(c => c.Healthy);
        context.Response.StatusCode = healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.CacheControl = "no-store";
        var json = query["format"] == "json" || context.Request.Headers.Accept.Any(a => a is not null && a.Contains("application/json", StringComparison.OrdinalIgnoreCase));
        if (json)
        {
            context.Response.ContentType = "application/json";
            await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
            writer.WriteStartObject();
            writer.WriteString("status", healthy ? "healthy" : "unhealthy");
            writer.WritePropertyName("components");
            WriteComponents(writer, chosen);
            writer.WriteEndObject();
            await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            return;
        }
        context.Response.ContentType = "text/plain; charset=utf-8";
        var text = new StringBuilder();
        foreach (var check in chosen)
        {
            text.Append(check.Healthy ? $"[+]{check.Name} ok: {check.Detail}\n" : $"[-]{check.Name} failed: {check.Detail}\n");
        }
        text.Append(healthy ? $"{endpoint} check passed\n" : $"{endpoint} check failed\n");
        await context.Response.WriteAsync(text.ToString(), context.RequestAborted).ConfigureAwait(false);
    }
}
