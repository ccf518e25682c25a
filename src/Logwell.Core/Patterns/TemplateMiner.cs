using System.Buffers;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Logwell.Core.Patterns;

/// <summary>
/// Groups log messages into templates online, in one pass, in bounded memory: <c>Received block &lt;*&gt; of size
/// &lt;*&gt; from &lt;*&gt;</c>. One configuration for every source: no per-source regular expressions or thresholds.
/// </summary>
/// <remarks>
/// <para>
/// A message is split into tokens at whitespace. Each token is masked by its class before anything is compared:
/// numbers (with a short unit: <c>12ms</c>, <c>3.5GB</c>), IP addresses, hexadecimal ids, the digits after an
/// identifier's underscore (<c>blk_&lt;*&gt;</c>, <c>attempt_&lt;*&gt;</c>), host names with a numbered part, month and
/// day names, and a size unit after a number. Punctuation inside a token (<c>key=value</c>, <c>ip:port</c>,
/// <c>/path/to</c>, <c>(…)</c>) splits it into parts masked alone, so <c>uid=0</c> becomes <c>uid=&lt;*&gt;</c>.
/// </para>
/// <para>
/// Messages with the same number of tokens and the same first word are compared with the clusters already seen
/// (as Drain does): a message joins the most similar cluster when at least half of its tokens match the cluster's
/// template, and every token that differs becomes a variable, keeping what the two share at each end
/// (<c>bglio12</c> and <c>bglio7</c> make <c>bglio&lt;*&gt;</c>).
/// </para>
/// <para>
/// Then, as Brain does with its longest common pattern, a variable position that has only ever held a few tokens
/// (at most <see cref="SplitValues"/>, without digits, none a typed identifier) is read as constants that tell
/// events apart: <c>Failed password for …</c> and <c>Failed none for …</c> are two templates, while a position that
/// has held more words (user names) is a variable. A message's template is what its cluster says when asked.
/// </para>
/// <para>
/// Memory is bounded by <see cref="MaxClusters"/>: past it, the clusters seen least recently are dropped. The same
/// messages in the same order give the same templates.
/// </para>
/// </remarks>
public sealed class TemplateMiner
{
    /// <summary>The share of a message's tokens that must match a cluster's template for it to join.</summary>
    public const double Similarity = 0.5;

    /// <summary>A variable position that held at most this many tokens that may be constants (and nothing else) splits its cluster.</summary>
    public const int SplitValues = 3;

    public const string Wildcard = "<*>";

    /// <summary>The clusters of a group a message is compared with: the newest ones.</summary>
    public const int MaxCandidates = 256;

    // By first word, then by token count: two lookups that are cheaper than one by a pair, whose string part would be
    // hashed with the randomized hash (an ordinal string key is hashed the fast way until its keys collide).
    private readonly Dictionary<string, Dictionary<int, List<Cluster>>> _groups = new(StringComparer.Ordinal);
    private long _clock;
    private int _clusters;

    public TemplateMiner(int maxClusters = 10_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxClusters, 1);
        MaxClusters = maxClusters;
    }

    /// <summary>Called with the clusters dropped to keep within <see cref="MaxClusters"/>.</summary>
    public Action<IReadOnlyCollection<Cluster>>? Dropped { get; set; }

    /// <summary>How many clusters are kept; past it the least recently seen are dropped.</summary>
    public int MaxClusters { get; }

    /// <summary>The clusters kept now.</summary>
    public int ClusterCount => _clusters;

    /// <summary>One group of similar messages: a template per token, the whitespace of its first message, and the words seen at each position.</summary>
    public sealed class Cluster
    {
        internal Cluster(string[] tokens, string[] separators)
        {
            Tokens = tokens;
            Separators = separators;
            Values = new WordCounts[tokens.Length];
        }

        internal string[] Tokens { get; }

        internal string[] Separators { get; }

        internal WordCounts[] Values { get; }

        public long Count { get; internal set; }

        internal long LastSeen { get; set; }

        /// <summary>Grows whenever the cluster's templates may have changed: a token merged, a word added, a position turned variable.</summary>
        internal long Version { get; set; }

        /// <summary>Ids of its templates by the hash of the split words, valid for <see cref="IdsVersion"/>.</summary>
        internal Dictionary<ulong, string>? Ids { get; set; }

        internal long IdsVersion { get; set; } = -1;

        /// <summary>The id of its one template while no position may split it, valid for <see cref="IdsVersion"/>.</summary>
        internal string? SoleId { get; set; }

        /// <summary>The positions that may split the cluster (<see cref="MaySplit"/>) as of <see cref="IdsVersion"/>.</summary>
        internal int[] SplitPositions { get; set; } = [];
    }

    /// <summary>The words seen at one position, while they are few and nothing else was seen there.</summary>
    internal struct WordCounts
    {
        public List<(string Word, long Count)>? Words;
        public bool Mixed;
    }

    /// <summary>Where a message went: its cluster and its masked tokens (kept to tell its template later).</summary>
    public readonly record struct Match(Cluster Cluster, string[] Tokens);

    /// <summary>Adds a message; gives its cluster and tokens. <see cref="Template(Match)"/> tells its template.</summary>
    public Match Add(string message) => Add(message, shared: false);

    /// <summary>
    /// <see cref="Add(string)"/> for a caller that is done with the match before the next call (ingest): the match's
    /// tokens are an array the next call of the same length fills again, so that no array is made per message.
    /// </summary>
    internal Match AddShared(string message) => Add(message, shared: true);

    private Match Add(string message, bool shared)
    {
        var tokens = TokensOf(message, shared);
        ref var byCount = ref CollectionsMarshal.GetValueRefOrAddDefault(_groups, tokens.Length > 0 && IsWord(tokens[0]) ? tokens[0] : Wildcard, out _);
        byCount ??= [];
        ref var group = ref CollectionsMarshal.GetValueRefOrAddDefault(byCount, tokens.Length, out _);
        group ??= [];
        Cluster? best = null;
        var bestScore = -1;
        // The newest clusters of the group only, as Drain bounds a node's children: a group of messages that never
        // repeat (no word first, random words) must not make every message cost more than the last.
        for (var c = group.Count - 1; c >= Math.Max(0, group.Count - MaxCandidates); c--)
        {
            var candidate = group[c];
            var score = 0;
            for (var i = 0; i < tokens.Length; i++)
            {
                if (Matches(candidate.Tokens[i], tokens[i]))
                {
                    score++;
                }
            }
            if (score >= bestScore)
            {
                (best, bestScore) = (candidate, score);
            }
        }
        if (best is null || (tokens.Length > 0 && bestScore < Similarity * tokens.Length))
        {
            best = new Cluster((string[])tokens.Clone(), Tokenize(message).Separators);
            group.Add(best);
            _clusters++;
        }
        else
        {
            for (var i = 0; i < tokens.Length; i++)
            {
                if (!string.Equals(best.Tokens[i], tokens[i], StringComparison.Ordinal))
                {
                    var merged = MergeTokens(best.Tokens[i], tokens[i]);
                    if (!string.Equals(merged, best.Tokens[i], StringComparison.Ordinal))
                    {
                        best.Tokens[i] = merged;
                        best.Version++;
                    }
                }
            }
        }
        best.Count++;
        best.LastSeen = ++_clock;
        for (var i = 0; i < tokens.Length; i++)
        {
            if (Record(ref best.Values[i], tokens[i]))
            {
                best.Version++;
            }
        }
        if (_clusters > MaxClusters)
        {
            DropLeastRecent();
        }
        return new Match(best, tokens);
    }

    /// <summary>The template of a message as its cluster stands now.</summary>
    public static string Template(Match match)
    {
        var cluster = match.Cluster;
        var text = new StringBuilder();
        for (var i = 0; i < cluster.Tokens.Length; i++)
        {
            var token = Splits(cluster, i) ? match.Tokens[i] : cluster.Tokens[i];
            // Variables side by side are one: "<*> <*>" (a date, a number and its unit) is "<*>".
            if (token.StartsWith(Wildcard, StringComparison.Ordinal) && i > 0 && EndsWithWildcard(text))
            {
                token = token[Wildcard.Length..];
            }
            else if (i > 0)
            {
                text.Append(cluster.Separators[i - 1]);
            }
            text.Append(token);
        }
        return text.ToString();
    }

    /// <summary>
    /// The message's words at the positions that may still split its cluster (those that held only a few words so
    /// far): messages with the same key get the same template however the cluster ends.
    /// </summary>
    public static string SplitKey(Match match)
    {
        var key = new StringBuilder();
        for (var i = 0; i < match.Tokens.Length; i++)
        {
            if (MaySplit(match.Cluster, i))
            {
                // Position and length first: keys of different positions or token boundaries never meet.
                key.Append(i).Append(',').Append(match.Tokens[i].Length).Append(':').Append(match.Tokens[i]);
            }
        }
        return key.ToString();
    }

    /// <summary>Whether a position may split its cluster, now or later: not a variable for good, nor one word so far that every message of the cluster had.</summary>
    private static bool MaySplit(Cluster cluster, int position)
    {
        var values = cluster.Values[position];
        return !values.Mixed && !(values.Words is { Count: 1 } && !cluster.Tokens[position].Contains(Wildcard, StringComparison.Ordinal));
    }

    private readonly XxHash64 _splitHash = new();

    /// <summary>
    /// The id of a message's template as its cluster stands now (<see cref="Id"/> of <see cref="Template"/>), kept per
    /// cluster and split words until the cluster changes: what ingest asks for every event.
    /// </summary>
    public string IdOf(Match match)
    {
        var cluster = match.Cluster;
        if (cluster.Ids is null || cluster.IdsVersion != cluster.Version || cluster.Ids.Count >= 1024)
        {
            if (cluster.IdsVersion != cluster.Version)
            {
                // Whether a position may split changes only with the cluster's version: found once per version, not per message.
                cluster.SplitPositions = [.. Enumerable.Range(0, cluster.Tokens.Length).Where(i => MaySplit(cluster, i))];
            }
            cluster.Ids = [];
            cluster.SoleId = null;
            cluster.IdsVersion = cluster.Version;
        }
        if (cluster.SplitPositions.Length == 0)
        {
            // No position may split the cluster: one template for all its messages.
            return cluster.SoleId ??= Id(Template(match));
        }
        _splitHash.Reset();
        Span<byte> position = stackalloc byte[4];
        foreach (var i in cluster.SplitPositions)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(position, i);
            _splitHash.Append(position);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(position, match.Tokens[i].Length);
            _splitHash.Append(position);
            _splitHash.Append(MemoryMarshal.AsBytes(match.Tokens[i].AsSpan()));
        }
        var key = _splitHash.GetCurrentHashAsUInt64();
        if (!cluster.Ids.TryGetValue(key, out var id))
        {
            id = Id(Template(match));
            cluster.Ids[key] = id;
        }
        return id;
    }

    /// <summary>A short id of a template, the same wherever and whenever it is computed: 12 hexadecimal digits (48 bits: among 10,000 templates, two share an id with a chance of about 2 in 10 million).</summary>
    public static string Id(string template)
    {
        var hash = XxHash64.HashToUInt64(MemoryMarshal.AsBytes(template.AsSpan()));
        return (hash & 0xFFFF_FFFF_FFFF).ToString("x12", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static bool EndsWithWildcard(StringBuilder text) =>
        text.Length >= Wildcard.Length && text[^1] == '>' && text[^2] == '*' && text[^3] == '<';

    /// <summary>Whether a variable position of the cluster is read as constants: it held only a few words.</summary>
    private static bool Splits(Cluster cluster, int position)
    {
        var values = cluster.Values[position];
        return !values.Mixed && values.Words is { Count: >= 2 and <= SplitValues } && cluster.Tokens[position].Contains(Wildcard, StringComparison.Ordinal);
    }

    /// <summary>Counts a token at its position; true when that may change the cluster's templates (a new word, or a position turned variable).</summary>
    private static bool Record(ref WordCounts values, string token)
    {
        if (values.Mixed)
        {
            return false;
        }
        // A word seen before first: it was constant-like when it came (the commonest case, and the cheapest).
        if (values.Words is { } words)
        {
            for (var i = 0; i < words.Count; i++)
            {
                if (string.Equals(words[i].Word, token, StringComparison.Ordinal))
                {
                    words[i] = (token, words[i].Count + 1);
                    return false;
                }
            }
        }
        if (!IsConstantLike(token))
        {
            values.Mixed = true;
            values.Words = null;
            return true;
        }
        values.Words ??= new List<(string, long)>(2);
        if (values.Words.Count == SplitValues)
        {
            // More words than constants would have: a variable for good.
            values.Mixed = true;
            values.Words = null;
            return true;
        }
        values.Words.Add((token, 1));
        return true;
    }

    private void DropLeastRecent()
    {
        // A tenth at a time, so that dropping costs little per message.
        var all = _groups.Values.SelectMany(g => g.Values).SelectMany(g => g).OrderBy(c => c.LastSeen).Take(Math.Max(1, MaxClusters / 10)).ToHashSet();
        foreach (var (first, byCount) in _groups.ToList())
        {
            foreach (var (count, group) in byCount.ToList())
            {
                group.RemoveAll(all.Contains);
                if (group.Count == 0)
                {
                    byCount.Remove(count);
                }
            }
            if (byCount.Count == 0)
            {
                _groups.Remove(first);
            }
        }
        _clusters -= all.Count;
        Dropped?.Invoke(all);
    }

    /// <summary>
    /// What may be a constant that tells events apart: no digit left after masking, and not a typed identifier
    /// (<c>rdd_&lt;*&gt;</c>, <c>broadcast_&lt;*&gt;</c>: different names of one kind of thing). <c>(uid=&lt;*&gt;)</c> and
    /// <c>LOGIN(uid=&lt;*&gt;)</c> are.
    /// </summary>
    private static bool IsConstantLike(string token) =>
        token != Wildcard && !token.AsSpan().ContainsAny(AsciiDigits) && !token.Contains("_" + Wildcard, StringComparison.Ordinal);

    /// <summary>A word: no digit, no variable.</summary>
    private static bool IsWord(string token) => !token.Contains(Wildcard, StringComparison.Ordinal) && !token.AsSpan().ContainsAny(AsciiDigits);

    /// <summary>Whether a template token (which may hold variables) matches a message's token.</summary>
    internal static bool Matches(string template, string token)
    {
        if (string.Equals(template, token, StringComparison.Ordinal) || template == Wildcard)
        {
            return true;
        }
        var at = template.IndexOf(Wildcard, StringComparison.Ordinal);
        if (at < 0)
        {
            return false;
        }
        var head = template.AsSpan(0, at);
        var rest = template.AsSpan(at + Wildcard.Length);
        var last = rest.LastIndexOf(Wildcard);
        var tail = last < 0 ? rest : rest[(last + Wildcard.Length)..];
        var t = token.AsSpan();
        if (!t.StartsWith(head) || !t.EndsWith(tail) || t.Length < head.Length + tail.Length)
        {
            return false;
        }
        // The literal parts between variables, in order.
        var middle = t[head.Length..(t.Length - tail.Length)];
        var parts = last < 0 ? [] : rest[..last];
        while (parts.Length > 0)
        {
            var next = parts.IndexOf(Wildcard);
            var part = next < 0 ? parts : parts[..next];
            if (part.Length > 0)
            {
                var found = middle.IndexOf(part);
                if (found < 0)
                {
                    return false;
                }
                middle = middle[(found + part.Length)..];
            }
            parts = next < 0 ? [] : parts[(next + Wildcard.Length)..];
        }
        return true;
    }

    /// <summary>
    /// Two different tokens as one with a variable: what they share at each end is kept, cut only between letters,
    /// digits and punctuation (<c>bglio12</c>, <c>bglio7</c>: <c>bglio&lt;*&gt;</c>; <c>()</c>, <c>(host)</c>: <c>(&lt;*&gt;)</c>).
    /// </summary>
    internal static string MergeTokens(string a, string b)
    {
        if (string.Equals(a, b, StringComparison.Ordinal))
        {
            return a;
        }
        var x = Units(a);
        var y = Units(b);
        var head = 0;
        while (head < x.Count && head < y.Count && x[head] == y[head] && x[head] != WildcardUnit)
        {
            head++;
        }
        while (head > 0 && (InRun(x, head) || InRun(y, head)))
        {
            head--;
        }
        var tail = 0;
        while (tail < x.Count - head && tail < y.Count - head && x[x.Count - 1 - tail] == y[y.Count - 1 - tail] && x[x.Count - 1 - tail] != WildcardUnit)
        {
            tail++;
        }
        while (tail > 0 && ((x.Count - tail > head && InRun(x, x.Count - tail)) || (y.Count - tail > head && InRun(y, y.Count - tail))))
        {
            tail--;
        }
        var merged = new StringBuilder();
        AppendUnits(merged, x, 0, head);
        merged.Append(Wildcard);
        AppendUnits(merged, x, x.Count - tail, x.Count);
        return Collapse(merged.ToString());
    }

    // A token as units: a character each, and a variable as one unit.
    private const int WildcardUnit = -1;

    private static List<int> Units(string token)
    {
        var units = new List<int>(token.Length);
        for (var i = 0; i < token.Length; i++)
        {
            if (string.CompareOrdinal(token, i, Wildcard, 0, Wildcard.Length) == 0)
            {
                units.Add(WildcardUnit);
                i += Wildcard.Length - 1;
            }
            else
            {
                units.Add(token[i]);
            }
        }
        return units;
    }

    private static void AppendUnits(StringBuilder text, List<int> units, int from, int to)
    {
        for (var i = from; i < to; i++)
        {
            if (units[i] == WildcardUnit)
            {
                text.Append(Wildcard);
            }
            else
            {
                text.Append((char)units[i]);
            }
        }
    }

    /// <summary>Whether a cut before <paramref name="at"/> would fall inside a run of letters or of digits.</summary>
    private static bool InRun(List<int> units, int at)
    {
        if (at <= 0 || at >= units.Count)
        {
            return false;
        }
        var before = Kind(units[at - 1]);
        return before != 'p' && before == Kind(units[at]);
    }

    // Both halves of a surrogate pair count as letters, so that no cut falls between them.
    private static char Kind(int unit) => unit == WildcardUnit ? 'v' : char.IsAsciiDigit((char)unit) ? 'd' : char.IsLetter((char)unit) || char.IsSurrogate((char)unit) ? 'a' : 'p';

    private static string Collapse(string token)
    {
        const string Twice = Wildcard + Wildcard;
        while (token.Contains(Twice, StringComparison.Ordinal))
        {
            token = token.Replace(Twice, Wildcard, StringComparison.Ordinal);
        }
        return token;
    }

    /// <summary><see cref="Collapse(string)"/> in place: gives the length left.</summary>
    private static int Collapse(Span<char> token)
    {
        const string Twice = Wildcard + Wildcard;
        var length = token.Length;
        int at;
        while ((at = token[..length].IndexOf(Twice, StringComparison.Ordinal)) >= 0)
        {
            token[(at + Twice.Length)..length].CopyTo(token[(at + Wildcard.Length)..]);
            length -= Wildcard.Length;
        }
        return length;
    }

    /// <summary>A message's tokens, masked by class, and the whitespace between them.</summary>
    // Tokens seen before that mask to themselves (the words of a log), by their text: most of a message's tokens are
    // found here without masking them or allocating. Emptied when it holds too many.
    private readonly Dictionary<string, string> _words = new(StringComparer.Ordinal);
    private const int MaxWords = 50_000;

    // Masked tokens that differ from their text, by their masked text: one string each (see MaskKnown).
    private readonly Dictionary<string, string> _masks = new(StringComparer.Ordinal);
    // Room to mask a token of up to MaxCachedToken characters; longer ones are masked without the caches.
    private const int MaxCachedToken = 256;
    private readonly char[] _maskBuffer = new char[MaskedMaximum(MaxCachedToken)];

    private readonly List<string> _tokens = new(32);

    /// <summary>A message's tokens, masked by class, as <see cref="Tokenize"/> gives them.</summary>
    private readonly string[]?[] _shared = new string[64][];

    private string[] TokensOf(string message, bool shared)
    {
        var words = _words.GetAlternateLookup<ReadOnlySpan<char>>();
        var text = message.AsSpan().Trim();
        var tokens = _tokens;
        tokens.Clear();
        var i = 0;
        while (i < text.Length)
        {
            // The token's end and the classes of its characters in one pass: most tokens are a few characters, for
            // which a loop is cheaper than vectorized searches.
            var end = i;
            var classes = 0;
            while (end < text.Length)
            {
                var c = text[end];
                if (c is <= ' ' or > '~')
                {
                    if (char.IsWhiteSpace(c))
                    {
                        break;
                    }
                    classes |= OtherClass;
                }
                else
                {
                    classes |= CharClasses[c];
                }
                end++;
            }
            var raw = text[i..end];
            string? masked;
            if (IsPlainVariable(raw, classes))
            {
                // A number, a hexadecimal id or an address, the commonest variables: what masking would give them,
                // without a lookup or masking.
                masked = Wildcard;
            }
            else if (!words.TryGetValue(raw, out masked))
            {
                masked = MaskKnown(raw);
            }
            tokens.Add(masked);
            i = SpaceEnd(text, end);
        }
        JoinSizeUnits(tokens);
        var array = shared && tokens.Count < _shared.Length ? _shared[tokens.Count] ??= new string[tokens.Count] : new string[tokens.Count];
        tokens.CopyTo(array);
        return array;
    }

    private const int DigitClass = 1;
    private const int HexLetterClass = 2;
    private const int DelimiterClass = 4;
    private const int OtherClass = 8;

    /// <summary>By printable ASCII character, its class for <see cref="IsPlainVariable"/>.</summary>
    private static readonly byte[] CharClasses = [.. Enumerable.Range(0, 128).Select(c => (byte)(
        char.IsAsciiDigit((char)c) ? DigitClass
        : char.IsAsciiHexDigit((char)c) ? HexLetterClass
        : DelimiterCharacters.Contains((char)c, StringComparison.Ordinal) ? DelimiterClass
        : OtherClass))];

    /// <summary>
    /// Whether a token masks to a single variable for what <see cref="MaskWord"/> reads first, told by its characters'
    /// classes alone: no delimiter, and either a digit first and a letter or digit last (a number, with or without a
    /// unit, an address, an id: <see cref="MaskWord"/> makes any word that starts with a digit a variable, and nothing is
    /// cut from its end), or hexadecimal digits only, at least six, some of them digits. Such a token is never one of
    /// <see cref="_words"/>, which mask to themselves.
    /// </summary>
    private static bool IsPlainVariable(ReadOnlySpan<char> token, int classes) =>
        (classes & DelimiterClass) == 0
        && ((char.IsAsciiDigit(token[0]) && char.IsAsciiLetterOrDigit(token[^1]))
            || (classes == (DigitClass | HexLetterClass) && token.Length >= 6));

    /// <summary>
    /// A token not in <see cref="_words"/>, masked: a word that masks to itself is added there, and a masked token made
    /// before (<c>&lt;*&gt;)</c>, <c>id=&lt;*&gt;</c>) is that same string, so that most variables cost no allocation.
    /// </summary>
    private string MaskKnown(ReadOnlySpan<char> raw)
    {
        var needed = MaskedMaximum(raw.Length);
        if (needed > _maskBuffer.Length)
        {
            // A long token (a payload, a stack of paths) is masked once and kept nowhere: the caches hold short tokens.
            return Mask(raw);
        }
        var written = _maskBuffer.AsSpan(0, MaskTo(raw, _maskBuffer));
        if (written.SequenceEqual(raw))
        {
            if (_words.Count >= MaxWords)
            {
                _words.Clear();
            }
            var word = raw.ToString();
            _words[word] = word;
            return word;
        }
        var masks = _masks.GetAlternateLookup<ReadOnlySpan<char>>();
        if (!masks.TryGetValue(written, out var known))
        {
            if (_masks.Count >= MaxWords)
            {
                _masks.Clear();
            }
            known = written.ToString();
            _masks[known] = known;
        }
        return known;
    }

    /// <summary>A size unit after a number is part of it: "384.0 B" is one variable.</summary>
    private static void JoinSizeUnits(List<string> tokens)
    {
        for (var k = 1; k < tokens.Count; k++)
        {
            if (tokens[k - 1] == Wildcard && SizeUnit(tokens[k]) is { } trailing)
            {
                tokens[k] = Wildcard + trailing;
            }
        }
    }

    internal static (string[] Tokens, string[] Separators) Tokenize(string message)
    {
        var text = message.AsSpan().Trim();
        var tokens = new List<string>();
        var separators = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            var end = WordEnd(text, i);
            tokens.Add(Mask(text[i..end]));
            var next = SpaceEnd(text, end);
            if (next < text.Length)
            {
                separators.Add(text[end..next].ToString());
            }
            i = next;
        }
        JoinSizeUnits(tokens);
        return ([.. tokens], [.. separators]);
    }

    // Printable ASCII: a token's end is searched as the first character outside it (vectorized), which is white space
    // in most logs; any other (a letter with an accent, a control character) is tested and passed over.
    private static readonly SearchValues<char> PrintableAscii = SearchValues.Create(
        Enumerable.Range('!', '~' - '!' + 1).Select(c => (char)c).ToArray());

    /// <summary>Where the token starting at <paramref name="start"/> ends: the next white space, or the text's end.</summary>
    private static int WordEnd(ReadOnlySpan<char> text, int start)
    {
        while (true)
        {
            var length = text[start..].IndexOfAnyExcept(PrintableAscii);
            if (length < 0)
            {
                return text.Length;
            }
            start += length;
            if (char.IsWhiteSpace(text[start]))
            {
                return start;
            }
            start++;
        }
    }

    /// <summary>Where the white space starting at <paramref name="start"/> ends (a character or two in most logs).</summary>
    private static int SpaceEnd(ReadOnlySpan<char> text, int start)
    {
        while (start < text.Length && char.IsWhiteSpace(text[start]))
        {
            start++;
        }
        return start;
    }

    private const string DelimiterCharacters = ":=,;()[]{}<>\"'/|@#";

    private static readonly SearchValues<char> Delimiters = SearchValues.Create(DelimiterCharacters);

    private static readonly HashSet<string> Calendar = new(
        "mon tue wed thu fri sat sun jan feb mar apr may jun jul aug sep oct nov dec monday tuesday wednesday thursday friday saturday sunday january february march april june july august september october november december"
            .Split(' '), StringComparer.OrdinalIgnoreCase);

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> CalendarNames = Calendar.GetAlternateLookup<ReadOnlySpan<char>>();

    private static readonly string[] SizeUnits = ["B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB"];

    /// <summary>The punctuation after a size unit (<c>KB,</c>: <c>,</c>), or null when the token is no size unit.</summary>
    private static string? SizeUnit(string token)
    {
        if (token.Length is 0 or > 4 || token[0] is not ('B' or 'K' or 'M' or 'G' or 'T' or 'P'))
        {
            return null;
        }
        var trailing = token.Length > 1 && ",;.)]".Contains(token[^1], StringComparison.Ordinal) ? token[^1..] : "";
        var unit = token.AsSpan(0, token.Length - trailing.Length);
        foreach (var candidate in SizeUnits)
        {
            if (unit.SequenceEqual(candidate))
            {
                return trailing;
            }
        }
        return null;
    }

    /// <summary>A token with the parts between its punctuation masked by class.</summary>
    internal static string Mask(ReadOnlySpan<char> token)
    {
        var buffer = ArrayPool<char>.Shared.Rent(MaskedMaximum(token.Length));
        var masked = new string(buffer, 0, MaskTo(token, buffer));
        ArrayPool<char>.Shared.Return(buffer);
        return masked;
    }

    /// <summary>The most characters <see cref="MaskTo"/> writes for a token of this length: each character may become a variable.</summary>
    private static int MaskedMaximum(int length) => 3 * length + Wildcard.Length;

    // Masking writes into a span, so that ingest, which masks every token it has not seen before, makes no string for
    // a masked token it has made before (see TokensOf).
    /// <summary>Writes a token masked as <see cref="Mask"/> says into <paramref name="output"/> (<see cref="MaskedMaximum"/> long); gives the length written.</summary>
    private static int MaskTo(ReadOnlySpan<char> token, Span<char> output)
    {
        if (token.IndexOfAny(Delimiters) < 0)
        {
            return MaskPartTo(token, output);
        }
        var written = 0;
        while (token.Length > 0)
        {
            var at = token.IndexOfAny(Delimiters);
            var part = at < 0 ? token : token[..at];
            written += MaskPartTo(part, output[written..]);
            if (at < 0)
            {
                break;
            }
            var end = at;
            while (end < token.Length && Delimiters.Contains(token[end]))
            {
                end++;
            }
            token[at..end].CopyTo(output[written..]);
            written += end - at;
            token = token[end..];
        }
        return Collapse(output[..written]);
    }

    private static int MaskPartTo(ReadOnlySpan<char> part, Span<char> output)
    {
        // A sentence's end: "done." is "done" and "." (a doubled mark, as in "...", stays with its word).
        var end = part.Length;
        while (end > 1 && part[end - 1] is '.' or '!' or '?' && part[end - 2] != part[end - 1])
        {
            end--;
        }
        var (kept, variable) = MaskWord(part[..end]);
        part[..kept].CopyTo(output);
        var written = kept;
        if (variable)
        {
            Wildcard.CopyTo(output[written..]);
            written += Wildcard.Length;
        }
        part[end..].CopyTo(output[written..]);
        return written + part.Length - end;
    }

    /// <summary>How a word masks: its first <c>Kept</c> characters as they are, then a variable when <c>Variable</c>.</summary>
    private static (int Kept, bool Variable) MaskWord(ReadOnlySpan<char> part)
    {
        if (!part.ContainsAny(AsciiDigits))
        {
            // Month and day names as dates write them (Jul, JUL, Sunday), not words such as "may" or "sat".
            return part.Length is >= 3 and <= 9 && char.IsAsciiLetterUpper(part[0]) && CalendarNames.Contains(part) ? (0, true) : (part.Length, false);
        }
        if (IsNumber(part) || (part.Length >= 6 && IsHex(part)))
        {
            return (0, true);
        }
        var digit = part.IndexOfAny(AsciiDigits);
        if (digit > 0 && part[digit - 1] is '-' or '+' && (digit == 1 || !char.IsLetterOrDigit(part[digit - 2])))
        {
            digit--;
        }
        if (digit == 0)
        {
            return (0, true);
        }
        var head = part[..digit];
        var rest = part[digit..];
        if (head[^1] == '_')
        {
            return (digit, true); // attempt_1445144423722_0020_m_000001_0
        }
        if (!IsIdCharacters(rest))
        {
            return (part.Length, false); // jk2_init: a digit inside a word
        }
        if (head[^1] == '-')
        {
            return (0, true); // a numbered host: msra-sa-41
        }
        if (head[^1] == '.')
        {
            return (digit, true); // core.1234
        }
        // ssh2, eth0: a short number in a name is part of it.
        return rest.Length <= 2 ? (part.Length, false) : (0, true);
    }

    /// <summary><c>42</c>, <c>-3.5</c>, <c>10.0.0.1</c>, <c>1,024</c>, <c>2e10</c>, and those with a unit of up to three letters (<c>12ms</c>, <c>5GB</c>, <c>99%</c>).</summary>
    private static bool IsNumber(ReadOnlySpan<char> part)
    {
        var i = 0;
        if (part[i] is '-' or '+')
        {
            i++;
        }
        var digits = Digits(part, ref i);
        if (digits == 0)
        {
            return false;
        }
        while (i + 1 < part.Length && part[i] is '.' or ',' && char.IsAsciiDigit(part[i + 1]))
        {
            i++;
            Digits(part, ref i);
        }
        if (i + 1 < part.Length && part[i] is 'e' or 'E')
        {
            var j = i + 1;
            if (j < part.Length && part[j] is '-' or '+')
            {
                j++;
            }
            if (Digits(part, ref j) > 0)
            {
                i = j;
            }
        }
        var unit = part.Length - i;
        if (unit > 3)
        {
            return false;
        }
        for (; i < part.Length; i++)
        {
            if (!char.IsAsciiLetter(part[i]) && part[i] != '%')
            {
                return false;
            }
        }
        return true;
    }

    private static int Digits(ReadOnlySpan<char> text, ref int i)
    {
        var start = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }
        return i - start;
    }

    private static bool IsHex(ReadOnlySpan<char> part)
    {
        if (part.StartsWith("0x") || part.StartsWith("0X"))
        {
            part = part[2..];
        }
        return part.Length > 0 && !part.ContainsAnyExcept(HexDigits);
    }

    // Digits are searched with SearchValues, not IndexOfAnyInRange: in code not yet optimized by the JIT (the first
    // seconds of a node, or longer while it keeps compiling) the generic range search boxes its bounds at every call.
    private static readonly SearchValues<char> AsciiDigits = SearchValues.Create("0123456789");

    private static readonly SearchValues<char> HexDigits = SearchValues.Create("0123456789abcdefABCDEF");

    private static readonly SearchValues<char> IdCharacters = SearchValues.Create("0123456789abcdefABCDEF_.:-+");

    private static bool IsIdCharacters(ReadOnlySpan<char> text) => !text.ContainsAnyExcept(IdCharacters);
}
