using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Logwell.Core.Events;
using Logwell.Server.Hosting;
using Logwell.Server.Loki;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Snappier;

namespace Logwell.Server.Api;

/// <summary>
/// <c>POST /loki/api/v1/push</c>: Loki's push API, as snappy-compressed protobuf (<c>application/x-protobuf</c>) or
/// JSON (<c>{"streams": [{"stream": {labels}, "values": [["ns", "line", {metadata}]]}]}</c>), into
/// <see cref="LogwellOptions.LokiIndexSet"/>. Each line is an event: the line as its message, the stream's labels and
/// the entry's structured metadata as fields (a label wins over metadata of the same name). Success is 204; errors are
/// plain text, as Loki answers.
/// </summary>
internal static class LokiEndpoints
{
    public static void Map(IEndpointRouteBuilder routes) =>
        routes.MapPost("/loki/api/v1/push", PushAsync).WithMetadata(Permission.InRequest(Actions.Ingest));

    private static async Task PushAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var media = IngestPath.MediaType(context);
        var json = media == "application/json";
        if (!json && media != "application/x-protobuf")
        {
            await WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, $"unsupported Content-Type '{context.Request.ContentType}': send application/x-protobuf (snappy) or application/json").ConfigureAwait(false);
            return;
        }
        var (store, body, length, refused) = await IngestPath.BeginAsync(context, options, options.LokiIndexSet).ConfigureAwait(false);
        if (refused is not null)
        {
            refused.SetHeaders(context);
            await WriteAsync(context, refused.Status, refused.Message).ConfigureAwait(false);
            return;
        }
        List<LogEvent> events;
        var rejected = new List<string>();
        try
        {
            events = json ? FromJson(body!.AsSpan(0, length), options.MaxLineBytes, rejected) : FromProtobuf(Decompress(body!.AsSpan(0, length), options.MaxBodyBytes), options.MaxLineBytes, rejected, context.RequestServices.GetTime().GetUtcNow());
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or JsonException or InvalidDataException or FormatException
            || (json && e is InvalidOperationException))
        {
            // InvalidOperationException: a JSON value of another type than the push format's, or not valid text.
            await WriteAsync(context, 400, $"cannot read the push request: {Logwell.Core.Text.ValidText.Of(e.Message)}").ConfigureAwait(false);
            return;
        }
        catch (BodyTooLargeException e)
        {
            await WriteAsync(context, StatusCodes.Status413PayloadTooLarge, e.Message).ConfigureAwait(false);
            return;
        }
        if (await IngestPath.AppendAsync(context, store!, events).ConfigureAwait(false) is { } failed)
        {
            await WriteAsync(context, failed.Status, failed.Message).ConfigureAwait(false);
            return;
        }
        if (rejected.Count > 0)
        {
            // As Loki does for entries it refuses: the others are stored, the answer says which failed.
            await WriteAsync(context, 400, $"{rejected.Count} entries rejected, {events.Count} stored: {string.Join("; ", rejected.Take(10))}").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private sealed class BodyTooLargeException(string message) : Exception(message);

    /// <summary>Snappy's block format, within the body limit once decompressed.</summary>
    internal static byte[] Decompress(ReadOnlySpan<byte> compressed, long limit)
    {
        int size;
        try
        {
            size = Snappy.GetUncompressedLength(compressed);
        }
        catch (Exception e) when (e is InvalidDataException or OverflowException or ArgumentException or IndexOutOfRangeException)
        {
            // A length varint that does not fit in 32 bits is a broken body, not a failure of the node.
            throw new InvalidDataException($"the snappy block's length header is not valid ({e.Message})", e);
        }
        if (size > limit)
        {
            throw new BodyTooLargeException($"the push request decompresses to {size} bytes, over the limit of {limit}");
        }
        try
        {
            return Snappy.DecompressToArray(compressed);
        }
        catch (Exception e) when (e is InvalidDataException or OverflowException or ArgumentException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"the snappy block is not valid ({e.Message})", e);
        }
    }

    /// <summary>The entries of a push; those that cannot be taken are named in <paramref name="rejected"/>. An entry without a timestamp is dated <paramref name="received"/>.</summary>
    internal static List<LogEvent> FromProtobuf(byte[] body, int maxLineBytes, List<string> rejected, DateTimeOffset received)
    {
        var request = PushRequest.Parser.ParseFrom(body);
        var events = new List<LogEvent>();
        for (var s = 0; s < request.Streams.Count; s++)
        {
            var stream = request.Streams[s];
            List<Field> labels;
            try
            {
                labels = ParseLabels(stream.Labels);
            }
            catch (FormatException e)
            {
                rejected.Add($"streams[{s}]: {e.Message}");
                continue;
            }
            for (var v = 0; v < stream.Entries.Count; v++)
            {
                var entry = stream.Entries[v];
                if (Encoding.UTF8.GetByteCount(entry.Line) > maxLineBytes)
                {
                    rejected.Add($"streams[{s}].entries[{v}]: {Core.Ingest.EventDecoder.LineTooLong(Encoding.UTF8.GetByteCount(entry.Line), maxLineBytes)}");
                    continue;
                }
                var fields = new List<Field>(labels);
                foreach (var pair in entry.StructuredMetadata)
                {
                    AddMetadata(fields, pair.Name, pair.Value);
                }
                var ticks = entry.Timestamp is { } t ? DateTime.UnixEpoch.Ticks + t.Seconds * TimeSpan.TicksPerSecond + t.Nanos / 100 : received.UtcTicks;
                events.Add(LogEvent.Received(ticks, entry.Line, CollectionsMarshal.AsSpan(fields)));
            }
        }
        return events;
    }

    internal static List<LogEvent> FromJson(ReadOnlySpan<byte> body, int maxLineBytes, List<string> rejected)
    {
        using var document = JsonDocument.Parse(body.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        if (!document.RootElement.TryGetProperty("streams", out var streams) || streams.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("expected {\"streams\": [...]}");
        }
        var events = new List<LogEvent>();
        var s = 0;
        foreach (var stream in streams.EnumerateArray())
        {
            var labels = new List<Field>();
            if (stream.TryGetProperty("stream", out var labelObject) && labelObject.ValueKind == JsonValueKind.Object)
            {
                foreach (var label in labelObject.EnumerateObject())
                {
                    labels.Add(new Field(label.Name, FieldValue.FromString(label.Value.ValueKind == JsonValueKind.String ? label.Value.GetString()! : label.Value.GetRawText())));
                }
            }
            if (!stream.TryGetProperty("values", out var values) || values.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException($"streams[{s}] has no \"values\" array");
            }
            var v = 0;
            foreach (var value in values.EnumerateArray())
            {
                if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() < 2 || value[0].ValueKind != JsonValueKind.String || value[1].ValueKind != JsonValueKind.String
                    || !long.TryParse(value[0].GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var nanos))
                {
                    rejected.Add($"streams[{s}].values[{v++}] must be [\"<unix epoch in nanoseconds>\", \"<line>\"(, {{metadata}})]");
                    continue;
                }
                if (Encoding.UTF8.GetByteCount(value[1].GetString()!) is var size && size > maxLineBytes)
                {
                    rejected.Add($"streams[{s}].values[{v++}]: {Core.Ingest.EventDecoder.LineTooLong(size, maxLineBytes)}");
                    continue;
                }
                var fields = new List<Field>(labels);
                if (value.GetArrayLength() > 2 && value[2].ValueKind == JsonValueKind.Object)
                {
                    foreach (var pair in value[2].EnumerateObject())
                    {
                        AddMetadata(fields, pair.Name, pair.Value.ValueKind == JsonValueKind.String ? pair.Value.GetString()! : pair.Value.GetRawText());
                    }
                }
                events.Add(LogEvent.Received(DateTime.UnixEpoch.Ticks + nanos / 100, value[1].GetString()!, CollectionsMarshal.AsSpan(fields)));
                v++;
            }
            s++;
        }
        return events;
    }

    /// <summary>Structured metadata as a field, unless a stream label already has that name (the label stays).</summary>
    private static void AddMetadata(List<Field> fields, string name, string value)
    {
        if (!fields.Exists(f => f.Name == name))
        {
            fields.Add(new Field(name, FieldValue.FromString(value)));
        }
    }

    /// <summary>Reads Prometheus label syntax: <c>{name="value", other="with \"quotes\""}</c>.</summary>
    internal static List<Field> ParseLabels(string text)
    {
        var fields = new List<Field>();
        var i = 0;
        void Skip()
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }
        }
        Skip();
        if (i >= text.Length || text[i] != '{')
        {
            throw new FormatException($"labels must start with '{{': {text}");
        }
        i++;
        while (true)
        {
            Skip();
            if (i < text.Length && text[i] == '}')
            {
                return fields;
            }
            var start = i;
            while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '.'))
            {
                i++;
            }
            var name = text[start..i];
            Skip();
            if (name.Length == 0 || i >= text.Length || text[i] != '=')
            {
                throw new FormatException($"expected name=\"value\" at position {i} of the labels {text}");
            }
            i++;
            Skip();
            if (i >= text.Length || text[i] != '"')
            {
                throw new FormatException($"expected a quoted value at position {i} of the labels {text}");
            }
            i++;
            var value = new StringBuilder();
            while (i < text.Length && text[i] != '"')
            {
                if (text[i] == '\\' && i + 1 < text.Length)
                {
                    i++;
                    value.Append(text[i] == 'n' ? '\n' : text[i]);
                }
                else
                {
                    value.Append(text[i]);
                }
                i++;
            }
            if (i >= text.Length)
            {
                throw new FormatException($"unclosed quote in the labels {text}");
            }
            i++;
            fields.Add(new Field(name, FieldValue.FromString(value.ToString())));
            Skip();
            if (i < text.Length && text[i] == ',')
            {
                i++;
            }
        }
    }

    private static async Task WriteAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message + "\n", context.RequestAborted).ConfigureAwait(false);
    }
}
