using System.Globalization;

namespace Logwell.Core.Query;

/// <summary>
/// The condition of <c>| where</c>, over a table's columns: comparisons <c>col = v</c>, <c>!=</c>, <c>&gt;</c>,
/// <c>&gt;=</c>, <c>&lt;</c>, <c>&lt;=</c> combined with <c>AND</c>, <c>OR</c>, <c>NOT</c> and parentheses. A value is a
/// number, a "quoted string" or a bare word; numbers compare as numbers, anything else as text (ordinal); a comparison
/// with an empty cell is false.
/// </summary>
public abstract record WhereExpression
{
    public abstract bool Matches(Func<string, object?> cell);

    public static bool TryParse(string text, int offset, out WhereExpression expression, out QueryError? error)
    {
        var parser = new Parser(text, offset);
        try
        {
            expression = parser.ParseOr();
            parser.SkipSpace();
            if (!parser.AtEnd)
            {
                throw parser.Fail("unexpected input", "AND, OR or the end of the condition");
            }
            error = null;
            return true;
        }
        catch (FormatException)
        {
            expression = new Comparison("", "=", "");
            error = parser.Error;
            return false;
        }
    }

    private sealed class Parser(string text, int offset)
    {
        private int _pos;

        public QueryError? Error { get; private set; }

        public bool AtEnd => _pos >= text.Length;

        public FormatException Fail(string message, string expected)
        {
            Error = new QueryError(offset + _pos, message, expected);
            return new FormatException(message);
        }

        public void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
            {
                _pos++;
            }
        }

        private bool Keyword(string word)
        {
            SkipSpace();
            if (string.CompareOrdinal(text, _pos, word, 0, word.Length) == 0 && (_pos + word.Length == text.Length || !char.IsLetterOrDigit(text[_pos + word.Length])))
            {
                _pos += word.Length;
                return true;
            }
            return false;
        }

        public WhereExpression ParseOr()
        {
            var left = ParseAnd();
            while (Keyword("OR"))
            {
                left = new Or(left, ParseAnd());
            }
            return left;
        }

        private WhereExpression ParseAnd()
        {
            var left = ParseNot();
            while (Keyword("AND"))
            {
                left = new And(left, ParseNot());
            }
            return left;
        }

        private WhereExpression ParseNot()
        {
            if (Keyword("NOT"))
            {
                return new Not(ParseNot());
            }
            SkipSpace();
            if (_pos < text.Length && text[_pos] == '(')
            {
                _pos++;
                var inner = ParseOr();
                SkipSpace();
                if (_pos >= text.Length || text[_pos] != ')')
                {
                    throw Fail("unclosed '('", "')'");
                }
                _pos++;
                return inner;
            }
            var column = Word("a column name");
            SkipSpace();
            string? op = null;
            foreach (var candidate in new[] { ">=", "<=", "!=", "==", "=", ">", "<" })
            {
                if (string.CompareOrdinal(text, _pos, candidate, 0, candidate.Length) == 0)
                {
                    op = candidate == "==" ? "=" : candidate;
                    _pos += candidate.Length;
                    break;
                }
            }
            if (op is null)
            {
                throw Fail($"'{column}' needs a comparison", "=, !=, >, >=, < or <=");
            }
            SkipSpace();
            string value;
            if (_pos < text.Length && text[_pos] == '"')
            {
                var close = text.IndexOf('"', _pos + 1);
                if (close < 0)
                {
                    throw Fail("unclosed quote", "a closing '\"'");
                }
                value = text[(_pos + 1)..close];
                _pos = close + 1;
            }
            else
            {
                value = Word("a value");
            }
            return new Comparison(column, op, value);
        }

        private string Word(string expected)
        {
            SkipSpace();
            var start = _pos;
            while (_pos < text.Length && !char.IsWhiteSpace(text[_pos]) && text[_pos] is not ('(' or ')' or '=' or '!' or '<' or '>' or '"'))
            {
                _pos++;
            }
            if (_pos == start)
            {
                throw Fail("missing " + expected, expected);
            }
            return text[start.._pos];
        }
    }

    private sealed record And(WhereExpression Left, WhereExpression Right) : WhereExpression
    {
        public override bool Matches(Func<string, object?> cell) => Left.Matches(cell) && Right.Matches(cell);
    }

    private sealed record Or(WhereExpression Left, WhereExpression Right) : WhereExpression
    {
        public override bool Matches(Func<string, object?> cell) => Left.Matches(cell) || Right.Matches(cell);
    }

    private sealed record Not(WhereExpression Inner) : WhereExpression
    {
        public override bool Matches(Func<string, object?> cell) => !Inner.Matches(cell);
    }

    /// <summary><c>column op value</c>.</summary>
    public sealed record Comparison(string Column, string Op, string Value) : WhereExpression
    {
        public override bool Matches(Func<string, object?> cell)
        {
            var actual = cell(Column);
            if (actual is null)
            {
                return false;
            }
            int order;
            var number = actual switch
            {
                long l => l,
                double d => d,
                bool => (double?)null,
                _ => double.TryParse(Convert.ToString(actual, CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) ? parsed : null,
            };
            if (number is not null && double.TryParse(Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var expected))
            {
                order = number.Value.CompareTo(expected);
            }
            else
            {
                var textual = actual switch
                {
                    bool b => b ? "true" : "false",
                    DateTime t => t.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
                    _ => Convert.ToString(actual, CultureInfo.InvariantCulture)!,
                };
                order = string.CompareOrdinal(textual, Value);
            }
            return Op switch
            {
                "=" => order == 0,
                "!=" => order != 0,
                ">" => order > 0,
                ">=" => order >= 0,
                "<" => order < 0,
                _ => order <= 0,
            };
        }
    }
}
