using System.Text.Json;
using Logwell.Core.Events;
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
/// <c>POST /api/v1/indexsets/{name}/ingest</c>: JSON lines or plain text, optionally gzip. Answers only once the
/// accepted events are durable.
/// </summary>
internal static class IngestEndpoints
{
    public static void Map(IEndpointRouteBuilder routes) =>
        routes.MapPost("/api/v1/indexsets/{name}/ingest", IngestAsync).WithMetadata(Permission.OnRoute(Actions.Ingest));

    private enum BodyFormat
    {
        JsonLines,
        Text,
        Guess,
    }

    private static async Task IngestAsync(HttpContext context, string name)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        if (!IndexSetName.IsValid(name, out var nameError))
        {
            await ErrorResponses.WriteAsync(context, 400, nameError).ConfigureAwait(false);
            return;
        }
        var format = FormatOf(context.Request.ContentType);
        if (format is null)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status415UnsupportedMediaType,
                $"Content-Type '{context.Request.ContentType}' is not supported: use application/x-ndjson or text/plain").ConfigureAwait(false);
            return;
        }
        var (store, body, length, refused) = await IngestPath.BeginAsync(context, options, name).ConfigureAwait(false);
        if (refused is not null)
        {
            refused.SetHeaders(context);
            await ErrorResponses.WriteAsync(context, refused.Status, refused.Message).ConfigureAwait(false);
            return;
        }
        var received = context.RequestServices.GetTime().GetUtcNow();
        var span = body!.AsSpan(0, length);
        if (format == BodyFormat.Guess)
        {
            var first = span.TrimStart(" \t\r\n"u8);
            format = first.Length > 0 && first[0] == (byte)'{' ? BodyFormat.JsonLines : BodyFormat.Text;
        }
        var decoded = format == BodyFormat.JsonLines ? EventDecoder.DecodeJsonLines(span, received, options.MaxLineBytes) : EventDecoder.DecodeText(span, received, options.MaxLineBytes);
        if (await IngestPath.AppendAsync(context, store!, decoded.Events).ConfigureAwait(false) is { } failed)
        {
            await ErrorResponses.WriteAsync(context, failed.Status, failed.Message).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteNumber("accepted", decoded.Events.Count);
        writer.WriteNumber("rejected", decoded.Rejected);
        writer.WriteStartArray("errors");
        foreach (var lineError in decoded.Errors)
        {
            writer.WriteStartObject();
            writer.WriteNumber("line", lineError.Line);
            writer.WriteString("error", lineError.Error);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteBoolean("errors_truncated", decoded.Rejected > decoded.Errors.Count);
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static BodyFormat? FormatOf(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return BodyFormat.Guess;
        }
        var media = contentType.Split(';')[0].Trim().ToLowerInvariant();
        return media switch
        {
            "application/x-ndjson" or "application/ndjson" or "application/jsonl" or "application/json" or "application/x-jsonlines" => BodyFormat.JsonLines,
            "text/plain" => BodyFormat.Text,
            // curl --data-binary sends form encoding unless told otherwise; nobody posts a real form here.
            "application/octet-stream" or "application/x-www-form-urlencoded" => BodyFormat.Guess,
            _ => null,
        };
    }
}
