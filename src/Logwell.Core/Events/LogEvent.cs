using System.Globalization;

namespace Logwell.Core.Events;

/// <summary>The JSON type of a field value, kept from ingest to search.</summary>
public enum FieldKind : byte
{
    Null = 1,
    False = 2,
    True = 3,
    Long = 4,
    Double = 5,
    String = 6,
    /// <summary>JSON text: an array, or a number that neither a long nor a double holds exactly.</summary>
    Json = 7,
}

/// <summary>A field value with its JSON type.</summary>
public readonly record struct FieldValue(FieldKind Kind, long Long, double Double, string? Text)
{
    public static readonly FieldValue Null = new(FieldKind.Null, 0, 0, null);
    public static readonly FieldValue True = new(FieldKind.True, 0, 0, null);
    public static readonly FieldValue False = new(FieldKind.False, 0, 0, null);

    public static FieldValue FromLong(long value) => new(FieldKind.Long, value, 0, null);
    public static FieldValue FromDouble(double value) => new(FieldKind.Double, 0, value, null);
    public static FieldValue FromString(string value) => new(FieldKind.String, 0, 0, value);
    public static FieldValue FromJson(string json) => new(FieldKind.Json, 0, 0, json);
    public static FieldValue FromBool(bool value) => value ? True : False;

    /// <summary>
    /// Whether the field holds a value, as Elasticsearch's <c>exists</c> sees it: not null, and not an array of
    /// nothing but nulls and empty arrays (<c>[]</c>, <c>[null]</c>).
    /// </summary>
    public bool HasValue => Kind is not (0 or FieldKind.Null) && !(Kind == FieldKind.Json && IsValuelessJson(Text.AsSpan()));

    /// <summary>Whether JSON text is only arrays, nulls, commas and whitespace: an array with no value in it.</summary>
    public static bool IsValuelessJson(ReadOnlySpan<char> json)
    {
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            if (c is '[' or ']' or ',' or ' ' or '\t' or '\r' or '\n')
            {
                continue;
            }
            if (json[i..].StartsWith("null", StringComparison.Ordinal))
            {
                i += 3;
                continue;
            }
            return false;
        }
        return json.Length > 0;
    }

    /// <summary>The same test on UTF-8 JSON.</summary>
    public static bool IsValuelessJson(ReadOnlySpan<byte> json)
    {
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            if (c is (byte)'[' or (byte)']' or (byte)',' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            {
                continue;
            }
            if (json[i..].StartsWith("null"u8))
            {
                i += 3;
                continue;
            }
            return false;
        }
        return json.Length > 0;
    }

    /// <summary>
    /// Whether <paramref name="test"/> holds for the value's text, or for an array for the text of one of its values
    /// (nested arrays flattened, nulls left out), as Elasticsearch indexes each value of an array on its own: a phrase
    /// never spans two values.
    /// </summary>
    public bool AnyText(Func<string, bool> test)
    {
        if (Kind == FieldKind.Json && Text.AsSpan().TrimStart().StartsWith('['))
        {
            try
            {
                using var document = System.Text.Json.JsonDocument.Parse(Text!);
                return AnyText(document.RootElement, test);
            }
            catch (System.Text.Json.JsonException)
            {
                return test(Text!);
            }
        }
        return SearchText is { } text && test(text);
    }

    /// <summary>The texts <see cref="AnyText"/> tests: the value's text, or an array's values decoded one by one.</summary>
    public List<string> Texts()
    {
        var texts = new List<string>();
        AnyText(text =>
        {
            texts.Add(text);
            return false;
        });
        return texts;
    }

    private static bool AnyText(System.Text.Json.JsonElement element, Func<string, bool> test)
    {
        switch (element.ValueKind)
        {
            case System.Text.Json.JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    if (AnyText(item, test))
                    {
                        return true;
                    }
                }
                return false;
            case System.Text.Json.JsonValueKind.Null or System.Text.Json.JsonValueKind.Undefined:
                return false;
            case System.Text.Json.JsonValueKind.String:
                return test(element.GetString()!);
            default:
                return test(element.GetRawText());
        }
    }

    /// <summary>The text that search matches against; null for JSON null.</summary>
    public string? SearchText => Kind switch
    {
        FieldKind.String or FieldKind.Json => Text,
        FieldKind.Long => Long.ToString(CultureInfo.InvariantCulture),
        FieldKind.Double => Double.ToString("R", CultureInfo.InvariantCulture),
        FieldKind.True => "true",
        FieldKind.False => "false",
        _ => null,
    };
}

public readonly record struct Field(string Name, FieldValue Value);

/// <summary>
/// An event's fields: a view of the first <see cref="Length"/> fields of an array, so that an array made with room for
/// one more (as decoders make them) takes the field the node adds at ingest without being copied.
/// </summary>
public readonly struct FieldList : IReadOnlyList<Field>
{
    private readonly Field[]? _array;

    internal FieldList(Field[] array, int length)
    {
        _array = array;
        Length = length;
    }

    public int Length { get; }

    int IReadOnlyCollection<Field>.Count => Length;

    public Field this[int index] => (uint)index < (uint)Length ? _array![index] : throw new ArgumentOutOfRangeException(nameof(index));

    public ReadOnlySpan<Field> AsSpan() => _array.AsSpan(0, Length);

    public ReadOnlySpan<Field>.Enumerator GetEnumerator() => AsSpan().GetEnumerator();

    IEnumerator<Field> IEnumerable<Field>.GetEnumerator() => new ArraySegment<Field>(_array ?? [], 0, Length).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => ((IEnumerable<Field>)this).GetEnumerator();

    public Field[] ToArray() => AsSpan().ToArray();

    public static implicit operator FieldList(Field[] fields) => new(fields, fields.Length);
}

/// <summary>
/// One log event. <see cref="Timestamp"/> is in UTC <see cref="DateTime.Ticks"/>; <see cref="Seq"/> is assigned by the
/// store when the event becomes durable and, with the timestamp, orders events and identifies them within an index set.
/// </summary>
public sealed class LogEvent
{
    private Field[] _fields;
    private int _count;

    public LogEvent(long timestamp, string message, Field[] fields)
        : this(timestamp, message, fields, fields.Length)
    {
    }

    /// <summary>
    /// An event whose fields are the first <paramref name="count"/> of <paramref name="fields"/>, an array no one else
    /// holds: the rest is room for <see cref="AddField"/>.
    /// </summary>
    internal LogEvent(long timestamp, string message, Field[] fields, int count)
    {
        Timestamp = timestamp;
        Message = message;
        _fields = fields;
        _count = count;
    }

    /// <summary>
    /// An event made on the way in (by a decoder, or by cleaning): its fields are copied into an array with room for the
    /// one a log store adds (the pattern id), so that adding it copies nothing.
    /// </summary>
    public static LogEvent Received(long timestamp, string message, ReadOnlySpan<Field> fields)
    {
        var array = new Field[fields.Length + 1];
        fields.CopyTo(array);
        return new LogEvent(timestamp, message, array, fields.Length);
    }

    public long Timestamp { get; }
    public string Message { get; }
    public FieldList Fields => new(_fields, _count);
    public long Seq { get; set; }

    /// <summary>
    /// Adds a field the node gives the event as it is stored (its pattern id), keeping the event's identity. Only
    /// before the event is handed to another thread: <see cref="Fields"/> reads the array and the count apart.
    /// </summary>
    internal void AddField(Field field)
    {
        if (_count == _fields.Length)
        {
            Array.Resize(ref _fields, _count + 1);
        }
        // The slot past the count is the event's own (see the constructor): views taken before keep their length.
        _fields[_count++] = field;
    }

    public bool TryGetField(string name, out FieldValue value)
    {
        foreach (var field in Fields)
        {
            if (string.Equals(field.Name, name, StringComparison.Ordinal))
            {
                value = field.Value;
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>Approximate managed memory held by this event, for memory-table accounting.</summary>
    public int EstimatedBytes()
    {
        // Slots of the array past the fields (the room Received leaves) count as well.
        var size = 64 + Message.Length * 2 + (_fields.Length - _count) * 40;
        foreach (var field in Fields)
        {
            // The pattern id's name and value are strings every event of its template shares: only its slot counts.
            size += field.Name == Patterns.PatternTagger.Field ? 40 : 48 + field.Name.Length * 2 + (field.Value.Text?.Length ?? 0) * 2;
        }
        return size;
    }
}

/// <summary>Position of an event in newest-first order: later timestamp first, then higher sequence number.</summary>
public readonly record struct EventPosition(long Timestamp, long Seq) : IComparable<EventPosition>
{
    public int CompareTo(EventPosition other)
    {
        var c = Timestamp.CompareTo(other.Timestamp);
        return c != 0 ? c : Seq.CompareTo(other.Seq);
    }

    public static bool operator <(EventPosition a, EventPosition b) => a.CompareTo(b) < 0;
    public static bool operator >(EventPosition a, EventPosition b) => a.CompareTo(b) > 0;
    public static bool operator <=(EventPosition a, EventPosition b) => a.CompareTo(b) <= 0;
    public static bool operator >=(EventPosition a, EventPosition b) => a.CompareTo(b) >= 0;
}
