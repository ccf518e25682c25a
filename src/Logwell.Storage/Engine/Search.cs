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
}

public sealed record SearchResult(IReadOnlyList<LogEvent> Hits, long Total, bool TotalIsExact, EventPosition? NextCursor);

/// <summary>What listing index sets shows.</summary>
public sealed record IndexSetInfo(string Name, int RetentionDays, DateTimeOffset Created, long Events, long DiskBytes, int Segments);

/// <summary>Counts of matching events per value of a field (events without the field are not counted).</summary>
public sealed record CountByResult(IReadOnlyDictionary<string, long> Counts, long Total);

/// <summary>Counts of matching events per time bucket; keys are bucket starts in UTC ticks.</summary>
public sealed record HistogramResult(IReadOnlyDictionary<long, long> Counts, long Total);
