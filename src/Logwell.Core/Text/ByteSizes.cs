using System.Globalization;

namespace Logwell.Core.Text;

/// <summary>Sizes as people write them in settings: <c>512MB</c>, <c>1GiB</c>, <c>64K</c>, <c>100</c> bytes. Units are powers of 1024.</summary>
public static class ByteSizes
{
    private static readonly (string Suffix, long Size)[] Units =
    [
        ("KIB", 1L << 10), ("MIB", 1L << 20), ("GIB", 1L << 30), ("KB", 1L << 10), ("MB", 1L << 20), ("GB", 1L << 30),
        ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30), ("B", 1L),
    ];

    /// <summary>The size written, zero included; false for anything else (a sign, a fraction, an unknown unit, an overflow).</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim().ToUpperInvariant();
        long unit = 1;
        foreach (var (suffix, size) in Units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal))
            {
                unit = size;
                text = text[..^suffix.Length].TrimEnd();
                break;
            }
        }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count > long.MaxValue / unit)
        {
            return false;
        }
        bytes = count * unit;
        return true;
    }
}
