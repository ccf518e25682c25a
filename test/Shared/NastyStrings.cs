namespace Logwell.Tests;

/// <summary>Values that break naive quoting in a query language: quotes, backslashes, NUL, comments, placeholders.</summary>
internal static class NastyStrings
{
    public static readonly string[] All =
    [
        "", "'", "\\", "\\'", "''", "'; DROP TABLE logs; --", "a' OR '1'='1", "\0", "a\0b", "line\nbreak\r\n", "\t\b\f\v\a",
        "{name:String}", "/* comment */", "-- comment", "#", "\\x41", "\\0", "\u007f", "ünïcödé ✓ 😀", "\\\\'\\'",
        "\u2028\u2029", "`backquote`", "\"double\"", "$1", "?", "%s",
    ];

    /// <summary><paramref name="count"/> random values drawn from the characters that matter.</summary>
    public static IEnumerable<string> Random(int seed, int count)
    {
        var random = new System.Random(seed);
        // Whole characters: the emoji is two UTF-16 units and stays a pair.
        string[] alphabet = ["'", "\\", "\0", "\n", "\r", "\t", "{", "}", "`", "\"", "-", "/", "*", "#", ";", "x", "X", "0", "a", "é", "😀", "\u007f", "\u0001", " "];
        for (var i = 0; i < count; i++)
        {
            yield return string.Concat(Enumerable.Range(0, random.Next(0, 24)).Select(_ => alphabet[random.Next(alphabet.Length)]));
        }
    }
}
