using System.Globalization;
using System.Text;
using Logwell.Storage.ClickHouse;

namespace Logwell.Tests;

/// <summary>
/// ClickHouse string literals, without a server: whatever the value, the literal is one quoted token with no raw
/// control character, and ClickHouse's escape rules read it back as the value. (The same values go through a real
/// server in the integration tests.)
/// </summary>
public sealed class ClickHouseSqlTests
{
    [Fact]
    public void EveryNastyValueIsOneLiteralThatReadsBackAsItself()
    {
        foreach (var value in NastyStrings.All)
        {
            AssertRoundTrip(value);
        }
    }

    [Fact]
    public void RandomValuesReadBackAsThemselves()
    {
        foreach (var value in NastyStrings.Random(20261206, 5_000))
        {
            AssertRoundTrip(value);
        }
    }

    [Fact]
    public void ALoneSurrogateBecomesTheReplacementCharacterAndBytesOfAnyKindAreEscaped()
    {
        Assert.Equal("'a\uFFFDb'", ClickHouseSql.Literal("a\uD800b"));
        var bytes = new byte[] { 0x41, 0xff, 0xc3, 0x28, 0x27, 0x5c, 0x00 };
        Assert.Equal("'A\\xff\\xc3(\\'\\\\\\x00'", ClickHouseSql.Literal(bytes));
        Assert.Equal(bytes, Decode(ClickHouseSql.Literal(bytes)).Select(c => (byte)c).ToArray());
    }

    [Fact]
    public void IdentifiersAreBackquotedAndEscaped()
    {
        Assert.Equal("`logs_app`", ClickHouseSql.Identifier("logs_app"));
        Assert.Equal("`a\\`b\\\\c`", ClickHouseSql.Identifier("a`b\\c"));
        Assert.Throws<ArgumentException>(() => ClickHouseSql.Identifier(""));
        Assert.Throws<ArgumentException>(() => ClickHouseSql.Identifier("a\nb"));
    }

    private static void AssertRoundTrip(string value)
    {
        var literal = ClickHouseSql.Literal(value);
        Assert.StartsWith("'", literal, StringComparison.Ordinal);
        Assert.EndsWith("'", literal, StringComparison.Ordinal);
        Assert.DoesNotContain(literal, c => c < ' ' || c == '\x7f');
        Assert.Equal(value, Decode(literal));
    }

    /// <summary>A quoted literal as ClickHouse's lexer reads it: it ends at the first unescaped quote, which must be the last character.</summary>
    private static string Decode(string literal)
    {
        var text = new StringBuilder();
        var i = 1;
        for (; i < literal.Length; i++)
        {
            var c = literal[i];
            if (c == '\'')
            {
                break;
            }
            if (c != '\\')
            {
                text.Append(c);
                continue;
            }
            var next = literal[++i];
            switch (next)
            {
                case 'x':
                    text.Append((char)int.Parse(literal.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 2;
                    break;
                case 'n': text.Append('\n'); break;
                case 't': text.Append('\t'); break;
                case 'r': text.Append('\r'); break;
                case '0': text.Append('\0'); break;
                default: text.Append(next); break;
            }
        }
        Assert.Equal(literal.Length - 1, i);
        return text.ToString();
    }
}
