using System.Globalization;
using System.Text.RegularExpressions;

namespace Logwell.Core.Query;

/// <summary>One aggregation of <c>stats</c> or <c>timechart</c>: <c>count()</c>, <c>count(f)</c>, <c>sum(f)</c>,
/// <c>avg(f)</c>, <c>min(f)</c>, <c>max(f)</c>, <c>count_distinct(f)</c>, <c>p50(f)</c>...<c>p99(f)</c>; <c>Name</c> is its
/// column (<c>as name</c>, else the text as written).</summary>
public sealed record Aggregation(string Function, string? Field, string Name, int Percentile = 0);

/// <summary>A stage after <c>|</c>.</summary>
public abstract record PipeStage;

public sealed record StatsStage(IReadOnlyList<Aggregation> Aggregations, IReadOnlyList<string> By) : PipeStage;

/// <summary><c>timechart span=1m count() [by f]</c>; a span of 0 is <c>auto</c>.</summary>
public sealed record TimechartStage(long SpanTicks, Aggregation Aggregation, string? By) : PipeStage;

/// <summary><c>top N f</c> (most frequent values first) or <c>rare N f</c> (least frequent first).</summary>
public sealed record TopStage(int Count, string Field, bool Rare) : PipeStage;

/// <summary>
/// <c>patterns [N] [compare=1d]</c>: the N most frequent templates of the matching events' messages (50 unless
/// given); with <c>compare</c>, each one's count in the same window that long before, and whether it is new.
/// </summary>
public sealed record PatternsStage(int Count, long CompareTicks) : PipeStage;

public sealed record FieldsStage(IReadOnlyList<string> Columns) : PipeStage;

public sealed record SortStage(string Column, bool Descending) : PipeStage;

public sealed record HeadStage(int Count) : PipeStage;

/// <summary><c>where &lt;condition&gt;</c>: keeps the rows the condition holds for.</summary>
public sealed record WhereStage(WhereExpression Condition) : PipeStage;

/// <summary>A query and the stages that turn its matches into a table.</summary>
public sealed record Pipeline(QueryNode Query, IReadOnlyList<PipeStage> Stages);

/// <summary>
/// Splits <c>query | stage | stage</c> at the pipes outside quotes, regular expressions and <c>||</c>, parses the query
/// with <see cref="QueryParser"/> and each stage; errors carry their position in the whole text.
/// </summary>
public static partial class PipelineParser
{
    public const int MaxRows = 10_000;

    public static bool TryParse(string? text, out Pipeline pipeline, out QueryError? error) => TryParse(text, defaultOr: false, out pipeline, out error);

    /// <summary>As <see cref="TryParse(string?, out Pipeline, out QueryError?)"/>, with OR between side-by-side clauses when <paramref name="defaultOr"/>.</summary>
    public static bool TryParse(string? text, bool defaultOr, out Pipeline pipeline, out QueryError? error)
    {
        text ??= "";
        pipeline = new Pipeline(MatchAllNode.Instance, []);
        var cuts = PipePositions(text);
        var queryText = cuts.Count == 0 ? text : text[..cuts[0]];
        if (!QueryParser.TryParse(queryText, defaultOr, out var query, out error))
        {
            return false;
        }
        var stages = new List<PipeStage>();
        for (var i = 0; i < cuts.Count; i++)
        {
            var start = cuts[i] + 1;
            var end = i + 1 < cuts.Count ? cuts[i + 1] : text.Length;
            var stage = ParseStage(text[start..end], start, out error);
            if (stage is null)
            {
                return false;
            }
            if (stages.Count > 0 && stage is StatsStage or TimechartStage or TopStage or PatternsStage)
            {
                error = new QueryError(start, $"'{text[start..end].Trim()}' works on events and must come first", "sort, head, fields or where after the first stage");
                return false;
            }
            stages.Add(stage);
        }
        pipeline = new Pipeline(query, stages);
        return true;
    }

    private static List<int> PipePositions(string text)
    {
        var cuts = new List<int>();
        var inQuote = false;
        var inRegex = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\')
            {
                i++;
                continue;
            }
            if (c == '"' && !inRegex)
            {
                inQuote = !inQuote;
            }
            else if (c == '/' && !inQuote && (inRegex || i == 0 || char.IsWhiteSpace(text[i - 1]) || text[i - 1] is ':' or '('))
            {
                inRegex = !inRegex;
            }
            else if (c == '|' && !inQuote && !inRegex)
            {
                if (i + 1 < text.Length && text[i + 1] == '|')
                {
                    i++; // "||" is OR
                    continue;
                }
                cuts.Add(i);
            }
        }
        return cuts;
    }

    private static PipeStage? ParseStage(string stage, int offset, out QueryError? error)
    {
        error = null;
        var trimmed = stage.Trim();
        var at = offset + stage.Length - stage.TrimStart().Length;
        var space = trimmed.IndexOf(' ', StringComparison.Ordinal);
        var command = space < 0 ? trimmed : trimmed[..space];
        var rest = space < 0 ? "" : trimmed[(space + 1)..].Trim();
        switch (command)
        {
            case "stats":
                {
                    var (aggregationText, by) = SplitBy(rest);
                    var aggregations = ParseAggregations(aggregationText, at, out error);
                    if (aggregations is null)
                    {
                        return null;
                    }
                    return new StatsStage(aggregations, by);
                }
            case "timechart":
                {
                    var span = 0L;
                    var match = SpanPattern().Match(rest);
                    if (match.Success)
                    {
                        if (match.Groups[1].Value != "auto" && !Time.Intervals.TryParse(match.Groups[1].Value, out span))
                        {
                            error = new QueryError(at, $"bad span '{match.Groups[1].Value}'", "span=auto or a number with s, m, h or d, such as span=5m");
                            return null;
                        }
                        rest = rest[match.Length..].Trim();
                    }
                    var (aggregationText, by) = SplitBy(rest);
                    var aggregations = ParseAggregations(aggregationText.Length == 0 ? "count()" : aggregationText, at, out error);
                    if (aggregations is null)
                    {
                        return null;
                    }
                    if (aggregations.Count != 1 || by.Count > 1)
                    {
                        error = new QueryError(at, "timechart takes one aggregation and at most one 'by' field", "timechart span=1m count() by host");
                        return null;
                    }
                    return new TimechartStage(span, aggregations[0], by.Count == 0 ? null : by[0]);
                }
            case "top" or "rare":
                {
                    var match = TopPattern().Match(rest);
                    if (!match.Success)
                    {
                        error = new QueryError(at, $"'{command}' needs a count and a field", $"{command} 10 host");
                        return null;
                    }
                    var n = match.Groups[1].Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 10;
                    return n is < 1 or > MaxRows
                        ? Fail(out error, at, $"'{command}' shows 1 to {MaxRows} values", $"{command} 10 host")
                        : new TopStage(n, match.Groups[2].Value, command == "rare");
                }
            case "patterns":
                {
                    var count = 50;
                    var compare = 0L;
                    var (countGiven, compareGiven) = (false, false);
                    foreach (var word in rest.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        if ((word.StartsWith("compare=", StringComparison.Ordinal) ? compareGiven : countGiven) is true)
                        {
                            return Fail(out error, at, $"'patterns' takes one count and one compare, not a second '{word}'", "patterns 20 compare=1d");
                        }
                        if (word.StartsWith("compare=", StringComparison.Ordinal))
                        {
                            compareGiven = true;
                            var span = word["compare=".Length..];
                            // Weeks too: a week before is the usual comparison for what follows the week's rhythm.
                            var weeks = span.EndsWith('w') && int.TryParse(span[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var w) && w is >= 1 and <= 520 ? w : 0;
                            compare = weeks > 0 ? weeks * TimeSpan.TicksPerDay * 7 : Time.Intervals.TryParse(span, out var ticks) ? ticks : 0;
                            if (compare <= 0)
                            {
                                return Fail(out error, at, $"bad compare '{word}'", "compare=1d or compare=1w: the same window that long before");
                            }
                        }
                        else if (!(countGiven = int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out count)) || count is < 1 or > MaxRows)
                        {
                            return Fail(out error, at, $"'patterns' shows 1 to {MaxRows} templates, not '{word}'", "patterns 20 compare=1d");
                        }
                    }
                    return new PatternsStage(count, compare);
                }
            case "fields":
                {
                    var columns = rest.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    return columns.Length == 0 ? Fail(out error, at, "'fields' needs column names", "fields host, count") : new FieldsStage(columns);
                }
            case "sort":
                {
                    var match = SortPattern().Match(rest);
                    return match.Success
                        ? new SortStage(match.Groups[1].Value, !string.Equals(match.Groups[2].Value, "asc", StringComparison.Ordinal))
                        : Fail(out error, at, "'sort' needs 'by' and a column", "sort by count desc");
                }
            case "head":
                {
                    return int.TryParse(rest.Length == 0 ? "10" : rest, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxRows
                        ? new HeadStage(n)
                        : Fail(out error, at, $"'head' takes a count from 1 to {MaxRows}", "head 10");
                }
            case "where":
                {
                    var conditionAt = at + trimmed.Length - rest.Length;
                    return WhereExpression.TryParse(rest, conditionAt, out var condition, out error) ? new WhereStage(condition) : null;
                }
            default:
                return Fail(out error, at, command.Length == 0 ? "empty stage after '|'" : $"unknown stage '{command}'", "stats, timechart, top, rare, patterns, fields, sort, head or where");
        }
    }

    private static PipeStage? Fail(out QueryError? error, int at, string message, string expected)
    {
        error = new QueryError(at, message, expected);
        return null;
    }

    private static (string Aggregations, List<string> By) SplitBy(string text)
    {
        var match = ByPattern().Match(text);
        if (!match.Success)
        {
            return (text, []);
        }
        return (text[..match.Index].Trim(), [.. text[(match.Index + match.Length)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]);
    }

    private static List<Aggregation>? ParseAggregations(string text, int at, out QueryError? error)
    {
        error = null;
        var result = new List<Aggregation>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var match = AggregationPattern().Match(part);
            if (!match.Success)
            {
                error = new QueryError(at, $"cannot read aggregation '{part}'", "count(), sum(f), avg(f), min(f), max(f), count_distinct(f) or p50(f)..p99(f), optionally 'as name'");
                return null;
            }
            var function = match.Groups[1].Value;
            var field = match.Groups[2].Value.Trim();
            var percentile = 0;
            if (function.StartsWith('p') && (!int.TryParse(function[1..], NumberStyles.None, CultureInfo.InvariantCulture, out percentile) || percentile is < 1 or > 99))
            {
                error = new QueryError(at, $"unknown aggregation '{function}'", "p1 to p99");
                return null;
            }
            if (field.Length == 0 && function != "count")
            {
                error = new QueryError(at, $"'{function}' needs a field", $"{function}(latency)");
                return null;
            }
            var name = match.Groups[3].Success ? match.Groups[3].Value : part[..(match.Groups[2].Index + match.Groups[2].Length + 1)].Trim();
            result.Add(new Aggregation(function.StartsWith('p') ? "percentile" : function, field.Length == 0 ? null : field, name, percentile));
        }
        if (result.Count == 0)
        {
            error = new QueryError(at, "stats needs an aggregation", "count()");
            return null;
        }
        return result;
    }

    [GeneratedRegex(@"^span=(\S+)")]
    private static partial Regex SpanPattern();

    [GeneratedRegex(@"^(?:(\d+)\s+)?([\w.@-]+)$")]
    private static partial Regex TopPattern();

    [GeneratedRegex(@"^by\s+(\S+)(?:\s+(asc|desc))?$")]
    private static partial Regex SortPattern();

    [GeneratedRegex(@"(?:^|\s)by\s+")]
    private static partial Regex ByPattern();

    [GeneratedRegex(@"^(count|sum|avg|min|max|count_distinct|p\d+)\(\s*([\w.@-]*)\s*\)(?:\s+as\s+([\w.@-]+))?$")]
    private static partial Regex AggregationPattern();
}
