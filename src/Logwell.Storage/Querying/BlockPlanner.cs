using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage.Segments;

namespace Logwell.Storage.Querying;

/// <summary>
/// Uses a segment's token filters to name the blocks that can hold a match. Null means "every block": the filters cannot
/// narrow that clause (NOT, match-all, a prefix with no whole token).
/// </summary>
internal static class BlockPlanner
{
    public static HashSet<int>? CandidateBlocks(QueryNode node, Segment segment, DateTimeOffset now) => node switch
    {
        TermNode term => Lookup(segment, term.Field, term.Token),
        PhraseNode phrase => Intersect(phrase.Tokens.Select(t => Lookup(segment, phrase.Field, t))),
        PrefixNode prefix => PrefixBlocks(prefix, segment),
        FuzzyNode fuzzy when segment.FuzzyTerms(fuzzy) is { } terms => Union(terms.Select(t => Lookup(segment, fuzzy.Field, t))),
        RangeNode range when RangeMatcher.TimestampFields.Contains(range.Field) => TimeBlocks(segment, RangeMatcher.Create(range, now)),
        RangeNode range when EqualityTokens(range) is { Count: > 0 } tokens => Intersect(tokens.Select(t => Lookup(segment, range.Field, t))),
        AndNode and => Intersect(and.Children.Select(c => CandidateBlocks(c, segment, now))),
        OrNode or => Union(or.Children.Select(c => CandidateBlocks(c, segment, now))),
        _ => null,
    };

    /// <summary>
    /// The tokens of the value an equality (<c>field:=v</c>, <c>[v TO v]</c>, the filter <c>is</c>) asks for, when the
    /// token index can narrow it: a value that is not a number is matched as that exact text, so every match holds its
    /// tokens in that field. A number is compared by value (<c>500</c> equals <c>"500.0"</c>), and a date as a time
    /// (<c>2012-06-15</c> is the whole day, <c>2012-06-15T10:30:00Z</c> in it): neither is narrowed.
    /// </summary>
    private static List<string>? EqualityTokens(RangeNode range) =>
        range is { Lower: { } value, IncludeLower: true, IncludeUpper: true } && range.Upper == value
            && !double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)
            && !(Logwell.Core.Time.TimeExpression.LooksLikeDate(value) && RangeMatcher.IsTimeBound(value, out _))
            ? Tokenizer.BaseTokens(value)
            : null;

    /// <summary>The blocks whose time bounds meet a range on the event time.</summary>
    private static HashSet<int> TimeBlocks(Segment segment, RangeMatcher range)
    {
        var blocks = new HashSet<int>();
        for (var b = 0; b < segment.Blocks.Length; b++)
        {
            if (segment.Blocks[b].MaxTime >= range.LowerTicks && segment.Blocks[b].MinTime <= range.UpperTicks)
            {
                blocks.Add(b);
            }
        }
        return blocks;
    }

    private static HashSet<int>? PrefixBlocks(PrefixNode prefix, Segment segment)
    {
        var tokens = WholeTokensOfPrefix(prefix.Prefix);
        return tokens.Count == 0 ? null : Intersect(tokens.Select(t => Lookup(segment, prefix.Field, t)));
    }

    /// <summary>"web-1*": "web" is a whole token in every match; the trailing "1" may start a longer one.</summary>
    public static List<string> WholeTokensOfPrefix(string prefix)
    {
        var tokens = Tokenizer.BaseTokens(prefix);
        var complete = prefix.Length > 0 && !Tokenizer.IsWordChar(prefix[^1]) ? tokens.Count : tokens.Count - 1;
        return complete <= 0 ? [] : tokens.GetRange(0, complete);
    }

    private static HashSet<int> Lookup(Segment segment, string? field, string token)
    {
        if (field is not null && !string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal))
        {
            return [.. segment.BlocksWithToken(TokenHash.Of(field, token))];
        }
        // The message, and for a bare clause every field (or the field named "message" for message:).
        var blocks = new HashSet<int>(segment.BlocksWithToken(TokenHash.Of(token)));
        foreach (var name in segment.FieldNames)
        {
            if (field is null ? EventMatcher.IsBareSearched(name) : string.Equals(name, field, StringComparison.Ordinal))
            {
                blocks.UnionWith(segment.BlocksWithToken(TokenHash.Of(name, token)));
            }
        }
        return blocks;
    }

    private static HashSet<int>? Intersect(IEnumerable<HashSet<int>?> sets)
    {
        HashSet<int>? result = null;
        foreach (var set in sets)
        {
            if (set is null)
            {
                continue;
            }
            if (result is null)
            {
                result = [.. set];
            }
            else
            {
                result.IntersectWith(set);
            }
        }
        return result;
    }

    private static HashSet<int>? Union(IEnumerable<HashSet<int>?> sets)
    {
        var result = new HashSet<int>();
        foreach (var set in sets)
        {
            if (set is null)
            {
                return null;
            }
            result.UnionWith(set);
        }
        return result;
    }
}
