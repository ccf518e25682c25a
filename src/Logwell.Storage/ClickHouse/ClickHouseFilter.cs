using System.Text;
using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage.Querying;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// A query as two ClickHouse <c>WHERE</c> conditions: <see cref="Sql"/> holds for every event the query matches (and
/// perhaps for some it does not), <see cref="Sure"/> only for events it matches (perhaps not all). Rows that pass
/// <see cref="Sql"/> but not <see cref="Sure"/> are tested with <see cref="EventMatcher"/>, so every store answers every
/// query with the same hits, whatever SQL the server speaks; where the two conditions select the same rows, ClickHouse
/// counts and pages alone.
/// </summary>
/// <remarks>
/// The language's token semantics (runs joined by <c>_</c> and <c>.</c>, Unicode letters, .NET's case rules) have no
/// exact equivalent in SQL on every release (18.16 has no <c>hasToken</c>, and <c>match(s, '(?i)…')</c> silently
/// returns 0 there), so a text clause is bounded from both sides:
/// <list type="bullet">
/// <item>Necessary: the longest piece of its word that must occur literally, compared with ASCII case folding
/// (<c>positionCaseInsensitive</c>, the same on every release). Letters that a non-ASCII character folds to (<c>i</c>
/// from <c>İ</c> and <c>ı</c>, <c>k</c> from the Kelvin sign, <c>s</c> from <c>ſ</c>) cut pieces, since the text may
/// hold the other character. A clause with no necessary piece (a regular expression, a fuzzy term) selects every
/// row.</item>
/// <item>Sufficient: the word's first occurrence (ASCII words only) with an ASCII byte that is no letter or digit (or
/// the text's edge) on each side, which is a token boundary whatever else the text holds. A later occurrence, or one
/// beside a non-ASCII letter, is left to the matcher.</item>
/// </list>
/// </remarks>
public sealed record ClickHouseFilter(string Sql, string Sure)
{
    public static readonly ClickHouseFilter All = new("1", "1");

    private static readonly ClickHouseFilter Maybe = new("1", "0");

    /// <summary>Whether the conditions select the same rows: the SQL is the query.</summary>
    public bool Exact => Sql == Sure;

    /// <summary>
    /// The condition for <paramref name="node"/>; relative times are taken from <paramref name="now"/>. A field whose
    /// two columns (<see cref="ClickHouseEvents.FieldColumn"/>, <see cref="ClickHouseEvents.KindColumn"/>) are among
    /// <paramref name="columns"/> (the table's column names) is read from them.
    /// </summary>
    public static ClickHouseFilter For(QueryNode node, DateTimeOffset now, IReadOnlySet<string>? columns = null) =>
        new Builder(now, columns ?? NoColumns).For(node);

    private static readonly IReadOnlySet<string> NoColumns = new HashSet<string>();

    private sealed record Builder(DateTimeOffset Now, IReadOnlySet<string> Columns)
    {
        public ClickHouseFilter For(QueryNode node) => node switch
        {
            MatchAllNode => All,
            TermNode term => Text(term.Field, [term.Token], Bounded(term.Token, both: true, joined: term.Token.Contains('.') || term.Token.Contains('_'))),
            PhraseNode phrase => Text(phrase.Field, phrase.Tokens, Bounded(string.Join(' ', phrase.Tokens), both: true, joined: false)),
            PrefixNode prefix => Text(prefix.Field, [IsLiteral(prefix.Prefix) ? prefix.Prefix : LongestPiece(prefix.Prefix)], Bounded(prefix.Prefix, both: false, joined: false)),
            WildcardNode wildcard => Text(wildcard.Field, WildcardLiterals(wildcard.Pattern), null),
            RegexNode regex => Text(regex.Field, [], null),
            FuzzyNode fuzzy => Text(fuzzy.Field, [], null),
            ExistsNode exists => Exists(exists.Field),
            RangeNode range => Range(range, Now),
            AndNode and => Combine(and.Children.Select(For).ToList(), and: true),
            OrNode or => Combine(or.Children.Select(For).ToList(), and: false),
            NotNode not => Not(For(not.Child)),
            _ => Maybe,
        };

        private static ClickHouseFilter Not(ClickHouseFilter inner) => new(Negate(inner.Sure), Negate(inner.Sql));

        private static string Negate(string sql) => sql switch
        {
            "1" => "0",
            "0" => "1",
            _ => $"NOT ({sql})",
        };

        private static ClickHouseFilter Combine(List<ClickHouseFilter> parts, bool and) =>
            new(Join(parts.Select(p => p.Sql), and), Join(parts.Select(p => p.Sure), and));

        /// <summary>Conditions joined by AND or OR, with the constants folded.</summary>
        private static string Join(IEnumerable<string> conditions, bool and)
        {
            var (absorbing, neutral) = and ? ("0", "1") : ("1", "0");
            var kept = new List<string>();
            foreach (var condition in conditions)
            {
                if (condition == absorbing)
                {
                    return absorbing;
                }
                if (condition != neutral)
                {
                    kept.Add("(" + condition + ")");
                }
            }
            return kept.Count == 0 ? neutral : string.Join(and ? " AND " : " OR ", kept);
        }

        /// <summary>
        /// The rows where a value the clause reads (the message or any field, the message, or one field) holds every one
        /// of <paramref name="words"/>' necessary pieces; and the rows where one surely matches, by <paramref name="sure"/>
        /// on a text (null: none is sure). A field is read as the matcher reads it, by its first occurrence: from its own
        /// column when it has one, else from the arrays.
        /// </summary>
        private ClickHouseFilter Text(string? field, IEnumerable<string> words, Func<string, string>? sure)
        {
            var pieces = words.Select(w => IsLiteral(w) ? w : LongestPiece(w)).Where(p => p.Length > 0).Distinct(StringComparer.Ordinal).ToList();
            // A text holds every piece; a JSON array's strings may hold escapes (\u0041) that only decoding turns into the
            // letters, so an array with a backslash stays a candidate.
            string Holds(string text) => pieces.Count == 0 ? "1" : string.Join(" AND ", pieces.Select(p => $"positionCaseInsensitive({text}, {ClickHouseSql.Literal(p)}) > 0"));
            string InValue(string text, string kind) => pieces.Count == 0 ? "1" : $"{Holds(text)} OR {kind} = {(int)FieldKind.Json} AND position({text}, '\\\\') > 0";
            string Surely(string text, string kind) => $"{kind} NOT IN (0, {(int)FieldKind.Json}) AND {sure!(text)}";
            (string Text, string Kind, string Present) First(string name)
            {
                if (Columns.Contains(ClickHouseEvents.FieldColumn(name)) && Columns.Contains(ClickHouseEvents.KindColumn(name)))
                {
                    var kind = ClickHouseSql.Identifier(ClickHouseEvents.KindColumn(name));
                    return (ClickHouseSql.Identifier(ClickHouseEvents.FieldColumn(name)), kind, $"{kind} != 0");
                }
                var at = $"indexOf(field_names, {ClickHouseSql.Literal(name)})";
                return ($"field_texts[{at}]", $"field_kinds[{at}]", $"{at} > 0");
            }
            string necessary, sufficient;
            if (field is null)
            {
                // Every field but the pattern id, as the matcher reads them.
                var bare = $"n != {ClickHouseSql.Literal(PatternTagger.Field)}";
                necessary = pieces.Count == 0 ? "1" : $"({Holds("message")}) OR arrayExists((x, k, n) -> {bare} AND ({InValue("x", "k")}), field_texts, field_kinds, field_names)";
                sufficient = sure is null ? "0" : $"{sure("message")} OR arrayExists((x, k, n) -> {bare} AND {Surely("x", "k")}, field_texts, field_kinds, field_names)";
            }
            else
            {
                var (text, kind, present) = First(field);
                var inField = pieces.Count == 0 ? present : $"{present} AND ({InValue(text, kind)})";
                var isMessage = string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal);
                necessary = !isMessage ? inField : pieces.Count == 0 ? "1" : $"({Holds("message")}) OR ({inField})";
                sufficient = sure is null ? "0" : isMessage ? $"{sure("message")} OR ({Surely(text, kind)})" : Surely(text, kind);
            }
            return new ClickHouseFilter(necessary, sufficient);
        }
    }

    /// <summary>
    /// Whether a word's every character is one a byte search finds exactly up to ASCII case: printable ASCII that no
    /// other character folds to.
    /// </summary>
    private static bool IsLiteral(string word) => word.Length > 0 && word.All(c => c is >= ' ' and < '\x7f' && !Tokenizer.IsFoldTarget(c));

    /// <summary>
    /// The condition that a text holds <paramref name="word"/> (ASCII) at a token boundary: its first occurrence has no
    /// letter or digit before it and, when <paramref name="both"/>, none after it either; a <paramref name="joined"/>
    /// word (one holding <c>.</c> or <c>_</c>) must be a whole run, so neither may stand beside it. Null for a word
    /// with a character outside ASCII, whose case rules a byte search does not share.
    /// </summary>
    private static Func<string, string>? Bounded(string word, bool both, bool joined)
    {
        if (word.Length == 0 || !System.Text.Ascii.IsValid(word) || word.Any(c => c < ' ' || c == '\x7f'))
        {
            return null;
        }
        var literal = ClickHouseSql.Literal(word);
        return text =>
        {
            var at = $"positionCaseInsensitive({text}, {literal})";
            var sql = $"{at} > 0 AND {Boundary($"reinterpretAsUInt8(substring({text}, {at} - 1, 1))", joined)}";
            return both ? $"{sql} AND {Boundary($"reinterpretAsUInt8(substring({text}, {at} + {word.Length}, 1))", joined)}" : sql;
        };
    }

    /// <summary>
    /// A byte (0 past either edge of the text) that cannot continue a token: ASCII and no letter or digit, nor
    /// <c>.</c> or <c>_</c> where the word must be a whole run.
    /// </summary>
    private static string Boundary(string b, bool joined) => joined
        ? $"({b} < 46 OR {b} = 47 OR {b} BETWEEN 58 AND 64 OR {b} BETWEEN 91 AND 94 OR {b} = 96 OR {b} BETWEEN 123 AND 127)"
        : $"({b} < 48 OR {b} BETWEEN 58 AND 64 OR {b} BETWEEN 91 AND 96 OR {b} BETWEEN 123 AND 127)";

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
        var named = $"n = {ClickHouseSql.Literal(field)} OR substring(n, 1, {System.Text.Encoding.UTF8.GetByteCount(field) + 1}) = {ClickHouseSql.Literal(field + ".")}";
        // A null has no value, and neither has a JSON text with none inside (an empty array): only those two kinds need the matcher.
        return new ClickHouseFilter(
            $"arrayExists(n -> {named}, field_names)",
            $"arrayExists((n, k) -> ({named}) AND k NOT IN ({(int)FieldKind.Null}, {(int)FieldKind.Json}), field_names, field_kinds)");
    }

    private static ClickHouseFilter Range(RangeNode range, DateTimeOffset now)
    {
        var matcher = RangeMatcher.Create(range, now);
        if (matcher.IsTime)
        {
            return Maybe;
        }
        return new ClickHouseFilter($"has(field_names, {ClickHouseSql.Literal(range.Field)})", "0");
    }
}
