using System.Buffers;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Core.Text;
using Logwell.Storage.Segments;

namespace Logwell.Storage.Querying;

/// <summary>
/// Answers a query for one block as the set of its matching rows, with the semantics of <see cref="EventMatcher"/>.
/// A term is answered from the block's row postings when the token has them; a phrase or prefix takes its candidate
/// rows from the postings of its whole tokens and tests only those; a dictionary-coded field is tested once per
/// distinct value. Only a token too rare in the block to have postings makes the column be read and tested row by row.
/// </summary>
internal static class BlockQuery
{
    private delegate bool TextTest(ReadOnlySpan<char> text);

    /// <summary>The block's rows that match <paramref name="node"/>; ranges resolve relative times from <paramref name="now"/>.</summary>
    /// <param name="cancellationToken">Checked before each clause and each column, so a long query stops within one of them of its timeout.</param>
    public static ulong[] Evaluate(QueryNode node, BlockRows rows, Segment segment, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return EvaluateNode(node, rows, segment, now, cancellationToken);
    }

    private static ulong[] EvaluateNode(QueryNode node, BlockRows rows, Segment segment, DateTimeOffset now, CancellationToken cancellationToken) => node switch
    {
        MatchAllNode => RowBits.All(rows.Count),
        TermNode term => Text(term.Field, [term.Token], exactFromPostings: true, TestOf(term)!, rows, segment, cancellationToken),
        // Sloppy: rows with every token (from the index), then their positions from the postings, or from the text
        // when a token is too rare in the block to have postings.
        PhraseNode { Slop: > 0 } phrase => Text(phrase.Field, phrase.Tokens, exactFromPostings: false, TestOf(phrase)!, rows, segment, cancellationToken, phrase.Tokens, slop: phrase.Slop),
        PhraseNode phrase => Text(phrase.Field, phrase.Tokens, exactFromPostings: false, TestOf(phrase)!, rows, segment, cancellationToken, phrase.Tokens),
        PrefixNode prefix => Text(prefix.Field, BlockPlanner.WholeTokensOfPrefix(prefix.Prefix), exactFromPostings: false, TestOf(prefix)!, rows, segment, cancellationToken),
        WildcardNode wildcard => Text(wildcard.Field, [], exactFromPostings: false, TestOf(wildcard)!, rows, segment, cancellationToken, literal: LongestLiteral(wildcard.Pattern)),
        RegexNode regex => RegexFromTerms(regex, rows, segment, cancellationToken)
            ?? Text(regex.Field, [], exactFromPostings: false, TokenPattern.For(regex).Matches, rows, segment, cancellationToken, literal: RegexLiteral(regex.Pattern)),
        // The segment's term dictionary names the tokens within the edits: each is then a term. Without one, every text is tested.
        FuzzyNode fuzzy => segment.FuzzyTerms(fuzzy, cancellationToken) is { } terms
            ? AnyTerm(fuzzy.Field, terms, rows, segment, cancellationToken)
            : Text(fuzzy.Field, [], exactFromPostings: false, text => FuzzyTerm.Matches(fuzzy, text), rows, segment, cancellationToken),
        ExistsNode exists => Exists(exists.Field, rows),
        RangeNode range => Range(RangeMatcher.Create(range, now), range.Field, rows),
        AndNode and => And(and, rows, segment, now, cancellationToken),
        OrNode or => Or(or, rows, segment, now, cancellationToken),
        NotNode not => Not(not, rows, segment, now, cancellationToken),
        FieldPatternNode pattern => FieldPattern(pattern, rows, segment, now, cancellationToken),
        _ => throw new NotSupportedException($"query node {node.GetType().Name} is not supported"),
    };

    /// <summary>
    /// Whether evaluating <paramref name="node"/> reads the blocks' row postings: it holds a text clause on the message
    /// (bare or named). A clause on a field alone reads that field's column instead when it is dictionary-coded.
    /// </summary>
    public static bool ReadsPostings(QueryNode node) => QueryNode.Clauses(node).Any(static clause => clause switch
    {
        TermNode term => OnMessage(term.Field),
        PhraseNode phrase => OnMessage(phrase.Field),
        PrefixNode prefix => OnMessage(prefix.Field),
        WildcardNode wildcard => OnMessage(wildcard.Field),
        RegexNode regex => OnMessage(regex.Field),
        FuzzyNode fuzzy => OnMessage(fuzzy.Field),
        _ => false,
    });

    private static bool OnMessage(string? field) => field is null || string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal);

    /// <summary>How a term, phrase, prefix or wildcard tests one text; null for other nodes.</summary>
    private static TextTest? TestOf(QueryNode node) => node switch
    {
        TermNode term => text => Tokenizer.ContainsToken(text, term.Token),
        PhraseNode { Slop: > 0 } phrase => text => Tokenizer.ContainsSloppyPhrase(text, phrase.Tokens, phrase.Slop),
        PhraseNode phrase => text => Tokenizer.ContainsPhrase(text, phrase.Tokens),
        PrefixNode prefix => text => Tokenizer.ContainsPrefixAtBoundary(text, prefix.Prefix),
        WildcardNode wildcard => TokenPattern.For(wildcard).Matches,
        _ => null,
    };

    /// <summary>
    /// How many rows of a block match <paramref name="node"/>, from the block's footer alone: a term, phrase, prefix or
    /// wildcard on one field whose column keeps its value counts (format 7) tests each value once, as
    /// <see cref="MatchValues"/> tests a dictionary's values, and adds up the rows of those that pass. Null when the
    /// footer cannot tell; the block is then read.
    /// </summary>
    public static long? CountFromFooter(QueryNode node, Segment segment, int block)
    {
        var field = node switch
        {
            TermNode term => term.Field,
            PhraseNode phrase => phrase.Field,
            PrefixNode prefix => prefix.Field,
            WildcardNode wildcard => wildcard.Field,
            _ => null,
        };
        if (field is null || string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal) || segment.FieldCounts(block, field) is not { } counts)
        {
            return null;
        }
        var test = TestOf(node)!;
        long total = 0;
        for (var i = 0; i < counts.Values.Length; i++)
        {
            if (test(counts.Values[i]))
            {
                total += counts.Rows[i];
            }
        }
        return total;
    }

    private static ulong[] And(AndNode and, BlockRows rows, Segment segment, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var result = Evaluate(and.Children[0], rows, segment, now, cancellationToken);
        for (var i = 1; i < and.Children.Count && RowBits.Any(result); i++)
        {
            RowBits.And(result, Evaluate(and.Children[i], rows, segment, now, cancellationToken));
        }
        return result;
    }

    /// <summary>The clause on each field of the block (and the message) whose name matches, any one of them.</summary>
    private static ulong[] FieldPattern(FieldPatternNode pattern, BlockRows rows, Segment segment, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var result = RowBits.None(rows.Count);
        foreach (var name in rows.FieldNames.Prepend(EventMatcher.MessageField))
        {
            if (pattern.MatchesName(name))
            {
                RowBits.Or(result, Evaluate(pattern.On(name), rows, segment, now, cancellationToken));
            }
        }
        return result;
    }

    /// <summary>
    /// A regular expression whose every matching token is in the segment's term dictionary (<see cref="Segment.RegexTerms"/>)
    /// is answered from it: the rows holding one of its matching words, by postings. A text may also match whole
    /// (<see cref="TokenPattern"/>): the block is answered so only when each column the clause reads is dictionary-coded
    /// (its values are tested one by one) or has no text as short as the pattern's longest match. Null when the block is
    /// to be read as before.
    /// </summary>
    private static ulong[]? RegexFromTerms(RegexNode regex, BlockRows rows, Segment segment, CancellationToken cancellationToken)
    {
        if (segment.RegexTerms(regex, cancellationToken) is not { } terms || RegexShape.For(regex)?.MaxLength is not { } longest)
        {
            return null;
        }
        var field = regex.Field;
        var ofMessage = field is null || string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal);
        if (ofMessage && !(segment.ColumnBounds(rows.Index, SegmentFormat.MessageColumn)?.MinLength > longest))
        {
            return null;
        }
        var names = (field is null ? rows.FieldNames.Where(EventMatcher.IsBareSearched) : [field]).Where(name => Array.IndexOf(rows.FieldNames, name) >= 0).ToList();
        // What each field's column needs, from the footer where it can: first make sure every one can be answered.
        var bounds = names.Select(rows.Bounds).ToList();
        for (var i = 0; i < names.Count; i++)
        {
            var answerable = bounds[i] switch
            {
                // Every value longer than a match: only its words can match.
                { MinLength: var shortest } when shortest > longest => true,
                // Strings as short as a match: tested value by value if dictionary-coded, else read.
                not null => rows.DictionaryValues(names[i]) is not null,
                // Values of other kinds too (or a segment before version 6): the same, with the codes.
                null => rows.FieldCodes(names[i]) is not null,
            };
            if (!answerable)
            {
                return null;
            }
        }
        var result = RowBits.None(rows.Count);
        void Lookup(string? name)
        {
            foreach (var term in terms)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (Candidates(segment, rows, name, [term], exactFromPostings: true) is var (candidates, exact) && candidates is not null)
                {
                    // A word too rare in the block for postings: the rows holding its bytes, tested.
                    if (!exact && (name is null ? rows.Messages : rows.TextField(name)) is { } text)
                    {
                        VerifyText(candidates, text, text => Tokenizer.ContainsToken(text, term));
                    }
                    RowBits.Or(result, candidates);
                }
            }
        }
        if (ofMessage)
        {
            Lookup(null);
        }
        var test = TokenPattern.For(regex);
        for (var i = 0; i < names.Count; i++)
        {
            var name = names[i];
            if (bounds[i]?.MinLength > longest)
            {
                // Only a word can match: a field whose token filter has none of the words is not read.
                if (!terms.Any(term => segment.MayHaveToken(TokenHash.Of(name, term), rows.Index)))
                {
                    continue;
                }
                if (rows.FieldCodes(name) is null)
                {
                    Lookup(name);
                    continue;
                }
            }
            else if (bounds[i] is not null && !rows.DictionaryValues(name)!.Any(value => test.Matches(value)))
            {
                // Strings alone (and nulls), none of which matches: the rows' codes are not read.
                continue;
            }
            MatchValues(result, rows, name, text => test.Matches(text), value => MatchesValue(value, test.Matches));
        }
        return result;
    }

    private static ulong[] AnyTerm(string? field, string[] terms, BlockRows rows, Segment segment, CancellationToken cancellationToken)
    {
        var result = RowBits.None(rows.Count);
        foreach (var term in terms)
        {
            RowBits.Or(result, Text(field, [term], exactFromPostings: true, text => Tokenizer.ContainsToken(text, term), rows, segment, cancellationToken));
        }
        return result;
    }

    private static ulong[] Or(OrNode or, BlockRows rows, Segment segment, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var result = RowBits.None(rows.Count);
        foreach (var child in or.Children)
        {
            RowBits.Or(result, Evaluate(child, rows, segment, now, cancellationToken));
        }
        return result;
    }

    private static ulong[] Not(NotNode not, BlockRows rows, Segment segment, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var result = Evaluate(not.Child, rows, segment, now, cancellationToken);
        RowBits.Not(result, rows.Count);
        return result;
    }

    /// <summary>
    /// Rows where the field has a value other than null or an array of nulls (for <c>message</c>: a message, or a field
    /// so named), or a field under it does (an object, flattened: <c>book</c> for <c>book.title</c>).
    /// </summary>
    private static ulong[] Exists(string field, BlockRows rows)
    {
        if (RangeMatcher.TimestampFields.Contains(field))
        {
            // Every event has its time.
            return RowBits.All(rows.Count);
        }
        var result = RowBits.None(rows.Count);
        if (string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal))
        {
            var lengths = rows.Messages.Lengths;
            for (var row = 0; row < lengths.Length; row++)
            {
                if (lengths[row] > 0)
                {
                    result[row >> 6] |= 1UL << row;
                }
            }
        }
        if (rows.Present(field) is { } present)
        {
            RowBits.Or(result, present);
        }
        var under = field + ".";
        foreach (var name in rows.FieldNames)
        {
            if (name.StartsWith(under, StringComparison.Ordinal) && rows.Present(name) is { } inner)
            {
                RowBits.Or(result, inner);
            }
        }
        return result;
    }

    private static ulong[] Range(RangeMatcher matcher, string field, BlockRows rows)
    {
        var result = RowBits.None(rows.Count);
        if (matcher.IsTime)
        {
            var timestamps = rows.Timestamps;
            for (var row = 0; row < timestamps.Length; row++)
            {
                if (matcher.MatchesTime(timestamps[row]))
                {
                    result[row >> 6] |= 1UL << row;
                }
            }
            return result;
        }
        MatchValues(result, rows, field, matcher.Matches, matcher.Matches);
        return result;
    }

    /// <summary>
    /// Adds the rows whose value of <paramref name="field"/> passes: a dictionary-coded column tests each distinct string
    /// once with <paramref name="text"/>, other values go to <paramref name="value"/>.
    /// </summary>
    private static void MatchValues(ulong[] result, BlockRows rows, string field, Func<string, bool> text, Func<FieldValue, bool> value)
    {
        if (rows.FieldCodes(field) is { } dictionary)
        {
            for (var code = 0; code < dictionary.Values.Length; code++)
            {
                if (text(dictionary.Values[code]))
                {
                    dictionary.OrInto(result, code);
                }
            }
            if (dictionary.OtherRows.Length == 0)
            {
                return;
            }
            var others = rows.Field(field)!;
            foreach (var row in dictionary.OtherRows)
            {
                if (value(others[row]))
                {
                    result[row >> 6] |= 1UL << row;
                }
            }
            return;
        }
        if (rows.Field(field) is not { } values)
        {
            return;
        }
        for (var row = 0; row < values.Length; row++)
        {
            if (values[row].Kind != 0 && value(values[row]))
            {
                result[row >> 6] |= 1UL << row;
            }
        }
    }

    /// <param name="literal">Text every match holds (a wildcard's longest fixed part): only rows whose bytes hold it are tested.</param>
    private static ulong[] Text(string? field, IReadOnlyList<string> indexTokens, bool exactFromPostings, TextTest test, BlockRows rows, Segment segment, CancellationToken cancellationToken, IReadOnlyList<string>? phrase = null, string? literal = null, int slop = 0)
    {
        var result = RowBits.None(rows.Count);
        var isMessage = string.Equals(field, EventMatcher.MessageField, StringComparison.Ordinal);
        if (field is null || isMessage)
        {
            if (Candidates(segment, rows, null, indexTokens, exactFromPostings) is var (candidates, exact) && candidates is not null)
            {
                if (!exact && !(phrase is not null && MatchPositions(rows.Postings, null, phrase, slop, candidates)))
                {
                    Narrow(candidates, rows.Messages, literal);
                    VerifyText(candidates, rows.Messages, test);
                }
                RowBits.Or(result, candidates);
            }
        }
        IEnumerable<string> names = field is null ? rows.FieldNames.Where(EventMatcher.IsBareSearched) : [field];
        foreach (var name in names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!MayContain(segment, rows.Index, name, indexTokens))
            {
                continue;
            }
            if (rows.FieldCodes(name) is not null)
            {
                MatchValues(result, rows, name, text => test(text), value => MatchesValue(value, test));
                continue;
            }
            if (Candidates(segment, rows, name, indexTokens, exactFromPostings) is var (fieldRows, exact) && fieldRows is not null)
            {
                // Before format 4 an array's positions ran across its values: such a segment's field phrases read the values.
                if (!exact && !(phrase is not null && segment.Version >= 4 && MatchPositions(rows.Postings, name, phrase, slop, fieldRows)))
                {
                    if (rows.TextField(name) is { } text)
                    {
                        Narrow(fieldRows, text, literal);
                        VerifyText(fieldRows, text, test);
                    }
                    else if (rows.Field(name) is { } values)
                    {
                        VerifyValues(fieldRows, values, test);
                    }
                    else
                    {
                        continue;
                    }
                }
                RowBits.Or(result, fieldRows);
            }
        }
        return result;
    }

    /// <summary>
    /// The rows of one column (null: the message) that can match, and whether they all do. Null rows when the token
    /// filter or the column shows a token every match needs is missing; every row (to be tested) when no token has
    /// postings.
    /// </summary>
    private static (ulong[]? Rows, bool Exact) Candidates(Segment segment, BlockRows rows, string? field, IReadOnlyList<string> tokens, bool exactFromPostings)
    {
        ulong[]? candidates = null;
        var exact = exactFromPostings && tokens.Count > 0;
        var postings = rows.Postings;
        foreach (var token in tokens)
        {
            var hash = field is null ? TokenHash.Of(token) : TokenHash.Of(field, token);
            if (!segment.MayHaveToken(hash, rows.Index))
            {
                return (null, false);
            }
            var tokenRows = postings?.Rows(hash);
            if (tokenRows is null)
            {
                // Rare in this block (or a block without postings; the filter may also have answered "maybe" for an
                // absent token): the rows whose text holds the token's bytes are the ones to test.
                exact = false;
                var text = field is null ? rows.Messages : rows.TextField(field);
                tokenRows = text is null ? null : RowsContaining(text, token);
                if (tokenRows is null)
                {
                    continue;
                }
                if (!RowBits.Any(tokenRows))
                {
                    return (null, false);
                }
            }
            if (candidates is null)
            {
                candidates = tokenRows;
            }
            else if (!RowBits.And(candidates, tokenRows))
            {
                return (null, false);
            }
        }
        return (candidates ?? RowBits.All(rows.Count), exact);
    }

    /// <summary>
    /// The rows whose text holds an ASCII token's bytes, in any case: every row where the token can match. Null for a
    /// token with other characters (it narrows nothing). A letter that another character lowercases to (the Kelvin
    /// sign's <c>k</c>) need not be in the text as a byte: the longest run without one is looked for instead.
    /// </summary>
    private static ulong[]? RowsContaining(TextColumn text, string token)
    {
        if (token.Length == 0 || !System.Text.Ascii.IsValid(token))
        {
            return null;
        }
        if (token.Any(Tokenizer.IsFoldTarget))
        {
            var longest = token.Split(token.Where(Tokenizer.IsFoldTarget).Distinct().ToArray()).MaxBy(piece => piece.Length)!;
            return longest.Length == 0 ? null : RowsContaining(text, longest);
        }
        Span<byte> needle = token.Length <= 256 ? stackalloc byte[token.Length] : new byte[token.Length];
        System.Text.Ascii.ToLower(token, needle, out _);
        var rows = RowBits.None(text.Offsets.Length);
        ReadOnlySpan<byte> haystack = text.Bytes;
        // Search for the longest run without letters (the same in any case) when there is one, else for the first byte
        // in either case; each hit is then compared whole, ignoring case.
        var (anchorStart, anchorLength) = LongestCaselessRun(needle);
        if (anchorLength < 2)
        {
            (anchorStart, anchorLength) = (0, 0);
        }
        var anchor = needle.Slice(anchorStart, Math.Max(anchorLength, 1));
        var upperFirst = (byte)char.ToUpperInvariant((char)needle[0]);
        var offset = anchorStart;
        while (offset < haystack.Length)
        {
            var rest = haystack[offset..];
            var at = anchorLength > 0 || upperFirst == needle[0] ? rest.IndexOf(anchor) : rest.IndexOfAny(needle[0], upperFirst);
            if (at < 0)
            {
                break;
            }
            var start = offset + at - anchorStart;
            offset += at + 1;
            if (start + needle.Length > haystack.Length || !System.Text.Ascii.EqualsIgnoreCase(haystack.Slice(start, needle.Length), needle))
            {
                continue;
            }
            var row = text.RowAt(start);
            if (row >= 0 && start + needle.Length <= text.Offsets[row] + text.Lengths[row])
            {
                rows[row >> 6] |= 1UL << row;
            }
        }
        return rows;
    }

    /// <summary>Drops the candidates whose text lacks <paramref name="literal"/> (when there is one to look for).</summary>
    private static void Narrow(ulong[] candidates, TextColumn text, string? literal)
    {
        if (literal is not null && RowsContaining(text, literal) is { } holding)
        {
            RowBits.And(candidates, holding);
        }
    }

    /// <summary>
    /// The longest run of a wildcard pattern without <c>*</c>, <c>?</c> or escapes, when it has at least 3 characters:
    /// every text the pattern matches (a token of it or the whole of it) holds that run, in some case.
    /// </summary>
    private static string? LongestLiteral(string pattern)
    {
        var best = "";
        foreach (var part in pattern.Split('*', '?'))
        {
            if (part.Length > best.Length && !part.Contains('\\'))
            {
                best = part;
            }
        }
        // The pattern ignores case the way .NET's regular expressions do, where 'k' also matches the Kelvin sign (the
        // one ASCII letter with a non-ASCII case twin there): a byte search could miss such rows, so runs with 'k'
        // narrow nothing.
        return best.Length >= 3 && !best.Contains('k') ? best : null;
    }

    /// <summary>
    /// The longest run of plain characters that every match of a regular expression holds, when it has at least 3:
    /// only runs outside groups and classes count, none when an alternation stands outside groups, and a character
    /// that a quantifier may repeat zero times ends the run before it (one that may repeat ends the run after it).
    /// </summary>
    internal static string? RegexLiteral(string pattern)
    {
        var best = "";
        var run = new System.Text.StringBuilder();
        // Runs with 'k' narrow nothing (see LongestLiteral).
        void End()
        {
            if (run.Length > best.Length && run.ToString() is var text && !text.Contains('k', StringComparison.OrdinalIgnoreCase))
            {
                best = text;
            }
            run.Clear();
        }
        var depth = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '\\':
                    End();
                    i++;
                    continue;
                case '[':
                    End();
                    // Skip the class: a ']' right after '[' or '[^' is part of it; escapes may hide a ']'.
                    i++;
                    if (i < pattern.Length && pattern[i] == '^')
                    {
                        i++;
                    }
                    if (i < pattern.Length && pattern[i] == ']')
                    {
                        i++;
                    }
                    while (i < pattern.Length && pattern[i] != ']')
                    {
                        i += pattern[i] == '\\' ? 2 : 1;
                    }
                    continue;
                case '(':
                    End();
                    depth++;
                    continue;
                case ')':
                    End();
                    depth--;
                    continue;
                case '|' when depth == 0:
                    return null;
                case '*' or '?' or '{':
                    if (run.Length > 0)
                    {
                        run.Length--;
                    }
                    End();
                    continue;
                case '+':
                    End();
                    continue;
            }
            if (depth == 0 && (char.IsAsciiLetterOrDigit(c) || c is ' ' or '_' or '-' or ':' or '=' or '/' or ',' or '@' or '#'))
            {
                run.Append(c);
            }
            else
            {
                End();
            }
        }
        End();
        return best.Length >= 3 ? best : null;
    }

    private static (int Start, int Length) LongestCaselessRun(ReadOnlySpan<byte> lower)
    {
        int bestStart = 0, bestLength = 0, start = 0;
        for (var i = 0; i <= lower.Length; i++)
        {
            if (i == lower.Length || lower[i] is >= (byte)'a' and <= (byte)'z')
            {
                if (i - start > bestLength)
                {
                    (bestStart, bestLength) = (start, i - start);
                }
                start = i + 1;
            }
        }
        return (bestStart, bestLength);
    }

    /// <summary>
    /// Keeps the candidate rows where the phrase's tokens stand at consecutive positions (or within
    /// <paramref name="slop"/> moves), when every token has positions in the block's postings; false (candidates
    /// untouched) when one does not.
    /// </summary>
    private static bool MatchPositions(BlockPostings? postings, string? field, IReadOnlyList<string> phrase, int slop, ulong[] candidates)
    {
        if (postings is null)
        {
            return false;
        }
        if (slop == 0 && SharedPositions(postings, field, phrase) is { } consecutive)
        {
            // Each word stands once in each of its rows, at one position for all of them: every candidate holds the
            // phrase, or none does.
            if (!consecutive)
            {
                Array.Clear(candidates);
            }
            return true;
        }
        var tokens = new TokenPositions[phrase.Count];
        for (var i = 0; i < tokens.Length; i++)
        {
            if (postings.Positions(field is null ? TokenHash.Of(phrase[i]) : TokenHash.Of(field, phrase[i])) is not { } positions)
            {
                return false;
            }
            tokens[i] = positions;
        }
        var cursors = new int[tokens.Length];
        var sameAs = slop > 0 ? Tokenizer.SameWords(phrase) : null;
        var starts = new int[tokens.Length + 1];
        var gathered = new List<int>();
        foreach (var row in RowBits.Rows(candidates))
        {
            var present = true;
            for (var i = 0; i < tokens.Length && present; i++)
            {
                var rowsOf = tokens[i].Rows;
                while (cursors[i] < rowsOf.Length && rowsOf[cursors[i]] < row)
                {
                    cursors[i]++;
                }
                present = cursors[i] < rowsOf.Length && rowsOf[cursors[i]] == row;
            }
            if (!present || !(sameAs is null ? Consecutive(tokens, cursors) : WithinSlop(tokens, cursors, sameAs, slop, starts, gathered)))
            {
                RowBits.Clear(candidates, row);
            }
        }
        return true;
    }

    /// <summary>Whether the phrase's words follow each other, when each has one position shared by all its rows in the block; else null.</summary>
    private static bool? SharedPositions(BlockPostings postings, string? field, IReadOnlyList<string> phrase)
    {
        var consecutive = true;
        var first = 0;
        for (var i = 0; i < phrase.Count; i++)
        {
            if (!postings.SharedPosition(field is null ? TokenHash.Of(phrase[i]) : TokenHash.Of(field, phrase[i]), out var position))
            {
                return null;
            }
            first = i == 0 ? position : first;
            consecutive &= position == first + i;
        }
        return consecutive;
    }

    private static bool WithinSlop(TokenPositions[] tokens, int[] cursors, int[] sameAs, int slop, int[] starts, List<int> gathered)
    {
        gathered.Clear();
        for (var i = 0; i < tokens.Length; i++)
        {
            starts[i] = gathered.Count;
            foreach (var position in tokens[i].Of(cursors[i]))
            {
                gathered.Add(position);
            }
        }
        starts[tokens.Length] = gathered.Count;
        return Tokenizer.WithinSlop(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(gathered), starts, sameAs, slop);
    }

    private static bool Consecutive(TokenPositions[] tokens, int[] cursors)
    {
        foreach (var start in tokens[0].Of(cursors[0]))
        {
            var all = true;
            for (var i = 1; i < tokens.Length && all; i++)
            {
                all = tokens[i].Of(cursors[i]).BinarySearch(start + i) >= 0;
            }
            if (all)
            {
                return true;
            }
        }
        return false;
    }

    private static bool MayContain(Segment segment, int block, string field, IReadOnlyList<string> tokens)
    {
        foreach (var token in tokens)
        {
            if (!segment.MayHaveToken(TokenHash.Of(field, token), block))
            {
                return false;
            }
        }
        return true;
    }

    private static void VerifyText(ulong[] candidates, TextColumn text, TextTest test)
    {
        var buffer = ArrayPool<char>.Shared.Rent(1024);
        try
        {
            foreach (var row in RowBits.Rows(candidates))
            {
                var utf8 = text.Utf8(row);
                if (utf8.IsEmpty)
                {
                    RowBits.Clear(candidates, row);
                    continue;
                }
                if (utf8.Length > buffer.Length)
                {
                    ArrayPool<char>.Shared.Return(buffer);
                    buffer = ArrayPool<char>.Shared.Rent(utf8.Length);
                }
                // ASCII (the common case) widens without UTF-8 decoding.
                var length = System.Text.Ascii.ToUtf16(utf8, buffer, out var written) == OperationStatus.Done
                    ? written
                    : System.Text.Encoding.UTF8.GetChars(utf8, buffer);
                if (!test(buffer.AsSpan(0, length)))
                {
                    RowBits.Clear(candidates, row);
                }
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private static void VerifyValues(ulong[] candidates, FieldValue[] values, TextTest test)
    {
        foreach (var row in RowBits.Rows(candidates))
        {
            if (!MatchesValue(values[row], test))
            {
                RowBits.Clear(candidates, row);
            }
        }
    }

    /// <summary>Strings are tested as they are; numbers and booleans through their text; arrays value by value; null never matches.</summary>
    private static bool MatchesValue(FieldValue value, TextTest test) => value.Kind switch
    {
        0 or FieldKind.Null => false,
        FieldKind.String => test(value.Text),
        FieldKind.Json => value.AnyText(text => test(text)),
        _ => test(value.SearchText),
    };

}
