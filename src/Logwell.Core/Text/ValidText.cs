namespace Logwell.Core.Text;

/// <summary>Text that any UTF-8 writer takes: an unpaired UTF-16 surrogate becomes U+FFFD.</summary>
public static class ValidText
{
    public static string Of(string text)
    {
        var first = FirstUnpaired(text);
        if (first < 0)
        {
            return text;
        }
        return string.Create(text.Length, (text, first), static (span, state) =>
        {
            var (source, from) = state;
            source.AsSpan().CopyTo(span);
            for (var i = from; i < span.Length; i++)
            {
                if (char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]))
                {
                    i++;
                }
                else if (char.IsSurrogate(span[i]))
                {
                    span[i] = '\uFFFD';
                }
            }
        });
    }

    private static int FirstUnpaired(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i]))
            {
                continue;
            }
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            return i;
        }
        return -1;
    }
}
