using System.Text;
using System.Text.RegularExpressions;
using Logwell.Core.Text;

namespace Logwell.Core.Query;

/// <summary>
/// The test behind <see cref="WildcardNode"/> and <see cref="RegexNode"/>: a pattern that must match a whole token of a
/// text (as the tokenizer cuts it: runs, joined runs and their parts) or the whole text, ignoring case. Patterns run on
/// .NET's non-backtracking engine, so their time grows linearly with the text and no pattern can run away; constructs
/// that need backtracking (backreferences, lookarounds) are refused when the query is parsed.
/// </summary>
public sealed class TokenPattern
{
    private readonly Regex _regex;

    private TokenPattern(Regex regex) => _regex = regex;

    /// <summary>A wildcard pattern: <c>*</c> any characters, <c>?</c> one, <c>\</c> before a character makes it literal.</summary>
    public static TokenPattern ForWildcard(string pattern) => new(new Regex(WildcardToRegex(pattern), Options));

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<QueryNode, TokenPattern> Compiled = new();

    /// <summary>The pattern of a wildcard or regex clause, compiled once per parsed query (a search tests it on every block).</summary>
    public static TokenPattern For(WildcardNode node) => Compiled.GetValue(node, static n => ForWildcard(((WildcardNode)n).Pattern));

    public static TokenPattern For(RegexNode node) => Compiled.GetValue(node, static n => ForRegex(((RegexNode)n).Pattern));

    public static TokenPattern ForRegex(string pattern) => new(new Regex($"^(?:{pattern})$", Options));

    /// <summary>
    /// Null when the clause's pattern runs on this engine, else why not: a regular expression that does not parse or
    /// needs backtracking, or a pattern whose automaton would pass the engine's bound (as Elasticsearch's
    /// <c>max_determinized_states</c> refuses one). What compiles is kept for the search that runs the clause.
    /// </summary>
    public static string? Error(WildcardNode node) => Error(() => For(node));

    /// <inheritdoc cref="Error(WildcardNode)"/>
    public static string? Error(RegexNode node) => Error(() => For(node));

    private static string? Error(Func<TokenPattern> compile)
    {
        try
        {
            _ = compile();
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
        catch (NotSupportedException e)
        {
            return e.Message;
        }
    }

    // Singleline: '.' and '*' also cover line breaks (messages may hold stack traces).
    private const RegexOptions Options = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | RegexOptions.Singleline;

    /// <summary>Whether the pattern matches <paramref name="text"/> whole (a token of a term dictionary, say).</summary>
    public bool MatchesWhole(ReadOnlySpan<char> text) => _regex.IsMatch(text);

    public bool Matches(ReadOnlySpan<char> text)
    {
        if (_regex.IsMatch(text))
        {
            return true;
        }
        var sink = new MatchSink(_regex);
        Tokenizer.Tokenize(text, ref sink);
        return sink.Found;
    }

    /// <summary><c>*</c> and <c>?</c> are wildcards; a backslash makes the next character literal.</summary>
    private static string WildcardToRegex(string pattern)
    {
        var sb = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                sb.Append(Regex.Escape(pattern[++i].ToString()));
                continue;
            }
            sb.Append(c switch
            {
                '*' => ".*",
                '?' => ".",
                _ => Regex.Escape(c.ToString()),
            });
        }
        return sb.Append('$').ToString();
    }

    private struct MatchSink(Regex regex) : ITokenSink
    {
        public bool Found;

        public void Token(ReadOnlySpan<char> token)
        {
            if (!Found && regex.IsMatch(token))
            {
                Found = true;
            }
        }
    }
}
