namespace Logwell.Core.Text;

/// <summary>
/// Splits text into case-insensitive tokens. A token is a run of letters and digits; runs joined by '_' or '.'
/// (identifiers, dotted names, IP addresses) are also a token as a whole, and a dotted run's '_'-joined pieces are too,
/// so <c>svc.user_id</c> is findable as <c>svc.user_id</c>, <c>user_id</c>, <c>svc</c>, <c>user</c> and <c>id</c>.
/// </summary>
public static class Tokenizer
{
    public static bool IsWordChar(char c) => c < 128 ? AsciiWordChars[c] : char.IsLetterOrDigit(c);

    private static readonly bool[] AsciiWordChars = BuildAsciiWordChars();

    private static bool[] BuildAsciiWordChars()
    {
        var table = new bool[128];
        for (var c = 0; c < 128; c++)
        {
            table[c] = char.IsLetterOrDigit((char)c);
        }
        return table;
    }

    private static bool IsJoiner(char c) => c is '_' or '.';

    private static readonly bool[] FoldTargets = BuildFoldTargets();

    private static bool[] BuildFoldTargets()
    {
        var targets = new bool[128];
        for (var c = 128; c <= char.MaxValue; c++)
        {
            foreach (var folded in new[] { char.ToLowerInvariant((char)c), char.ToUpperInvariant((char)c) })
            {
                if (folded < 128)
                {
                    targets[char.ToLowerInvariant(folded)] = targets[char.ToUpperInvariant(folded)] = true;
                }
            }
        }
        return targets;
    }

    /// <summary>
    /// Whether a character other than ASCII lowercases (or uppercases) to this ASCII letter: <c>k</c> from the Kelvin
    /// sign, <c>i</c> from <c>İ</c> and <c>ı</c>, <c>s</c> from <c>ſ</c> (read from .NET's own case tables). A text
    /// that matches a word with such a letter need not hold the letter's byte, so a byte search cannot rule it out.
    /// </summary>
    public static bool IsFoldTarget(char c) => c < 128 && FoldTargets[c];

    /// <summary>Calls <paramref name="sink"/> for every token of <paramref name="text"/> (not lowercased).</summary>
    public static void Tokenize<TSink>(ReadOnlySpan<char> text, ref TSink sink) where TSink : struct, ITokenSink
    {
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && !IsWordChar(text[i]))
            {
                i++;
            }
            if (i >= text.Length)
            {
                break;
            }
            var start = i;
            var end = i;
            var hasJoiner = false;
            while (i < text.Length)
            {
                var c = text[i];
                if (IsWordChar(c))
                {
                    i++;
                    end = i;
                }
                else if (IsJoiner(c) && i + 1 < text.Length && IsWordChar(text[i + 1]))
                {
                    hasJoiner = true;
                    i++;
                }
                else
                {
                    break;
                }
            }
            var run = text[start..end];
            if (!hasJoiner)
            {
                sink.Token(run);
                continue;
            }
            EmitJoinedRun(run, ref sink);
        }
    }

    private static void EmitJoinedRun<TSink>(ReadOnlySpan<char> run, ref TSink sink) where TSink : struct, ITokenSink
    {
        sink.Token(run);
        var hasDot = run.Contains('.');
        if (hasDot)
        {
            foreach (var range in run.Split('.'))
            {
                var piece = run[range];
                if (piece.IsEmpty)
                {
                    continue;
                }
                sink.Token(piece);
                if (piece.Contains('_'))
                {
                    EmitParts(piece, '_', ref sink);
                }
            }
        }
        else
        {
            EmitParts(run, '_', ref sink);
        }
    }

    private static void EmitParts<TSink>(ReadOnlySpan<char> run, char separator, ref TSink sink) where TSink : struct, ITokenSink
    {
        foreach (var range in run.Split(separator))
        {
            var piece = run[range];
            if (!piece.IsEmpty)
            {
                sink.Token(piece);
            }
        }
    }

    /// <summary>The tokens of <paramref name="text"/>, lowercased, in order (joined runs followed by their parts).</summary>
    public static List<string> Tokens(string text)
    {
        var sink = new ListSink([]);
        Tokenize(text, ref sink);
        return sink.List;
    }

    /// <summary>The maximal runs of letters and digits, lowercased: the sequence phrases are matched against.</summary>
    public static List<string> BaseTokens(ReadOnlySpan<char> text)
    {
        var list = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && !IsWordChar(text[i]))
            {
                i++;
            }
            var start = i;
            while (i < text.Length && IsWordChar(text[i]))
            {
                i++;
            }
            if (i > start)
            {
                list.Add(text[start..i].ToString().ToLowerInvariant());
            }
        }
        return list;
    }

    /// <summary>The runs of <paramref name="text"/> as <see cref="Tokenize"/> cuts them (joined runs whole).</summary>
    public static List<string> Runs(ReadOnlySpan<char> text)
    {
        var sink = new RunSink([]);
        Tokenize(text, ref sink);
        return sink.List;
    }

    /// <summary>
    /// Compares text with lowercase query words as the token index does: the text lowercased (invariant culture, code
    /// point by code point, the length kept). ASCII text needs no copy: there ignoring case is the same comparison.
    /// Comparing with <see cref="StringComparison.OrdinalIgnoreCase"/> elsewhere would part from the index on letters
    /// such as the Kelvin sign (lowercase <c>k</c>, but not equal to <c>k</c> ignoring case) or the final sigma.
    /// </summary>
    private static bool OnLowered<TState>(ReadOnlySpan<char> text, TState state, Func<ReadOnlySpan<char>, TState, StringComparison, bool> test)
    {
        if (System.Text.Ascii.IsValid(text))
        {
            return test(text, state, StringComparison.OrdinalIgnoreCase);
        }
        char[]? rented = null;
        var lowered = text.Length <= 256 ? stackalloc char[text.Length] : (rented = System.Buffers.ArrayPool<char>.Shared.Rent(text.Length)).AsSpan(0, text.Length);
        try
        {
            text.ToLowerInvariant(lowered);
            return test(lowered, state, StringComparison.Ordinal);
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// True when <paramref name="token"/> (one run, as <see cref="Runs"/> cuts it, lowercase) is among the tokens of
    /// <paramref name="text"/>, decided at each occurrence from its neighbours, without tokenizing the text.
    /// </summary>
    public static bool ContainsToken(ReadOnlySpan<char> text, string token) =>
        token.Length > 0 && OnLowered(text, token, static (text, token, comparison) => ContainsToken(text, token, comparison));

    private static bool ContainsToken(ReadOnlySpan<char> text, ReadOnlySpan<char> token, StringComparison comparison)
    {
        var hasDot = token.Contains('.');
        var hasUnderscore = token.Contains('_');
        var offset = 0;
        while (offset <= text.Length - token.Length)
        {
            var at = text[offset..].IndexOf(token, comparison);
            if (at < 0)
            {
                return false;
            }
            var pos = offset + at;
            var end = pos + token.Length;
            offset = pos + 1;
            if ((pos > 0 && IsWordChar(text[pos - 1])) || (end < text.Length && IsWordChar(text[end])))
            {
                continue;
            }
            // A joiner next to the occurrence is inside the run when a letter or digit follows it outward.
            var joinedBefore = pos >= 2 && IsJoiner(text[pos - 1]) && IsWordChar(text[pos - 2]);
            var joinedAfter = end + 1 < text.Length && IsJoiner(text[end]) && IsWordChar(text[end + 1]);
            if (!joinedBefore && !joinedAfter)
            {
                return true; // the whole run
            }
            if (hasDot)
            {
                continue; // only whole runs contain a dot
            }
            if (hasUnderscore)
            {
                // A dot-separated piece: its neighbours inside the run must be dots.
                if ((joinedBefore && text[pos - 1] == '_') || (joinedAfter && text[end] == '_'))
                {
                    continue;
                }
                return true;
            }
            return true; // letters and digits only: every such run is a token
        }
        return false;
    }

    /// <summary>
    /// Whether the base tokens of <paramref name="phrase"/> occur within <paramref name="slop"/> moves (Lucene's sloppy
    /// phrase): see <see cref="WithinSlop"/>.
    /// </summary>
    public static bool ContainsSloppyPhrase(ReadOnlySpan<char> text, IReadOnlyList<string> phrase, int slop)
    {
        if (phrase.Count == 0)
        {
            return false;
        }
        var tokens = BaseTokens(text);
        var positions = new List<int>();
        var starts = new int[phrase.Count + 1];
        for (var i = 0; i < phrase.Count; i++)
        {
            starts[i] = positions.Count;
            for (var p = 0; p < tokens.Count; p++)
            {
                if (string.Equals(tokens[p], phrase[i], StringComparison.Ordinal))
                {
                    positions.Add(p);
                }
            }
            if (positions.Count == starts[i])
            {
                return false;
            }
        }
        starts[phrase.Count] = positions.Count;
        return WithinSlop(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(positions), starts, SameWords(phrase), slop);
    }

    /// <summary>For each word of a phrase, the index of its first occurrence in the phrase (itself unless repeated).</summary>
    public static int[] SameWords(IReadOnlyList<string> phrase)
    {
        var first = new int[phrase.Count];
        for (var i = 0; i < phrase.Count; i++)
        {
            first[i] = i;
            for (var j = 0; j < i; j++)
            {
                if (string.Equals(phrase[j], phrase[i], StringComparison.OrdinalIgnoreCase))
                {
                    first[i] = j;
                    break;
                }
            }
        }
        return first;
    }

    /// <summary>
    /// Lucene's sloppy phrase test on positions: one position p_i for each word i of the phrase such that the values
    /// p_i - i all lie within <paramref name="slop"/> of each other, a repeated word taking a different position each
    /// time (<c>"a a"~2</c> needs two a's). Word i's positions, ascending, are
    /// <c>positions[starts[i]..starts[i+1]]</c>; <paramref name="sameAs"/> is <see cref="SameWords"/>.
    /// </summary>
    public static bool WithinSlop(ReadOnlySpan<int> positions, ReadOnlySpan<int> starts, ReadOnlySpan<int> sameAs, int slop)
    {
        var count = starts.Length - 1;
        Span<int> taken = count <= 64 ? stackalloc int[count] : new int[count];
        // A match's least p_i - i is some word's position less its index: try each as the window's start. Within the
        // window [m, m + slop] word i needs a position in [m + i, m + i + slop]; the occurrences of one repeated word
        // take, in phrase order, the first free position of their intervals, which finds distinct positions whenever
        // they exist (the intervals all have one length and come in order).
        for (var w = 0; w < count; w++)
        {
            foreach (var start in positions[starts[w]..starts[w + 1]])
            {
                var m = start - w;
                taken.Fill(int.MinValue);
                var all = true;
                for (var i = 0; i < count && all; i++)
                {
                    var own = positions[starts[i]..starts[i + 1]];
                    var lower = Math.Max(m + i, taken[sameAs[i]] + 1);
                    var at = own.BinarySearch(lower);
                    if (at < 0)
                    {
                        at = ~at;
                    }
                    all = at < own.Length && own[at] <= m + i + slop;
                    if (all)
                    {
                        taken[sameAs[i]] = own[at];
                    }
                }
                if (all)
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>True when the base tokens of <paramref name="text"/> contain <paramref name="phrase"/> (lowercase) contiguously.</summary>
    public static bool ContainsPhrase(ReadOnlySpan<char> text, IReadOnlyList<string> phrase) =>
        phrase.Count > 0 && OnLowered(text, phrase, static (text, phrase, comparison) => ContainsPhrase(text, phrase, comparison));

    private static bool ContainsPhrase(ReadOnlySpan<char> text, IReadOnlyList<string> phrase, StringComparison comparison)
    {
        var first = phrase[0].AsSpan();
        var offset = 0;
        while (offset <= text.Length - first.Length)
        {
            var at = text[offset..].IndexOf(first, comparison);
            if (at < 0)
            {
                return false;
            }
            var pos = offset + at;
            offset = pos + 1;
            if (!IsBaseToken(text, pos, first.Length))
            {
                continue;
            }
            var i = pos + first.Length;
            var matched = true;
            for (var j = 1; j < phrase.Count && matched; j++)
            {
                while (i < text.Length && !IsWordChar(text[i]))
                {
                    i++;
                }
                var next = phrase[j].AsSpan();
                matched = i + next.Length <= text.Length
                    && text.Slice(i, next.Length).Equals(next, comparison)
                    && IsBaseToken(text, i, next.Length);
                i += next.Length;
            }
            if (matched)
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsBaseToken(ReadOnlySpan<char> text, int start, int length) =>
        (start == 0 || !IsWordChar(text[start - 1])) && (start + length == text.Length || !IsWordChar(text[start + length]));

    /// <summary>True when <paramref name="prefix"/> (lowercase) occurs in <paramref name="text"/> at the start of a token.</summary>
    public static bool ContainsPrefixAtBoundary(ReadOnlySpan<char> text, string prefix) =>
        OnLowered(text, prefix, static (text, prefix, comparison) => ContainsPrefixAtBoundary(text, prefix, comparison));

    private static bool ContainsPrefixAtBoundary(ReadOnlySpan<char> text, ReadOnlySpan<char> prefix, StringComparison comparison)
    {
        var offset = 0;
        while (offset <= text.Length - prefix.Length)
        {
            var at = text[offset..].IndexOf(prefix, comparison);
            if (at < 0)
            {
                return false;
            }
            var pos = offset + at;
            if (pos == 0 || !IsWordChar(text[pos - 1]))
            {
                return true;
            }
            offset = pos + 1;
        }
        return false;
    }

    private struct ListSink(List<string> list) : ITokenSink
    {
        public readonly List<string> List = list;
        public readonly void Token(ReadOnlySpan<char> token) => List.Add(token.ToString().ToLowerInvariant());
    }

    private struct RunSink(List<string> list) : ITokenSink
    {
        public readonly List<string> List = list;
        private int _skipUntil;

        public void Token(ReadOnlySpan<char> token)
        {
            // Parts of a joined run follow the run itself; keep only the runs.
            if (_skipUntil > 0)
            {
                _skipUntil--;
                return;
            }
            List.Add(token.ToString().ToLowerInvariant());
            if (token.ContainsAny('.', '_'))
            {
                _skipUntil = CountParts(token);
            }
        }

        private static int CountParts(ReadOnlySpan<char> run)
        {
            var counter = new CountSink();
            EmitJoinedRun(run, ref counter);
            return counter.Count - 1;
        }
    }

    private struct CountSink : ITokenSink
    {
        public int Count;
        public void Token(ReadOnlySpan<char> token) => Count++;
    }
}

public interface ITokenSink
{
    void Token(ReadOnlySpan<char> token);
}
