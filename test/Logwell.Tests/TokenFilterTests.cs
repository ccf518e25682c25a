using Logwell.Core.Text;
using Logwell.Storage.Segments;

namespace Logwell.Tests;

public sealed class TokenFilterTests
{
    [Fact]
    public void EveryAddedTokenIsFoundAndFewAbsentOnesAre()
    {
        var present = Enumerable.Range(0, 20_000).Select(i => TokenHash.Of($"token{i}")).ToArray();
        var filter = TokenFilter.Build(present);
        // 256-bit buckets, rounded up.
        Assert.Equal((20_000 * TokenFilter.BitsPerToken + 255) / 256 * 8, filter.Length);
        Assert.All(present, hash => Assert.True(TokenFilter.MayContain(filter, hash)));

        var falsePositives = Enumerable.Range(0, 200_000).Count(i => TokenFilter.MayContain(filter, TokenHash.Of($"absent{i}")));
        // About 0.5% at 12 bits per token; a broken filter answers "maybe" far more often.
        Assert.InRange(falsePositives, 0, 2_000);
    }

    [Fact]
    public void ALookupReadsTheBitsAsTheFilterWasWritten()
    {
        // The layout segments keep on disk: a bucket of 8 words chosen by the hash's high half, in word i the bit
        // (low half × salt i) >> 27. A lookup of any kind must agree with it exactly, absent tokens included.
        uint[] salts = [0x47b6137bU, 0x44974d91U, 0x8824ad5bU, 0xa2b7289dU, 0x705495c7U, 0x2df1424bU, 0x9efc4947U, 0x5c6bfb31U];
        var filter = TokenFilter.Build([.. Enumerable.Range(0, 3_000).Select(i => TokenHash.Of($"token{i}"))]);
        var buckets = filter.Length / 8;
        var agreed = 0;
        foreach (var hash in Enumerable.Range(0, 100_000).Select(i => TokenHash.Of($"any{i}")))
        {
            var bucket = (int)(((hash >> 32) * (ulong)buckets) >> 32) * 8;
            var expected = Enumerable.Range(0, 8).All(i => (filter[bucket + i] & (1U << (int)(((uint)hash * salts[i]) >> 27))) != 0);
            Assert.Equal(expected, TokenFilter.MayContain(filter, hash));
            Assert.Equal(expected, TokenFilter.MayContain(filter, new TokenFilter.Probe(hash)));
            agreed += expected ? 1 : 0;
        }
        // A filter of 3,000 tokens answers "maybe" for some of 100,000 others, so both answers were compared.
        Assert.InRange(agreed, 1, 5_000);
    }

    [Fact]
    public void AnEmptyBlockStillHasAValidFilter()
    {
        var filter = TokenFilter.Build([]);
        Assert.Equal(8, filter.Length);
        Assert.False(TokenFilter.MayContain(filter, TokenHash.Of("anything")));
    }
}
