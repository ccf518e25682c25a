namespace Logwell.Core.Patterns;

/// <summary>One template of a <see cref="PatternSummary"/>: how many events had it, when, and the newest of them.</summary>
public sealed record PatternRow(string Id, string Template, long Count, long Previous, long FirstSeen, long LastSeen, string Example);

/// <summary>
/// The templates of a set of messages, for <c>| patterns</c>: each message goes through one
/// <see cref="TemplateMiner"/>, and the counts are kept per cluster and per the words of the positions that may still
/// split it, so that every message is counted under the template its cluster has at the end. Messages of an earlier
/// window (<c>compare=</c>) go through the same miner and are counted apart. The miner keeps its bound of clusters;
/// the counts of a cluster it drops are kept under the template it had then.
/// </summary>
public sealed class PatternSummary
{
    private readonly TemplateMiner _miner = new();
    private readonly Dictionary<TemplateMiner.Cluster, Dictionary<string, Tally>> _tallies = [];

    // The rows of clusters the miner dropped (seen least recently, past its bound): counted under their templates then.
    private readonly Dictionary<string, PatternRow> _folded = new(StringComparer.Ordinal);

    public PatternSummary() => _miner.Dropped = clusters =>
    {
        foreach (var cluster in clusters)
        {
            if (_tallies.Remove(cluster, out var byWords))
            {
                Fold(_folded, cluster, byWords);
            }
        }
    };

    private sealed class Tally(string[] tokens)
    {
        public string[] Tokens { get; } = tokens;
        public long Count { get; set; }
        public long Previous { get; set; }
        public long FirstSeen { get; set; } = long.MaxValue;
        public long LastSeen { get; set; } = long.MinValue;
        public string? Example { get; set; }
    }

    /// <summary>Messages counted (of the window itself, not the earlier one).</summary>
    public long Total { get; private set; }

    /// <summary>Adds a message at <paramref name="time"/> (ticks); <paramref name="previous"/> when it is of the earlier window.</summary>
    public void Add(string message, long time, bool previous = false)
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
    }

    /// <summary>The templates of the window's messages, most frequent first (then by template).</summary>
    public List<PatternRow> Rows()
    {
        var rows = new Dictionary<string, PatternRow>(_folded, StringComparer.Ordinal);
        foreach (var (cluster, byWords) in _tallies)
        {
            Fold(rows, cluster, byWords);
        }
        return [.. rows.Values.Where(r => r.Count > 0).OrderByDescending(r => r.Count).ThenBy(r => r.Template, StringComparer.Ordinal)];
    }

    private static void Fold(Dictionary<string, PatternRow> rows, TemplateMiner.Cluster cluster, Dictionary<string, Tally> byWords)
    {
        foreach (var tally in byWords.Values)
        {
            var template = TemplateMiner.Template(new TemplateMiner.Match(cluster, tally.Tokens));
            var row = rows.GetValueOrDefault(template) ?? new PatternRow(TemplateMiner.Id(template), template, 0, 0, long.MaxValue, long.MinValue, "");
            var newest = tally.Count > 0 && tally.LastSeen >= row.LastSeen;
            rows[template] = row with
            {
                Count = row.Count + tally.Count,
                Previous = row.Previous + tally.Previous,
                FirstSeen = Math.Min(row.FirstSeen, tally.FirstSeen),
                LastSeen = Math.Max(row.LastSeen, tally.LastSeen),
                Example = newest ? tally.Example! : row.Example,
            };
        }
    }
}
