using Logwell.Core.Text;

namespace Logwell.Core.Query;

/// <summary>
/// The test behind <see cref="FuzzyNode"/>: a token of the text (as the tokenizer cuts it) within
/// <see cref="FuzzyNode.MaxEdits"/> edits of the term, ignoring case. Edits are Damerau-Levenshtein's, as Lucene
/// counts them: an insertion, a deletion, a substitution, or two neighbours swapped. A term that is not one token
/// (<c>web-01~1</c>) may also match the whole text (a field's whole value).
/// </summary>
public static class FuzzyTerm
{
    /// <summary>The longest token a segment's term dictionary holds.</summary>
    public const int DictionaryMaxLength = 64;

    /// <summary>
    /// The most digits a token of a term dictionary holds: numbers, ids, addresses and times, most of a log's distinct
    /// tokens, stay out of it. A token with more digits than a term differs from it by at least the difference, so a
    /// term whose digits plus edits stay within this bound can never reach a token left out (see <see cref="UsesDictionary"/>).
    /// </summary>
    public const int DictionaryMaxDigits = 2;

    /// <summary>Elasticsearch's <c>AUTO</c>: no edit for terms of 1–2 characters, 1 for 3–5, 2 beyond.</summary>
    public static int AutoEdits(string term) => term.Length <= 2 ? 0 : term.Length <= 5 ? 1 : 2;

    /// <summary>Whether a (lowercased) token goes into a term dictionary.</summary>
    public static bool BelongsInDictionary(ReadOnlySpan<char> token) => token.Length <= DictionaryMaxLength && Digits(token) <= DictionaryMaxDigits;

    /// <summary>
    /// Whether every token that can match <paramref name="node"/> is in a term dictionary, so the dictionary answers it:
    /// the term is one token, and neither its length nor its digits plus the edits can reach a token left out.
    /// </summary>
    public static bool UsesDictionary(FuzzyNode node) =>
        node.IsOneToken
        && node.Term.Length + node.MaxEdits <= DictionaryMaxLength
        && Digits(node.Term) + node.MaxEdits <= DictionaryMaxDigits;

    private static int Digits(ReadOnlySpan<char> text)
    {
        var digits = 0;
        foreach (var c in text)
        {
            if (char.IsDigit(c))
            {
                digits++;
            }
        }
        return digits;
    }

    /// <summary>Whether the tokenizer cuts <paramref name="term"/> into itself first (a run, possibly joined by '.' or '_').</summary>
    public static bool IsOneToken(string term)
    {
        var sink = new FirstToken();
        Tokenizer.Tokenize(term, ref sink);
        return sink.Length == term.Length;
    }

    public static bool Matches(FuzzyNode node, ReadOnlySpan<char> text)
    {
        if (!node.IsOneToken && Within(node.Term, text, node.MaxEdits))
        {
            return true;
        }
        var sink = new Sink(node.Term, node.MaxEdits);
        Tokenizer.Tokenize(text, ref sink);
        return sink.Found;
    }

    /// <summary>Whether <paramref name="candidate"/> (compared lowercased) is within <paramref name="maxEdits"/> edits of <paramref name="term"/> (lowercase).</summary>
    public static bool Within(string term, ReadOnlySpan<char> candidate, int maxEdits)
    {
        if (Math.Abs(term.Length - candidate.Length) > maxEdits)
        {
            return false;
        }
        // Optimal string alignment distance over three rows, stopping once a whole row is past the bound.
        var width = candidate.Length + 1;
        Span<int> buffer = width * 3 <= 768 ? stackalloc int[width * 3] : new int[width * 3];
        var before = buffer[..width];
        var previous = buffer.Slice(width, width);
        var current = buffer.Slice(2 * width, width);
        for (var j = 0; j < width; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= term.Length; i++)
        {
            current[0] = i;
            var best = i;
            for (var j = 1; j < width; j++)
            {
                var c = char.ToLowerInvariant(candidate[j - 1]);
                var cost = term[i - 1] == c ? 0 : 1;
                var value = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
                if (i > 1 && j > 1 && term[i - 1] == char.ToLowerInvariant(candidate[j - 2]) && term[i - 2] == c)
                {
                    value = Math.Min(value, before[j - 2] + 1);
                }
                current[j] = value;
                best = Math.Min(best, value);
            }
            if (best > maxEdits)
            {
                return false;
            }
            var recycled = before;
            before = previous;
            previous = current;
            current = recycled;
        }
        return previous[width - 1] <= maxEdits;
    }

    private struct Sink(string term, int maxEdits) : ITokenSink
    {
        public bool Found;

        public void Token(ReadOnlySpan<char> token)
        {
            if (!Found && Within(term, token, maxEdits))
            {
                Found = true;
            }
        }
    }

    private struct FirstToken : ITokenSink
    {
        public int Length;
        private bool _seen;

        public void Token(ReadOnlySpan<char> token)
        {
            if (!_seen)
            {
                _seen = true;
                Length = token.Length;
            }
        }
    }
}

/// <summary>
/// Finds the terms of a dictionary within a fuzzy term's edits, given in ascending ordinal order with the length of
/// the prefix each shares with the one before: the distance rows of a shared prefix are kept, so each term costs only
/// its new characters, and once a prefix is past the edits every term that starts with it is skipped unread. This is
/// the walk Lucene makes over its term dictionary with a Levenshtein automaton, on the same distance.
/// </summary>
public sealed class SortedTermWalker
{
    private readonly string _term;
    private readonly int _maxEdits;
    private readonly int _width;
    private readonly int _maxDepth;
    private readonly int[] _rows;
    private readonly char[] _chars;
    private int _computed;
    private int _deadAt = int.MaxValue;

    /// <param name="term">Lowercased, as the dictionary's terms are.</param>
    public SortedTermWalker(string term, int maxEdits)
    {
        _term = term;
        _maxEdits = maxEdits;
        _width = term.Length + 1;
        // Row i holds at least i - |term|: no row past this depth can be within the edits.
        _maxDepth = term.Length + maxEdits + 1;
        _rows = new int[(_maxDepth + 1) * _width];
        _chars = new char[_maxDepth];
        for (var j = 0; j < _width; j++)
        {
            _rows[j] = j;
        }
    }

    /// <summary>Whether the next candidate, sharing <paramref name="shared"/> characters with the previous, starts with a prefix already out of reach.</summary>
    public bool Skips(int shared) => shared >= _deadAt;

    /// <summary>Whether <paramref name="candidate"/>, which shares its first <paramref name="shared"/> characters with the previous candidate, is within the edits.</summary>
    public bool Matches(int shared, ReadOnlySpan<char> candidate)
    {
        if (shared >= _deadAt)
        {
            return false;
        }
        _deadAt = int.MaxValue;
        var depth = Math.Min(candidate.Length, _maxDepth);
        var start = Math.Min(shared, _computed);
        for (var i = start + 1; i <= depth; i++)
        {
            var c = candidate[i - 1];
            _chars[i - 1] = c;
            var row = _rows.AsSpan(i * _width, _width);
            var above = _rows.AsSpan((i - 1) * _width, _width);
            row[0] = i;
            var best = i;
            for (var j = 1; j < _width; j++)
            {
                var value = Math.Min(Math.Min(above[j] + 1, row[j - 1] + 1), above[j - 1] + (_term[j - 1] == c ? 0 : 1));
                if (i > 1 && j > 1 && _term[j - 2] == c && _term[j - 1] == _chars[i - 2])
                {
                    value = Math.Min(value, _rows[((i - 2) * _width) + j - 2] + 1);
                }
                row[j] = value;
                best = Math.Min(best, value);
            }
            if (best > _maxEdits)
            {
                // Every term starting with these i characters is out of reach.
                _computed = i - 1;
                _deadAt = i;
                return false;
            }
        }
        _computed = depth;
        return candidate.Length <= _maxDepth - 1 && _rows[(candidate.Length * _width) + _width - 1] <= _maxEdits;
    }
}

