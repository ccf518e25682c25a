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
    public void AnEmptyBlockStillHasAValidFilter()
    {
        var filter = TokenFilter.Build([]);
        Assert.Equal(8, filter.Length);
        Assert.False(TokenFilter.MayContain(filter, TokenHash.Of("anything")));
    }
}
