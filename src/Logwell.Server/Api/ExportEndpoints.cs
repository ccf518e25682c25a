using System.Globalization;
using System.Text.Json;
using Logwell.Jobs;
using Logwell.Server.Exports;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Server.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// Exports. <c>POST /api/v1/exports</c> queues an asynchronous export (a task on queue <c>export</c>);
/// <c>GET /api/v1/exports[/{id}]</c> shows state and progress; <c>GET /api/v1/exports/{id}/download</c> streams the
/// gzip file while it is valid. <c>GET /api/v1/export</c> streams a small result at once.
/// </summary>
internal static class ExportEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/exports", CreateAsync).WithMetadata(Permission.InRequest(Actions.Export));
        routes.MapGet("/api/v1/exports", List).WithMetadata(Permission.InRequest(Actions.Export));
        routes.MapGet("/api/v1/exports/{id}", Show).WithMetadata(Permission.InRequest(Actions.Export));
        routes.MapGet("/api/v1/exports/{id}/download", Download).WithMetadata(Permission.InRequest(Actions.Export));
        routes.MapGet("/api/v1/export", StreamAsync).WithMetadata(Permission.InRequest(Actions.Export));
    }

    /// <summary>Who asks: a user by name, a key by id, else <c>local</c> (loopback before the first user, the node itself).</summary>
    private static string Owner(HttpContext context) => context.Caller() switch
    {
        { Kind: "user" } user => user.Name,
        { Kind: "key" } key => "key:" + key.KeyId,
        _ => "local",
    };

    private static async Task CreateAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 1 << 20).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var _ = body;
        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            await ErrorResponses.WriteAsync(context, 400, "expected a JSON object such as {\"indexset\": \"default\", \"q\": \"level:ERROR\", \"format\": \"csv\"}").ConfigureAwait(false);
            return;
        }
        string? Text(string name) => root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name is not ("indexset" or "q" or "from" or "to" or "fields" or "format" or "default_operator"))
            {
                await ErrorResponses.WriteAsync(context, 400, $"unknown property '{property.Name}': an export takes indexset, q, from, to, fields, format and default_operator").ConfigureAwait(false);
                return;
            }
            if (property.Name != "fields" && property.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                await ErrorResponses.WriteAsync(context, 400, $"'{property.Name}' must be a string").ConfigureAwait(false);
                return;
            }
        }
        IReadOnlyList<string> fields = [];
        if (root.TryGetProperty("fields", out var fieldsValue))
        {
            if (fieldsValue.ValueKind == JsonValueKind.String)
            {
                fields = SplitFields(fieldsValue.GetString());
            }
            else if (fieldsValue.ValueKind == JsonValueKind.Array && fieldsValue.EnumerateArray().All(f => f.ValueKind == JsonValueKind.String && f.GetString()!.Length > 0))
            {
                fields = [.. fieldsValue.EnumerateArray().Select(f => f.GetString()!)];
            }
            else if (fieldsValue.ValueKind != JsonValueKind.Null)
            {
                await ErrorResponses.WriteAsync(context, 400, "'fields' must be an array of field names or a comma-separated string").ConfigureAwait(false);
                return;
            }
        }
        var request = await ReadRequestAsync(context, Text("indexset"), Text("q"), Text("from"), Text("to"), Text("format"), Text("default_operator")).ConfigureAwait(false);
        if (request is null)
        {
            return;
        }
        var nul = request.Selection.Query.IndexOf('\0', StringComparison.Ordinal);
        if (nul >= 0 || fields.Any(f => f.Contains('\0', StringComparison.Ordinal)))
        {
            // PostgreSQL's text holds no NUL: refused on every metadata store alike.
            await ErrorResponses.WriteAsync(context, 400, nul >= 0 ? $"an export's query cannot hold the NUL character (position {nul})" : "an export's field names cannot hold the NUL character", nul >= 0 ? nul : null).ConfigureAwait(false);
            return;
        }
        var exports = context.RequestServices.GetRequiredService<ExportStore>();
        ExportRecord record;
        try
        {
            record = exports.Create(Owner(context), request.Selection.IndexSet, request.Selection.Query, request.Selection.From, request.Selection.To, fields, request.Format, request.Selection.DefaultOr, options.ExportMaxEvents, options.ExportsPerUser, request.Selection.Restriction, masked: request.Mask is not null);
        }
        catch (ExportLimitException e)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status429TooManyRequests, e.Message).ConfigureAwait(false);
            return;
        }
        try
        {
            var taskId = await context.RequestServices.GetRequiredService<ITaskQueue>().EnqueueAsync(new TaskRequest(BuiltinTasks.Export, JsonSerializer.Serialize(new { id = record.Id }), "export")
            {
                UniqueKey = "export:" + record.Id,
                MaxRetries = 2,
                SoftTimeLimit = TimeSpan.FromHours(2),
            }, CancellationToken.None).ConfigureAwait(false);
            exports.SetTask(record.Id, taskId);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            exports.Failed(record.Id, $"could not be queued: {e.Message}", final: true);
            await ErrorResponses.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, $"the export could not be queued: {e.Message}").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.Headers.Location = $"/api/v1/exports/{record.Id}";
        await WriteRecordAsync(context, exports.Get(record.Id)!, options).ConfigureAwait(false);
    }

    /// <param name="Mask">The masking rules the caller reads the index set through (null: values as stored).</param>
    private sealed record ExportRequest(EventSelection Selection, string Format, ReadMask? Mask);

    /// <summary>Reads what every export names, or answers the mistake and returns null.</summary>
    private static async Task<ExportRequest?> ReadRequestAsync(HttpContext context, string? indexSet, string? q, string? from, string? to, string? format, string? defaultOperator)
    {
        format = string.IsNullOrEmpty(format) ? "csv" : format;
        if (!ExportWriter.Formats.Contains(format))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'format' must be csv or ndjson, not '{format}'").ConfigureAwait(false);
            return null;
        }
        var selection = await SearchEndpoints.ReadSelectionAsync(context, indexSet, q, null, from, to, null, pipesAllowed: false, defaultOperator, Actions.Export).ConfigureAwait(false);
        if (selection is null)
        {
            return null;
        }
        var defaultOr = (defaultOperator ?? context.Request.Query["default_operator"].ToString()) is { Length: > 0 } op
            ? op == "OR"
            : context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value.DefaultOperator == "OR";
        return new ExportRequest(new EventSelection(selection.Store.Name, q ?? "", selection.From, selection.To, defaultOr,
            context.Caller().Filters(Actions.Export, selection.Store.Name)), format, selection.Mask);
    }

    private static IReadOnlyList<string> SplitFields(string? text) =>
        string.IsNullOrWhiteSpace(text) ? [] : [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static async Task List(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var records = context.RequestServices.GetRequiredService<ExportStore>().List(Owner(context)).Where(r => context.Allows(Actions.Export, r.IndexSet));
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("exports");
        var now = context.RequestServices.GetTime().GetUtcNow();
        foreach (var record in records)
        {
            WriteRecord(writer, record, options, now);
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task Show(HttpContext context, string id)
    {
        var record = Find(context, id);
        if (record is null)
        {
            await ErrorResponses.WriteAsync(context, 404, $"no export '{id}'").ConfigureAwait(false);
            return;
        }
        await WriteRecordAsync(context, record, context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value).ConfigureAwait(false);
    }

    private static ExportRecord? Find(HttpContext context, string id)
    {
        var record = context.RequestServices.GetRequiredService<ExportStore>().Get(id);
        // Another's export is not found, nor one of an index set the caller may no longer export from.
        return record is not null && record.Owner == Owner(context) && context.Allows(Actions.Export, record.IndexSet) ? record : null;
    }

    /// <summary>The state a client sees: a done export past its download time is expired even before the clean-up runs.</summary>
    private static string VisibleState(ExportRecord record, DateTimeOffset now) =>
        record.State == ExportState.Done && record.ExpiresAt < now ? ExportState.Expired : record.State;

    private static async Task Download(HttpContext context, string id)
    {
        var record = Find(context, id);
        if (record is null)
        {
            await ErrorResponses.WriteAsync(context, 404, $"no export '{id}'").ConfigureAwait(false);
            return;
        }
        var state = VisibleState(record, context.RequestServices.GetTime().GetUtcNow());
        if (state is ExportState.Expired or ExportState.Failed)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status410Gone, state == ExportState.Expired
                ? $"export '{id}' expired at {record.ExpiresAt:O}; start a new one"
                : $"export '{id}' failed: {record.Error}").ConfigureAwait(false);
            return;
        }
        if (state != ExportState.Done)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status409Conflict,
                string.Create(CultureInfo.InvariantCulture, $"export '{id}' is {state} ({record.Percent ?? 0}%); download it when it is done")).ConfigureAwait(false);
            return;
        }
        var path = context.RequestServices.GetRequiredService<ExportStore>().FilePath(record);
        if (!File.Exists(path))
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status410Gone, $"the file of export '{id}' is gone").ConfigureAwait(false);
            return;
        }
        await Results.File(path, "application/gzip", $"logwell-export-{record.Id}.{record.Format}.gz", enableRangeProcessing: true).ExecuteAsync(context).ConfigureAwait(false);
    }

    /// <summary><c>GET /api/v1/export</c>: a result of at most <c>SyncExportMaxEvents</c> events, streamed in the chosen format.</summary>
    private static async Task StreamAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var q = context.Request.Query;
        var request = await ReadRequestAsync(context, q["indexset"], q["q"], q["from"], q["to"], q["format"], null).ConfigureAwait(false);
        if (request is null)
        {
            return;
        }
        var store = context.RequestServices.GetRequiredService<ILogStoreAccess>();
        var max = options.SyncExportMaxEvents;
        var first = await store.PageAsync(request.Selection, null, Math.Min(max, 5_000), max + 1L, context.RequestAborted).ConfigureAwait(false);
        if (first.Total > max)
        {
            await ErrorResponses.WriteAsync(context, 400, string.Create(CultureInfo.InvariantCulture,
                $"more than {max} events match; narrow the query or the time range, or start an asynchronous export with POST /api/v1/exports")).ConfigureAwait(false);
            return;
        }
        context.Response.ContentType = ExportWriter.ContentType(request.Format);
        context.Response.Headers.ContentDisposition = $"attachment; filename=\"logwell-export.{request.Format}\"";
        context.Response.Headers["X-Logwell-Total"] = first.Total.ToString(CultureInfo.InvariantCulture);
        // The writer is synchronous: buffer each page, then send it.
        using var buffer = new MemoryStream();
        using var writer = new ExportWriter(buffer, request.Format, SplitFields(q["fields"]));
        var page = first;
        while (true)
        {
            writer.Write(request.Mask is null ? page.Events : [.. page.Events.Select(request.Mask.Apply)]);
            if (page.NextCursor is null)
            {
                break;
            }
            await SendAsync().ConfigureAwait(false);
            page = await store.PageAsync(request.Selection, page.NextCursor, 5_000, 0, context.RequestAborted).ConfigureAwait(false);
        }
        writer.Finish();
        await SendAsync().ConfigureAwait(false);

        async Task SendAsync()
        {
            await context.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), context.RequestAborted).ConfigureAwait(false);
            buffer.SetLength(0);
        }
    }

    private static async Task WriteRecordAsync(HttpContext context, ExportRecord record, LogwellOptions options)
    {
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        WriteRecord(writer, record, options, context.RequestServices.GetTime().GetUtcNow());
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static void WriteRecord(Utf8JsonWriter writer, ExportRecord record, LogwellOptions options, DateTimeOffset now)
    {
        var state = VisibleState(record, now);
        writer.WriteStartObject();
        writer.WriteString("id", record.Id);
        writer.WriteString("state", state);
        writer.WriteString("indexset", record.IndexSet);
        writer.WriteString("q", record.Query);
        WriteTime(writer, "from", record.From);
        WriteTime(writer, "to", record.To);
        writer.WriteStartArray("fields");
        foreach (var field in record.Fields)
        {
            writer.WriteStringValue(field);
        }
        writer.WriteEndArray();
        writer.WriteString("format", record.Format);
        writer.WriteNumber("events_written", record.EventsWritten);
        if (record.EventsTotal is { } total)
        {
            writer.WriteNumber("events_total", Math.Min(total, record.MaxEvents));
        }
        else
        {
            writer.WriteNull("events_total");
        }
        if (record.Percent is { } percent)
        {
            writer.WriteNumber("percent", percent);
        }
        else
        {
            writer.WriteNull("percent");
        }
        writer.WriteBoolean("truncated", record.Truncated);
        if (record.Error is null)
        {
            writer.WriteNull("error");
        }
        else
        {
            writer.WriteString("error", record.Error);
        }
        writer.WriteString("created_at", record.CreatedAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        WriteTime(writer, "finished_at", record.FinishedAt?.UtcTicks);
        WriteTime(writer, "expires_at", record.ExpiresAt?.UtcTicks);
        if (record.FileBytes is { } bytes)
        {
            writer.WriteNumber("file_bytes", bytes);
        }
        else
        {
            writer.WriteNull("file_bytes");
        }
        if (state == ExportState.Done)
        {
            writer.WriteString("download", $"/api/v1/exports/{record.Id}/download");
        }
        else
        {
            writer.WriteNull("download");
        }
        writer.WriteEndObject();
    }

    private static void WriteTime(Utf8JsonWriter writer, string name, long? ticks)
    {
        if (ticks is { } value)
        {
            writer.WriteString(name, JsonOutput.FormatTime(value));
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
