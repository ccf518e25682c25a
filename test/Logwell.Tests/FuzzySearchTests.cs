using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>Fuzzy terms find the events a brute-force edit distance says they should, in memory and in segments.</summary>
public sealed class FuzzySearchTests
{
    // Tokens with up to 2 digits are in a segment's term dictionary, those with more are not: "abc1~1" is answered by
    // the dictionary, "abc12~1" by reading the texts, and both must agree with the plain distance.
    private static readonly string[] Words = ["quick", "quikc", "qick", "quack", "quicker", "brown", "browne", "crown", "fox", "fix", "foxes", "gublet", "goblet", "globlet", "ab", "ba", "abc", "abc1", "abc12", "abc123", "ab12c", "Straße", "strasse", "éclair", "eclair"];

    [Theory]
    [InlineData("quick~1")]
    [InlineData("quick~2")]
    [InlineData("quick~")]
    [InlineData("gublet~2")]
    [InlineData("ab~1")]
    [InlineData("fox~0")]
    [InlineData("word:brown~1")]
    [InlineData("abc1~1")]
    [InlineData("abc12~1")]
    [InlineData("abc~2")]
    [InlineData("ab12c~2")]
    [InlineData("strase~1")]
    [InlineData("eclair~1")]
    [InlineData("word:abc~1")]
    public async Task FuzzyTermsMatchWithinTheirEditDistance(string query)
    {
        var events = Words.Select((w, i) => new LogEvent(EventTime.Yesterday.AddMinutes(i).UtcTicks, $"the {w} one", [new Field("word", FieldValue.FromString(w.ToUpperInvariant()))]));
        var node = (FuzzyNode)QueryParser.Parse(query);
        var expected = Words.Where(w => (node.Field is null ? $"the {w} one".Split(' ') : [w]).Any(t => Distance(node.Term, t) <= node.MaxEdits)).Order().ToList();
        Assert.NotEmpty(expected);
        var (inMemory, inSegments) = await SearchedTwice.FindAsync(events, query, h => h.Message.Split(' ')[1]);
        Assert.Equal(expected, inMemory);
        Assert.Equal(expected, inSegments);
    }

    [Fact]
    public void AWalkOverASortedDictionaryFindsEveryTermWithinTheEdits()
    {
        var random = new Random(7);
        for (var round = 0; round < 200; round++)
        {
            // Short words over a small alphabet share many prefixes, which is where the walk skips and reuses rows.
            string Word() => new([.. Enumerable.Range(0, random.Next(0, 8)).Select(_ => "abcd1"[random.Next(5)])]);
            var dictionary = Enumerable.Range(0, random.Next(1, 60)).Select(_ => Word()).Distinct().Order(StringComparer.Ordinal).ToList();
            var term = Word();
            var edits = random.Next(0, 3);
            var walker = new SortedTermWalker(term, edits);
            var found = new List<string>();
            var previous = "";
            foreach (var candidate in dictionary)
            {
                var shared = candidate.AsSpan().CommonPrefixLength(previous);
                if (!walker.Skips(shared) && walker.Matches(shared, candidate))
                {
                    found.Add(candidate);
                }
                previous = candidate;
            }
            var expected = dictionary.Where(w => Distance(term, w) <= edits).ToList();
            Assert.True(expected.SequenceEqual(found), $"'{term}'~{edits} over [{string.Join(",", dictionary)}]: expected [{string.Join(",", expected)}], walked [{string.Join(",", found)}]");
        }
    }

    /// <summary>Damerau-Levenshtein (optimal string alignment), the plain full table.</summary>
    internal static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }
        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }
        return d[a.Length, b.Length];
    }
}

/// <summary>A field pattern finds what the same clause finds on any one of the matching fields, in memory and in segments.</summary>
public sealed class FieldPatternSearchTests
{
    [Theory]
    [InlineData("book.*:quick", new[] { "b1", "b2" })]
    [InlineData("book.\\*:(quick OR brown)", new[] { "b1", "b2", "b3" })]
    [InlineData("book.t*:brown", new[] { "b3" })]
    [InlineData("*:fox", new[] { "m1", "b2" })]
    [InlineData("book.*:>3", new[] { "b3" })]
    [InlineData("mess?ge:fox", new[] { "m1" })]
    public async Task AFieldPatternMatchesOnAnyMatchingField(string query, string[] expected)
    {
        LogEvent Event(string id, string message, params (string Name, FieldValue Value)[] fields) =>
            new(EventTime.Yesterday.UtcTicks, message, [new Field("id", FieldValue.FromString(id)), .. fields.Select(f => new Field(f.Name, f.Value))]);
        var (inMemory, inSegments) = await SearchedTwice.FindAsync(
        [
            Event("b1", "one", ("book.title", FieldValue.FromString("quick start"))),
            Event("b2", "two", ("book.author", FieldValue.FromString("quick fox"))),
            Event("b3", "three", ("book.title", FieldValue.FromString("brown")), ("book.pages", FieldValue.FromLong(5))),
            Event("m1", "the fox", ("other", FieldValue.FromString("quick"))),
        ], query, h => h.Fields.First(f => f.Name == "id").Value.Text!);
        Assert.Equal(expected.Order(), inMemory);
        Assert.Equal(expected.Order(), inSegments);
    }
}

/// <summary>Sloppy phrases find what an exhaustive search over token positions finds, in memory and in segments.</summary>
public sealed class SloppyPhraseSearchTests
{
    private static readonly string[] Texts =
    [
        "harry potter and the secrets", "secrets of harry", "harry secrets", "the harry big bad secrets", "harry x x x x x x secrets",
        "secrets harry", "quick brown fox", "fox brown quick", "quick red fox", "brown quick fox jumps", "quick quick brown",
        "quick x quick", "quick", "brown quick x x quick",
    ];

    [Theory]
    [InlineData("\"harry secrets\"~0")]
    [InlineData("\"harry secrets\"~1")]
    [InlineData("\"harry secrets\"~2")]
    [InlineData("\"harry secrets\"~3")]
    [InlineData("\"harry secrets\"~5")]
    [InlineData("\"quick brown fox\"~1")]
    [InlineData("\"quick brown fox\"~2")]
    [InlineData("\"quick brown fox\"~4")]
    [InlineData("\"quick quick\"~0")]
    [InlineData("\"quick quick\"~1")]
    [InlineData("\"quick quick\"~2")]
    [InlineData("\"quick brown quick\"~2")]
    [InlineData("\"quick brown quick\"~4")]
    public async Task ASloppyPhraseMatchesWithinItsMoves(string query)
    {
        var phrase = Assert.IsType<PhraseNode>(QueryParser.Parse(query));
        var expected = Texts.Where(t => Within(t.Split(' '), phrase.Tokens, phrase.Slop)).Order().ToList();
        var (inMemory, inSegments) = await SearchedTwice.FindAsync(Texts.Select((t, i) => new LogEvent(EventTime.Yesterday.AddMinutes(i).UtcTicks, t, [])), query, h => h.Message);
        Assert.Equal(expected, inMemory);
        Assert.Equal(expected, inSegments);
    }

    /// <summary>
    /// Many rows over a five-word vocabulary: every word is in most rows of a block, so the phrases are answered from
    /// the positions of the block postings, and must agree with the exhaustive search too.
    /// </summary>
    [Fact]
    public async Task SloppyPhrasesFromPostingPositionsMatchTheExhaustiveSearch()
    {
        var random = new Random(11);
        string[] vocabulary = ["a", "b", "c", "d", "x"];
        var texts = Enumerable.Range(0, 160).Select(i => $"r{i} " + string.Join(' ', Enumerable.Range(0, random.Next(2, 9)).Select(_ => vocabulary[random.Next(vocabulary.Length)]))).ToList();
        var events = texts.Select((t, i) => new LogEvent(EventTime.Yesterday.AddSeconds(i).UtcTicks, t, [])).ToList();
        for (var round = 0; round < 12; round++)
        {
            var words = Enumerable.Range(0, random.Next(2, 4)).Select(_ => vocabulary[random.Next(4)]).ToList();
            var slop = random.Next(0, 5);
            var query = $"\"{string.Join(' ', words)}\"~{slop}";
            var expected = texts.Where(t => Within(t.Split(' '), words, slop)).Order().ToList();
            var (inMemory, inSegments) = await SearchedTwice.FindAsync(events, query, h => h.Message);
            Assert.True(expected.SequenceEqual(inMemory), $"{query} in memory");
            Assert.True(expected.SequenceEqual(inSegments), $"{query} in segments: expected {expected.Count}, found {inSegments.Count}");
        }
    }

    /// <summary>Every choice of one position per phrase token (distinct positions), its span of position - index.</summary>
    internal static bool Within(IReadOnlyList<string> words, IReadOnlyList<string> phrase, int slop)
    {
        bool Choose(int i, List<int> chosen)
        {
            if (i == phrase.Count)
            {
                var shifted = chosen.Select((p, k) => p - k).ToList();
                return shifted.Max() - shifted.Min() <= slop;
            }
            for (var p = 0; p < words.Count; p++)
            {
                if (!chosen.Contains(p) && string.Equals(words[p], phrase[i], StringComparison.OrdinalIgnoreCase))
                {
                    chosen.Add(p);
                    var found = Choose(i + 1, chosen);
                    chosen.RemoveAt(chosen.Count - 1);
                    if (found)
                    {
                        return true;
                    }
                }
            }
            return false;
        }
        return Choose(0, []);
    }
}

/// <summary>What a query finds among some events, from memory tables and again once they are written out as segments.</summary>
internal static class SearchedTwice
{
    public static async Task<(List<string> InMemory, List<string> InSegments)> FindAsync(IEnumerable<LogEvent> events, string query, Func<LogEvent, string> key)
    {
        using var dir = new TempDirectory();
        // Blocks of 16 rows: a few blocks per segment.
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 16, DefaultRetentionDays = 36500 };
        await using var engine = LogEngine.Open(options, TimeProvider.System);
        var store = await engine.GetOrCreateAsync("searched");
        await store.AppendAsync([.. events]);
        List<string> Found() => [.. store.Search(new SearchRequest(QueryParser.Parse(query), Limit: 100)).Hits.Select(key).Order()];
        var inMemory = Found();
        await store.FlushAsync();
        return (inMemory, Found());
    }
}
