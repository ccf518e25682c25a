namespace Logwell.Core.Patterns;

/// <summary>One template of a <see cref="PatternSummary"/>: how many events had it, when, and the newest of them.</summary>
public sealed record PatternRow(string Id, string Template, long Count, long Previous, long FirstSeen, long LastSeen, string Example)
{
    /// <summary>The window's events of the template in equal slices of the window, oldest first (null unless asked for).</summary>
    public long[]? Trend { get; init; }

    /// <summary>
    /// The pattern ids ingest gave the row's events (<see cref="PatternTagger"/>), most frequent first: what a search
    /// for the row's events names (empty when none had one).
    /// </summary>
    public IReadOnlyList<string> StoredIds { get; init; } = [];
}

/// <summary>
/// The templates of a set of messages, for <c>| patterns</c>: each message goes through one
/// <see cref="TemplateMiner"/>, and the counts are kept per cluster and per the words of the positions that may still
/// split it, so that every message is counted under the template its cluster has at the end. Messages of an earlier
/// window (<c>compare=</c>) go through the same miner and are counted apart. The miner keeps its bound of clusters;
/// the counts of a cluster it drops are kept under the template it had then.
/// </summary>
/// <remarks>
/// The grouping is the query's own, whatever ids ingest gave: one miner over the whole window sees every message
/// before it says a template, where ingest said each event's as it arrived. The ids ingest gave a row's events are
/// kept with it (<see cref="PatternRow.StoredIds"/>), so that the row's events can be searched by id.
/// </remarks>
public sealed class PatternSummary
{
    /// <summary>Stored ids kept per row: past this many, the rarest of a row are left out.</summary>
    public const int MaxStoredIds = 16;

    private readonly TemplateMiner _miner = new();
    private readonly Dictionary<TemplateMiner.Cluster, Dictionary<string, Tally>> _tallies = [];

    // The rows of clusters the miner dropped (seen least recently, past its bound): counted under their templates then.
    private readonly Dictionary<string, Row> _folded = new(StringComparer.Ordinal);

    private readonly long _trendFrom;
    private readonly long _trendTo;
    private readonly int _trendSlices;

    /// <param name="trendFrom">With <paramref name="trendTo"/> and <paramref name="trendSlices"/>: the window each row's <see cref="PatternRow.Trend"/> covers.</param>
    public PatternSummary(long trendFrom = 0, long trendTo = 0, int trendSlices = 0)
    {
        (_trendFrom, _trendTo, _trendSlices) = trendTo > trendFrom && trendSlices > 0 ? (trendFrom, trendTo, trendSlices) : (0, 0, 0);
        _miner.Dropped = Drop;
    }

    private void Drop(IReadOnlyCollection<TemplateMiner.Cluster> clusters)
    {
        foreach (var cluster in clusters)
        {
            if (_tallies.Remove(cluster, out var byWords))
            {
                Fold(_folded, cluster, byWords);
            }
        }
    }

    /// <summary>What was counted of one template (or one cluster and split key).</summary>
    private class Row
    {
        public long Count { get; set; }
        public long Previous { get; set; }
        public long FirstSeen { get; set; } = long.MaxValue;
        public long LastSeen { get; set; } = long.MinValue;
        public string? Example { get; set; }
        public long[]? Trend { get; set; }
        public Dictionary<string, long>? StoredIds { get; set; }

        public void Absorb(Row other)
        {
            Count += other.Count;
            Previous += other.Previous;
            FirstSeen = Math.Min(FirstSeen, other.FirstSeen);
            if (other.Count > 0 && other.LastSeen >= LastSeen)
            {
                LastSeen = other.LastSeen;
                Example = other.Example;
            }
            if (other.Trend is not null)
            {
                Trend ??= new long[other.Trend.Length];
                for (var i = 0; i < Trend.Length; i++)
                {
                    Trend[i] += other.Trend[i];
                }
            }
            foreach (var (id, count) in other.StoredIds ?? [])
            {
                StoredIds ??= new Dictionary<string, long>(StringComparer.Ordinal);
                StoredIds[id] = StoredIds.GetValueOrDefault(id) + count;
            }
        }
    }

    private sealed class Tally(string[] tokens) : Row
    {
        public string[] Tokens { get; } = tokens;
    }

    /// <summary>Messages counted (of the window itself, not the earlier one).</summary>
    public long Total { get; private set; }

    /// <summary>
    /// Adds a message at <paramref name="time"/> (ticks); <paramref name="previous"/> when it is of the earlier window;
    /// <paramref name="storedId"/>: the pattern id ingest gave it, if any.
    /// </summary>
    public void Add(string message, long time, bool previous = false, string? storedId = null)
    {
        var match = _miner.Add(message);
        if (!_tallies.TryGetValue(match.Cluster, out var byWords))
        {
            _tallies[match.Cluster] = byWords = new Dictionary<string, Tally>(StringComparer.Ordinal);
        }
        // The words of the positions that may split the cluster in the end: those that held only words so far.
        var key = TemplateMiner.SplitKey(match);
        if (!byWords.TryGetValue(key, out var tally))
        {
            byWords[key] = tally = new Tally(match.Tokens);
        }
        if (previous)
        {
            tally.Previous++;
            return;
        }
        Total++;
        tally.Count++;
        tally.FirstSeen = Math.Min(tally.FirstSeen, time);
        if (time >= tally.LastSeen)
        {
            tally.LastSeen = time;
            tally.Example = message;
        }
        if (_trendSlices > 0)
        {
            tally.Trend ??= new long[_trendSlices];
            tally.Trend[(int)Math.Clamp((double)(time - _trendFrom) / (_trendTo - _trendFrom) * _trendSlices, 0, _trendSlices - 1)]++;
        }
        if (storedId is not null)
        {
            tally.StoredIds ??= new Dictionary<string, long>(StringComparer.Ordinal);
            // A bound per tally: ids are few per template (one per stage the template went through at ingest).
            if (tally.StoredIds.Count < 4 * MaxStoredIds || tally.StoredIds.ContainsKey(storedId))
            {
                tally.StoredIds[storedId] = tally.StoredIds.GetValueOrDefault(storedId) + 1;
            }
        }
    }

    /// <summary>The templates of the window's messages, most frequent first (then by template).</summary>
    public List<PatternRow> Rows()
    {
        var rows = new Dictionary<string, Row>(StringComparer.Ordinal);
        foreach (var (template, row) in _folded)
        {
            var copy = new Row();
            copy.Absorb(row);
            rows[template] = copy;
        }
        foreach (var (cluster, byWords) in _tallies)
        {
            Fold(rows, cluster, byWords);
        }
        return [.. rows.Where(r => r.Value.Count > 0)
            .Select(r => new PatternRow(TemplateMiner.Id(r.Key), r.Key, r.Value.Count, r.Value.Previous, r.Value.FirstSeen, r.Value.LastSeen, r.Value.Example ?? "")
            {
                Trend = r.Value.Trend,
                StoredIds = r.Value.StoredIds is { } ids
                    ? [.. ids.OrderByDescending(i => i.Value).ThenBy(i => i.Key, StringComparer.Ordinal).Take(MaxStoredIds).Select(i => i.Key)]
                    : [],
            })
            .OrderByDescending(r => r.Count).ThenBy(r => r.Template, StringComparer.Ordinal)];
    }

    private static void Fold(Dictionary<string, Row> rows, TemplateMiner.Cluster cluster, Dictionary<string, Tally> byWords)
    {
        foreach (var tally in byWords.Values)
        {
            var template = TemplateMiner.Template(new TemplateMiner.Match(cluster, tally.Tokens));
            if (!rows.TryGetValue(template, out var row))
            {
                rows[template] = row = new Row();
            }
            row.Absorb(tally);
        }
    }
}
