using System.Globalization;
using Logwell.Core.Events;
using Logwell.Core.Time;

namespace Logwell.Core.Query;

/// <summary>
/// A range clause made ready to test values. When both given bounds are numbers, numeric values (and strings that are
/// numbers) compare numerically; otherwise strings compare in ordinal order. On the event time the bounds are time
/// expressions (ISO 8601, epoch milliseconds, <c>now-15m</c>) resolved against one <c>now</c> for the whole search.
/// </summary>
public sealed class RangeMatcher
{
    /// <summary>Field names that mean the event's own timestamp (the names ingest reads it from).</summary>
    public static readonly IReadOnlySet<string> TimestampFields = new HashSet<string>(["@t", "@timestamp", "timestamp", "time", "ts", "t"], StringComparer.Ordinal);

    private readonly RangeNode _node;
    private readonly double? _lowerNumber;
    private readonly double? _upperNumber;
    private readonly bool _numeric;

    private RangeMatcher(RangeNode node, long lowerTicks, long upperTicks, bool dates)
    {
        _node = node;
        LowerTicks = lowerTicks;
        UpperTicks = upperTicks;
        IsTime = TimestampFields.Contains(node.Field);
        _dates = dates;
        _lowerNumber = ParseNumber(node.Lower);
        _upperNumber = ParseNumber(node.Upper);
        _numeric = !dates && (node.Lower is null || _lowerNumber is not null) && (node.Upper is null || _upperNumber is not null);
    }

    /// <summary>
    /// A range on a field whose bounds are dates (date math such as <c>now/d-1d</c>, or ISO 8601 with the year first):
    /// values compare as times (text that reads as a date, numbers as epoch milliseconds), as Elasticsearch compares
    /// a date field, with the bounds in <see cref="LowerTicks"/> and <see cref="UpperTicks"/>.
    /// </summary>
    private readonly bool _dates;

    /// <summary>Whether the range is on the event time rather than on a field.</summary>
    public bool IsTime { get; }

    /// <summary>For a time range: the first and last tick inside it.</summary>
    public long LowerTicks { get; }
    public long UpperTicks { get; }

    public static RangeMatcher Create(RangeNode node, DateTimeOffset now)
    {
        long lower = long.MinValue, upper = long.MaxValue;
        var dates = !TimestampFields.Contains(node.Field)
            && (node.Lower is not null || node.Upper is not null)
            && (node.Lower is null || (TimeExpression.LooksLikeDate(node.Lower) && IsTimeBound(node.Lower, out _)))
            && (node.Upper is null || (TimeExpression.LooksLikeDate(node.Upper) && IsTimeBound(node.Upper, out _)));
        if (TimestampFields.Contains(node.Field) || dates)
        {
            // Rounded as Elasticsearch rounds range bounds: up for gt and lte, down for gte and lt.
            if (node.Lower is not null)
            {
                lower = TimeBound(node.Lower, now, roundUp: !node.IncludeLower) + (node.IncludeLower ? 0 : 1);
            }
            if (node.Upper is not null)
            {
                upper = TimeBound(node.Upper, now, roundUp: node.IncludeUpper) - (node.IncludeUpper ? 0 : 1);
            }
        }
        return new RangeMatcher(node, lower, upper, dates);
    }

    /// <summary>Whether <paramref name="text"/> can be a bound of a range on the event time.</summary>
    public static bool IsTimeBound(string text, out string error) => TimeExpression.TryParse(text, DateTimeOffset.UnixEpoch, out _, out error);

    private static long TimeBound(string text, DateTimeOffset now, bool roundUp) =>
        TimeExpression.TryParse(text, now, roundUp, out var value, out var error) ? value.UtcTicks : throw new ArgumentException(error);

    public bool MatchesTime(long ticks) => ticks >= LowerTicks && ticks <= UpperTicks;

    public bool Matches(FieldValue value)
    {
        if (_node.Lower is null && _node.Upper is null)
        {
            // [* TO *]: any value, as Elasticsearch reads it (an exists query).
            return value.HasValue;
        }
        if (value.Kind == FieldKind.Json && value.Text.AsSpan().TrimStart().StartsWith('['))
        {
            // An array matches when any of its values does, as Elasticsearch indexes each value of an array.
            return AnyElement(value.Text!);
        }
        if (_dates)
        {
            return value.Kind switch
            {
                FieldKind.String => TimeExpression.LooksLikeDate(value.Text!) && !value.Text!.StartsWith("now", StringComparison.OrdinalIgnoreCase)
                    && DateTimeOffset.TryParse(value.Text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
                    && MatchesTime(time.UtcTicks),
                FieldKind.Long => value.Long is > -62_135_596_800_000 and < 253_402_300_800_000 && MatchesTime(DateTimeOffset.FromUnixTimeMilliseconds(value.Long).UtcTicks),
                _ => false,
            };
        }
        switch (value.Kind)
        {
            case FieldKind.Long when _numeric:
                return InRange(value.Long);
            case FieldKind.Double when _numeric:
                return InRange(value.Double);
            case FieldKind.String or FieldKind.Json when _numeric:
                return double.TryParse(value.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && InRange(number);
            case FieldKind.String:
                return InRange(value.Text!);
            default:
                return false;
        }
    }

    private bool AnyElement(string json)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json);
            return AnyElement(document.RootElement);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private bool AnyElement(System.Text.Json.JsonElement element)
    {
        switch (element.ValueKind)
        {
            case System.Text.Json.JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    if (AnyElement(item))
                    {
                        return true;
                    }
                }
                return false;
            case System.Text.Json.JsonValueKind.Number:
                return Matches(element.TryGetInt64(out var whole) ? FieldValue.FromLong(whole)
                    : element.TryGetDouble(out var number) && double.IsFinite(number) ? FieldValue.FromDouble(number)
                    : FieldValue.FromJson(element.GetRawText()));
            case System.Text.Json.JsonValueKind.String:
                return Matches(FieldValue.FromString(element.GetString()!));
            default:
                return false;
        }
    }

    /// <summary>Tests a string value (a dictionary entry) as <see cref="Matches"/> would.</summary>
    public bool Matches(string text) => Matches(FieldValue.FromString(text));

    private bool InRange(long value)
    {
        // Whole bounds compare exactly with whole values (no rounding of large longs through double).
        if ((_lowerNumber is null || IsWhole(_lowerNumber.Value)) && (_upperNumber is null || IsWhole(_upperNumber.Value)))
        {
            if (_lowerNumber is { } low && (value < (long)low || (!_node.IncludeLower && value == (long)low)))
            {
                return false;
            }
            return _upperNumber is not { } high || (value <= (long)high && (_node.IncludeUpper || value != (long)high));
        }
        return InRange((double)value);
    }

    private bool InRange(double value)
    {
        if (double.IsNaN(value))
        {
            return false;
        }
        if (_lowerNumber is { } low && (value < low || (!_node.IncludeLower && value == low)))
        {
            return false;
        }
        return _upperNumber is not { } high || (value <= high && (_node.IncludeUpper || value != high));
    }

    private bool InRange(string value)
    {
        if (_node.Lower is { } low)
        {
            var c = string.CompareOrdinal(value, low);
            if (c < 0 || (c == 0 && !_node.IncludeLower))
            {
                return false;
            }
        }
        if (_node.Upper is { } high)
        {
            var c = string.CompareOrdinal(value, high);
            if (c > 0 || (c == 0 && !_node.IncludeUpper))
            {
                return false;
            }
        }
        return true;
    }

    private static bool IsWhole(double value) => Math.Abs(value) < 9e18 && Math.Floor(value) == value;

    private static double? ParseNumber(string? text) =>
        text is not null && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value : null;
}
