using System.Text.Json;
using Logwell.Server.Api;
using Microsoft.AspNetCore.Http;

namespace Logwell.Server;

/// <summary>Errors a client can cause, as <c>{"error": "...", "status": n, ...}</c> with the matching HTTP status.</summary>
public static class ErrorResponses
{
    public static async Task WriteAsync(HttpContext context, int status, string message, int? position = null, string? expected = null)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("error", message);
        writer.WriteNumber("status", status);
        if (position is not null)
        {
            writer.WriteNumber("position", position.Value);
        }
        if (expected is not null)
        {
            writer.WriteString("expected", expected);
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
