using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Logwell.Bench;

/// <summary>The fixed, named queries, with the terms each one uses on this corpus.</summary>
internal sealed partial record QueryParameters(
    string Needle,
    string[] Phrase,
    string[] AndTerms,
    string Level,
    string HostPrefix,
    string NarrowTerm,
    DateTime NarrowFrom,
    DateTime NarrowTo,
    TimeSpan HistogramSpan)
{
    public static readonly string[] Names = ["needle", "phrase", "and_terms", "field_eq", "wildcard", "narrow_time", "count_by", "histogram"];

    public string PhraseText => string.Join(' ', Phrase);

    public static QueryParameters For(Corpus corpus)
    {
        var narrowFrom = Corpus.Start.AddDays(1).AddHours(1);
        if (corpus.Source.StartsWith("built-in", StringComparison.Ordinal))
        {
            return new QueryParameters(corpus.NeedleTraceId, ["connection", "reset", "by"], ["upstream", "timeout"], "ERROR", "web-1",
                "payment", narrowFrom, narrowFrom.AddMinutes(5), TimeSpan.FromMinutes(1));
        }
        var (phrase, andTerms) = ChooseWords(corpus);
        return new QueryParameters(corpus.NeedleTraceId, phrase, andTerms, "ERROR", "web-1", andTerms[0], narrowFrom, narrowFrom.AddMinutes(5), TimeSpan.FromMinutes(1));
    }

    /// <summary>
    /// Picks words every system reads the same way: letters only, never touching a letter, digit, '_', '.', '-' or
    /// '@' (where tokenizers disagree), so token, substring and Lucene matches agree.
    /// </summary>
    private static (string[] Phrase, string[] AndTerms) ChooseWords(Corpus corpus)
    {
        var messages = new List<string>();
        using (var reader = new StreamReader(corpus.Path))
        {
            while (messages.Count < 200_000 && reader.ReadLine() is { } line)
            {
                using var doc = JsonDocument.Parse(line);
                messages.Add(doc.RootElement.GetProperty("message").GetString()!);
            }
        }
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var bad = new HashSet<string>(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            foreach (Match m in WordPattern().Matches(message))
            {
                var word = m.Value.ToLowerInvariant();
                var before = m.Index == 0 ? ' ' : message[m.Index - 1];
                var after = m.Index + m.Length >= message.Length ? ' ' : message[m.Index + m.Length];
                if (!IsClean(before) || !IsClean(after) || word.Length < 5)
                {
                    bad.Add(word);
                }
                counts[word] = counts.GetValueOrDefault(word) + 1;
            }
        }
        // Also refuse words that occur inside other words (substring search would find them there).
        var words = counts.Where(c => !bad.Contains(c.Key)).OrderByDescending(c => c.Value).Select(c => c.Key).Take(400).ToList();
        var lower = messages.Select(m => m.ToLowerInvariant()).ToList();
        var clean = words.Where(w => lower.Sum(m => CountSubstring(m, w)) == counts[w]).ToList();

        string[]? phrase = null;
        foreach (var message in lower)
        {
            var tokens = message.Split(' ');
            for (var i = 0; i + 2 < tokens.Length && phrase is null; i++)
            {
                if (clean.Contains(tokens[i]) && clean.Contains(tokens[i + 1]) && clean.Contains(tokens[i + 2]))
                {
                    phrase = [tokens[i], tokens[i + 1], tokens[i + 2]];
                }
            }
            if (phrase is not null)
            {
                break;
            }
        }
        phrase ??= [clean[0], clean[1], clean[2]];
        var first = clean[0];
        var withFirst = lower.Where(m => m.Contains(first, StringComparison.Ordinal)).ToList();
        var second = clean.Skip(1).FirstOrDefault(w => withFirst.Any(m => m.Contains(w, StringComparison.Ordinal)) && withFirst.Any(m => !m.Contains(w, StringComparison.Ordinal))) ?? clean[1];
        return (phrase, [first, second]);
    }

    private static bool IsClean(char c) => !char.IsLetterOrDigit(c) && c is not ('_' or '.' or '-' or '@');

    private static int CountSubstring(string text, string word)
    {
        var count = 0;
        for (var i = text.IndexOf(word, StringComparison.Ordinal); i >= 0; i = text.IndexOf(word, i + word.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    public string Describe(string name) => name switch
    {
        "needle" => $"trace id {Needle}",
        "phrase" => $"\"{PhraseText}\"",
        "and_terms" => $"{AndTerms[0]} AND {AndTerms[1]}",
        "field_eq" => $"level:{Level}",
        "wildcard" => $"host:{HostPrefix}*",
        "narrow_time" => $"{NarrowTerm} in [{NarrowFrom:HH:mm}, {NarrowTo:HH:mm}) of {NarrowFrom:yyyy-MM-dd}",
        "count_by" => "count of events by level",
        "histogram" => $"count per {HistogramSpan.TotalMinutes.ToString(CultureInfo.InvariantCulture)} minute over the whole range",
        _ => name,
    };

    [GeneratedRegex(@"\p{L}+")]
    private static partial Regex WordPattern();
}
