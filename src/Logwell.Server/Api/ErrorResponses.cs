using System.Text.Json;
using Logwell.Server.Api;
using Microsoft.AspNetCore.Http;

namespace Logwell.Server;

/// <summary>Errors a client can cause, as <c>{"error": "...", "status": n, ...}</c> with the matching HTTP status.</summary>
public static class ErrorResponses
{
    /// <param name="action">For a refusal by the access rules: the action that was missing.</param>
    /// <param name="scope">For a refusal by the access rules: where it was missing (<c>*</c>, <c>space:NAME</c>, <c>indexset:NAME</c>).</param>
    public static async Task WriteAsync(HttpContext context, int status, string message, int? position = null, string? expected = null, string? action = null, string? scope = null)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        if (status == StatusCodes.Status413PayloadTooLarge || (context.Request.ContentLength ?? 0) > 0 && !context.Request.Body.CanSeek && IsRefusedBeforeReading(status))
        {
            // The request body may not have been read: close the connection rather than let the client reuse it
            // while the rest of the body is still on the way.
            context.Response.Headers.Connection = "close";
        }
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        // Messages may quote the client's input, which may not be valid text.
        writer.WriteString("error", Logwell.Core.Text.ValidText.Of(message));
        writer.WriteNumber("status", status);
        if (position is not null)
        {
            writer.WriteNumber("position", position.Value);
        }
        if (expected is not null)
        {
            writer.WriteString("expected", Logwell.Core.Text.ValidText.Of(expected));
        }
        if (action is not null)
        {
            writer.WriteString("action", action);
        }
        if (scope is not null)
        {
            writer.WriteString("scope", Logwell.Core.Text.ValidText.Of(scope));
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>How long a client refused because the store cannot keep up should wait before retrying.</summary>
    public const int RetryAfterSeconds = 1;

    public static string BackedUpMessage(string indexSet) =>
        $"index set '{indexSet}' cannot keep up with ingest right now; no event of this request was taken, retry after {RetryAfterSeconds} s";

    private static bool IsRefusedBeforeReading(int status) =>
        status is StatusCodes.Status404NotFound or StatusCodes.Status415UnsupportedMediaType or StatusCodes.Status403Forbidden;
}
