using System.Text;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>Runs the examples of docs/query-language.md: its events, and each query with the events it must find.</summary>
public sealed class QueryLanguageDocTests
{
    [Fact]
    public async Task EveryExampleFindsTheEventsTheDocumentationLists()
    {
        var doc = File.ReadAllText(FindDoc());
        var events = DecodeSampleEvents(doc);
        var examples = Examples(doc);
        Assert.True(events.Count >= 5 && examples.Count >= 20, "the examples section was not found whole");

        using var dir = new TempDirectory();
        var engine = LogEngine.Open(new EngineOptions { DataDirectory = dir.Path, DefaultRetentionDays = 36_500 }, TimeProvider.System);
        try
        {
            var store = await engine.GetOrCreateAsync("docs");
            await store.AppendAsync(events);
            // Once answered from memory, once from segments.
            Check(store, examples);
            await store.FlushAsync();
            Check(store, examples);
        }
        finally
        {
            await engine.DisposeAsync();
        }
    }

    private static void Check(IndexSetStore store, List<(string Query, long[] Ids)> examples)
    {
        foreach (var (query, ids) in examples)
        {
            var result = store.Search(new SearchRequest(QueryParser.Parse(query)));
            var found = result.Hits.Select(e => e.TryGetField("id", out var id) ? id.Long : -1).Order().ToArray();
            Assert.True(ids.SequenceEqual(found), $"'{query}': the documentation lists [{string.Join(", ", ids)}], the search found [{string.Join(", ", found)}]");
        }
    }

    private static string FindDoc()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "docs", "query-language.md");
            if (File.Exists(path))
            {
                return path;
            }
        }
        throw new FileNotFoundException("docs/query-language.md not found above the test directory");
    }

    private static List<LogEvent> DecodeSampleEvents(string doc)
    {
        var start = doc.IndexOf("```ndjson\n", StringComparison.Ordinal) + "```ndjson\n".Length;
        var end = doc.IndexOf("```", start, StringComparison.Ordinal);
        var decoded = EventDecoder.DecodeJsonLines(Encoding.UTF8.GetBytes(doc[start..end]), DateTimeOffset.UtcNow);
        Assert.Equal(0, decoded.Rejected);
        return decoded.Events;
    }

    private static List<(string Query, long[] Ids)> Examples(string doc)
    {
        var section = doc[doc.IndexOf("## Examples", StringComparison.Ordinal)..];
        var examples = new List<(string, long[])>();
        foreach (var line in section.Split('\n'))
        {
            if (!line.StartsWith("| `", StringComparison.Ordinal))
            {
                continue;
            }
            var close = line.LastIndexOf("` |", StringComparison.Ordinal);
            var query = line[3..close].Replace("\\|", "|", StringComparison.Ordinal);
            var ids = line[(close + 3)..].Trim().TrimEnd('|').Trim();
            examples.Add((query, ids == "none" ? [] : [.. ids.Split(',').Select(id => long.Parse(id.Trim(), System.Globalization.CultureInfo.InvariantCulture))]));
        }
        return examples;
    }
}
