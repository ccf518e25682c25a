using Logwell.Core.Events;
using Logwell.Core.Query;

namespace Logwell.Storage.Engine;

/// <summary>
/// A search: events matching <see cref="Query"/> with <c>From &lt;= t &lt; To</c> (UTC ticks) that come strictly after
/// <see cref="After"/> in the search's order (newest first, or oldest first with <see cref="OldestFirst"/>), at most
/// <see cref="Limit"/> of them.
/// </summary>
/// <see cref="TrackTotalHitsUpTo"/> overrides how many matches are counted exactly before the total becomes a lower bound.
public sealed record SearchRequest(QueryNode Query, long? From = null, long? To = null, EventPosition? After = null, int Limit = 100, long? TrackTotalHitsUpTo = null)
{
    public bool OldestFirst { get; init; }

    /// <summary>Orders the hits by a field's value rather than by time (every match is read; the total is exact).</summary>
    public FieldOrder? OrderBy { get; init; }

    /// <summary>With <see cref="OrderBy"/>: only hits that come strictly after this key (the cursor of a previous page).</summary>
    public OrderKey? AfterKey { get; init; }
}

/// <summary>
/// <see cref="NextCursor"/> continues a time-ordered search, <see cref="NextOrderKey"/> one ordered by a field; either is
/// null on the last page.
/// </summary>
public sealed record SearchResult(IReadOnlyList<LogEvent> Hits, long Total, bool TotalIsExact, EventPosition? NextCursor)
{
    public OrderKey? NextOrderKey { get; init; }
}

/// <summary>
/// Hits ordered by <see cref="Field"/>: numbers by value before text in ordinal order (ascending, or the reverse when
/// <see cref="Descending"/>), events without a value last either way, ties newest first. <c>message</c> names the
/// message unless events have a field of that name.
/// </summary>
public sealed record FieldOrder(string Field, bool Descending) : IComparer<OrderKey>
{
    public int Compare(OrderKey x, OrderKey y)
    {
        var byValue = CompareValues(x.Value, y.Value);
        return byValue != 0 ? byValue : y.Position.CompareTo(x.Position);
    }

    /// <summary>The order of two values alone: missing last, others by value in this order's direction.</summary>
    public int CompareValues(OrderValue x, OrderValue y)
    {
        if (x.IsMissing || y.IsMissing)
        {
            return (x.IsMissing ? 1 : 0) - (y.IsMissing ? 1 : 0);
        }
        var byValue = x.CompareTo(y);
        return Descending ? -byValue : byValue;
    }
}

/// <summary>A value to sort by: a number, a text, or nothing (the event has no value, or null).</summary>
public readonly record struct OrderValue(bool IsNumber, double Number, string? Text)
{
    public static readonly OrderValue Missing = default;

    public bool IsMissing => !IsNumber && Text is null;

    /// <summary>Numbers are numbers; true, false, strings and arrays sort as their text; null and absent are missing.</summary>
    public static OrderValue Of(FieldValue value) => value.Kind switch
    {
        FieldKind.Long => new OrderValue(true, value.Long, null),
        FieldKind.Double => new OrderValue(true, value.Double, null),
        _ => new OrderValue(false, 0, value.SearchText),
    };

    /// <summary>Numbers before text; numbers by value, text in ordinal order. Neither may be missing.</summary>
    public int CompareTo(OrderValue other) =>
        IsNumber != other.IsNumber ? (IsNumber ? -1 : 1)
        : IsNumber ? Number.CompareTo(other.Number)
        : string.CompareOrdinal(Text, other.Text);
}

/// <summary>Where a hit stands in a field order: its value, then its position.</summary>
public readonly record struct OrderKey(OrderValue Value, EventPosition Position);

/// <summary>What listing index sets shows.</summary>
/// <param name="Fields">Distinct field names taken, out of <paramref name="MaxFields"/>.</param>
public sealed record IndexSetInfo(string Name, int RetentionDays, DateTimeOffset Created, long Events, long DiskBytes, int Segments, int Fields, int MaxFields)
{
    /// <summary>Whole days older than this many days move to the archive (null: never).</summary>
    public int? ArchiveAfterDays { get; init; }

    /// <summary>For an index set restored from the archive: what it holds and when it goes.</summary>
    public RestoredRange? Restored { get; init; }

    /// <summary>Whether events get a pattern id as they are stored (the <c>patterns</c> setting).</summary>
    public bool Patterns { get; init; }
}

/// <summary>The days (UTC, inclusive) of <paramref name="From"/>'s archive an index set was restored from, and when it is deleted by itself.</summary>
public sealed record RestoredRange(string From, DateOnly FirstDay, DateOnly LastDay, DateTimeOffset Expires);

/// <summary>Counts of matching events per value of a field (events without the field are not counted).</summary>
public sealed record CountByResult(IReadOnlyDictionary<string, long> Counts, long Total);

/// <summary>Counts of matching events per time bucket; keys are bucket starts in UTC ticks.</summary>
public sealed record HistogramResult(IReadOnlyDictionary<long, long> Counts, long Total);
