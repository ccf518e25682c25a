using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Logwell.Core.Events;

namespace Logwell.Core.Ingest;

/// <summary>
/// Decodes compact log event format (CLEF, what Serilog sends to Seq): one JSON object per line with <c>@t</c> (time,
/// required), <c>@m</c> (the rendered message) or <c>@mt</c> (the message template, rendered here from the event's
/// properties and the <c>@r</c> renderings), <c>@l</c> (level; Information when absent), <c>@x</c> (exception),
/// <c>@i</c> (event id), <c>@tr</c>/<c>@sp</c> (trace and span ids). Other properties become fields (objects flattened
/// with dots); a property that starts with <c>@@</c> is the escaped form of one that starts with <c>@</c>.
/// </summary>
public static class ClefDecoder
{
    public static DecodeResult Decode(ReadOnlySpan<byte> body, int maxLineBytes = int.MaxValue)
    {
        var result = new DecodeResult();
        long lineNumber = 0;
        foreach (var line in EventDecoder.EnumerateLines(body))
        {
            lineNumber++;
            var span = body.Slice(line.Start, line.Length);
            if (EventDecoder.IsBlank(span))
            {
                continue;
            }
            if (span.Length > maxLineBytes)
            {
                result.Reject(lineNumber, EventDecoder.LineTooLong(span.Length, maxLineBytes));
                continue;
            }
            if (TryDecode(span, out var evt, out var error))
            {
                result.Events.Add(evt!);
            }
            else
            {
                result.Reject(lineNumber, error);
            }
        }
        return result;
    }

    public static bool TryDecode(ReadOnlySpan<byte> line, out LogEvent? evt, out string error)
    {
        evt = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            error = $"invalid JSON at column {(e.BytePositionInLine ?? 0) + 1}";
            return false;
        }
        using (document)
        {
            try
            {
                return TryDecode(document.RootElement, out evt, out error);
            }
            catch (InvalidOperationException e)
            {
                // Valid JSON syntax that is not valid text, such as a lone UTF-16 surrogate escape.
                error = $"invalid JSON value: {e.Message}";
                return false;
            }
        }
    }

    private static bool TryDecode(JsonElement root, out LogEvent? evt, out string error)
    {
        evt = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = "expected a JSON object";
            return false;
        }
        if (!root.TryGetProperty("@t", out var time) || time.ValueKind != JsonValueKind.String
            || !DateTimeOffset.TryParse(time.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var timestamp))
        {
            error = "'@t' must be an ISO 8601 timestamp";
            return false;
        }
        var fields = new List<Field>();
        var properties = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        string? message = null;
        string? template = null;
        JsonElement renderings = default;
        var level = "Information";
        foreach (var property in root.EnumerateObject())
        {
            var name = property.Name;
            if (name.StartsWith("@@", StringComparison.Ordinal) || !name.StartsWith('@'))
            {
                name = name.StartsWith("@@", StringComparison.Ordinal) ? name[1..] : name;
                properties[name] = property.Value;
                Flatten(name, property.Value, fields);
                continue;
            }
            switch (name)
            {
                case "@t":
                    break;
                case "@m":
                    message = Text(property.Value);
                    break;
                case "@mt":
                    template = Text(property.Value);
                    fields.Add(new Field("message_template", FieldValue.FromString(template)));
                    break;
                case "@r":
                    renderings = property.Value;
                    break;
                case "@l":
                    level = Text(property.Value);
                    break;
                case "@x":
                    fields.Add(new Field("exception", FieldValue.FromString(Text(property.Value))));
                    break;
                case "@i":
                    fields.Add(new Field("event_id", FieldValue.FromString(Text(property.Value))));
                    break;
                case "@tr":
                    fields.Add(new Field("trace_id", FieldValue.FromString(Text(property.Value))));
                    break;
                case "@sp":
                    fields.Add(new Field("span_id", FieldValue.FromString(Text(property.Value))));
                    break;
                default:
                    // Another reified property of a later CLEF: kept under its own name.
                    Flatten(name, property.Value, fields);
                    break;
            }
        }
        fields.Insert(0, new Field("level", FieldValue.FromString(level)));
        message ??= template is null ? "" : Render(template, properties, renderings);
        evt = LogEvent.Received(timestamp.UtcTicks, message, CollectionsMarshal.AsSpan(fields));
        error = "";
        return true;
    }

    /// <summary>
    /// Renders a message template: <c>{Name}</c>, <c>{@Name}</c>, <c>{$Name}</c>, with alignment or format, take the
    /// property's value (text as it is, other JSON as JSON); a token with a format takes its entry of <c>@r</c>, in
    /// order; <c>{{</c> and <c>}}</c> are braces; a token without a property stays as written.
    /// </summary>
    public static string Render(string template, IReadOnlyDictionary<string, JsonElement> properties, JsonElement renderings)
    {
        var output = new StringBuilder(template.Length + 32);
        var formatted = 0;
        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if (c == '{' && i + 1 < template.Length && template[i + 1] == '{')
            {
                output.Append('{');
                i++;
                continue;
            }
            if (c == '}' && i + 1 < template.Length && template[i + 1] == '}')
            {
                output.Append('}');
                i++;
                continue;
            }
            var close = c == '{' ? template.IndexOf('}', i + 1) : -1;
            if (close < 0)
            {
                output.Append(c);
                continue;
            }
            var token = template.AsSpan(i + 1, close - i - 1);
            var name = token.TrimStart("@$");
            var end = name.IndexOfAny(',', ':');
            var hasFormat = end >= 0 && name[end..].Contains(':');
            if (end >= 0)
            {
                name = name[..end];
            }
            if (hasFormat && renderings.ValueKind == JsonValueKind.Array && formatted < renderings.GetArrayLength())
            {
                output.Append(Text(renderings[formatted++]));
            }
            else if (properties.TryGetValue(name.ToString(), out var value))
            {
                if (hasFormat)
                {
                    formatted++;
                }
                output.Append(Text(value));
            }
            else
            {
                output.Append(template, i, close - i + 1);
            }
            i = close;
        }
        return output.ToString();
    }

    private static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Null => "null",
        _ => value.GetRawText(),
    };

    private static void Flatten(string name, JsonElement value, List<Field> fields)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in value.EnumerateObject())
                {
                    Flatten(name + "." + property.Name, property.Value, fields);
                }
                break;
            case JsonValueKind.Array:
                fields.Add(new Field(name, FieldValue.FromJson(value.GetRawText())));
                break;
            case JsonValueKind.String:
                fields.Add(new Field(name, FieldValue.FromString(value.GetString()!)));
                break;
            case JsonValueKind.Number:
                fields.Add(new Field(name, EventDecoder.NumberValue(value)));
                break;
            case JsonValueKind.True:
                fields.Add(new Field(name, FieldValue.True));
                break;
            case JsonValueKind.False:
                fields.Add(new Field(name, FieldValue.False));
                break;
            default:
                fields.Add(new Field(name, FieldValue.Null));
                break;
        }
    }
}
