using System.Text.Json;
using Logwell.Storage;
using Logwell.Core.Events;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary><c>/api/v1/indexsets</c>: list, create, change retention and archiving (<c>PATCH</c>), delete.</summary>
internal static class IndexSetEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/indexsets", ListAsync).WithMetadata(Permission.InRequest(Actions.ViewSpace));
        routes.MapPost("/api/v1/indexsets", CreateAsync).WithMetadata(Permission.InRequest(Actions.CreateIndexSet));
        routes.MapMethods("/api/v1/indexsets/{name}", ["PATCH"], UpdateAsync).WithMetadata(Permission.OnRoute(Actions.ManageIndexSet));
        routes.MapDelete("/api/v1/indexsets/{name}", DeleteAsync).WithMetadata(Permission.OnRoute(Actions.ManageIndexSet));
        routes.MapGet("/api/v1/indexsets/{name}/patterns", PatternsAsync).WithMetadata(Permission.OnRoute(Actions.Search));
    }

    /// <summary>
    /// The templates ingest found in the index set (<see cref="PatternCatalog"/>), most recently seen first: id,
    /// template, first and last event time, events, and one of their messages. Whole-index-set figures, so only for a
    /// caller who reads the index set unrestricted and unmasked; others use <c>| patterns</c> over what they may read.
    /// </summary>
    private static async Task PatternsAsync(HttpContext context, string name)
    {
        var limit = 100;
        if (context.Request.Query.TryGetValue("limit", out var limitText)
            && (!int.TryParse(limitText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'limit' must be a whole number from 1 to 10000, not '{limitText}'").ConfigureAwait(false);
            return;
        }
        if (!context.RequestServices.GetLogStore().TryGet(name, out var set))
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status404NotFound, $"index set '{name}' does not exist").ConfigureAwait(false);
            return;
        }
        if (context.Caller().MaskFor(name) is { } mask && mask.Masks("message") || SearchEndpoints.GrantRestriction(context, Actions.Search, name) is not null)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"{context.Caller().Description} reads index set '{name}' restricted or masked: its stored templates cover every event; use '| patterns' over a search instead",
                action: Actions.Search, scope: "indexset:" + name).ConfigureAwait(false);
            return;
        }
        var catalog = context.RequestServices.GetRequiredService<PatternCatalog>();
        var patterns = await Task.Run(() => catalog.List(name, limit), context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("indexset", name);
        writer.WriteBoolean("patterns", set.Patterns is not null);
        writer.WriteStartArray("templates");
        foreach (var pattern in patterns)
        {
            writer.WriteStartObject();
            writer.WriteString("pattern", pattern.Id);
            writer.WriteString("template", pattern.Template);
            writer.WriteString("first_seen", pattern.FirstSeen.UtcDateTime);
            writer.WriteString("last_seen", pattern.LastSeen.UtcDateTime);
            writer.WriteNumber("events", pattern.Events);
            writer.WriteString("example", pattern.Examples.Count > 0 ? pattern.Examples[^1] : "");
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task ListAsync(HttpContext context)
    {
        var engine = context.RequestServices.GetLogStore();
        var caller = context.Caller();
        // Only the index sets the caller may see; system index sets (_audit) only when asked for with system=true.
        var system = context.Request.Query["system"] == "true";
        var sets = (await Task.Run(() => engine.ListAsync(context.RequestAborted), context.RequestAborted).ConfigureAwait(false))
            .Where(set => (system || !IndexSetName.IsSystem(set.Name)) && caller.Can(Actions.ViewSpace, set.Name)).ToList();
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("indexsets");
        foreach (var set in sets)
        {
            WriteInfo(writer, set, caller.Rules.SpaceOf(set.Name), caller);
        }
        // Index sets that could not be opened at start: listed, so they can be seen and deleted.
        foreach (var (name, reason) in engine.Unavailable.Where(u => caller.Can(Actions.ViewSpace, u.Key)).OrderBy(u => u.Key, StringComparer.Ordinal))
        {
            writer.WriteStartObject();
            writer.WriteString("name", name);
            writer.WriteBoolean("available", false);
            writer.WriteString("error", reason);
            WriteActions(writer, caller, name);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>What the caller may do with the index set: the pages show the controls for these only.</summary>
    private static void WriteActions(Utf8JsonWriter writer, Caller caller, string indexSet)
    {
        writer.WriteStartArray("actions");
        foreach (var action in Actions.All)
        {
            if (!Actions.IsNodeWide(action) && caller.Can(action, indexSet))
            {
                writer.WriteStringValue(action);
            }
        }
        writer.WriteEndArray();
    }

    private static void WriteInfo(Utf8JsonWriter writer, IndexSetInfo set, string space, Caller caller)
    {
        writer.WriteStartObject();
        writer.WriteString("name", set.Name);
        writer.WriteString("space", space);
        writer.WriteBoolean("available", true);
        writer.WriteNumber("retention_days", set.RetentionDays);
        writer.WriteString("created", set.Created.UtcDateTime);
        writer.WriteNumber("events", set.Events);
        writer.WriteNumber("bytes_on_disk", set.DiskBytes);
        writer.WriteNumber("segments", set.Segments);
        writer.WriteNumber("fields", set.Fields);
        writer.WriteNumber("max_fields", set.MaxFields);
        if (set.ArchiveAfterDays is { } archiveAfter)
        {
            writer.WriteNumber("archive_after_days", archiveAfter);
        }
        writer.WriteBoolean("patterns", set.Patterns);
        if (set.Restored is { } restored)
        {
            writer.WriteStartObject("restored");
            writer.WriteString("from", restored.From);
            writer.WriteString("first_day", restored.FirstDay.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteString("last_day", restored.LastDay.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteString("expires", restored.Expires.UtcDateTime);
            writer.WriteEndObject();
        }
        WriteActions(writer, caller, set.Name);
        writer.WriteEndObject();
    }

    private static async Task CreateAsync(HttpContext context)
    {
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var _ = body;
        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            await ErrorResponses.WriteAsync(context, 400, "expected a JSON object such as {\"name\": \"app\", \"retention_days\": 7}").ConfigureAwait(false);
            return;
        }
        if (!root.TryGetProperty("name", out var nameElement) || nameElement.ValueKind != JsonValueKind.String)
        {
            await ErrorResponses.WriteAsync(context, 400, "'name' is required and must be a string").ConfigureAwait(false);
            return;
        }
        int? days = null;
        if (root.TryGetProperty("retention_days", out var daysElement) && daysElement.ValueKind != JsonValueKind.Null)
        {
            if (daysElement.ValueKind != JsonValueKind.Number || !daysElement.TryGetInt32(out var parsed))
            {
                await ErrorResponses.WriteAsync(context, 400, "'retention_days' must be a whole number of days").ConfigureAwait(false);
                return;
            }
            days = parsed;
        }
        var space = "default";
        if (root.TryGetProperty("space", out var spaceElement) && spaceElement.ValueKind != JsonValueKind.Null)
        {
            if (spaceElement.ValueKind != JsonValueKind.String)
            {
                await ErrorResponses.WriteAsync(context, 400, "'space' must be a string").ConfigureAwait(false);
                return;
            }
            space = spaceElement.GetString()!;
        }
        var caller = context.Caller();
        if (!caller.CanInSpace(Actions.CreateIndexSet, space))
        {
            await Access.DenyAsync(context, Actions.CreateIndexSet, "space:" + space).ConfigureAwait(false);
            return;
        }
        if (!caller.Rules.Spaces.Contains(space))
        {
            await ErrorResponses.WriteAsync(context, 404, $"no space '{space}'").ConfigureAwait(false);
            return;
        }
        var engine = context.RequestServices.GetLogStore();
        var name = nameElement.GetString()!;
        if (!engine.TryGet(name, out ILogIndexSet? _) && IndexSetName.IsValid(name, out string _))
        {
            // Placed before it exists, so no moment finds it in another space (an existing one is never moved here).
            var access = context.RequestServices.GetRequiredService<AccessService>();
            try
            {
                access.Store.PlaceIndexSet(name, space);
            }
            catch (AccessException e)
            {
                await ErrorResponses.WriteAsync(context, e.Status, e.Message).ConfigureAwait(false);
                return;
            }
            access.Invalidate();
        }
        var (outcome, message, store) = await engine.CreateAsync(name, days).ConfigureAwait(false);
        switch (outcome)
        {
            case CreateOutcome.Created:
                context.Response.StatusCode = StatusCodes.Status201Created;
                context.Response.Headers.Location = $"/api/v1/indexsets/{store!.Name}";
                context.Response.ContentType = "application/json";
                await using (var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions))
                {
                    WriteInfo(writer, await store.InfoAsync(context.RequestAborted).ConfigureAwait(false), space, context.Caller());
                    await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                }
                break;
            case CreateOutcome.AlreadyExists:
                await ErrorResponses.WriteAsync(context, StatusCodes.Status409Conflict, message).ConfigureAwait(false);
                break;
            default:
                await ErrorResponses.WriteAsync(context, StatusCodes.Status400BadRequest, message).ConfigureAwait(false);
                break;
        }
    }

    private static async Task UpdateAsync(HttpContext context, string name)
    {
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var _ = body;
        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.EnumerateObject().Any(p => p.Name is "retention_days" or "archive_after_days" or "patterns"))
        {
            await ErrorResponses.WriteAsync(context, 400, "expected a JSON object such as {\"retention_days\": 30}, {\"archive_after_days\": 7} or {\"patterns\": false}").ConfigureAwait(false);
            return;
        }
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name is not ("retention_days" or "archive_after_days" or "patterns"))
            {
                await ErrorResponses.WriteAsync(context, 400, $"'{property.Name}' cannot be changed; only 'retention_days', 'archive_after_days' and 'patterns' can").ConfigureAwait(false);
                return;
            }
        }
        bool? patterns = null;
        if (root.TryGetProperty("patterns", out var patternsElement))
        {
            if (patternsElement.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                await ErrorResponses.WriteAsync(context, 400, "'patterns' must be true or false").ConfigureAwait(false);
                return;
            }
            patterns = patternsElement.GetBoolean();
        }
        // Both read and checked before either is changed.
        int? days = null;
        if (root.TryGetProperty("retention_days", out var daysElement))
        {
            if (daysElement.ValueKind != JsonValueKind.Number || !daysElement.TryGetInt32(out var number))
            {
                await ErrorResponses.WriteAsync(context, 400, "'retention_days' must be a whole number of days").ConfigureAwait(false);
                return;
            }
            days = number;
        }
        var setArchive = root.TryGetProperty("archive_after_days", out var archiveElement);
        int? after = null;
        if (setArchive && archiveElement.ValueKind != JsonValueKind.Null)
        {
            if (archiveElement.ValueKind != JsonValueKind.Number || !archiveElement.TryGetInt32(out var number))
            {
                await ErrorResponses.WriteAsync(context, 400, "'archive_after_days' must be a whole number of days, or null to stop archiving").ConfigureAwait(false);
                return;
            }
            after = number;
        }
        var engine = context.RequestServices.GetLogStore();
        bool found = true;
        string? message = null;
        IndexSetInfo? info = null;
        if (setArchive)
        {
            if (engine is not LogEngine local)
            {
                await ErrorResponses.WriteAsync(context, 501, "this node keeps its events in ClickHouse: archive old partitions with ClickHouse's own TTL moves (docs/operations/backup-and-recovery.md)").ConfigureAwait(false);
                return;
            }
            if (after is not null && context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value.ArchiveTo.Length == 0)
            {
                await ErrorResponses.WriteAsync(context, 400, "no archive is set up: set Logwell:ArchiveTo to a directory or s3://bucket/prefix first").ConfigureAwait(false);
                return;
            }
            (found, message, info) = await local.ChangeAsync(name, days, setArchive: true, after).ConfigureAwait(false);
        }
        else if (days is not null)
        {
            (found, message, info) = await engine.SetRetentionAsync(name, days.Value).ConfigureAwait(false);
        }
        if (found && message is null && patterns is { } on)
        {
            found = await engine.SetPatternsAsync(name, on).ConfigureAwait(false);
            if (found && engine.TryGet(name, out var set))
            {
                info = await set.InfoAsync(context.RequestAborted).ConfigureAwait(false);
            }
        }
        if (!await AnsweredAsync(context, name, found, message).ConfigureAwait(false))
        {
            return;
        }
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        WriteInfo(writer, info!, context.Caller().Rules.SpaceOf(name), context.Caller());
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Whether a change went through; else the 404 or 400 is written.</summary>
    private static async Task<bool> AnsweredAsync(HttpContext context, string name, bool found, string? message)
    {
        if (!found)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status404NotFound, $"index set '{name}' does not exist").ConfigureAwait(false);
            return false;
        }
        if (message is not null)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status400BadRequest, message).ConfigureAwait(false);
            return false;
        }
        return true;
    }

    private static async Task DeleteAsync(HttpContext context, string name)
    {
        var engine = context.RequestServices.GetLogStore();
        if (!await engine.DeleteAsync(name).ConfigureAwait(false))
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status404NotFound, $"index set '{name}' does not exist").ConfigureAwait(false);
            return;
        }
        // A new index set of this name starts in the default space, without the grants of this one.
        var access = context.RequestServices.GetRequiredService<AccessService>();
        access.Store.ForgetIndexSet(name);
        access.Invalidate();
        // Nor its log patterns (the catalog's hourly prune removes them within a day when this fails).
        try
        {
            await Task.Run(() => context.RequestServices.GetRequiredService<PatternCatalog>().Forget(name), CancellationToken.None).ConfigureAwait(false);
        }
        catch (System.Data.Common.DbException e)
        {
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Logwell.Patterns").LogWarning("The log patterns of deleted index set {Name} stay until the next prune: {Error}", name, e.Message);
        }
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }
}
