namespace Logwell.Core.Query;

/// <summary>
/// Bounds on what a regular expression can match, read from its pattern: the most characters a match may have and the
/// most of them that may be digits (<see cref="char.IsDigit(char)"/>), each null when unbounded. A term dictionary that
/// holds every token of at most 64 characters and 2 digits holds every token such a pattern can match when both bounds
/// are within those, and a text longer than <see cref="MaxLength"/> cannot match it whole.
/// </summary>
/// <remarks>
/// The pattern is read by a small parser of its own for the constructs .NET's non-backtracking engine accepts
/// (literals, escapes, classes, groups, alternation, quantifiers, anchors); anything it does not know (a construct it
/// is unsure of) makes <see cref="Of"/> answer null, and the clause is then tested text by text as before.
/// </remarks>
public sealed record RegexShape(int? MaxLength, int? MaxDigits)
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<RegexNode, RegexShape?> Known = new();

    /// <summary>The bounds of a clause's pattern, read once per parsed query.</summary>
    public static RegexShape? For(RegexNode node) => Known.GetValue(node, static n => Of(n.Pattern));

    /// <summary>The bounds of <paramref name="pattern"/>; null when the parser does not know one of its constructs.</summary>
    public static RegexShape? Of(string pattern)
    {
        var parser = new Parser(pattern);
        try
        {
            var shape = parser.Alternation();
            return parser.AtEnd ? new RegexShape(shape.Length, shape.Digits) : null;
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>Lengths and digits of one node: null is unbounded.</summary>
    private readonly record struct Bounds(int? Length, int? Digits)
    {
        public static readonly Bounds Empty = new(0, 0);

        public static Bounds Then(Bounds a, Bounds b) => new(a.Length + b.Length, a.Digits + b.Digits);

        public static Bounds Either(Bounds a, Bounds b) => new(Max(a.Length, b.Length), Max(a.Digits, b.Digits));

        private static int? Max(int? a, int? b) => a is null || b is null ? null : Math.Max(a.Value, b.Value);

        /// <summary><paramref name="times"/> repetitions (null: any number); a node that matches nothing stays bounded.</summary>
        public Bounds Repeat(int? times) => new(Times(Length, times), Times(Digits, times));

        private static int? Times(int? each, int? times) => each == 0 ? 0 : each is null || times is null ? null : checked(each.Value * times.Value);
    }

    private sealed class Parser(string pattern)
    {
        private int _at;

        public bool AtEnd => _at >= pattern.Length;

        private static FormatException Unknown() => new();

        public Bounds Alternation()
        {
            var result = Sequence();
            while (!AtEnd && pattern[_at] == '|')
            {
                _at++;
                result = Bounds.Either(result, Sequence());
            }
            return result;
        }

        private Bounds Sequence()
        {
            var result = Bounds.Empty;
            while (!AtEnd && pattern[_at] is not ('|' or ')'))
            {
                var atom = Atom();
                result = Bounds.Then(result, Quantified(atom));
            }
            return result;
        }

        private Bounds Quantified(Bounds atom)
        {
            while (!AtEnd)
            {
                int? times;
                switch (pattern[_at])
                {
                    case '*' or '+':
                        _at++;
                        times = null;
                        break;
                    case '?':
                        _at++;
                        times = 1;
                        break;
                    case '{' when TryCount(out var most):
                        times = most;
                        break;
                    default:
                        return atom;
                }
                if (!AtEnd && pattern[_at] == '?')
                {
                    // Lazy: the same matches.
                    _at++;
                }
                atom = atom.Repeat(times);
            }
            return atom;
        }

        /// <summary><c>{n}</c>, <c>{n,}</c> or <c>{n,m}</c>; anything else after '{' is a literal '{' (as .NET reads it).</summary>
        private bool TryCount(out int? most)
        {
            most = null;
            var end = pattern.IndexOf('}', _at);
            if (end < 0)
            {
                return false;
            }
            var body = pattern.AsSpan(_at + 1, end - _at - 1);
            var comma = body.IndexOf(',');
            var first = comma < 0 ? body : body[..comma];
            if (first.IsEmpty || !int.TryParse(first, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var least))
            {
                return false;
            }
            if (comma < 0)
            {
                most = least;
            }
            else if (comma < body.Length - 1)
            {
                if (!int.TryParse(body[(comma + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var upper))
                {
                    return false;
                }
                most = upper;
            }
            _at = end + 1;
            return true;
        }

        private Bounds Atom()
        {
            var c = pattern[_at++];
            switch (c)
            {
                case '(':
                    return Group();
                case '[':
                    return One(Class());
                case '\\':
                    return Escape(inClass: false) is { } digit ? One(digit) : Bounds.Empty;
                case '.':
                    return One(true);
                case '^' or '$':
                    return Bounds.Empty;
                case '*' or '+' or '?':
                    throw Unknown();
                default:
                    return One(char.IsDigit(c));
            }
        }

        private static Bounds One(bool mayBeDigit) => new(1, mayBeDigit ? 1 : 0);

        private Bounds Group()
        {
            if (!AtEnd && pattern[_at] == '?')
            {
                _at++;
                if (AtEnd)
                {
                    throw Unknown();
                }
                switch (pattern[_at])
                {
                    case ':':
                        _at++;
                        break;
                    case '<' when _at + 1 < pattern.Length && pattern[_at + 1] is not ('=' or '!'):
                    case '\'':
                        // A named group.
                        var close = pattern[_at] == '<' ? '>' : '\'';
                        var end = pattern.IndexOf(close, _at + 1);
                        if (end < 0)
                        {
                            throw Unknown();
                        }
                        _at = end + 1;
                        break;
                    case '#':
                        var comment = pattern.IndexOf(')', _at);
                        if (comment < 0)
                        {
                            throw Unknown();
                        }
                        _at = comment + 1;
                        return Bounds.Empty;
                    default:
                        // Inline options ((?i), (?i:...)): a letter run, then ')' or ':'; anything else is unknown.
                        var start = _at;
                        while (!AtEnd && (char.IsAsciiLetter(pattern[_at]) || pattern[_at] == '-'))
                        {
                            _at++;
                        }
                        if (_at == start || AtEnd)
                        {
                            throw Unknown();
                        }
                        if (pattern[_at] == ')')
                        {
                            _at++;
                            return Bounds.Empty;
                        }
                        if (pattern[_at] != ':')
                        {
                            throw Unknown();
                        }
                        _at++;
                        break;
                }
            }
            var inner = Alternation();
            if (AtEnd || pattern[_at] != ')')
            {
                throw Unknown();
            }
            _at++;
            return inner;
        }

        /// <summary>
        /// After a backslash: whether the escaped character may be a digit; null for a zero-width escape (an anchor).
        /// </summary>
        private bool? Escape(bool inClass)
        {
            if (AtEnd)
            {
                throw Unknown();
            }
            var c = pattern[_at++];
            switch (c)
            {
                case 'd' or 'w' or 'W' or 'S':
                    // \W holds no digit, but is counted as one may be: the bound only has to hold, not be tight.
                    return true;
                case 'D' or 's':
                    return false;
                case 'b' when inClass:
                    return false;
                case 'b' or 'B' or 'A' or 'z' or 'Z' or 'G':
                    return null;
                case 'p' or 'P':
                    if (AtEnd || pattern[_at] != '{' || pattern.IndexOf('}', _at) is var end && end < 0)
                    {
                        throw Unknown();
                    }
                    _at = end + 1;
                    return true;
                case 'x':
                    return char.IsDigit(Hex(2));
                case 'u':
                    return char.IsDigit(Hex(4));
                case 't' or 'n' or 'r' or 'f' or 'v' or 'e' or 'a':
                    return false;
                case 'c':
                    if (AtEnd)
                    {
                        throw Unknown();
                    }
                    _at++;
                    return false;
                case '0':
                    // An octal escape of up to 3 digits: a control character, never a digit.
                    while (!AtEnd && _at < pattern.Length && pattern[_at] is >= '0' and <= '7')
                    {
                        _at++;
                    }
                    return false;
                case >= '1' and <= '9' or 'k':
                    // A backreference (refused by the engine anyway).
                    throw Unknown();
                default:
                    if (char.IsAsciiLetterOrDigit(c))
                    {
                        throw Unknown();
                    }
                    return char.IsDigit(c);
            }
        }

        private char Hex(int digits)
        {
            if (_at + digits > pattern.Length || !int.TryParse(pattern.AsSpan(_at, digits), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var code))
            {
                throw Unknown();
            }
            _at += digits;
            return (char)code;
        }

        /// <summary>After '[': whether the class may hold a digit. A negated class may; a subtraction is read as its base.</summary>
        private bool Class()
        {
            var negated = !AtEnd && pattern[_at] == '^';
            if (negated)
            {
                _at++;
            }
            var mayBeDigit = negated;
            var first = true;
            while (true)
            {
                if (AtEnd)
                {
                    throw Unknown();
                }
                var c = pattern[_at];
                if (c == ']' && !first)
                {
                    _at++;
                    return mayBeDigit;
                }
                if (c == '-' && !first && _at + 1 < pattern.Length && pattern[_at + 1] == '[')
                {
                    // Subtraction: [base-[excluded]]; the base alone bounds it.
                    _at += 2;
                    Class();
                    if (AtEnd || pattern[_at] != ']')
                    {
                        throw Unknown();
                    }
                    _at++;
                    return mayBeDigit;
                }
                first = false;
                _at++;
                char low;
                if (c == '\\')
                {
                    var before = _at;
                    var escaped = Escape(inClass: true);
                    if (escaped is null)
                    {
                        throw Unknown();
                    }
                    var single = _at - before == 1 && !char.IsAsciiLetterOrDigit(pattern[before]);
                    if (!single)
                    {
                        if (_at + 1 < pattern.Length && pattern[_at] == '-' && pattern[_at + 1] != ']')
                        {
                            // A range from a coded character (\u0020-~) or a class escape: not read here.
                            throw Unknown();
                        }
                        mayBeDigit |= escaped.Value;
                        continue;
                    }
                    low = pattern[before];
                }
                else
                {
                    low = c;
                }
                var high = low;
                if (_at + 1 < pattern.Length && pattern[_at] == '-' && pattern[_at + 1] != ']')
                {
                    _at++;
                    var h = pattern[_at++];
                    if (h == '\\')
                    {
                        var before = _at;
                        if (Escape(inClass: true) is null || _at - before != 1 || char.IsAsciiLetterOrDigit(pattern[before]))
                        {
                            // A range to a class escape (\d) or a coded character: not read here.
                            throw Unknown();
                        }
                        h = pattern[before];
                    }
                    high = h;
                }
                mayBeDigit |= AnyDigit(low, high);
            }
        }

        private static bool AnyDigit(char low, char high)
        {
            for (var c = (int)low; c <= high; c++)
            {
                if (char.IsDigit((char)c))
                {
                    return true;
                }
            }
            return false;
        }
    }
}
