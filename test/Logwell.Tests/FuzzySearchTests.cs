using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>Fuzzy terms find the events a brute-force edit distance says they should, in memory and in segments.</summary>
public sealed class FuzzySearchTests
{
    private static readonly string[] Words = ["quick", "quikc", "qick", "quack", "quicker", "brown", "browne", "crown", "fox", "fix", "foxes", "gublet", "goblet", "globlet", "ab", "ba", "abc"];

    [Theory]
    [InlineData("quick~1")]
    [InlineData("quick~2")]
    [InlineData("quick~")]
    [InlineData("gublet~2")]
    [InlineData("ab~1")]
    [InlineData("fox~0")]
    [InlineData("word:brown~1")]
    public async Task FuzzyTermsMatchWithinTheirEditDistance(string query)
    {
        using var dir = new TempDirectory();
        var options = new EngineOptions { DataDirectory = dir.Path, BlockRows = 16, DefaultRetentionDays = 36500 };
        await using var engine = LogEngine.Open(options, TimeProvider.System);
        var store = await engine.GetOrCreateAsync("fuzzy");
        var events = Words.Select((w, i) => new LogEvent(EventTime.Yesterday.AddMinutes(i).UtcTicks, $"the {w} one", [new Field("word", FieldValue.FromString(w.ToUpperInvariant()))])).ToList();
        await store.AppendAsync([.. events]);

        var node = (FuzzyNode)QueryParser.Parse(query);
        var expected = Words.Where(w => (node.Field is null ? $"the {w} one".Split(' ') : [w]).Any(t => Distance(node.Term, t) <= node.MaxEdits)).Order().ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, Found(store, query));
        await store.FlushAsync();
        Assert.Equal(expected, Found(store, query));
    }

    private static List<string> Found(IndexSetStore store, string query) =>
        [.. store.Search(new SearchRequest(QueryParser.Parse(query), Limit: 100)).Hits.Select(h => h.Message.Split(' ')[1]).Order()];

    /// <summary>Damerau-Levenshtein (optimal string alignment), the plain full table.</summary>
    private static int Distance(string a, string b)
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
