using Logwell.Core.Events;
using Logwell.Core.Patterns;
using Logwell.Core.Query;
using Logwell.Core.Text;

namespace Logwell.Storage.Querying;

/// <summary>
/// Compiles a query into a predicate over events: the semantics that segment blocks answer through their token index
/// and that events in memory are tested against. A bare clause matches the message or any field but the pattern id
/// (<see cref="PatternTagger.Field"/>: a hexadecimal id that <c>a*</c> or <c>de?d</c> would find by chance);
/// <c>message:</c> names the message.
/// </summary>
public static class EventMatcher
{
    public const string MessageField = "message";

    /// <summary>Whether a bare clause reads the field: every field but the pattern id.</summary>
    public static bool IsBareSearched(string field) => !string.Equals(field, PatternTagger.Field, StringComparison.Ordinal);

    /// <summary>Compiles <paramref name="node"/>; relative times in ranges (<c>now-1h</c>) are taken from <paramref name="now"/>.</summary>
    public static Func<LogEvent, bool> Compile(QueryNode node, DateTimeOffset now) => node switch
    {
        MatchAllNode => static _ => true,
        TermNode term => Text(term.Field, text => Tokenizer.ContainsToken(text, term.Token)),
        PhraseNode { Slop: > 0 } phrase => Text(phrase.Field, text => Tokenizer.ContainsSloppyPhrase(text, phrase.Tokens, phrase.Slop)),
        PhraseNode phrase => Text(phrase.Field, text => Tokenizer.ContainsPhrase(text, phrase.Tokens)),
        PrefixNode prefix => Text(prefix.Field, text => Tokenizer.ContainsPrefixAtBoundary(text, prefix.Prefix)),
        WildcardNode wildcard => Text(wildcard.Field, text => TokenPattern.For(wildcard).Matches(text)),
        RegexNode regex => Text(regex.Field, text => TokenPattern.For(regex).Matches(text)),
        FuzzyNode fuzzy => Text(fuzzy.Field, text => FuzzyTerm.Matches(fuzzy, text)),
        ExistsNode exists => Exists(exists.Field),
        RangeNode range => Range(RangeMatcher.Create(range, now), range.Field),
        AndNode and => Predicates.All([.. and.Children.Select(c => Compile(c, now))]),
        OrNode or => Predicates.Any([.. or.Children.Select(c => Compile(c, now))]),
        NotNode not => Predicates.Not(Compile(not.Child, now)),
        FieldPatternNode pattern => FieldPattern(pattern, now),
        _ => throw new NotSupportedException($"query node {node.GetType().Name} is not supported"),
    };

    /// <summary>The clause on each of the event's fields (and its message) whose name matches; compiled once per name.</summary>
    private static Func<LogEvent, bool> FieldPattern(FieldPatternNode node, DateTimeOffset now)
    {
        var compiled = new System.Collections.Concurrent.ConcurrentDictionary<string, Func<LogEvent, bool>?>(StringComparer.Ordinal);
        Func<LogEvent, bool>? For(string name) => compiled.GetOrAdd(name, n => node.MatchesName(n) ? Compile(node.On(n), now) : null);
        return e =>
        {
            if (For(MessageField) is { } message && message(e))
            {
                return true;
            }
            foreach (var field in e.Fields)
            {
                if (For(field.Name) is { } test && test(e))
                {
                    return true;
                }
            }
            return false;
        };
    }

    private static Func<LogEvent, bool> Exists(string field)
    {
        // A field, or (an object, flattened) any field under it: _exists_:book is true for book.title.
        var under = field + ".";
        bool HasValue(LogEvent e)
        {
            foreach (var f in e.Fields)
            {
                if ((string.Equals(f.Name, field, StringComparison.Ordinal) || f.Name.StartsWith(under, StringComparison.Ordinal)) && f.Value.HasValue)
                {
                    return true;
                }
            }
            return false;
        }
        if (string.Equals(field, MessageField, StringComparison.Ordinal))
        {
            return e => e.Message.Length > 0 || HasValue(e);
        }
        // Every event has its time.
        return RangeMatcher.TimestampFields.Contains(field) ? _ => true : HasValue;
    }

    private static Func<LogEvent, bool> Range(RangeMatcher matcher, string field) => matcher.IsTime
        ? e => matcher.MatchesTime(e.Timestamp)
        : e => e.TryGetField(field, out var value) && matcher.Matches(value);

    private static Func<LogEvent, bool> Text(string? field, Func<string, bool> test)
    {
        if (field is null)
        {
            return e =>
            {
                if (test(e.Message))
                {
                    return true;
                }
                foreach (var f in e.Fields)
                {
                    // Strings are tested as they are; numbers and booleans through their text; arrays value by value.
                    if (f.Value.AnyText(test) && IsBareSearched(f.Name))
                    {
                        return true;
                    }
                }
                return false;
            };
        }
        if (string.Equals(field, MessageField, StringComparison.Ordinal))
        {
            return e => test(e.Message) || (e.TryGetField(field, out var v) && v.AnyText(test));
        }
        return e => e.TryGetField(field, out var value) && value.AnyText(test);
    }
}

/// <summary>AND, OR and NOT over compiled predicates, for events and for block rows alike.</summary>
internal static class Predicates
{
    public static Func<T, bool> Not<T>(Func<T, bool> inner) => x => !inner(x);

    public static Func<T, bool> All<T>(Func<T, bool>[] children) => x =>
    {
        foreach (var child in children)
        {
            if (!child(x))
            {
                return false;
            }
        }
        return true;
    };

    public static Func<T, bool> Any<T>(Func<T, bool>[] children) => x =>
    {
        foreach (var child in children)
        {
            if (child(x))
            {
                return true;
            }
        }
        return false;
    };
}
