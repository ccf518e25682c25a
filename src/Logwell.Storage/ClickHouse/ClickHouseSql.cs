using System.Text;

namespace Logwell.Storage.ClickHouse;

/// <summary>
/// The one way a value enters the SQL Logwell sends to ClickHouse. ClickHouse 18.16 has no server-side query
/// parameters, so every literal is written into the statement: quoted, with the quote, the backslash and every control
/// character escaped (<c>\'</c>, <c>\\</c>, <c>\xHH</c>). Inside a quoted literal nothing else is special: <c>--</c>,
/// <c>/*</c>, <c>;</c> and <c>{</c> are characters of the value.
/// </summary>
public static class ClickHouseSql
{
    /// <summary>A string literal holding exactly <paramref name="value"/> (a lone UTF-16 surrogate, which UTF-8 cannot hold, becomes U+FFFD).</summary>
    public static string Literal(string value)
    {
        var builder = new StringBuilder(value.Length + 2);
        builder.Append('\'');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '\'':
                    builder.Append("\\'");
                    break;
                case '\\':
                    builder.Append("\\\\");
                    break;
                case < ' ' or '\x7f':
                    builder.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                    break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        builder.Append(c).Append(value[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        builder.Append('\uFFFD');
                    }
                    else
                    {
                        builder.Append(c);
                    }
                    break;
            }
        }
        return builder.Append('\'').ToString();
    }

    /// <summary>A string literal holding exactly these bytes, valid UTF-8 or not: every byte outside printable ASCII as <c>\xHH</c>.</summary>
    public static string Literal(ReadOnlySpan<byte> value)
    {
        var builder = new StringBuilder(value.Length + 2);
        builder.Append('\'');
        foreach (var b in value)
        {
            switch (b)
            {
                case (byte)'\'':
                    builder.Append("\\'");
                    break;
                case (byte)'\\':
                    builder.Append("\\\\");
                    break;
                case < 0x20 or >= 0x7f:
                    builder.Append("\\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                    break;
                default:
                    builder.Append((char)b);
                    break;
            }
        }
        return builder.Append('\'').ToString();
    }

    /// <summary>A quoted identifier (a table or column name): backquotes, with the backquote and the backslash escaped.</summary>
    public static string Identifier(string name)
    {
        if (name.Length == 0 || name.Any(c => c < ' ' || char.IsSurrogate(c)))
        {
            throw new ArgumentException($"'{name}' cannot be a ClickHouse identifier", nameof(name));
        }
        return "`" + name.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("`", "\\`", StringComparison.Ordinal) + "`";
    }
}
