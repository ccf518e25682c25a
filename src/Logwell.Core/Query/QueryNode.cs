namespace Logwell.Core.Query;

/// <summary>
/// The parsed form of a query. <c>Field</c> is null for a bare clause, which matches the message and every field.
/// </summary>
public abstract record QueryNode;

/// <summary>Matches every event (an empty query or <c>*</c>).</summary>
public sealed record MatchAllNode : QueryNode
{
    public static readonly MatchAllNode Instance = new();
}

/// <summary>A single token (one run as the tokenizer cuts it), matched whole and case-insensitively.</summary>
public sealed record TermNode(string? Field, string Token) : QueryNode;

/// <summary>A sequence of base tokens that must appear contiguously.</summary>
public sealed record PhraseNode(string? Field, IReadOnlyList<string> Tokens, string Text) : QueryNode
{
    public bool Equals(PhraseNode? other) =>
        other is not null && Field == other.Field && Tokens.SequenceEqual(other.Tokens);

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

/// <summary><c>/pattern/</c>: a regular expression that must match a whole token of the text, or the whole text, ignoring case.</summary>
public sealed record RegexNode(string? Field, string Pattern) : QueryNode;
