using System.Text;
using System.Text.Json;

namespace Logwell.Core.Events;

/// <summary>
/// Bounds the distinct field names of an index set (Elasticsearch's <c>index.mapping.total_fields.limit</c>, 1,000 by
/// default): every column of a block, every memory table's shape and the cost of listing fields follow from it. Once
/// the index set has <see cref="Max"/> names, an event's fields under new names are not dropped: they are kept
/// together, as one JSON object, in the field <see cref="OverflowField"/>, searchable as text like any other field.
/// The pattern id (<see cref="Patterns.PatternTagger.Field"/>) is the node's own field, one per event: it is always
/// kept and not counted. Not thread-safe: the index set's writer applies it to events in the order they are logged.
/// </summary>
public sealed class FieldLimit(int max)
{
    /// <summary>Where the fields beyond the limit go, as a JSON object of their names and values.</summary>
    public const string OverflowField = "_overflow";

    public const int DefaultMax = 1_000;

    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    // By a field's place in its event, the name last known there: events of a source list their fields in the same
    // order under the same string instances, so most are known without hashing. Names are never forgotten.
    private string?[] _known = new string?[16];

    public int Max { get; } = max > 0 ? max : throw new ArgumentOutOfRangeException(nameof(max), "the field limit must be at least 1");

    /// <summary>The distinct names known so far.</summary>
    public int Count => _names.Count;

    /// <summary>Events whose fields went (partly) to <see cref="OverflowField"/>.</summary>
    public long OverflowedEvents { get; private set; }

    /// <summary>Takes names already in the index set (its segments' columns), whether or not they fit the limit.</summary>
    public void Know(IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            if (!IsExempt(name))
            {
                _names.Add(name);
            }
        }
    }

    /// <summary>The event as it is kept: itself when every field fits, else with the surplus in <see cref="OverflowField"/>.</summary>
    public LogEvent Apply(LogEvent evt)
    {
        var fields = evt.Fields;
        var fits = true;
        if (fields.Length > _known.Length)
        {
            Array.Resize(ref _known, fields.Length);
        }
        for (var place = 0; place < fields.Length; place++)
        {
            var field = fields[place];
            if (ReferenceEquals(field.Name, _known[place]))
            {
                continue;
            }
            if (IsExempt(field.Name) || _names.Contains(field.Name))
            {
                _known[place] = field.Name;
                continue;
            }
            if (_names.Count < Max)
            {
                _names.Add(field.Name);
                continue;
            }
            fits = false;
            break;
        }
        if (fits)
        {
            return evt;
        }
        OverflowedEvents++;
        var kept = new List<Field>(Math.Min(fields.Length, Max + 1));
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var field in fields)
            {
                if (field.Name == OverflowField)
                {
                    // A field sent under the reserved name is kept inside the overflow object, under its name.
                    writer.WritePropertyName(field.Name);
                    WriteValue(writer, field.Value);
                }
                else if (IsExempt(field.Name) || _names.Contains(field.Name) || (_names.Count < Max && _names.Add(field.Name)))
                {
                    kept.Add(field);
                }
                else
                {
                    writer.WritePropertyName(field.Name);
                    WriteValue(writer, field.Value);
                }
            }
            writer.WriteEndObject();
        }
        kept.Add(new Field(OverflowField, FieldValue.FromJson(Encoding.UTF8.GetString(buffer.WrittenSpan))));
        return new LogEvent(evt.Timestamp, evt.Message, [.. kept]) { Seq = evt.Seq };
    }

    private static bool IsExempt(string name) => name is OverflowField or Patterns.PatternTagger.Field;

    /// <summary>A field value as JSON: its own type; a JSON text (array, large number) as it is; a non-finite double as null.</summary>
    public static void WriteValue(Utf8JsonWriter writer, FieldValue value)
    {
        switch (value.Kind)
        {
            case FieldKind.String:
                writer.WriteStringValue(value.Text);
                break;
            case FieldKind.Long:
                writer.WriteNumberValue(value.Long);
                break;
            case FieldKind.Double when double.IsFinite(value.Double):
                writer.WriteNumberValue(value.Double);
                break;
            case FieldKind.True:
                writer.WriteBooleanValue(true);
                break;
            case FieldKind.False:
                writer.WriteBooleanValue(false);
                break;
            case FieldKind.Json:
                writer.WriteRawValue(value.Text!, skipInputValidation: true);
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }
}
