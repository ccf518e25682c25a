namespace Logwell.Core.Query;

/// <summary>
/// The parsed form of a query. <c>Field</c> is null for a bare clause, which matches the message and every field.
/// </summary>
public abstract record QueryNode
{
    /// <summary>
    /// The most clauses (terms, phrases, prefixes, wildcards, regular expressions, ranges, <c>_exists_</c>) one query may
    /// hold, filters included: Lucene's and Elasticsearch's default <c>max_clause_count</c>. Each clause costs a pass
    /// over the postings or the text of every block it reaches, so a longer query is refused before it runs.
    /// </summary>
    public const int MaxClauses = 1024;

    /// <summary>The clauses of <paramref name="node"/>, counted without recursion (a deep tree cannot exhaust the stack).</summary>
    public static int CountClauses(QueryNode node) => Clauses(node).Count();

    /// <summary>
    /// The clauses of <paramref name="node"/>: every node under it but <c>AND</c>, <c>OR</c>, <c>NOT</c> and match-all,
    /// visited without recursion (a deep tree cannot exhaust the stack).
    /// </summary>
    public static IEnumerable<QueryNode> Clauses(QueryNode node)
    {
        var pending = new Stack<QueryNode>();
        pending.Push(node);
        while (pending.Count > 0)
        {
            switch (pending.Pop())
            {
                case AndNode and:
                    foreach (var child in and.Children)
                    {
                        pending.Push(child);
                    }
                    break;
                case OrNode or:
                    foreach (var child in or.Children)
                    {
                        pending.Push(child);
                    }
                    break;
                case NotNode not:
                    pending.Push(not.Child);
                    break;
                case MatchAllNode:
                    break;
                case var clause:
                    yield return clause;
                    break;
            }
        }
    }

    /// <summary>Why <paramref name="node"/> is too costly to run, or null.</summary>
    public static string? CostError(QueryNode node)
    {
        var clauses = CountClauses(node);
        return clauses > MaxClauses
            ? $"the query has {clauses} clauses, over the limit of {MaxClauses} (as Elasticsearch's max_clause_count): split it into several searches"
            : null;
    }
}

/// <summary>Matches every event (an empty query or <c>*</c>).</summary>
public sealed record MatchAllNode : QueryNode
{
    public static readonly MatchAllNode Instance = new();
}

/// <summary>A single token (one run as the tokenizer cuts it), matched whole and case-insensitively.</summary>
public sealed record TermNode(string? Field, string Token) : QueryNode;

/// <summary>
/// A sequence of base tokens that must appear contiguously, or with <see cref="Slop"/> (<c>"a b"~N</c>) within N
/// moves as Lucene counts them: each token's position less its place in the phrase, all within N of each other (two
/// tokens swapped take 2).
/// </summary>
public sealed record PhraseNode(string? Field, IReadOnlyList<string> Tokens, string Text) : QueryNode
{
    public int Slop { get; init; }

    public bool Equals(PhraseNode? other) =>
        other is not null && Field == other.Field && Slop == other.Slop && Tokens.SequenceEqual(other.Tokens);

    public override int GetHashCode() => HashCode.Combine(Field, Tokens.Count);
}

/// <summary>Text that must occur at the start of a token (a trailing wildcard, <c>web-*</c>).</summary>
public sealed record PrefixNode(string? Field, string Prefix) : QueryNode;

public sealed record AndNode(IReadOnlyList<QueryNode> Children) : QueryNode
{
    public bool Equals(AndNode? other) => other is not null && Children.SequenceEqual(other.Children);
    public override int GetHashCode() => Children.Count;
}

public sealed record OrNode(IReadOnlyList<QueryNode> Children) : QueryNode
{
    public bool Equals(OrNode? other) => other is not null && Children.SequenceEqual(other.Children);
    public override int GetHashCode() => Children.Count;
}

public sealed record NotNode(QueryNode Child) : QueryNode;

/// <summary><c>_exists_:field</c>: the event has the field with a value other than null (for <c>message</c>, a message).</summary>
public sealed record ExistsNode(string Field) : QueryNode;

/// <summary>
/// <c>field:[a TO b]</c>, <c>{a TO b}</c>, mixed brackets, <c>field:&gt;a</c>, <c>&gt;=</c>, <c>&lt;</c>, <c>&lt;=</c>; a null
/// bound is open (<c>*</c>). Numbers compare as numbers, the event time (<c>@timestamp</c>, <c>t</c>, ...) as instants,
/// anything else as text in ordinal order. See <see cref="RangeMatcher"/>.
/// </summary>
public sealed record RangeNode(string Field, string? Lower, string? Upper, bool IncludeLower, bool IncludeUpper) : QueryNode;

/// <summary>
/// A term with <c>*</c> (any characters) or <c>?</c> (one character) inside: matches when a token of the text, or the
/// whole text, fits the pattern, ignoring case. A lone trailing <c>*</c> is a <see cref="PrefixNode"/>.
/// </summary>
public sealed record WildcardNode(string? Field, string Pattern) : QueryNode;

/// <summary>
/// <c>book.*:x</c>: <paramref name="Clause"/> (written with <paramref name="Pattern"/> as its field) on each field whose
/// name matches the pattern (<c>*</c> any characters, <c>?</c> one), the message included; any one of them may match.
/// </summary>
public sealed record FieldPatternNode(string Pattern, QueryNode Clause) : QueryNode
{
    /// <summary>
    /// <paramref name="clause"/> (a group, perhaps) with each of its clauses that names <paramref name="pattern"/>
    /// made a pattern clause of its own; AND, OR and NOT keep their places, and a clause naming another field (an
    /// inner group's) stays as it is.
    /// </summary>
    public static QueryNode EachClause(string pattern, QueryNode clause) => clause switch
    {
        AndNode n => new AndNode([.. n.Children.Select(c => EachClause(pattern, c))]),
        OrNode n => new OrNode([.. n.Children.Select(c => EachClause(pattern, c))]),
        NotNode n => new NotNode(EachClause(pattern, n.Child)),
        TermNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        PhraseNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        PrefixNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        WildcardNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        RegexNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        FuzzyNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        RangeNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        ExistsNode { Field: var f } when f == pattern => new FieldPatternNode(pattern, clause),
        _ => clause,
    };

    /// <summary>Whether a field's name matches the pattern (names compare case by case, as Elasticsearch's do).</summary>
    public bool MatchesName(string name)
    {
        // Glob matching with one point to come back to after the last '*': at most pattern × name steps, no regex
        // automaton to build (a pattern of many '?' would pass the non-backtracking engine's bound).
        int p = 0, n = 0, star = -1, resume = 0;
        while (n < name.Length)
        {
            if (p < Pattern.Length && (Pattern[p] == '?' || Pattern[p] == name[n]))
            {
                p++;
                n++;
            }
            else if (p < Pattern.Length && Pattern[p] == '*')
            {
                star = p++;
                resume = n;
            }
            else if (star >= 0)
            {
                p = star + 1;
                n = ++resume;
            }
            else
            {
                return false;
            }
        }
        while (p < Pattern.Length && Pattern[p] == '*')
        {
            p++;
        }
        return p == Pattern.Length;
    }

    /// <summary>The clause with <paramref name="field"/> where it names the pattern (an inner group's own field stays).</summary>
    public QueryNode On(string field) => Replace(Clause, field);

    private QueryNode Replace(QueryNode node, string field) => node switch
    {
        TermNode n when n.Field == Pattern => n with { Field = field },
        PhraseNode n when n.Field == Pattern => n with { Field = field },
        PrefixNode n when n.Field == Pattern => n with { Field = field },
        WildcardNode n when n.Field == Pattern => n with { Field = field },
        RegexNode n when n.Field == Pattern => n with { Field = field },
        FuzzyNode n when n.Field == Pattern => n with { Field = field },
        RangeNode n when n.Field == Pattern => n with { Field = field },
        ExistsNode n when n.Field == Pattern => n with { Field = field },
        AndNode n => new AndNode([.. n.Children.Select(c => Replace(c, field))]),
        OrNode n => new OrNode([.. n.Children.Select(c => Replace(c, field))]),
        NotNode n => new NotNode(Replace(n.Child, field)),
        _ => node,
    };
}

/// <summary><c>term~N</c>: a token within <paramref name="MaxEdits"/> (0–2) edits of <paramref name="Term"/> (lowercase).</summary>
public sealed record FuzzyNode(string? Field, string Term, int MaxEdits) : QueryNode
{
    /// <summary>Whether the term is one token as the tokenizer cuts it (else it may also match a whole value).</summary>
    public bool IsOneToken { get; } = FuzzyTerm.IsOneToken(Term);
}

/// <summary><c>/pattern/</c>: a regular expression that must match a whole token of the text, or the whole text, ignoring case.</summary>
public sealed record RegexNode(string? Field, string Pattern) : QueryNode;
