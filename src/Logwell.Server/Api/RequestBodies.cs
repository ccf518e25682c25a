using System.IO.Compression;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Logwell.Server.Api;

internal sealed record BodyError(int Status, string Message, int? Position = null);

/// <summary>Reads request bodies whole, within a size limit that holds after decompression too.</summary>
internal static class RequestBodies
{
    public static async Task<(byte[]? Body, int Length, BodyError? Error)> ReadAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        var sizeFeature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeFeature is { IsReadOnly: false })
        {
            // Compressed bodies are checked below, after decompression.
            sizeFeature.MaxRequestBodySize = limit;
        }
        if (request.ContentLength > limit)
        {
            return (null, 0, TooLarge(limit));
        }
        Stream source = request.Body;
        var encoding = request.Headers.ContentEncoding.ToString();
        if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            if (!encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase))
            {
                return (null, 0, new BodyError(StatusCodes.Status415UnsupportedMediaType, $"Content-Encoding '{encoding}' is not supported: send gzip or no encoding"));
            }
            source = new GZipStream(request.Body, CompressionMode.Decompress, leaveOpen: true);
        }
        try
        {
            var capacity = (int)Math.Min(request.ContentLength ?? 64 * 1024, limit);
            var buffer = new byte[Math.Max(capacity, 4096)];
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= limit)
                    {
                        // One more byte would be over the limit: probe for it.
                        var probe = new byte[1];
                        if (await source.ReadAsync(probe, context.RequestAborted).ConfigureAwait(false) > 0)
                        {
                            return (null, 0, TooLarge(limit));
                        }
                        break;
                    }
                    Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, limit));
                }
                var read = await source.ReadAsync(buffer.AsMemory(length), context.RequestAborted).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                length += read;
            }
            return (buffer, length, null);
        }
        catch (InvalidDataException)
        {
            return (null, 0, new BodyError(StatusCodes.Status400BadRequest, "the gzip body is corrupt"));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, 0, TooLarge(limit));
        }
        finally
        {
            if (!ReferenceEquals(source, request.Body))
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The body as JSON, or null after answering the client's mistake (413, 400 with the position, ...).</summary>
    public static async Task<JsonDocument?> ReadJsonOrAnswerAsync(HttpContext context, long limit)
    {
        var (document, error) = await ReadJsonAsync(context, limit).ConfigureAwait(false);
        if (document is null)
        {
            await ErrorResponses.WriteAsync(context, error!.Status, error.Message, error.Position).ConfigureAwait(false);
        }
        return document;
    }

    private static async Task<(JsonDocument? Document, BodyError? Error)> ReadJsonAsync(HttpContext context, long limit)
    {
        var (body, length, error) = await ReadAsync(context, limit).ConfigureAwait(false);
        if (body is null)
        {
            return (null, error);
        }
        try
        {
            return (JsonDocument.Parse(body.AsMemory(0, length)), null);
        }
        catch (JsonException e)
        {
            var position = (int)(e.BytePositionInLine ?? 0);
            return (null, new BodyError(StatusCodes.Status400BadRequest,
                $"invalid JSON body at line {(e.LineNumber ?? 0) + 1}, column {position + 1}", position));
        }
    }

    private static BodyError TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, $"request body exceeds the limit of {limit} bytes ({limit / (1024.0 * 1024.0):0.##} MiB)");
}
