using System.Runtime.Intrinsics;

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

    public static bool MayContain(ReadOnlySpan<uint> words, ulong hash) => MayContain(words, new Probe(hash));

    /// <summary>
    /// A token's lookup, made once for probing many filters: its 8 bits inside a bucket are the same in every filter,
    /// only the bucket differs with the filter's size.
    /// </summary>
    public readonly struct Probe
    {
        public Probe(ulong hash)
        {
            Hash = hash;
            var key = (uint)hash;
            Span<uint> bits = stackalloc uint[8];
            for (var i = 0; i < 8; i++)
            {
                bits[i] = 1U << (int)((key * Salts[i]) >> 27);
            }
            Bits = Vector256.Create<uint>(bits);
        }

        public ulong Hash { get; }

        public Vector256<uint> Bits { get; }
    }

    /// <summary>
    /// Whether the filter may hold the probe's token: its bucket read as one 256-bit vector and tested without a branch,
    /// so that probing many blocks' filters in a row (a needle across a segment) keeps several cache misses in flight
    /// instead of waiting for each.
    /// </summary>
    public static bool MayContain(ReadOnlySpan<uint> words, in Probe probe)
    {
        var bucket = Bucket(probe.Hash, words.Length / 8) * 8;
        var stored = Vector256.Create<uint>(words.Slice(bucket, 8));
        return Vector256.EqualsAll(stored & probe.Bits, probe.Bits);
    }

    private static int Bucket(ulong hash, int buckets) => (int)(((hash >> 32) * (ulong)buckets) >> 32);

}
