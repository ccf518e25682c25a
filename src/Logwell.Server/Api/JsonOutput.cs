using System.Globalization;
using System.Text.Encodings.Web;
using System.Buffers.Text;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Storage.Engine;

namespace Logwell.Server.Api;

/// <summary>How events and cursors look on the wire.</summary>
internal static class JsonOutput
{
    /// <summary>Readable output: quotes and non-ASCII text as they are; the body is JSON, never embedded in HTML.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string FormatId(long seq) => seq.ToString("x16", CultureInfo.InvariantCulture);

    public static bool TryParseId(string? text, out long seq) =>
        long.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out seq) && text!.Length == 16 && seq >= 0;

    public static string FormatTime(long ticks) => new DateTime(ticks, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    public static void WriteHit(Utf8JsonWriter writer, LogEvent evt, bool withId = true)
    {
        writer.WriteStartObject();
        if (withId)
        {
            writer.WriteString("id", FormatId(evt.Seq));
        }
        writer.WriteString("t", FormatTime(evt.Timestamp));
        writer.WriteString("message", evt.Message);
        writer.WriteStartObject("fields");
        foreach (var field in evt.Fields)
        {
            writer.WritePropertyName(field.Name);
            WriteValue(writer, field.Value);
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>Reads back a hit written by <see cref="WriteHit"/>: the same event, with its id as <see cref="LogEvent.Seq"/>.</summary>
    /// <exception cref="FormatException">The text is not such a hit.</exception>
    public static LogEvent ReadHit(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("t", out var t) || t.ValueKind != JsonValueKind.String
            || !DateTime.TryParse(t.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time))
        {
            throw new FormatException($"not a search hit: {(json.Length > 200 ? json[..200] + "..." : json)}");
        }
        var message = root.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "";
        var fields = new List<Field>();
        if (root.TryGetProperty("fields", out var f) && f.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in f.EnumerateObject())
            {
                var value = property.Value;
                fields.Add(new Field(property.Name, value.ValueKind switch
                {
                    JsonValueKind.String => FieldValue.FromString(value.GetString()!),
                    JsonValueKind.Number => EventDecoder.NumberValue(value),
                    JsonValueKind.True => FieldValue.True,
                    JsonValueKind.False => FieldValue.False,
                    JsonValueKind.Null => FieldValue.Null,
                    _ => FieldValue.FromJson(value.GetRawText()),
                }));
            }
        }
        var evt = new LogEvent(time.Ticks, message, [.. fields]);
        if (root.TryGetProperty("id", out var id) && TryParseId(id.GetString(), out var seq))
        {
            evt.Seq = seq;
        }
        return evt;
    }

    public static void WriteValue(Utf8JsonWriter writer, FieldValue value) => FieldLimit.WriteValue(writer, value);

    public static string FormatCursor(EventPosition position) =>
        string.Create(CultureInfo.InvariantCulture, $"{position.Timestamp:x}-{position.Seq:x}");

    /// <summary>
    /// A cursor into an order by field: <c>f~{a|d}~{field}~{value}~{ticks}-{seq}</c>, the field base64url-coded, the
    /// value <c>n</c> and a number, <c>s</c> and base64url text, or <c>m</c> for missing. It names its order, so a
    /// cursor cannot continue a different one.
    /// </summary>
    public static string FormatCursor(FieldOrder order, OrderKey key)
    {
        var value = key.Value.IsNumber ? "n" + key.Value.Number.ToString("R", CultureInfo.InvariantCulture)
            : key.Value.Text is { } text ? "s" + Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(text))
            : "m";
        return $"f~{(order.Descending ? 'd' : 'a')}~{Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(order.Field))}~{value}~{FormatCursor(key.Position)}";
    }

    public static bool TryParseCursor(string text, FieldOrder order, out OrderKey key)
    {
        key = default;
        var parts = text.Split('~');
        if (parts.Length != 5 || parts[0] != "f" || parts[1] != (order.Descending ? "d" : "a")
            || parts[2] != Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(order.Field))
            || parts[3].Length == 0 || !TryParseCursor(parts[4], out var position))
        {
            return false;
        }
        OrderValue value;
        switch (parts[3][0])
        {
            case 'n' when double.TryParse(parts[3].AsSpan(1), NumberStyles.Float, CultureInfo.InvariantCulture, out var number):
                value = new OrderValue(true, number, null);
                break;
            case 's':
                try
                {
                    value = new OrderValue(false, 0, System.Text.Encoding.UTF8.GetString(Base64Url.DecodeFromChars(parts[3].AsSpan(1))));
                }
                catch (FormatException)
                {
                    return false;
                }
                break;
            case 'm' when parts[3].Length == 1:
                value = OrderValue.Missing;
                break;
            default:
                return false;
        }
        key = new OrderKey(value, position);
        return true;
    }

    public static bool TryParseCursor(string text, out EventPosition position)
    {
        position = default;
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash <= 0
            || !long.TryParse(text.AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var ticks)
            || !long.TryParse(text.AsSpan(dash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var seq))
        {
            return false;
        }
        position = new EventPosition(ticks, seq);
        return true;
    }
}
