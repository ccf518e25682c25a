using System.Text.Json;
using Logwell.Storage;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Logwell.Server.Api;

/// <summary>
/// <c>/api/v1/indexsets/{name}/pipeline</c>: an index set's cleaning pipeline. <c>GET</c> shows it, <c>PUT</c> saves a
/// definition (every event appended afterwards goes through it), <c>DELETE</c> removes it, and <c>POST .../preview</c>
/// runs a definition (or the saved one) over sample lines and shows the events they would become.
/// </summary>
internal static class PipelineEndpoints
{
    public const int MaxPreviewLines = 1000;

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/indexsets/{name}/pipeline", ShowAsync).WithMetadata(Permission.OnRoute(Actions.ViewSpace));
        routes.MapPut("/api/v1/indexsets/{name}/pipeline", SaveAsync).WithMetadata(Permission.OnRoute(Actions.ManagePipeline));
        routes.MapDelete("/api/v1/indexsets/{name}/pipeline", RemoveAsync).WithMetadata(Permission.OnRoute(Actions.ManagePipeline));
        routes.MapPost("/api/v1/indexsets/{name}/pipeline/preview", PreviewAsync).WithMetadata(Permission.OnRoute(Actions.ManagePipeline));
    }

    private static async Task<ILogIndexSet?> StoreAsync(HttpContext context, string name)
    {
        if (context.RequestServices.GetLogStore().TryGet(name, out var store))
        {
            return store;
        }
        await ErrorResponses.WriteAsync(context, 404, $"index set '{name}' does not exist").ConfigureAwait(false);
        return null;
    }

    private static async Task ShowAsync(HttpContext context, string name)
    {
        if (await StoreAsync(context, name).ConfigureAwait(false) is not { } store)
        {
            return;
        }
        await WritePipelineAsync(context, store.Pipeline).ConfigureAwait(false);
    }

    private static async Task SaveAsync(HttpContext context, string name)
    {
        if (await StoreAsync(context, name).ConfigureAwait(false) is not { } store)
        {
            return;
        }
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 256 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var document = body;
        CleaningPipeline pipeline;
        try
        {
            pipeline = CleaningPipeline.Parse(body.RootElement.GetRawText());
        }
        catch (PipelineDefinitionException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
            return;
        }
        await store.SetPipelineAsync(pipeline, CancellationToken.None).ConfigureAwait(false);
        await WritePipelineAsync(context, pipeline).ConfigureAwait(false);
    }

    private static async Task RemoveAsync(HttpContext context, string name)
    {
        if (await StoreAsync(context, name).ConfigureAwait(false) is not { } store)
        {
            return;
        }
        await store.SetPipelineAsync(null, CancellationToken.None).ConfigureAwait(false);
        await WritePipelineAsync(context, null).ConfigureAwait(false);
    }

    private static async Task WritePipelineAsync(HttpContext context, CleaningPipeline? pipeline)
    {
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WritePropertyName("pipeline");
        if (pipeline is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            writer.WriteRawValue(pipeline.Definition);
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>{"pipeline": {...}, "lines": ["..."]}</c>: each line as text ingest would take it (the line is the message,
    /// received now), cleaned. Without <c>pipeline</c>, the saved one.
    /// </summary>
    private static async Task PreviewAsync(HttpContext context, string name)
    {
        if (await StoreAsync(context, name).ConfigureAwait(false) is not { } store)
        {
            return;
        }
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 4 << 20).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var document = body;
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("lines", out var lines) || lines.ValueKind != JsonValueKind.Array
            || lines.EnumerateArray().Any(l => l.ValueKind != JsonValueKind.String))
        {
            await ErrorResponses.WriteAsync(context, 400, "expected {\"pipeline\": {...}, \"lines\": [\"a sample line\", ...]}").ConfigureAwait(false);
            return;
        }
        if (lines.GetArrayLength() > MaxPreviewLines)
        {
            await ErrorResponses.WriteAsync(context, 400, $"a preview takes at most {MaxPreviewLines} lines").ConfigureAwait(false);
            return;
        }
        var pipeline = store.Pipeline;
        if (root.TryGetProperty("pipeline", out var definition) && definition.ValueKind != JsonValueKind.Null)
        {
            try
            {
                pipeline = CleaningPipeline.Parse(definition.GetRawText());
            }
            catch (PipelineDefinitionException e)
            {
                await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
                return;
            }
        }
        var received = context.RequestServices.GetTime().GetUtcNow().UtcTicks;
        var events = lines.EnumerateArray().Select(l => new LogEvent(received, l.GetString()!, [])).Select(e => pipeline?.Apply(e) ?? e).ToList();
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("events");
        foreach (var evt in events)
        {
            JsonOutput.WriteHit(writer, evt, withId: false);
        }
        writer.WriteEndArray();
        writer.WriteNumber("failed", events.Count(e => e.TryGetField(CleaningPipeline.ErrorField, out _)));
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
