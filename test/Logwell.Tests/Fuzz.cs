using System.Globalization;
using System.Text;
using CsCheck;

namespace Logwell.Tests;

/// <summary>
/// Near-valid input for the fuzz tests: a valid seed with a few mutations (insertions of the tokens parsers trip on,
/// deletions, duplications, truncation, long runs that nest deeply or make huge numbers). The quick run in
/// <c>./test.sh</c> samples a few thousand inputs per parser; <c>LOGWELL_FUZZ_SECONDS=N</c> runs each for N seconds.
/// </summary>
internal static class Fuzz
{
    /// <summary>Seconds per fuzz test, when a long run asks for them; otherwise a fixed number of samples.</summary>
    public static int Seconds => int.TryParse(Environment.GetEnvironmentVariable("LOGWELL_FUZZ_SECONDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? seconds : -1;

    /// <summary>How many samples a quick run takes (ignored in a long run, which goes by time).</summary>
    public static long Iterations(long quick) => Seconds > 0 ? -1 : quick;

    /// <summary>Reports how many inputs a test tried, for the long run's summary.</summary>
    public static Action<string>? Report { get; set; } = line => Console.Out.WriteLine(line);

    private static readonly string[] Tokens =
    [
        "\"", "\\", "{", "}", "[", "]", "(", ")", ":", ",", "*", "?", "~", "^", "|", "/", "\n", "\r\n", "\0", "\uD800",
        "\uFFFF", "\u00e9", "\U0001F600", "1e400", "-1e-400", "-9223372036854775809", "18446744073709551616",
        "99999999999999999999999999999999", "NaN", "-0", "0x1F", "null", "true", "AND", "OR", "NOT", "TO", " ", "\t", "<",
        ">", "=", "'", "%", "$", "@t", "{\"a\":", "[[[[", "\\u0000", "\\uD800", "\\u", "now-", "+1d", "/d", "| stats count() by",
        "| where", "| timechart span=", "| sort -", "| head ", "_exists_:", "<134>", "1 ", "-", "T", "Z", "+25:00", "..", "\"\"",
    ];

    public static Gen<string> Mutated(params string[] seeds) =>
        Gen.Select(Gen.Int[0, seeds.Length - 1], Mutation.Array[0, 6]).Select((seed, mutations) => Apply(seeds[seed], mutations));

    public static Gen<byte[]> MutatedBytes(params byte[][] seeds) =>
        Gen.Select(Gen.Int[0, seeds.Length - 1], Mutation.Array[0, 6]).Select((seed, mutations) => Apply(seeds[seed], mutations));

    private static readonly Gen<(int Kind, double At, int Token, int Length)> Mutation =
        Gen.Select(Gen.Int[0, 9], Gen.Double[0, 1], Gen.Int[0, Tokens.Length - 1], Gen.Int[1, 64]);

    private static string Apply(string seed, (int Kind, double At, int Token, int Length)[] mutations)
    {
        var text = new StringBuilder(seed);
        foreach (var (kind, at, token, length) in mutations)
        {
            var position = (int)(at * text.Length);
            var end = Math.Min(text.Length, position + length);
            switch (kind)
            {
                case 0:
                    text.Insert(position, Tokens[token]);
                    break;
                case 1:
                    text.Remove(position, end - position);
                    break;
                case 2:
                    text.Insert(position, text.ToString(position, end - position));
                    break;
                case 3 when position < text.Length:
                    text[position] = (char)(length * 977 % 0x3000);
                    break;
                case 4:
                    text.Length = position;
                    break;
                case 5:
                    // Long runs: deep nesting, huge numbers, many fields.
                    text.Insert(position, string.Concat(Enumerable.Repeat(Tokens[token], length * length * 4)));
                    break;
                case 6:
                    // Many distinct fields.
                    text.Insert(position, string.Concat(Enumerable.Range(0, length * 8).Select(i => "\"f" + i.ToString(CultureInfo.InvariantCulture) + "\":1,")));
                    break;
                case 7:
                    var codePoint = length * 4099 % 0x10FFFF;
                    text.Insert(position, char.ConvertFromUtf32(codePoint is >= 0xD800 and <= 0xDFFF ? 0xFFFD : codePoint));
                    break;
                case 8:
                    var slice = text.ToString(position, end - position);
                    text.Remove(position, end - position).Insert(position, length % 2 == 0 ? slice.ToUpperInvariant() : slice.ToLowerInvariant());
                    break;
                case 9:
                    text.Insert(position, seed);
                    break;
            }
        }
        return text.ToString();
    }

    private static byte[] Apply(byte[] seed, (int Kind, double At, int Token, int Length)[] mutations)
    {
        var bytes = new List<byte>(seed);
        foreach (var (kind, at, token, length) in mutations)
        {
            var position = (int)(at * bytes.Count);
            var end = Math.Min(bytes.Count, position + length);
            switch (kind)
            {
                case 0 or 7:
                    bytes.InsertRange(position, Encoding.UTF8.GetBytes(Tokens[token]));
                    break;
                case 1:
                    bytes.RemoveRange(position, end - position);
                    break;
                case 2 or 9:
                    bytes.InsertRange(position, bytes.GetRange(position, end - position));
                    break;
                case 3 when position < bytes.Count:
                    bytes[position] ^= (byte)(1 << (length % 8));
                    break;
                case 4:
                    bytes.RemoveRange(position, bytes.Count - position);
                    break;
                case 5:
                    // A varint that does not end, or a length far beyond the message.
                    bytes.InsertRange(position, Enumerable.Repeat((byte)0xFF, length % 12).Append((byte)0x0F));
                    break;
                case 6 when position < bytes.Count:
                    bytes[position] = (byte)(token * 37 + length);
                    break;
                case 8:
                    bytes.InsertRange(position, Enumerable.Repeat((byte)(token % 2 == 0 ? 0x0A : 0x12), length));
                    break;
            }
        }
        return [.. bytes];
    }

    /// <summary>Samples <paramref name="gen"/> for the quick count or the long run's time, reporting how many ran.</summary>
    public static void Run<T>(string name, Gen<T> gen, Action<T> assert, long quick)
    {
        var tried = 0L;
        gen.Sample(value =>
        {
            Interlocked.Increment(ref tried);
            assert(value);
        }, iter: Iterations(quick), time: Seconds);
        Report?.Invoke(string.Create(CultureInfo.InvariantCulture, $"fuzz {name}: {tried} inputs, no failure"));
    }

    public static async Task RunAsync<T>(string name, Gen<T> gen, Func<T, Task> assert, long quick)
    {
        var tried = 0L;
        await gen.SampleAsync(async value =>
        {
            Interlocked.Increment(ref tried);
            await assert(value);
        }, iter: Iterations(quick), time: Seconds, threads: 2);
        Report?.Invoke(string.Create(CultureInfo.InvariantCulture, $"fuzz {name}: {tried} inputs, no failure"));
    }
}
