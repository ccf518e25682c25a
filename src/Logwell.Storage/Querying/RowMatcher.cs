using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage.Segments;

namespace Logwell.Storage.Querying;

/// <summary>
/// Compiles a query against one block's columns: only the columns a clause can match are decoded, a bare clause
/// skips the fields whose index entry says they lack its tokens, and repeated strings (dictionary-coded columns) are
/// tested once each. The same semantics as <see cref="EventMatcher"/>.
/// </summary>
internal static class RowMatcher
{
    public static Func<int, bool> Compile(QueryNode node, BlockRows rows, Segment segment) => node switch
    {
        MatchAllNode => static _ => true,
        TermNode term => Text(term.Field, [term.Token], text => Tokenizer.ContainsToken(text, term.Token), rows, segment),
        PhraseNode phrase => Text(phrase.Field, phrase.Tokens, text => Tokenizer.ContainsPhrase(text, phrase.Tokens), rows, segment),
        PrefixNode prefix => Text(prefix.Field, BlockPlanner.WholeTokensOfPrefix(prefix.Prefix), text => Tokenizer.ContainsPrefixAtBoundary(text, prefix.Prefix), rows, segment),
        AndNode and => Predicates.All([.. and.Children.Select(c => Compile(c, rows, segment))]),
        OrNode or => Predicates.Any([.. or.Children.Select(c => Compile(c, rows, segment))]),
        NotNode not => Predicates.Not(Compile(not.Child, rows, segment)),
        _ => throw new NotSupportedException($"query node {node.GetType().Name} is not supported"),
    };

    private static Func<int, bool> Text(string? field, IReadOnlyList<string> indexTokens, Func<string, bool> test, BlockRows rows, Segment segment)
    {
        var tests = new List<Func<int, bool>>();
        var isMessage = string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal);
        if ((field is null || isMessage) && MayContain(segment, rows.Index, null, indexTokens))
        {
            var messages = rows.Messages;
            tests.Add(r => test(messages[r]));
        }
        IEnumerable<string> candidates = field is null ? rows.FieldNames : [field];
        foreach (var name in candidates)
        {
            if (!MayContain(segment, rows.Index, name, indexTokens))
            {
                continue;
            }
            var values = rows.Field(name);
            if (values is not null)
            {
                tests.Add(Column(values, test));
            }
        }
        return tests.Count switch
        {
            0 => static _ => false,
            1 => tests[0],
            _ => Predicates.Any([.. tests]),
        };
    }

    /// <summary>
    /// False when the block's index shows the field (null: the message) lacks one of the tokens every match must have.
    /// </summary>
    private static bool MayContain(Segment segment, int block, string? field, IReadOnlyList<string> tokens)
    {
        foreach (var token in tokens)
        {
            var hash = field is null ? TokenHash.Of(token) : TokenHash.Of(field, token);
            if (segment.BlocksWithToken(hash).BinarySearch(block) < 0)
            {
                return false;
            }
        }
        return true;
    }

    private static Func<int, bool> Column(FieldValue[] values, Func<string, bool> test)
    {
        // Dictionary-coded strings share instances: remember each one's answer.
        var memo = new Dictionary<string, bool>(ReferenceEqualityComparer.Instance);
        return r =>
        {
            var value = values[r];
            switch (value.Kind)
            {
                case 0 or FieldKind.Null:
                    return false;
                case FieldKind.String or FieldKind.Json:
                    var text = value.Text!;
                    if (memo.TryGetValue(text, out var known))
                    {
                        return known;
                    }
                    var result = test(text);
                    if (memo.Count < 4096)
                    {
                        memo[text] = result;
                    }
                    return result;
                default:
                    return test(value.SearchText!);
            }
        };
    }
}
