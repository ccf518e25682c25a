using Logwell.Core.Events;

namespace Logwell.Core.Patterns;

/// <summary>
/// What one index set's ingest learned of a template since the last <see cref="PatternTagger.TakeSeen"/>: its text, the
/// event times it covered, how many events had it, and a few of their messages (kept so that another process can
/// rebuild the same template from them).
/// </summary>
public sealed record PatternSeen(string Id, string Template, long FirstSeen, long LastSeen, long Count, IReadOnlyList<string> Examples);

/// <summary>
/// Gives every event of an index set the id of its message's template, in the field <see cref="Field"/>, as the events
/// are stored: one <see cref="TemplateMiner"/> per index set, behind a lock (appends come from many requests at once).
/// </summary>
/// <remarks>
/// An id is <see cref="TemplateMiner.Id"/> of the template as the miner has it when the event arrives, so the same
/// template has the same id on every node and after every restart. For the miner of another process (a restart,
/// another node) to reach the same templates, each template keeps up to <see cref="ExamplesKept"/> different messages;
/// <see cref="Learn"/> replays them into the miner. The miner holds its own bound of clusters; the texts of the ids it
/// has given are kept up to <see cref="MaxKnown"/>, for <see cref="TemplateOf"/>.
/// </remarks>
public sealed class PatternTagger
{
    /// <summary>The field that holds an event's pattern id.</summary>
    public const string Field = "pattern";

    /// <summary>Different messages kept per template: one more than the miner's split values, so that a position it read as a variable reads as one again.</summary>
    public const int ExamplesKept = TemplateMiner.SplitValues + 1;

    /// <summary>Template texts kept for <see cref="TemplateOf"/>; past it the oldest half is forgotten.</summary>
    public const int MaxKnown = 50_000;

    private readonly Lock _lock = new();
    private readonly TemplateMiner _miner = new();
    private readonly Dictionary<string, Seen> _seen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Known> _known = new(StringComparer.Ordinal);
    private long _learned;

    private sealed class Seen(string template)
    {
        public string Template { get; } = template;
        public long FirstSeen { get; set; } = long.MaxValue;
        public long LastSeen { get; set; } = long.MinValue;
        public long Count { get; set; }
        public List<string> Examples { get; } = [];
    }

    private sealed class Known(string template, int examples, long order)
    {
        public string Template { get; } = template;
        /// <summary>How many different messages of the template are stored (or were replayed): none are collected past <see cref="ExamplesKept"/>.</summary>
        public int Examples { get; set; } = examples;
        public long Order { get; set; } = order;
    }

    /// <summary>
    /// Adds <see cref="Field"/> to each event of the batch that has a message and no such field yet. An event may bring
    /// its own: one forwarded from another Logwell keeps its id, and a field of that name that is not an id
    /// (<see cref="IsId"/>) is kept as it is, without one.
    /// </summary>
    public void Tag(List<LogEvent> events)
    {
        lock (_lock)
        {
            for (var i = 0; i < events.Count; i++)
            {
                var evt = events[i];
                if (evt.Message.Length == 0 || evt.TryGetField(Field, out _))
                {
                    continue;
                }
                var match = _miner.AddShared(evt.Message);
                var id = _miner.IdOf(match);
                Note(id, match, evt);
                evt.AddField(new Field(Field, FieldValue.FromString(id)));
            }
        }
    }

    /// <summary>The event's pattern id, or null when it has none (a field <c>pattern</c> of its own that is not an id is not one).</summary>
    public static string? IdOf(LogEvent evt) => evt.TryGetField(Field, out var value) && IsId(value) ? value.Text : null;

    /// <summary>Whether a value is a pattern id: 12 lowercase hexadecimal digits, as <see cref="TemplateMiner.Id"/> writes them.</summary>
    public static bool IsId(FieldValue value) =>
        value.Kind == FieldKind.String && value.Text!.Length == 12 && !value.Text.AsSpan().ContainsAnyExcept(IdDigits);

    private static readonly System.Buffers.SearchValues<char> IdDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Gives each event the id of the same place in <paramref name="ids"/> (none where it is null): ids drawn before, for a batch sent again.</summary>
    public static void Apply(List<LogEvent> events, IReadOnlyList<string?> ids)
    {
        for (var i = 0; i < events.Count; i++)
        {
            if (ids[i] is { } id && !events[i].TryGetField(Field, out _))
            {
                events[i].AddField(new Field(Field, FieldValue.FromString(id)));
            }
        }
    }

    private void Note(string id, TemplateMiner.Match match, LogEvent evt)
    {
        if (!_seen.TryGetValue(id, out var seen))
        {
            var known = _known.GetValueOrDefault(id);
            if (known is null)
            {
                known = Remember(id, TemplateMiner.Template(match), 0);
            }
            _seen[id] = seen = new Seen(known.Template);
        }
        seen.Count++;
        seen.FirstSeen = Math.Min(seen.FirstSeen, evt.Timestamp);
        seen.LastSeen = Math.Max(seen.LastSeen, evt.Timestamp);
        if (seen.Examples.Count < ExamplesKept && (_known.GetValueOrDefault(id)?.Examples ?? 0) + seen.Examples.Count < ExamplesKept
            && !seen.Examples.Contains(evt.Message, StringComparer.Ordinal))
        {
            seen.Examples.Add(evt.Message);
        }
    }

    private Known Remember(string id, string template, int examples)
    {
        if (_known.Count >= MaxKnown)
        {
            foreach (var old in _known.OrderBy(k => k.Value.Order).Take(MaxKnown / 2).Select(k => k.Key).ToList())
            {
                _known.Remove(old);
            }
        }
        var known = new Known(template, examples, ++_learned);
        _known[id] = known;
        return known;
    }

    /// <summary>What was seen since the last call, by template; the tagger starts counting afresh.</summary>
    public List<PatternSeen> TakeSeen()
    {
        lock (_lock)
        {
            var taken = new List<PatternSeen>(_seen.Count);
            foreach (var (id, seen) in _seen)
            {
                taken.Add(new PatternSeen(id, seen.Template, seen.FirstSeen, seen.LastSeen, seen.Count, seen.Examples));
                if (_known.TryGetValue(id, out var known))
                {
                    known.Examples += seen.Examples.Count;
                }
            }
            _seen.Clear();
            return taken;
        }
    }

    /// <summary>
    /// Gives back what <see cref="TakeSeen"/> took when it could not be stored, so that the next call has it again
    /// (added to what was seen meanwhile).
    /// </summary>
    public void Restore(IEnumerable<PatternSeen> taken)
    {
        lock (_lock)
        {
            foreach (var item in taken)
            {
                if (!_seen.TryGetValue(item.Id, out var seen))
                {
                    _seen[item.Id] = seen = new Seen(item.Template);
                }
                seen.Count += item.Count;
                seen.FirstSeen = Math.Min(seen.FirstSeen, item.FirstSeen);
                seen.LastSeen = Math.Max(seen.LastSeen, item.LastSeen);
                if (_known.TryGetValue(item.Id, out var known))
                {
                    known.Examples = Math.Max(0, known.Examples - item.Examples.Count);
                }
                foreach (var example in item.Examples)
                {
                    if (seen.Examples.Count < ExamplesKept && !seen.Examples.Contains(example, StringComparer.Ordinal))
                    {
                        seen.Examples.Add(example);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Learns a template found elsewhere (stored before a restart, or by another node): its text is known from now on
    /// and its messages go through the miner, so that the same lines get the same template here. A template already
    /// known is left as it is. Returns whether it was new.
    /// </summary>
    public bool Learn(string id, string template, IReadOnlyList<string> examples)
    {
        lock (_lock)
        {
            if (_known.TryGetValue(id, out var known))
            {
                known.Examples = Math.Max(known.Examples, examples.Count);
                return false;
            }
            foreach (var example in examples)
            {
                _miner.Add(example);
            }
            Remember(id, template, examples.Count);
            return true;
        }
    }

    /// <summary>The text of a template by its id, when this tagger gave or learned it; null otherwise.</summary>
    public string? TemplateOf(string id)
    {
        lock (_lock)
        {
            return _known.TryGetValue(id, out var known) ? known.Template : null;
        }
    }
}
