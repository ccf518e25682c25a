using Logwell.Core.Text;

namespace Logwell.Core.Query;

/// <summary>
/// The test behind <see cref="FuzzyNode"/>: a token of the text (as the tokenizer cuts it) within
/// <see cref="FuzzyNode.MaxEdits"/> edits of the term, ignoring case. Edits are Damerau-Levenshtein's, as Lucene
/// counts them: an insertion, a deletion, a substitution, or two neighbours swapped.
/// </summary>
public static class FuzzyTerm
{
    /// <summary>Elasticsearch's <c>AUTO</c>: no edit for terms of 1–2 characters, 1 for 3–5, 2 beyond.</summary>
    public static int AutoEdits(string term) => term.Length <= 2 ? 0 : term.Length <= 5 ? 1 : 2;

    public static bool Matches(FuzzyNode node, ReadOnlySpan<char> text)
    {
        if (Within(node.Term, text, node.MaxEdits))
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
}
