using System.Globalization;
using System.Text.Json;
using Logwell.Jobs;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Server.Tasks;
using Logwell.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// An index set's archive: <c>GET /api/v1/indexsets/{name}/archive</c> (archived days, restores in progress, index
/// sets restored from it), <c>POST …/archive/restore</c> (a restore task), <c>GET …/archive/restore/{task}</c> (its
/// state); and the node's own <c>POST /api/v1/maintenance/archive</c> (a pass now) and
/// <c>POST /api/v1/maintenance/archive-restore</c> (a restore run by the node, for a worker's task).
/// </summary>
internal static class ArchiveEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/indexsets/{name}/archive", ListAsync).WithMetadata(Permission.OnRoute(Actions.ViewSpace));
        routes.MapPost("/api/v1/indexsets/{name}/archive/restore", RequestRestoreAsync).WithMetadata(Permission.OnRoute(Actions.ManageIndexSet));
        routes.MapGet("/api/v1/indexsets/{name}/archive/restore/{task}", (HttpContext context, string name, string task) => TaskAsync(context, name, task)).WithMetadata(Permission.OnRoute(Actions.ViewSpace));
        routes.MapPost("/api/v1/maintenance/archive", PassAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        routes.MapPost("/api/v1/maintenance/archive-restore", RestoreAsync).WithMetadata(Permission.OnNode(Actions.Operate));
    }

    private static LogwellOptions Options(HttpContext context) => context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;

    private static async Task ListAsync(HttpContext context, string name)
    {
        var store = context.RequestServices.GetLogStore();
        var options = Options(context);
        IReadOnlyList<ArchivedDay> days;
        try
        {
            days = await NodeArchive.ListAsync(options, name, context.RequestServices.GetTime(), context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            await ErrorResponses.WriteAsync(context, 502, $"the archive at {options.ArchiveTo} cannot be read: {e.Message}").ConfigureAwait(false);
            return;
        }
        // An index set deleted since keeps its archive, which stays listed (and restorable) under its name.
        if (days.Count == 0 && !store.TryGet(name, out _))
        {
            await ErrorResponses.WriteAsync(context, 404, $"index set '{name}' does not exist, and nothing of it is in the archive").ConfigureAwait(false);
            return;
        }
        var sets = await store.ListAsync(context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("index", name);
        writer.WriteBoolean("archive_set_up", options.ArchiveTo.Length > 0);
        if (sets.FirstOrDefault(s => s.Name == name)?.ArchiveAfterDays is { } after)
        {
            writer.WriteNumber("archive_after_days", after);
        }
        writer.WriteStartArray("archived");
        foreach (var day in days)
        {
            writer.WriteStartObject();
            writer.WriteString("day", day.Day);
            writer.WriteNumber("segments", day.Segments);
            writer.WriteNumber("events", day.Events);
            writer.WriteNumber("bytes", day.Bytes);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("restoring");
        foreach (var progress in NodeArchive.InProgress(store).Where(p => p.From == name))
        {
            writer.WriteStartObject();
            writer.WriteString("as", progress.As);
            writer.WriteString("first_day", progress.FirstDay);
            writer.WriteString("last_day", progress.LastDay);
            writer.WriteNumber("percent", progress.Percent);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("restored");
        foreach (var set in sets.Where(s => s.Restored?.From == name))
        {
            writer.WriteStartObject();
            writer.WriteString("name", set.Name);
            writer.WriteString("first_day", set.Restored!.FirstDay.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            writer.WriteString("last_day", set.Restored.LastDay.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            writer.WriteString("expires", set.Restored.Expires.UtcDateTime);
            writer.WriteNumber("events", set.Events);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task RequestRestoreAsync(HttpContext context, string name)
    {
        using var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        var store = context.RequestServices.GetLogStore();
        ArchiveRestoreRequest request;
        try
        {
            request = BuiltinTasks.ArchiveRestoreRequest(body.RootElement, name);
        }
        catch (FormatException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
            return;
        }
        if (store is not Storage.Engine.LogEngine)
        {
            await ErrorResponses.WriteAsync(context, 501, "this node keeps its events in ClickHouse: archive old partitions with ClickHouse's own TTL moves (docs/operations/backup-and-recovery.md)").ConfigureAwait(false);
            return;
        }
        if (Options(context).ArchiveTo.Length == 0)
        {
            await ErrorResponses.WriteAsync(context, 400, "no archive is set up: set Logwell:ArchiveTo to a directory or s3://bucket/prefix").ConfigureAwait(false);
            return;
        }
        if (!Logwell.Core.Events.IndexSetName.IsValid(request.As, out var invalid, system: false))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'as': {invalid}").ConfigureAwait(false);
            return;
        }
        if (store.TryGet(request.As, out _))
        {
            await ErrorResponses.WriteAsync(context, 409, $"index set '{request.As}' already exists: restore under another name ('as')").ConfigureAwait(false);
            return;
        }
        try
        {
            var archived = await NodeArchive.ListAsync(Options(context), name, context.RequestServices.GetTime(), context.RequestAborted).ConfigureAwait(false);
            if (!archived.Any(d => DateOnly.ParseExact(d.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture) is var day && day >= request.From && day <= request.To))
            {
                await ErrorResponses.WriteAsync(context, 400, $"no day of index set '{name}' from {request.From:yyyy-MM-dd} to {request.To:yyyy-MM-dd} is in the archive{(archived.Count > 0 ? $" (it holds {archived[0].Day} to {archived[^1].Day})" : "")}").ConfigureAwait(false);
                return;
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            await ErrorResponses.WriteAsync(context, 502, $"the archive at {Options(context).ArchiveTo} cannot be read: {e.Message}").ConfigureAwait(false);
            return;
        }
        // The restored index set holds this one's events: it is made in this one's space, read through its masking rules,
        // by whoever may create index sets there.
        var caller = context.Caller();
        var space = caller.Rules.SpaceOf(name);
        if (!caller.CanInSpace(Actions.CreateIndexSet, space))
        {
            await Access.DenyAsync(context, Actions.CreateIndexSet, "space:" + space).ConfigureAwait(false);
            return;
        }
        var access = context.RequestServices.GetRequiredService<AccessService>();
        try
        {
            access.Store.PlaceLike(request.As, name, space);
        }
        catch (AccessException e)
        {
            await ErrorResponses.WriteAsync(context, e.Status, e.Message).ConfigureAwait(false);
            return;
        }
        access.Invalidate();
        var arguments = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["index"] = request.IndexSet,
            ["from"] = request.From.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["to"] = request.To.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["as"] = request.As,
            ["expire_days"] = request.ExpireDays,
        });
        var task = await context.RequestServices.GetRequiredService<ITaskQueue>().EnqueueAsync(new TaskRequest(BuiltinTasks.ArchiveRestore, arguments, "default") { MaxRetries = 1 }, context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        await context.Response.WriteAsJsonAsync(new { task, @as = request.As, from = request.From.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), to = request.To.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), expire_days = request.ExpireDays }, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task TaskAsync(HttpContext context, string name, string id)
    {
        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var task))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'{id}' is no task id").ConfigureAwait(false);
            return;
        }
        var queue = context.RequestServices.GetRequiredService<ITaskQueue>();
        // Only a restore of this index set's archive: the route's permission covers no other task.
        var described = await queue.DescribeAsync(task, context.RequestAborted).ConfigureAwait(false);
        var ofThisIndexSet = false;
        if (described is { Name: BuiltinTasks.ArchiveRestore } restore)
        {
            using var arguments = JsonDocument.Parse(restore.Arguments);
            ofThisIndexSet = arguments.RootElement.TryGetProperty("index", out var index) && index.GetString() == name;
        }
        var state = ofThisIndexSet ? await queue.InspectAsync(task, context.RequestAborted).ConfigureAwait(false) : null;
        if (state is not { } found)
        {
            await ErrorResponses.WriteAsync(context, 404, $"no restore task {task} of index set '{name}'").ConfigureAwait(false);
            return;
        }
        await context.Response.WriteAsJsonAsync(new { task, state = found.State, attempts = found.Attempts, error = found.LastError }, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task PassAsync(HttpContext context)
    {
        var services = context.RequestServices;
        try
        {
            var pass = await NodeArchive.RunAsync(Options(context), services.GetLogStore(), services.GetTime(),
                services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping).ConfigureAwait(false);
            await context.Response.WriteAsJsonAsync(new
            {
                archived = pass.Archived.Select(d => new { index = d.IndexSet, day = d.Day, segments = d.Segments, events = d.Events, bytes = d.Bytes }),
                expired = pass.Expired,
                problems = pass.Problems,
            }, context.RequestAborted).ConfigureAwait(false);
        }
        catch (NotSupportedException e)
        {
            await ErrorResponses.WriteAsync(context, 501, e.Message).ConfigureAwait(false);
        }
        catch (Storage.Backup.BackupBusyException e)
        {
            await ErrorResponses.WriteAsync(context, 409, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            await ErrorResponses.WriteAsync(context, 502, $"the archive at {Options(context).ArchiveTo} cannot be used: {e.Message}").ConfigureAwait(false);
        }
    }

    private static async Task RestoreAsync(HttpContext context)
    {
        using var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        var services = context.RequestServices;
        try
        {
            var request = BuiltinTasks.ArchiveRestoreRequest(body.RootElement, null);
            var info = await NodeArchive.RestoreAsync(Options(context), services.GetLogStore(), request, services.GetTime(),
                services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping).ConfigureAwait(false);
            await context.Response.WriteAsJsonAsync(new { name = info.Name, events = info.Events, segments = info.Segments }, context.RequestAborted).ConfigureAwait(false);
        }
        catch (FormatException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
        }
        catch (NotSupportedException e)
        {
            await ErrorResponses.WriteAsync(context, 501, e.Message).ConfigureAwait(false);
        }
        catch (RestoreConflictException e)
        {
            await ErrorResponses.WriteAsync(context, 409, e.Message).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
        }
        catch (Storage.Backup.BackupBusyException e)
        {
            await ErrorResponses.WriteAsync(context, 409, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            await ErrorResponses.WriteAsync(context, 500, $"the restore from the archive failed: {e.Message}").ConfigureAwait(false);
        }
    }
}
