using System.Text.Json;
using Logwell.Core.Ingest;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// <c>POST /api/events/raw</c>: Seq's ingestion endpoint, taking CLEF as Serilog's Seq sink sends it. The index set
/// comes from the API key (<c>X-Seq-ApiKey</c> or <c>?apiKey=</c>) when <see cref="LogwellOptions.SeqApiKeys"/> lists
/// keys, else from <see cref="LogwellOptions.SeqIndexSet"/>. Errors are Seq's <c>{"Error": "..."}</c>.
/// </summary>
internal static class SeqEndpoints
{
    public static void Map(IEndpointRouteBuilder routes) =>
        routes.MapPost("/api/events/raw", IngestAsync).WithMetadata(Permission.InRequest(Actions.Ingest));

    private static async Task IngestAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var indexSet = options.SeqIndexSet;
        // Keys of the SeqApiKeys setting pick the index set; a Logwell key or a user writes to SeqIndexSet.
        if (options.SeqApiKeys.Count > 0 && context.Caller().Kind is not ("user" or "node") && context.Caller().KeyId is null or "SeqApiKeys")
        {
            var key = context.Request.Headers["X-Seq-ApiKey"].ToString();
            if (key.Length == 0)
            {
                key = context.Request.Query["apiKey"].ToString();
            }
            if (key.Length == 0 || !options.SeqApiKeys.TryGetValue(key, out var keyed))
            {
                await WriteAsync(context, StatusCodes.Status401Unauthorized, key.Length == 0 ? "an API key is required: send it in X-Seq-ApiKey or ?apiKey=" : "the API key is not known").ConfigureAwait(false);
                return;
            }
            indexSet = keyed;
        }
        var media = IngestPath.MediaType(context);
        if (media is not ("application/vnd.serilog.clef" or "application/x-ndjson" or "application/json" or ""))
        {
            await WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, $"Content-Type '{context.Request.ContentType}' is not supported: send CLEF as application/vnd.serilog.clef").ConfigureAwait(false);
            return;
        }
        var (store, body, length, refused) = await IngestPath.BeginAsync(context, options, indexSet).ConfigureAwait(false);
        if (refused is not null)
        {
            refused.SetHeaders(context);
            await WriteAsync(context, refused.Status, refused.Message).ConfigureAwait(false);
            return;
        }
        var decoded = ClefDecoder.Decode(body!.AsSpan(0, length), options.MaxLineBytes);
        if (decoded.Events.Count == 0 && decoded.Rejected > 0)
        {
            await WriteAsync(context, 400, $"no event could be read; line {decoded.Errors[0].Line}: {decoded.Errors[0].Error}").ConfigureAwait(false);
            return;
        }
        if (await IngestPath.AppendAsync(context, store!, decoded.Events).ConfigureAwait(false) is { } failed)
        {
            await WriteAsync(context, failed.Status, failed.Message).ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status201Created;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        // No level is filtered out: the sink sends everything it is configured to.
        writer.WriteNull("MinimumLevelAccepted");
        writer.WriteNumber("Accepted", decoded.Events.Count);
        writer.WriteNumber("Rejected", decoded.Rejected);
        writer.WriteStartArray("Errors");
        foreach (var lineError in decoded.Errors)
        {
            writer.WriteStartObject();
            writer.WriteNumber("Line", lineError.Line);
            writer.WriteString("Error", lineError.Error);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WriteAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("Error", message);
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
