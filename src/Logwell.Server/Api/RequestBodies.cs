using System.IO.Compression;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Logwell.Server.Api;

internal sealed record BodyError(int Status, string Message, int? Position = null);

/// <summary>Reads request bodies whole, within a size limit that holds after decompression too.</summary>
internal static class RequestBodies
{
    /// <param name="pooled">
    /// Whether the body may be read into an array of the shared pool that goes back to it when the request ends
    /// (<see cref="HttpResponse.RegisterForDispose"/>): for a handler that is done with the body once it answers, as
    /// ingest is once it has decoded the events. A body of megabytes is then not a new array on the large object heap
    /// for every request, which only full collections reclaim and which the process's peak memory carries.
    /// </param>
    public static async Task<(byte[]? Body, int Length, BodyError? Error)> ReadAsync(HttpContext context, long limit, bool pooled = false)
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
        PooledBuffer? pool = null;
        if (pooled)
        {
            pool = new PooledBuffer();
            context.Response.RegisterForDispose(pool);
        }
        try
        {
            var capacity = (int)Math.Max(Math.Min(request.ContentLength ?? 64 * 1024, limit), 4096);
            var buffer = pool is null ? new byte[capacity] : pool.Rent(capacity);
            var length = 0;
            var probe = new byte[1];
            while (true)
            {
                // A pooled array may be longer than asked for: the body still stops at the limit.
                var room = (int)Math.Min(buffer.Length, limit);
                if (length == room)
                {
                    // Full: most bodies end exactly here (the buffer was sized from Content-Length), so ask for one
                    // byte before growing; doubling first would cost every body twice its size on the large heap.
                    if (await source.ReadAsync(probe, context.RequestAborted).ConfigureAwait(false) == 0)
                    {
                        break;
                    }
                    if (room >= limit)
                    {
                        return (null, 0, TooLarge(limit));
                    }
                    var grown = (int)Math.Min((long)room * 2, limit);
                    buffer = pool is null ? Grown(buffer, grown) : pool.Grow(length, grown);
                    buffer[length++] = probe[0];
                    continue;
                }
                var read = await source.ReadAsync(buffer.AsMemory(length, room - length), context.RequestAborted).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                length += read;
            }
            return ToUtf8(request.ContentType, buffer, length);
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

    private static byte[] Grown(byte[] buffer, int length)
    {
        Array.Resize(ref buffer, length);
        return buffer;
    }

    /// <summary>A request's body array from the shared pool, given back when the request ends.</summary>
    private sealed class PooledBuffer : IDisposable
    {
        private byte[]? _array;

        public byte[] Rent(int length) => _array = System.Buffers.ArrayPool<byte>.Shared.Rent(length);

        /// <summary>A longer array holding the first <paramref name="kept"/> bytes of the current one, which goes back.</summary>
        public byte[] Grow(int kept, int length)
        {
            var old = _array!;
            var grown = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
            old.AsSpan(0, kept).CopyTo(grown);
            _array = grown;
            System.Buffers.ArrayPool<byte>.Shared.Return(old);
            return grown;
        }

        public void Dispose()
        {
            if (_array is { } array)
            {
                _array = null;
                System.Buffers.ArrayPool<byte>.Shared.Return(array);
            }
        }
    }

    /// <summary>
    /// A body whose Content-Type names a charset other than UTF-8 (text/plain; charset=utf-16, say) is decoded and
    /// read on as UTF-8, which every decoder expects; a charset .NET cannot decode is refused with 415. Binary media
    /// types are left alone.
    /// </summary>
    internal static (byte[]? Body, int Length, BodyError? Error) ToUtf8(string? contentType, byte[] body, int length)
    {
        if (string.IsNullOrEmpty(contentType) || !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
            || media.Charset.Length == 0 || media.MediaType.Value is not { } type || type.EndsWith("protobuf", StringComparison.OrdinalIgnoreCase)
            || type.Equals("application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            return (body, length, null);
        }
        var charset = media.Charset.ToString().Trim('"');
        if (charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)
            || charset.Equals("us-ascii", StringComparison.OrdinalIgnoreCase))
        {
            return (body, length, null);
        }
        System.Text.Encoding encoding;
        try
        {
            encoding = System.Text.Encoding.GetEncoding(charset, System.Text.EncoderFallback.ExceptionFallback, System.Text.DecoderFallback.ExceptionFallback);
        }
        catch (ArgumentException)
        {
            return (null, 0, new BodyError(StatusCodes.Status415UnsupportedMediaType, $"charset '{charset}' is not supported: send UTF-8, UTF-16, UTF-32 or ISO-8859-1"));
        }
        try
        {
            // A byte order mark that agrees with the charset is not part of the text; "utf-16" follows its mark.
            var span = body.AsSpan(0, length);
            if (encoding.CodePage == 1200 && span is [0xFE, 0xFF, ..])
            {
                encoding = new System.Text.UnicodeEncoding(bigEndian: true, byteOrderMark: true, throwOnInvalidBytes: true);
            }
            var preamble = encoding.Preamble;
            if (preamble.Length > 0 && span.StartsWith(preamble))
            {
                span = span[preamble.Length..];
            }
            var utf8 = System.Text.Encoding.UTF8.GetBytes(encoding.GetString(span));
            return (utf8, utf8.Length, null);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            return (null, 0, new BodyError(StatusCodes.Status400BadRequest, $"the body is not valid {encoding.WebName} at byte {e.Index}", e.Index));
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
        // As Elasticsearch does: a JSON body says so. A form or text/plain body is what a page of another site can
        // send without asking; it is refused before it is read.
        if (!IsJson(context.Request.ContentType))
        {
            return (null, new BodyError(StatusCodes.Status415UnsupportedMediaType,
                $"Content-Type '{context.Request.ContentType}' is not supported here: send the JSON body with Content-Type: application/json"));
        }
        var (body, length, error) = await ReadAsync(context, limit).ConfigureAwait(false);
        if (body is null)
        {
            return (null, error);
        }
        try
        {
            var document = JsonDocument.Parse(body.AsMemory(0, length));
            if (!IsValidText(document.RootElement))
            {
                document.Dispose();
                return (null, new BodyError(StatusCodes.Status400BadRequest,
                    "the JSON body holds a string that is not valid text (an unpaired surrogate escape such as \\ud800)"));
            }
            return (document, null);
        }
        catch (JsonException e)
        {
            var position = (int)(e.BytePositionInLine ?? 0);
            return (null, new BodyError(StatusCodes.Status400BadRequest,
                $"invalid JSON body at line {(e.LineNumber ?? 0) + 1}, column {position + 1}", position));
        }
    }

    /// <summary>
    /// Whether every name and string in the document reads as text: JSON's syntax lets <c>"\ud800"</c> through, and
    /// reading it later would throw wherever an endpoint reads it. Checked once here, for every JSON body.
    /// </summary>
    private static bool IsValidText(JsonElement element)
    {
        try
        {
            Walk(element);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static void Walk(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        Walk(property.Value);
                    }
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Walk(item);
                    }
                    break;
            }
        }
    }

    private static bool IsJson(string? contentType)
    {
        var media = (contentType ?? "").Split(';')[0].Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    private static BodyError TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, $"request body exceeds the limit of {limit} bytes ({limit / (1024.0 * 1024.0):0.##} MiB)");
}
