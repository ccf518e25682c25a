using System.Text;
using Logwell.Core.Text;

namespace Logwell.Core.Query;

/// <summary>
/// Parses the Lucene <c>query_string</c> syntax: terms, "phrases", <c>field:value</c>, <c>field:"phrase"</c>,
/// <c>field:(a OR b)</c>, trailing wildcards, ranges (<c>field:[a TO b]</c>, <c>{a TO b}</c>, mixed brackets, <c>*</c>
/// for an open end), comparisons (<c>field:&gt;n</c>, <c>&gt;=</c>, <c>&lt;</c>, <c>&lt;=</c>), <c>_exists_:field</c>,
/// <c>AND</c>/<c>OR</c>/<c>NOT</c> (and <c>&amp;&amp;</c>, <c>||</c>, <c>!</c>, <c>-term</c>, <c>+term</c>), parentheses,
/// fuzzy terms (<c>term~N</c>), proximity (<c>"a b"~N</c>), boosts (<c>^N</c>, which leave the hits as they are) and
/// field names with wildcards (<c>book.*:x</c>); the default operator is AND. What is not read as Elasticsearch reads
/// it is refused at its position, never read as another query.
/// </summary>
public sealed class QueryParser
{
    private const string ClauseExpected = "a term, a \"phrase\", field:value or '('";

    /// <summary>Longest query accepted, in characters.</summary>
    public const int MaxLength = 32 * 1024;

    /// <summary>Deepest nesting of parentheses and NOTs accepted; deeper queries are refused, not recursed into.</summary>
    public const int MaxDepth = 64;

    private const string ExistsField = "_exists_";

    private readonly string _text;
    private int _pos;
    private int _depth;
    // Inside field:( ... ): the field that clauses without one of their own apply to.
    private string? _groupField;

    // With OR as the default operator, clauses side by side are optional ("should"), as in Lucene.
    private readonly bool _defaultOr;

    private QueryParser(string text, bool defaultOr)
    {
        _text = text;
        _defaultOr = defaultOr;
    }

    public static bool TryParse(string? text, out QueryNode query, out QueryError? error) => TryParse(text, defaultOr: false, out query, out error);

    /// <summary>
    /// Parses with AND (the default) or OR between clauses written side by side. With OR, as in Lucene: <c>+a</c> and
    /// clauses joined by <c>AND</c> must match, <c>-a</c> and <c>NOT a</c> must not, and of the other clauses at least
    /// one must match when nothing is required (<c>a b -c</c> is <c>(a OR b) AND NOT c</c>; in <c>+a b</c> only a counts).
    /// </summary>
    public static bool TryParse(string? text, bool defaultOr, out QueryNode query, out QueryError? error)
    {
        text ??= "";
        if (text.Length > MaxLength)
        {
            query = MatchAllNode.Instance;
            error = new QueryError(MaxLength, $"query is longer than {MaxLength} characters", "a shorter query");
            return false;
        }
        try
        {
            var parser = new QueryParser(text, defaultOr);
            query = parser.ParseQuery();
            if (QueryNode.CostError(query) is { } cost)
            {
                query = MatchAllNode.Instance;
                error = new QueryError(0, cost, $"at most {QueryNode.MaxClauses} clauses");
                return false;
            }
            error = null;
            return true;
        }
        catch (QuerySyntaxException e)
        {
            query = MatchAllNode.Instance;
            error = e.Error;
            return false;
        }
    }

    public static QueryNode Parse(string text) =>
        TryParse(text, out var query, out var error) ? query : throw new ArgumentException(error!.ToString(), nameof(text));

    private QueryNode ParseQuery()
    {
        SkipSpace();
        if (_pos >= _text.Length)
        {
            return MatchAllNode.Instance;
        }
        var node = ParseOr();
        if (node is Dropped)
        {
            // Only clauses without a word: nothing can match, as in Elasticsearch.
            node = new NotNode(MatchAllNode.Instance);
        }
        SkipSpace();
        if (_pos < _text.Length)
        {
            if (_text[_pos] == ')')
            {
                throw Error(_pos, "unmatched ')'", "an operator, a clause or the end of the query");
            }
            throw Error(_pos, "unexpected input", "an operator, a clause or the end of the query");
        }
        return node;
    }

    private QueryNode ParseOr()
    {
        if (_defaultOr)
        {
            return ParseClauses();
        }
        var children = new List<QueryNode> { ParseAnd() };
        while (TryKeyword("OR") || TrySymbol("||"))
        {
            children.Add(ParseAnd());
        }
        return Combine(children, static kept => new OrNode(kept));
    }

    private QueryNode ParseAnd()
    {
        var children = new List<QueryNode> { ParseUnary() };
        while (true)
        {
            SkipSpace();
            if (_pos >= _text.Length || _text[_pos] == ')' || PeekKeyword("OR") || PeekSymbol("||"))
            {
                break;
            }
            _ = TryKeyword("AND") || TrySymbol("&&");
            children.Add(ParseUnary());
        }
        return Combine(children, static kept => new AndNode(kept));
    }

    private enum Occur
    {
        Should,
        Must,
        MustNot,
    }

    /// <summary>A run of clauses with OR as the default operator (see <see cref="TryParse(string?, bool, out QueryNode, out QueryError?)"/>).</summary>
    private QueryNode ParseClauses()
    {
        var clauses = new List<(Occur Occur, QueryNode Node)>();
        var nextMust = false;
        while (true)
        {
            SkipSpace();
            if (_pos >= _text.Length || _text[_pos] == ')')
            {
                break;
            }
            if (clauses.Count > 0 && (TryKeyword("AND") || TrySymbol("&&")))
            {
                if (clauses[^1].Occur == Occur.Should)
                {
                    clauses[^1] = (Occur.Must, clauses[^1].Node);
                }
                nextMust = true;
                continue;
            }
            if (clauses.Count > 0 && (TryKeyword("OR") || TrySymbol("||")))
            {
                nextMust = false;
                continue;
            }
            var occur = nextMust ? Occur.Must : Occur.Should;
            nextMust = false;
            if (TryKeyword("NOT") || TrySymbol("!"))
            {
                RefuseSecondModifier();
                clauses.Add((Occur.MustNot, ParseUnary()));
                continue;
            }
            if (_text[_pos] is '-' or '+' && _pos + 1 < _text.Length)
            {
                // As Elasticsearch: spaces may follow the modifier ("- n_pages:360").
                occur = _text[_pos] == '-' ? Occur.MustNot : Occur.Must;
                _pos++;
                RefuseSecondModifier();
            }
            clauses.Add((occur, ParseUnaryInClauses()));
        }
        if (clauses.Count == 0)
        {
            throw Error(_pos, "unexpected end of query", ClauseExpected);
        }
        clauses.RemoveAll(c => c.Node is Dropped);
        if (clauses.Count == 0)
        {
            return Dropped.Instance;
        }
        var required = clauses.Where(c => c.Occur == Occur.Must).Select(c => c.Node).ToList();
        var optional = clauses.Where(c => c.Occur == Occur.Should).Select(c => c.Node).ToList();
        if (required.Count == 0 && optional.Count > 0)
        {
            required.Add(optional.Count == 1 ? optional[0] : new OrNode(optional));
        }
        if (required.Count == 0)
        {
            required.Add(MatchAllNode.Instance); // only exclusions: everything but them
        }
        required.AddRange(clauses.Where(c => c.Occur == Occur.MustNot).Select(c => (QueryNode)new NotNode(c.Node)));
        return required.Count == 1 ? required[0] : new AndNode(required);
    }

    private QueryNode ParseUnaryInClauses()
    {
        if (++_depth > MaxDepth)
        {
            throw Error(_pos, $"query nests deeper than {MaxDepth} levels", "fewer nested parentheses or NOTs");
        }
        try
        {
            return ParsePrimary();
        }
        finally
        {
            _depth--;
        }
    }

    private QueryNode ParseUnary()
    {
        SkipSpace();
        if (++_depth > MaxDepth)
        {
            throw Error(_pos, $"query nests deeper than {MaxDepth} levels", "fewer nested parentheses or NOTs");
        }
        try
        {
            return ParseUnaryClause();
        }
        finally
        {
            _depth--;
        }
    }

    private QueryNode ParseUnaryClause()
    {
        if (TryKeyword("NOT") || TrySymbol("!"))
        {
            RefuseSecondModifier();
            return Not(ParseUnary());
        }
        // As Elasticsearch: spaces may follow the modifier ("- n_pages:360").
        if (_pos < _text.Length && _text[_pos] == '-' && _pos + 1 < _text.Length)
        {
            _pos++;
            RefuseSecondModifier();
            return Not(ParsePrimary());
        }
        if (_pos < _text.Length && _text[_pos] == '+' && _pos + 1 < _text.Length)
        {
            _pos++;
            RefuseSecondModifier();
        }
        return ParsePrimary();
    }

    private QueryNode ParsePrimary()
    {
        SkipSpace();
        if (_pos >= _text.Length)
        {
            throw Error(_pos, "unexpected end of query", ClauseExpected);
        }
        var c = _text[_pos];
        if (c == '(')
        {
            var open = _pos;
            _pos++;
            SkipSpace();
            if (_pos < _text.Length && _text[_pos] == ')')
            {
                throw Error(_pos, "empty parentheses", ClauseExpected);
            }
            var inner = ParseOr();
            SkipSpace();
            if (_pos >= _text.Length || _text[_pos] != ')')
            {
                throw Error(_pos, $"unclosed '(' opened at position {open}", "')'");
            }
            _pos++;
            SkipBoost();
            return inner;
        }
        if (c is ')' or ']' or '}')
        {
            throw Error(_pos, $"unexpected '{c}'", ClauseExpected);
        }
        if (c == '"')
        {
            return ParsePhrase(_groupField);
        }
        if (c == '/')
        {
            return ParseRegex(_groupField);
        }
        if (IsOperatorAhead())
        {
            throw Error(_pos, $"operator '{CurrentWord()}' without a clause before it", ClauseExpected);
        }
        if (_groupField is not null && c is '>' or '<' or '=')
        {
            return ParseComparison(_groupField);
        }
        if (c is '>' or '<')
        {
            // Elasticsearch compares every default field; Logwell asks for the field rather than compare the message.
            throw Error(_pos, "a comparison needs a field", "field:>10");
        }
        if (c is '[' or '{')
        {
            return _groupField is not null
                ? ParseRange(_groupField)
                : throw Error(_pos, "a range needs a field", "field:[a TO b]");
        }

        var start = _pos;
        var fieldStart = _pos;
        var field = TryReadFieldName();
        if (field is not null)
        {
            if (field.Contains('*', StringComparison.Ordinal) || field.Contains('?', StringComparison.Ordinal))
            {
                if (string.Equals(field, ExistsField, StringComparison.Ordinal) || field.StartsWith(ExistsField, StringComparison.Ordinal))
                {
                    throw Error(fieldStart, "_exists_ takes one field name", "a field name such as host or http.status");
                }
                // book.*:x — the clause on every field whose name matches; in a group each clause on its own, as
                // Elasticsearch expands a pattern term by term: book.*:(a AND b) may find a in one field, b in another.
                var clause = ParsePrimaryValue(field, start);
                return clause is Dropped ? clause : FieldPatternNode.EachClause(field, clause);
            }
            return ParsePrimaryValue(field, start);
        }
        return ParseWord(field ?? _groupField, start);
    }

    /// <summary>What follows <c>field:</c>: a value, a phrase, a group, a regular expression, a range or a comparison.</summary>
    private QueryNode ParsePrimaryValue(string field, int start)
    {
        // As Elasticsearch: spaces may follow the colon.
        SkipSpace();
        if (_pos >= _text.Length || _text[_pos] == ')')
        {
            throw Error(_pos, $"missing value after '{field}:'", "a value, a \"phrase\" or '*'");
        }
        if (IsOperatorAhead() || PeekKeyword("NOT"))
        {
            throw Error(_pos, $"'{field}:' is followed by the operator '{CurrentWord()}'", "a value, a \"phrase\" or '*'");
        }
        if (string.Equals(field, ExistsField, StringComparison.Ordinal))
        {
            return ParseExists();
        }
        if (_text[_pos] == '"')
        {
            return ParsePhrase(field);
        }
        if (_text[_pos] == '(')
        {
            return ParseFieldGroup(field);
        }
        if (_text[_pos] == '/')
        {
            return ParseRegex(field);
        }
        if (_text[_pos] is '[' or '{')
        {
            return ParseRange(field);
        }
        if (_text[_pos] is '>' or '<' or '=')
        {
            return ParseComparison(field);
        }
        return ParseWord(field, start);
    }

    private QueryNode ParseRegex(string? field)
    {
        var open = _pos;
        _pos++;
        var sb = new StringBuilder();
        while (_pos < _text.Length && _text[_pos] != '/')
        {
            if (_text[_pos] == '\\' && _pos + 1 < _text.Length)
            {
                // "\/" is a slash inside the expression; other escapes belong to the expression.
                if (_text[_pos + 1] != '/')
                {
                    sb.Append('\\');
                }
                _pos++;
            }
            sb.Append(_text[_pos]);
            _pos++;
        }
        if (_pos >= _text.Length)
        {
            throw Error(open, "unclosed regular expression", "a closing '/'");
        }
        _pos++;
        var node = new RegexNode(field, sb.ToString());
        if (TokenPattern.Error(node) is { } error)
        {
            throw Error(open + 1, $"bad regular expression: {error}", "a regular expression without backreferences or lookarounds");
        }
        return node;
    }

    private QueryNode ParseExists()
    {
        var start = _pos;
        var name = TryReadName();
        if (name is null || (_pos < _text.Length && !IsWordEnd(_text[_pos])))
        {
            throw Error(start, "_exists_ needs a field name", "a field name such as host or http.status");
        }
        return new ExistsNode(name);
    }

    /// <summary><c>field:( ... )</c>: clauses inside without a field of their own take this one (an inner group's field wins, as in Elasticsearch).</summary>
    private QueryNode ParseFieldGroup(string field)
    {
        var outer = _groupField;
        _groupField = field;
        try
        {
            return ParsePrimary();
        }
        finally
        {
            _groupField = outer;
        }
    }

    private QueryNode ParseRange(string field)
    {
        var open = _pos;
        var includeLower = _text[_pos] == '[';
        _pos++;
        SkipSpace();
        var lower = ReadBound(field, "the lower bound or '*'");
        SkipSpace();
        if (!PeekSymbol("TO") || _pos + 2 >= _text.Length || !char.IsWhiteSpace(_text[_pos + 2]))
        {
            throw Error(_pos, "a range needs 'TO' between its bounds", "TO");
        }
        _pos += 2;
        SkipSpace();
        var upper = ReadBound(field, "the upper bound or '*'");
        SkipSpace();
        if (_pos >= _text.Length || _text[_pos] is not (']' or '}'))
        {
            throw Error(_pos, $"unclosed range opened at position {open}", "']' or '}'");
        }
        var includeUpper = _text[_pos] == ']';
        _pos++;
        SkipBoost();
        // [* TO *] is Elasticsearch's exists query on the field.
        return lower is null && upper is null ? new ExistsNode(field) : new RangeNode(field, lower, upper, includeLower, includeUpper);
    }

    /// <summary>
    /// <c>field:&gt;v</c>, <c>&gt;=</c>, <c>&lt;</c>, <c>&lt;=</c>, and <c>field:=v</c>: the whole value equals
    /// <c>v</c> (the range from <c>v</c> to <c>v</c>).
    /// </summary>
    private QueryNode ParseComparison(string field)
    {
        var op = _text[_pos];
        _pos++;
        var inclusive = op == '=' || (_pos < _text.Length && _text[_pos] == '=');
        if (inclusive && op != '=')
        {
            _pos++;
        }
        var written = op == '=' ? "=" : inclusive ? $"{op}=" : $"{op}";
        if (_pos >= _text.Length || (IsWordEnd(_text[_pos]) && _text[_pos] != '"'))
        {
            throw Error(_pos, $"missing value after '{field}:{written}'", "a number, a time or a value");
        }
        var bound = ReadBound(field, "a number, a time or a value") ?? throw Error(_pos - 1, "'*' cannot be compared with", "a number, a time or a value");
        return op switch
        {
            '>' => new RangeNode(field, bound, null, inclusive, false),
            '<' => new RangeNode(field, null, bound, false, inclusive),
            _ => new RangeNode(field, bound, bound, true, true),
        };
    }

    /// <summary>
    /// A range bound: a word or a "quoted" value (where <c>\</c> escapes the next character, as in a phrase), null for
    /// <c>*</c>; on the event time it must read as a time.
    /// </summary>
    private string? ReadBound(string field, string expected)
    {
        var start = _pos;
        string value;
        if (_pos < _text.Length && _text[_pos] == '"')
        {
            value = ReadQuoted();
        }
        else
        {
            while (_pos < _text.Length && !char.IsWhiteSpace(_text[_pos]) && _text[_pos] is not (']' or '}' or ')' or '('))
            {
                _pos++;
            }
            value = _text[start.._pos];
            if (value.Length == 0 || value == "TO")
            {
                throw Error(start, "missing range bound", expected);
            }
            if (value == "*")
            {
                return null;
            }
        }
        if (RangeMatcher.TimestampFields.Contains(field) && !RangeMatcher.IsTimeBound(value, out var error))
        {
            throw Error(start, $"'{value}' is not a time: {error}", "ISO 8601, epoch milliseconds or now-15m");
        }
        return value;
    }

    /// <summary>The "quoted" text at the cursor, with <c>\</c> making the next character plain; the cursor ends past the closing quote.</summary>
    private string ReadQuoted()
    {
        var open = _pos;
        _pos++;
        var sb = new StringBuilder();
        while (_pos < _text.Length && _text[_pos] != '"')
        {
            if (_text[_pos] == '\\' && _pos + 1 < _text.Length)
            {
                _pos++;
            }
            sb.Append(_text[_pos]);
            _pos++;
        }
        if (_pos >= _text.Length)
        {
            throw Error(open, "unclosed quote", "a closing '\"'");
        }
        _pos++;
        return sb.ToString();
    }

    private QueryNode ParsePhrase(string? field)
    {
        var open = _pos;
        var text = ReadQuoted();
        var tokens = Tokenizer.BaseTokens(text);
        if (tokens.Count == 0)
        {
            SkipBoost();
            return Dropped.Instance;
        }
        var slop = 0;
        SkipSpaceBefore('~');
        if (_pos < _text.Length && _text[_pos] == '~')
        {
            // A proximity search; ~ alone is slop 0, as in Lucene.
            var tilde = _pos;
            _pos++;
            var start = _pos;
            while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
            {
                _pos++;
            }
            if ((_pos == start && _pos < _text.Length && !IsWordEnd(_text[_pos]) && _text[_pos] != '^')
                || (_pos > start && !int.TryParse(_text.AsSpan(start, _pos - start), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out slop))
                || (_pos < _text.Length && !IsWordEnd(_text[_pos]) && _text[_pos] != '^'))
            {
                throw Error(tilde, "a proximity needs a whole number of moves", "\"a b\"~2");
            }
        }
        SkipBoost();
        return new PhraseNode(field, tokens, text) { Slop = tokens.Count > 1 ? slop : 0 };
    }

    private QueryNode ParseWord(string? field, int clauseStart)
    {
        var start = _pos;
        var sb = new StringBuilder();
        // The pattern keeps escapes ("\*" is a literal star) for a wildcard term.
        var pattern = new StringBuilder();
        var wildcards = 0;
        var trailingStar = false;
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (char.IsWhiteSpace(c) || c is '(' or ')' or '"' or '~' or '^')
            {
                break;
            }
            if (c == '\\')
            {
                if (_pos + 1 >= _text.Length)
                {
                    throw Error(_pos, "dangling escape character", "a character after '\\'");
                }
                sb.Append(_text[_pos + 1]);
                pattern.Append('\\').Append(_text[_pos + 1]);
                _pos += 2;
                trailingStar = false;
                continue;
            }
            if (c is '!' or '/')
            {
                // Lucene ends a word there: a!b is a AND NOT b, a/b/ is a and the regular expression b.
                throw Error(_pos, $"'{c}' inside a word", $"a space before it, or \\{c} for the character itself");
            }
            if (c is '[' or ']' or '{' or '}')
            {
                // Reserved for ranges, as in Elasticsearch: a[b or a]b would be read as two words otherwise.
                throw Error(_pos, $"'{c}' is reserved for ranges", $"\\{c} for the character itself, or field:[a TO b]");
            }
            if (c == ':' && (_pos + 1 == _text.Length || _text[_pos + 1] is '"' or '(' or '[' or '{' || char.IsWhiteSpace(_text[_pos + 1])))
            {
                // author:book:title:"x" — a field name inside a field's value, which Elasticsearch refuses too. A colon
                // inside a value (url:http://host/a, at:10:30) stays part of it.
                throw Error(_pos, "a field name cannot follow a field name", "one field per clause, or a group: author:(title:x)");
            }
            if (c is '*' or '?')
            {
                wildcards++;
            }
            trailingStar = c == '*';
            sb.Append(c);
            pattern.Append(c);
            _pos++;
        }
        var word = sb.ToString();
        if (word.Length == 0)
        {
            throw Error(start, "empty term", ClauseExpected);
        }
        SkipSpaceBefore('~');
        if (_pos < _text.Length && _text[_pos] == '~')
        {
            var tilde = _pos;
            var edits = ReadFuzziness(word);
            if (wildcards > 0)
            {
                throw Error(tilde, "a term cannot be both a wildcard and fuzzy", "a term with either * ? or ~");
            }
            SkipBoost();
            return new FuzzyNode(field, word.ToLowerInvariant(), edits);
        }
        SkipBoost();
        if (wildcards == 1 && trailingStar)
        {
            var prefix = word[..^1];
            if (prefix.Length == 0 && field is null)
            {
                return MatchAllNode.Instance;
            }
            if (prefix.Length == 0)
            {
                // field:* is Elasticsearch's exists query on the field (on each matching field, for a pattern).
                return new ExistsNode(field!);
            }
            return new PrefixNode(field, prefix.ToLowerInvariant());
        }
        if (wildcards > 0)
        {
            var node = new WildcardNode(field, pattern.ToString().ToLowerInvariant());
            if (TokenPattern.Error(node) is { } error)
            {
                throw Error(start, $"wildcard pattern too complex: {error}", "a shorter wildcard pattern");
            }
            return node;
        }
        var runs = Tokenizer.Runs(word);
        if (runs.Count == 0)
        {
            // Nothing to search for (",", "--"): dropped from the query, as Elasticsearch's analyzer leaves it no token.
            return Dropped.Instance;
        }
        if (runs.Count == 1)
        {
            return new TermNode(field, runs[0]);
        }
        return new PhraseNode(field, Tokenizer.BaseTokens(word), word);
    }

    private static bool IsWordEnd(char c) => char.IsWhiteSpace(c) || c is '(' or ')' or '"';

    /// <summary>A clause with nothing to search for (no letter or digit): its AND, OR or NOT leaves it out.</summary>
    private sealed record Dropped : QueryNode
    {
        public static readonly Dropped Instance = new();
    }

    private static QueryNode Not(QueryNode node) => node is Dropped ? node : new NotNode(node);

    private static QueryNode Combine(List<QueryNode> children, Func<List<QueryNode>, QueryNode> make)
    {
        children.RemoveAll(c => c is Dropped);
        return children.Count switch
        {
            0 => Dropped.Instance,
            1 => children[0],
            _ => make(children),
        };
    }

    /// <summary>
    /// <c>~</c> and what follows it: a whole number of edits (at most 2, as Lucene allows; more is taken as 2) or
    /// nothing for Elasticsearch's <c>AUTO</c>.
    /// </summary>
    private int ReadFuzziness(string word)
    {
        var tilde = _pos;
        _pos++;
        var start = _pos;
        while (_pos < _text.Length && !IsWordEnd(_text[_pos]) && _text[_pos] != '^')
        {
            _pos++;
        }
        var written = _text[start.._pos];
        if (written.Length == 0)
        {
            return FuzzyTerm.AutoEdits(word);
        }
        if (!int.TryParse(written, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var edits))
        {
            throw Error(tilde, $"'~{written}' is not a number of edits", "~0, ~1, ~2 or ~ alone (AUTO)");
        }
        return Math.Min(edits, 2);
    }

    /// <summary>
    /// <c>^N</c> after a clause: a boost changes the scores Elasticsearch sorts by; Logwell sorts by time or a field,
    /// so the hits stay as they are.
    /// </summary>
    /// <summary>
    /// Moves to <paramref name="modifier"/> when only whitespace stands before it: Lucene skips whitespace between
    /// tokens, so <c>foo ^2</c>, <c>foo ~1</c> and <c>"a b" ~3</c> modify the clause before them.
    /// </summary>
    private void SkipSpaceBefore(char modifier)
    {
        var i = _pos;
        while (i < _text.Length && char.IsWhiteSpace(_text[i]))
        {
            i++;
        }
        if (i > _pos && i < _text.Length && _text[i] == modifier)
        {
            _pos = i;
        }
    }

    private void SkipBoost()
    {
        SkipSpaceBefore('^');
        if (_pos >= _text.Length || _text[_pos] != '^')
        {
            return;
        }
        var caret = _pos;
        _pos++;
        var start = _pos;
        while (_pos < _text.Length && (char.IsDigit(_text[_pos]) || _text[_pos] == '.'))
        {
            _pos++;
        }
        if (_pos == start || !double.TryParse(_text.AsSpan(start, _pos - start), System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out _)
            || (_pos < _text.Length && !IsWordEnd(_text[_pos])))
        {
            throw Error(caret, "a boost needs a number", "^2 or ^0.5");
        }
    }

    /// <summary>Reads <c>name:</c> when the text at the cursor is a field name followed by a colon.</summary>
    private string? TryReadFieldName()
    {
        // A backslash makes the next character part of the name (first\ name:Alice, book.\*:x, as Elasticsearch's docs write it).
        var i = _pos;
        var name = new StringBuilder();
        while (i < _text.Length)
        {
            if (_text[i] == '\\' && i + 1 < _text.Length)
            {
                name.Append(_text[i + 1]);
                i += 2;
                continue;
            }
            var end = NameEnd(i);
            // A wildcard in a field name (book.*:x) applies the clause to every field it matches.
            while (end < _text.Length && _text[end] is '*' or '?')
            {
                end = NameEnd(end + 1);
            }
            if (end == i)
            {
                break;
            }
            name.Append(_text, i, end - i);
            i = end;
        }
        if (name.Length > 0 && i < _text.Length && _text[i] == ':')
        {
            _pos = i + 1;
            return name.ToString();
        }
        return null;
    }

    private string? TryReadName()
    {
        var i = NameEnd(_pos);
        if (i == _pos)
        {
            return null;
        }
        var name = _text[_pos..i];
        _pos = i;
        return name;
    }

    private int NameEnd(int i)
    {
        while (i < _text.Length && (char.IsLetterOrDigit(_text[i]) || _text[i] is '_' or '.' or '@' or '-'))
        {
            i++;
        }
        return i;
    }

    private bool IsOperatorAhead() => PeekKeyword("AND") || PeekKeyword("OR") || PeekSymbol("&&") || PeekSymbol("||");

    private string CurrentWord()
    {
        var end = _pos;
        while (end < _text.Length && !char.IsWhiteSpace(_text[end]))
        {
            end++;
        }
        return _text[_pos..end];
    }

    private bool PeekKeyword(string keyword)
    {
        if (string.CompareOrdinal(_text, _pos, keyword, 0, keyword.Length) != 0)
        {
            return false;
        }
        var end = _pos + keyword.Length;
        return end == _text.Length || char.IsWhiteSpace(_text[end]) || _text[end] is '(' or '"';
    }

    /// <summary>
    /// A clause takes one of <c>+</c>, <c>-</c>, <c>NOT</c>, <c>!</c>, as in Elasticsearch: <c>--web</c> and
    /// <c>NOT NOT web</c> are refused rather than guessed at; <c>NOT (NOT web)</c> says it with parentheses.
    /// </summary>
    private void RefuseSecondModifier()
    {
        SkipSpace();
        if (_pos >= _text.Length)
        {
            return;
        }
        var second = PeekKeyword("NOT") ? "NOT"
            : PeekSymbol("!") ? "!"
            : _text[_pos] is '-' or '+' && _pos + 1 < _text.Length && !char.IsWhiteSpace(_text[_pos + 1]) ? _text[_pos].ToString()
            : null;
        if (second is not null)
        {
            throw Error(_pos, $"a second modifier '{second}': a clause takes one of +, -, NOT, ! (write NOT (NOT x) to negate twice)", ClauseExpected);
        }
    }

    private bool TryKeyword(string keyword)
    {
        SkipSpace();
        if (!PeekKeyword(keyword))
        {
            return false;
        }
        var at = _pos;
        _pos += keyword.Length;
        SkipSpace();
        if (_pos >= _text.Length || _text[_pos] == ')')
        {
            throw Error(_pos, $"'{keyword}' at position {at} has nothing after it", ClauseExpected);
        }
        return true;
    }

    private bool PeekSymbol(string symbol) => string.CompareOrdinal(_text, _pos, symbol, 0, symbol.Length) == 0;

    private bool TrySymbol(string symbol)
    {
        SkipSpace();
        if (!PeekSymbol(symbol))
        {
            return false;
        }
        var at = _pos;
        _pos += symbol.Length;
        SkipSpace();
        if (_pos >= _text.Length || _text[_pos] == ')')
        {
            throw Error(_pos, $"'{symbol}' at position {at} has nothing after it", ClauseExpected);
        }
        return true;
    }

    private void SkipSpace()
    {
        while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos]))
        {
            _pos++;
        }
    }

    private static QuerySyntaxException Error(int position, string message, string expected) =>
        new(new QueryError(position, message, expected));

    private sealed class QuerySyntaxException(QueryError error) : Exception(error.ToString())
    {
        public QueryError Error { get; } = error;
    }
}
