using System.Globalization;
using System.Text;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>
/// ClickHouse answers as the embedded engine does where its SQL and .NET's text rules part: letters that other
/// characters fold to (the Kelvin sign, <c>ſ</c>, <c>ı</c>, <c>İ</c>), JSON arrays whose strings hold <c>\u</c>
/// escapes, numbers and booleans searched as text, quotes, backslashes and control characters.
/// </summary>
public sealed class LogStoreAgreementTests
{
    private static readonly string[] Texts =
    [
        "\u212Aelvin at 300\u212A", "Kelvin at 300K", "\u017Ftop the \u017Fervice", "stop the service", "\u0131d \u0130D id ID", "Stra\u00DFe STRASSE",
        "user_id=42 svc.auth_token", "\u01C5ungla \u01C6", "\uFB00 ff FF", "\u03A3\u03C3\u03C2 sigma", "caf\u00E9 CAF\u00C9", "tab\there", "a'b\\c\"d",
        .. NastyStrings.All, .. NastyStrings.Random(7, 30),
    ];

    private static string Line(int id, string message, Random random)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("eid", id);
            writer.WriteString("message", message);
            writer.WriteString("tag", Texts[random.Next(Texts.Length)]);
            writer.WriteNumber("n", random.Next(3) == 0 ? 404 : random.Next(100_000));
            writer.WriteNumber("d", random.Next(2) == 0 ? 1.5e20 : 0.25);
            writer.WriteBoolean("b", random.Next(2) == 0);
            writer.WriteEndObject();
        }
        var json = Encoding.UTF8.GetString(buffer.ToArray());
        // An array whose strings arrive escaped, as some shippers write them: "\u0041" is "A" once decoded.
        var escaped = string.Concat(Texts[random.Next(Texts.Length)].Select(c => (char.IsAsciiLetter(c) && random.Next(3) == 0) || c is '"' or '\\' || c < ' ' ? $"\\u{(int)c:x4}" : c.ToString()));
        return json[..^1] + $",\"list\":[\"{escaped}\",7,null,\"\\u212Aelvin\"]}}";
    }

    [SkippableTheory]
    [InlineData(TestLogStore.ClickHouse)]
    [InlineData(TestLogStore.Chdb)]
    public async Task ClickHouseFindsWhatTheEngineFindsWhereCaseRulesAndEscapesDiffer(string kind)
    {
        var random = new Random(11);
        var lines = new StringBuilder();
        for (var id = 0; id < 120; id++)
        {
            lines.Append(Line(id, Texts[id % Texts.Length], random)).Append('\n');
        }
        var body = Encoding.UTF8.GetBytes(lines.ToString());
        List<LogEvent> Decoded()
        {
            var decoded = EventDecoder.DecodeJsonLines(body, DateTimeOffset.UtcNow);
            Assert.Equal(0, decoded.Rejected);
            return decoded.Events;
        }
        await using var engine = await TestLogStore.OpenAsync(TestLogStore.Embedded, "agree");
        await using var clickHouse = await TestLogStore.OpenAsync(kind, "agree");
        await engine.Set.AppendAsync(Decoded());
        await clickHouse.Set.AppendAsync(Decoded());
        // Fields with few values get columns of their own by themselves (d and b here); tag and list are given theirs, so
        // that fielded clauses read the odd texts from columns, and bare ones from the arrays.
        var set = (Logwell.Storage.ClickHouse.ClickHouseIndexSet)clickHouse.Set;
        await set.PromoteAsync(["tag", "list"]);
        var columns = await set.FieldColumnsAsync();
        Assert.All(new[] { "d", "b", "tag", "list" }, name => Assert.Contains(Logwell.Storage.ClickHouse.ClickHouseEvents.FieldColumn(name), columns));
        Assert.DoesNotContain(Logwell.Storage.ClickHouse.ClickHouseEvents.FieldColumn("eid"), columns);

        // Every token of every text, bare and on a field, as a prefix, with a wildcard inside, and in phrases.
        var words = new SortedSet<string>(StringComparer.Ordinal) { "kelvin", "stop", "service", "id", "strasse", "ff", "sigma", "cafe", "404", "true", "1.5e", "a", "elvin", "ab" };
        foreach (var text in Texts)
        {
            words.UnionWith(Tokenizer.Tokens(text));
        }
        var queries = new List<string>();
        foreach (var word in words.Where(w => w.Length > 0))
        {
            var quoted = "\"" + word.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
            queries.AddRange([quoted, $"message:{quoted}", $"tag:{quoted}", $"list:{quoted}", $"NOT {quoted}"]);
            if (word.All(char.IsLetterOrDigit) && word is not ("and" or "or" or "not" or "to"))
            {
                queries.AddRange([word.ToUpperInvariant(), $"{word[..Math.Min(2, word.Length)]}*", $"list:{word}"]);
                if (word.Length > 2)
                {
                    queries.Add($"{word[0]}?{word[2..]}");
                }
            }
        }
        queries.AddRange(["\"stop the\"", "\"at 300k\"", "n:404", "b:true", "d:1.5e20", "/k.*n/", "/\u0131d/", "kelvin~1", "_exists_:list", "n:[400 TO 500]"]);

        var failures = new List<string>();
        var telling = 0;
        foreach (var (where, reach) in engine.Phases)
        {
            await reach();
            foreach (var text in queries)
            {
                if (!QueryParser.TryParse(text, false, out var query, out var error))
                {
                    failures.Add($"'{text}' refused: {error}");
                    continue;
                }
                var expected = await IdsAsync(engine.Set, query);
                var found = await IdsAsync(clickHouse.Set, query);
                telling += expected.Count is > 0 and < 120 ? 1 : 0;
                if (!expected.SequenceEqual(found))
                {
                    failures.Add($"'{text}': the engine ({where}) finds [{string.Join(", ", expected)}], {kind} [{string.Join(", ", found)}]");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(telling > queries.Count, $"only {telling} of {queries.Count * 2} readings find some events but not all");
    }

    /// <summary>
    /// Thousands of candidates: counted in SQL when all are sure, paged by key within a time bound from the probe's
    /// quantiles, newest and oldest first, page after page; and the same words where some candidates are in doubt.
    /// </summary>
    [SkippableTheory]
    [InlineData(TestLogStore.ClickHouse)]
    [InlineData(TestLogStore.Chdb)]
    public async Task ManyCandidatesPageAsOnTheEngineInBothOrders(string kind)
    {
        var start = DateTimeOffset.UtcNow.AddHours(-2);
        var lines = new StringBuilder();
        for (var id = 0; id < 3000; id++)
        {
            // Some events share their time; "okay" and "ok_done" hold "ok" without its being a token (candidates in doubt).
            var message = (id % 7) switch { 0 => $"req {id} failed", 1 => $"req {id} okay", 2 => $"req {id} ok_done", _ => $"req {id} ok" };
            var level = id % 7 == 0 ? "ERROR" : "info";
            lines.Append(CultureInfo.InvariantCulture, $"{{\"eid\":{id},\"time\":\"{start.AddSeconds(id / 3 * 2):O}\",\"message\":\"{message}\",\"level\":\"{level}\"}}\n");
        }
        var body = Encoding.UTF8.GetBytes(lines.ToString());
        List<LogEvent> Decoded() => EventDecoder.DecodeJsonLines(body, DateTimeOffset.UtcNow).Events;
        await using var engine = await TestLogStore.OpenAsync(TestLogStore.Embedded, "pages");
        await using var clickHouse = await TestLogStore.OpenAsync(kind, "pages");
        await engine.Set.AppendAsync(Decoded());
        await clickHouse.Set.AppendAsync(Decoded());
        Assert.Contains(Logwell.Storage.ClickHouse.ClickHouseEvents.FieldColumn("level"), await ((Logwell.Storage.ClickHouse.ClickHouseIndexSet)clickHouse.Set).FieldColumnsAsync());

        var failures = new List<string>();
        foreach (var text in new[] { "*", "ok", "req", "level:info", "level:error", "failed AND level:ERROR", "NOT failed", "okay OR failed" })
        {
            Assert.True(QueryParser.TryParse(text, false, out var query, out var error), error?.ToString());
            foreach (var oldestFirst in new[] { false, true })
            {
                var expected = await PagesAsync(engine.Set, query, oldestFirst);
                var found = await PagesAsync(clickHouse.Set, query, oldestFirst);
                if (expected != found)
                {
                    failures.Add($"'{text}' {(oldestFirst ? "oldest" : "newest")} first: the engine {expected}, {kind} {found}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Three pages of 40 through the cursor: each page's ids and the total.</summary>
    private static async Task<string> PagesAsync(ILogIndexSet set, QueryNode query, bool oldestFirst)
    {
        var pages = new List<string>();
        EventPosition? after = null;
        for (var page = 0; page < 3; page++)
        {
            var result = await set.SearchAsync(new SearchRequest(query, After: after, Limit: 40) { OldestFirst = oldestFirst });
            pages.Add($"{result.Total}:[{string.Join(",", result.Hits.Select(h => h.TryGetField("eid", out var id) ? id.Long : -1))}]");
            after = result.NextCursor;
            if (after is null)
            {
                break;
            }
        }
        return string.Join(" ", pages);
    }

    /// <summary>The ids of the hits, then the total and the histogram's count and first page's size as ClickHouse reckons them apart from the hits.</summary>
    private static async Task<List<long>> IdsAsync(ILogIndexSet set, QueryNode query)
    {
        var all = await set.SearchAsync(new SearchRequest(query, Limit: 1000));
        var page = await set.SearchAsync(new SearchRequest(query, Limit: 3));
        var histogram = await set.HistogramAsync(new SearchRequest(query), TimeSpan.TicksPerMinute);
        return [.. all.Hits.Select(h => h.TryGetField("eid", out var id) ? id.Long : -1).Order(), -all.Total, -page.Total, -page.Hits.Count, -histogram.Total];
    }
}
