using System.Text;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage.Querying;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// A query as a ClickHouse <c>WHERE</c> condition that holds for every event the query matches (and perhaps for some it
/// does not): the rows it selects are then tested with <see cref="EventMatcher"/>, so every store answers every query
/// with the same hits, whatever SQL the server speaks.
/// </summary>
/// <remarks>
/// The language's token semantics (runs joined by <c>_</c> and <c>.</c>, Unicode letters, .NET's case rules) have no
/// exact equivalent in SQL on every release (18.16 has no <c>hasToken</c>, and <c>match(s, '(?i)…')</c> silently
/// returns 0 there), so a text clause becomes a necessary condition: the longest piece of its token that must occur
/// literally, compared with ASCII case folding (<c>positionCaseInsensitive</c>, the same on every release). Letters that
/// a non-ASCII character folds to (<c>i</c> from <c>İ</c> and <c>ı</c>, <c>k</c> from the Kelvin sign, <c>s</c> from
/// <c>ſ</c>) cut pieces, since the text may hold the other character. A clause with no necessary piece (a regular
/// expression, a fuzzy term) selects every row, and the matcher decides.
/// </remarks>
public sealed record ClickHouseFilter(string Sql, bool Exact)
{
    public static readonly ClickHouseFilter All = new("1", true);

    private static readonly ClickHouseFilter Maybe = new("1", false);

    /// <summary>The condition for <paramref name="node"/>; relative times are taken from <paramref name="now"/>.</summary>
    public static ClickHouseFilter For(QueryNode node, DateTimeOffset now) => node switch
    {
        MatchAllNode => All,
        TermNode term => Text(term.Field, [term.Token]),
        PhraseNode phrase => Text(phrase.Field, phrase.Tokens),
        PrefixNode prefix => Text(prefix.Field, [prefix.Prefix]),
        WildcardNode wildcard => Text(wildcard.Field, WildcardLiterals(wildcard.Pattern)),
        RegexNode regex => Text(regex.Field, []),
        FuzzyNode fuzzy => Text(fuzzy.Field, []),
        ExistsNode exists => Exists(exists.Field),
        RangeNode range => Range(range, now),
        AndNode and => Combine(and.Children, " AND ", now),
        OrNode or => Combine(or.Children, " OR ", now),
        NotNode not => For(not.Child, now) is { Exact: true } inner ? new ClickHouseFilter(inner.Sql == "1" ? "0" : $"NOT ({inner.Sql})", true) : Maybe,
        _ => Maybe,
    };

    private static ClickHouseFilter Combine(IReadOnlyList<QueryNode> children, string op, DateTimeOffset now)
    {
        var parts = children.Select(c => For(c, now)).ToList();
        var exact = parts.All(p => p.Exact);
        if (op == " OR " && parts.Any(p => p.Sql == "1"))
        {
            return new ClickHouseFilter("1", exact);
        }
        var kept = parts.Where(p => p.Sql != "1").Select(p => "(" + p.Sql + ")").ToList();
        return kept.Count == 0 ? new ClickHouseFilter("1", exact) : new ClickHouseFilter(string.Join(op, kept), exact);
    }

    /// <summary>
    /// The rows where a value the clause reads (the message and every field, the message, or one field) holds each of
    /// <paramref name="words"/>' necessary pieces.
    /// </summary>
    private static ClickHouseFilter Text(string? field, IEnumerable<string> words)
    {
        var pieces = words.Select(LongestPiece).Where(p => p.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        if (pieces.Count == 0)
        {
            return field is null || string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal)
                ? Maybe
                : new ClickHouseFilter($"has(field_names, {ClickHouseSql.Literal(field)})", false);
        }
        var conditions = pieces.Select(piece =>
        {
            var literal = ClickHouseSql.Literal(piece);
            // A field's text is its value's search text; a JSON array's strings may hold escapes (\u0041) that only
            // decoding turns into the letters, so an array with a backslash stays a candidate.
            var inField = $"positionCaseInsensitive(x, {literal}) > 0 OR k = {(int)FieldKind.Json} AND position(x, '\\\\') > 0";
            var inMessage = $"positionCaseInsensitive(message, {literal}) > 0";
            return field switch
            {
                null => $"{inMessage} OR arrayExists((x, k) -> {inField}, field_texts, field_kinds)",
                EventMatcher.MessageField => $"{inMessage} OR arrayExists((n, x, k) -> n = 'message' AND ({inField}), field_names, field_texts, field_kinds)",
                _ => $"arrayExists((n, x, k) -> n = {ClickHouseSql.Literal(field)} AND ({inField}), field_names, field_texts, field_kinds)",
            };
        });
        return new ClickHouseFilter(string.Join(" AND ", conditions.Select(c => "(" + c + ")")), false);
    }

    /// <summary>The longest run of <paramref name="word"/> that any text it matches holds literally, up to ASCII case.</summary>
    internal static string LongestPiece(string word)
    {
        var best = "";
        var start = -1;
        for (var i = 0; i <= word.Length; i++)
        {
            var keep = i < word.Length && !Tokenizer.IsFoldTarget(word[i]) && (char.IsAsciiLetterOrDigit(word[i]) || word[i] is '_' or '.');
            if (keep && start < 0)
            {
                start = i;
            }
            else if (!keep && start >= 0)
            {
                if (i - start > best.Length)
                {
                    best = word[start..i];
                }
                start = -1;
            }
        }
        return best;
    }

    /// <summary>The literal runs of a wildcard pattern (<c>\</c> makes the next character literal).</summary>
    private static List<string> WildcardLiterals(string pattern)
    {
        var runs = new List<string>();
        var run = new StringBuilder();
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c is '*' or '?')
            {
                runs.Add(run.ToString());
                run.Clear();
                continue;
            }
            if (c == '\\' && i + 1 < pattern.Length)
            {
                c = pattern[++i];
            }
            run.Append(c);
        }
        runs.Add(run.ToString());
        return runs;
    }

    private static ClickHouseFilter Exists(string field)
    {
        if (string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal) || RangeMatcher.TimestampFields.Contains(field))
        {
            return Maybe;
        }
        var under = ClickHouseSql.Literal(field + ".");
        return new ClickHouseFilter($"arrayExists(n -> n = {ClickHouseSql.Literal(field)} OR substring(n, 1, {System.Text.Encoding.UTF8.GetByteCount(field) + 1}) = {under}, field_names)", false);
    }

    private static ClickHouseFilter Range(RangeNode range, DateTimeOffset now)
    {
        var matcher = RangeMatcher.Create(range, now);
        if (matcher.IsTime)
        {
            return Maybe;
        }
        return new ClickHouseFilter($"has(field_names, {ClickHouseSql.Literal(range.Field)})", false);
    }
}
