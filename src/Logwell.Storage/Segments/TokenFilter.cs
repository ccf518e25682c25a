namespace Logwell.Storage.Segments;

/// <summary>
/// A block's token filter: a split-block Bloom filter over the 64-bit hashes of its distinct tokens. Each token sets
/// 8 bits inside one 256-bit bucket, so a lookup touches one cache line. At 12 bits per token about one lookup in two
/// hundred answers "maybe" for an absent token; it never answers "no" for a present one.
/// </summary>
internal static class TokenFilter
{
    public const int BitsPerToken = 12;

    private static readonly uint[] Salts = [0x47b6137bU, 0x44974d91U, 0x8824ad5bU, 0xa2b7289dU, 0x705495c7U, 0x2df1424bU, 0x9efc4947U, 0x5c6bfb31U];

    public static uint[] Build(ReadOnlySpan<ulong> hashes)
    {
        var buckets = Math.Max(1, (int)Math.Min(int.MaxValue / 8, ((long)hashes.Length * BitsPerToken + 255) / 256));
        var words = new uint[buckets * 8];
        foreach (var hash in hashes)
        {
            var bucket = Bucket(hash, buckets) * 8;
            var key = (uint)hash;
            for (var i = 0; i < 8; i++)
            {
                words[bucket + i] |= 1U << (int)((key * Salts[i]) >> 27);
            }
        }
        return words;
    }

    public static bool MayContain(ReadOnlySpan<uint> words, ulong hash)
    {
        var bucket = Bucket(hash, words.Length / 8) * 8;
        var key = (uint)hash;
        for (var i = 0; i < 8; i++)
        {
            if ((words[bucket + i] & (1U << (int)((key * Salts[i]) >> 27))) == 0)
            {
                return false;
            }
        }
        return true;
    }

    private static int Bucket(ulong hash, int buckets) => (int)(((hash >> 32) * (ulong)buckets) >> 32);

}
