using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Logwell.Core.Events;

namespace Logwell.Core.Ingest;

/// <summary>A rejected input line: 1-based line number and why.</summary>
public readonly record struct LineError(long Line, string Error);

/// <summary>What decoding a body produced: the events, and the lines that could not be read.</summary>
public sealed class DecodeResult
{
    public const int MaxErrors = 100;

    public List<LogEvent> Events { get; } = [];
    public List<LineError> Errors { get; } = [];
    public long Rejected { get; private set; }

    public void Reject(long line, string error)
    {
        Rejected++;
        if (Errors.Count < MaxErrors)
        {
            Errors.Add(new LineError(line, error));
        }
    }
}

/// <summary>
/// Turns request bodies into events: JSON lines (one object per line) or plain text (one event per line). Finds the
/// timestamp and message by their usual names, keeps other fields with their JSON types, flattens nested objects to
/// dotted names and keeps arrays as JSON text.
/// </summary>
public static class EventDecoder
{
    private static readonly string[] TimestampNames = ["@t", "@timestamp", "timestamp", "time", "ts", "t"];
    private static readonly string[] MessageNames = ["@m", "message", "msg", "log"];

    /// <summary>The error of a line longer than the limit (it is rejected, not cut).</summary>
    public static string LineTooLong(int length, int limit) => $"line of {length} bytes is over the limit of {limit} bytes (MaxLineBytes)";

    public static DecodeResult DecodeJsonLines(ReadOnlySpan<byte> body, DateTimeOffset received, int maxLineBytes = int.MaxValue)
    {
        var result = new DecodeResult();
        var documents = new DocumentDecoder();
        long lineNumber = 0;
        var lines = EnumerateLines(body);
        result.Events.EnsureCapacity(lines.Count);
        foreach (var line in lines)
        {
            lineNumber++;
            var span = body.Slice(line.Start, line.Length);
            if (IsBlank(span))
            {
                continue;
            }
            if (span.Length > maxLineBytes)
            {
                result.Reject(lineNumber, LineTooLong(span.Length, maxLineBytes));
                continue;
            }
            if (documents.TryDecode(span, received, out var evt, out var error))
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

    public static DecodeResult DecodeText(ReadOnlySpan<byte> body, DateTimeOffset received, int maxLineBytes = int.MaxValue)
    {
        var result = new DecodeResult();
        var ticks = received.UtcTicks;
        long lineNumber = 0;
        var lines = EnumerateLines(body);
        result.Events.EnsureCapacity(lines.Count);
        foreach (var line in lines)
        {
            lineNumber++;
            var span = body.Slice(line.Start, line.Length);
            if (IsBlank(span))
            {
                continue;
            }
            if (span.Length > maxLineBytes)
            {
                result.Reject(lineNumber, LineTooLong(span.Length, maxLineBytes));
                continue;
            }
            result.Events.Add(LogEvent.Received(ticks, Encoding.UTF8.GetString(span), []));
        }
        return result;
    }

    private static bool TryDecodeJsonLine(ReadOnlySpan<byte> line, DateTimeOffset received, List<Field> fields, StringPool strings, out LogEvent? evt, out string error)
    {
        evt = null;
        error = "";
        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = $"expected a JSON object, found {Describe(reader.TokenType)}";
                return false;
            }
            ReadObject(ref reader, line, "", fields, strings);
            if (reader.Read())
            {
                error = $"unexpected data after the JSON object at column {reader.TokenStartIndex + 1}";
                return false;
            }
        }
        catch (JsonException e)
        {
            error = $"invalid JSON at column {(e.BytePositionInLine ?? 0) + 1}: {FirstSentence(e.Message)}";
            return false;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            // Valid JSON syntax that is not valid text or number, such as a lone UTF-16 surrogate escape.
            error = $"invalid JSON value: {FirstSentence(e.Message)}";
            return false;
        }
        strings.RemoveDuplicateNames(fields);

        var timestamp = received.UtcTicks;
        var timestampIndex = FindTopLevel(fields, TimestampNames);
        if (timestampIndex >= 0)
        {
            var field = fields[timestampIndex];
            if (!TryReadTimestamp(field.Value, out timestamp))
            {
                var shown = field.Value.Text == "{" ? "an object" : field.Value.SearchText ?? "null";
                error = $"cannot read timestamp field '{field.Name}' ({shown}): use ISO 8601 or epoch seconds/milliseconds";
                return false;
            }
            fields.RemoveAt(timestampIndex);
        }
        // The markers of objects under other time names go; their fields stay, flattened.
        fields.RemoveAll(static f => f.Value.Kind == FieldKind.Json && f.Value.Text == "{");
        var message = "";
        var messageIndex = FindTopLevel(fields, MessageNames);
        if (messageIndex >= 0)
        {
            message = fields[messageIndex].Value.SearchText ?? "";
            fields.RemoveAt(messageIndex);
        }
        evt = LogEvent.Received(timestamp, message, CollectionsMarshal.AsSpan(fields));
        return true;
    }

    private static void ReadObject(ref Utf8JsonReader reader, ReadOnlySpan<byte> line, string prefix, List<Field> fields, StringPool strings)
    {
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return;
            }
            var name = strings.Name(ref reader, prefix);
            reader.Read();
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    if (prefix.Length == 0 && Array.IndexOf(TimestampNames, name) >= 0)
                    {
                        // Kept as a marker, so that an object where the time belongs is refused as an array is.
                        fields.Add(new Field(name, FieldValue.FromJson("{")));
                    }
                    ReadObject(ref reader, line, name, fields, strings);
                    break;
                case JsonTokenType.StartArray:
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    var end = (int)reader.BytesConsumed;
                    fields.Add(new Field(name, FieldValue.FromJson(Encoding.UTF8.GetString(line[start..end]))));
                    break;
                case JsonTokenType.String:
                    fields.Add(new Field(name, FieldValue.FromString(strings.Value(ref reader))));
                    break;
                case JsonTokenType.Number:
                    fields.Add(new Field(name, ReadNumber(ref reader, line)));
                    break;
                case JsonTokenType.True:
                    fields.Add(new Field(name, FieldValue.True));
                    break;
                case JsonTokenType.False:
                    fields.Add(new Field(name, FieldValue.False));
                    break;
                default:
                    fields.Add(new Field(name, FieldValue.Null));
                    break;
            }
        }
    }

    /// <summary>
    /// A whole number a long holds, else a double; a number neither holds exactly (a whole number beyond 64 bits, or
    /// beyond a double's range such as <c>1e400</c>) keeps its JSON text, so it reads back as it was sent.
    /// </summary>
    private static FieldValue ReadNumber(ref Utf8JsonReader reader, ReadOnlySpan<byte> line)
    {
        if (reader.TryGetInt64(out var whole))
        {
            return FieldValue.FromLong(whole);
        }
        var text = line.Slice((int)reader.TokenStartIndex, reader.ValueSpan.Length);
        var isWhole = text.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0;
        if (!isWhole && reader.TryGetDouble(out var number) && double.IsFinite(number))
        {
            return FieldValue.FromDouble(number);
        }
        return FieldValue.FromJson(Encoding.UTF8.GetString(text));
    }

    /// <summary>A JSON number as <see cref="ReadNumber"/> keeps it.</summary>
    public static FieldValue NumberValue(JsonElement number)
    {
        if (number.TryGetInt64(out var whole))
        {
            return FieldValue.FromLong(whole);
        }
        var text = number.GetRawText();
        var isWhole = text.AsSpan().IndexOfAny('.', 'e', 'E') < 0;
        return !isWhole && number.TryGetDouble(out var value) && double.IsFinite(value) ? FieldValue.FromDouble(value) : FieldValue.FromJson(text);
    }

    private static int FindTopLevel(List<Field> fields, string[] names)
    {
        foreach (var name in names)
        {
            for (var i = 0; i < fields.Count; i++)
            {
                if (string.Equals(fields[i].Name, name, StringComparison.Ordinal))
                {
                    return i;
                }
            }
        }
        return -1;
    }

    /// <summary>Reads ISO 8601 text or epoch seconds, milliseconds, microseconds or nanoseconds (told apart by size).</summary>
    public static bool TryReadTimestamp(FieldValue value, out long ticks)
    {
        ticks = 0;
        switch (value.Kind)
        {
            case FieldKind.Long:
                return TryFromEpoch(value.Long, out ticks);
            case FieldKind.Double:
                return TryFromEpoch(value.Double, out ticks);
            case FieldKind.String:
                var text = value.Text!;
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
                {
                    return TryFromEpoch(number, out ticks);
                }
                if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
                {
                    ticks = time.UtcTicks;
                    return true;
                }
                return false;
            default:
                return false;
        }
    }

    private static bool TryFromEpoch(double epoch, out long ticks)
    {
        ticks = 0;
        var abs = Math.Abs(epoch);
        double unixTicks = abs switch
        {
            < 1e11 => epoch * TimeSpan.TicksPerSecond,
            < 1e14 => epoch * TimeSpan.TicksPerMillisecond,
            < 1e17 => epoch * 10,
            _ => epoch / 100,
        };
        var result = DateTime.UnixEpoch.Ticks + unixTicks;
        if (double.IsNaN(result) || result < DateTime.MinValue.Ticks || result > DateTime.MaxValue.Ticks)
        {
            return false;
        }
        ticks = (long)result;
        return true;
    }

    private static bool TryFromEpoch(long epoch, out long ticks)
    {
        ticks = 0;
        var abs = Math.Abs(epoch);
        long unixTicks;
        try
        {
            unixTicks = abs switch
            {
                < 100_000_000_000 => checked(epoch * TimeSpan.TicksPerSecond),
                < 100_000_000_000_000 => checked(epoch * TimeSpan.TicksPerMillisecond),
                < 100_000_000_000_000_000 => checked(epoch * 10),
                _ => epoch / 100,
            };
        }
        catch (OverflowException)
        {
            return false;
        }
        var result = DateTime.UnixEpoch.Ticks + unixTicks;
        if (result < DateTime.MinValue.Ticks || result > DateTime.MaxValue.Ticks)
        {
            return false;
        }
        ticks = result;
        return true;
    }

    private static string Describe(JsonTokenType type) => type switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => "nothing",
    };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" LineNumber", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd('.', ' ');
    }

    /// <summary>
    /// Decodes JSON objects one at a time into events (time and message from their usual names, nested objects
    /// flattened), sharing repeated strings across the objects it decodes. Not thread-safe.
    /// </summary>
    public sealed class DocumentDecoder
    {
        private readonly List<Field> _fields = [];
        private readonly StringPool _strings = new();

        public bool TryDecode(ReadOnlySpan<byte> json, DateTimeOffset received, out LogEvent? evt, out string error)
        {
            _fields.Clear();
            return TryDecodeJsonLine(json, received, _fields, _strings, out evt, out error);
        }
    }

    public static bool IsBlank(ReadOnlySpan<byte> span)
    {
        foreach (var b in span)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r'))
            {
                return false;
            }
        }
        return true;
    }

    public readonly record struct LineRange(int Start, int Length);

    /// <summary>The lines of a body: ranges between newlines, without a trailing carriage return.</summary>
    public static List<LineRange> EnumerateLines(ReadOnlySpan<byte> body)
    {
        // Sized once: a body of megabytes has tens of thousands of lines, and a list grown by doubling would leave
        // every smaller array behind on the large object heap.
        var lines = new List<LineRange>(body.Count((byte)'\n') + 1);
        var start = 0;
        while (start < body.Length)
        {
            var nl = body[start..].IndexOf((byte)'\n');
            var end = nl < 0 ? body.Length : start + nl;
            var length = end - start;
            if (length > 0 && body[end - 1] == (byte)'\r')
            {
                length--;
            }
            lines.Add(new LineRange(start, length));
            start = end + 1;
        }
        return lines;
    }

    /// <summary>
    /// Shares the strings a body repeats (field names, short values such as hosts and levels) instead of allocating
    /// each again: fewer, longer-lived objects in the memory table.
    /// </summary>
    private sealed class StringPool
    {
        private const int MaxPooledLength = 32;
        private const int MaxEntries = 8192;
        private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;
        private readonly Dictionary<(string, string), string> _names = [];

        private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);

        public StringPool() => _lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();

        /// <summary>A name given twice keeps its last value, as JSON parsers commonly do.</summary>
        public void RemoveDuplicateNames(List<Field> fields)
        {
            if (fields.Count < 2)
            {
                return;
            }
            _seen.Clear();
            var duplicates = false;
            for (var i = 0; i < fields.Count; i++)
            {
                if (!_seen.TryAdd(fields[i].Name, i))
                {
                    duplicates = true;
                    _seen[fields[i].Name] = i;
                }
            }
            if (duplicates)
            {
                var kept = fields.Where((field, i) => _seen[field.Name] == i).ToList();
                fields.Clear();
                fields.AddRange(kept);
            }
        }

        public string Name(ref Utf8JsonReader reader, string prefix)
        {
            var name = Value(ref reader);
            if (prefix.Length == 0)
            {
                return name;
            }
            if (!_names.TryGetValue((prefix, name), out var dotted))
            {
                dotted = prefix + "." + name;
                if (_names.Count < MaxEntries)
                {
                    _names[(prefix, name)] = dotted;
                }
            }
            return dotted;
        }

        public string Value(ref Utf8JsonReader reader)
        {
            var length = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
            if (length > MaxPooledLength * 3)
            {
                return reader.GetString()!;
            }
            Span<char> buffer = stackalloc char[MaxPooledLength * 3];
            var count = reader.CopyString(buffer);
            var chars = buffer[..count];
            if (count > MaxPooledLength)
            {
                return chars.ToString();
            }
            if (_lookup.TryGetValue(chars, out var pooled))
            {
                return pooled;
            }
            var text = chars.ToString();
            if (_strings.Count < MaxEntries)
            {
                _strings[text] = text;
            }
            return text;
        }
    }
}
