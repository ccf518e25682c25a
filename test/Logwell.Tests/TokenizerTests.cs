using Logwell.Core.Text;

namespace Logwell.Tests;

public sealed class TokenizerTests
{
    [Fact]
    public void SplitsOnPunctuationAndLowercases()
    {
        Assert.Equal(["user", "login", "failed", "for", "bob"], Tokenizer.Tokens("User LOGIN-failed: for 'bob'"));
    }

    [Fact]
    public void JoinedIdentifiersAreFindableWholeAndByTheirParts()
    {
        var tokens = Tokenizer.Tokens("svc.user_id=42");
        Assert.Equal(["svc.user_id", "svc", "user_id", "user", "id", "42"], tokens);
    }

    [Fact]
    public void IpAddressesStayWholeToo()
    {
        Assert.Contains("10.0.0.12", Tokenizer.Tokens("from 10.0.0.12:8080"));
        Assert.Contains("12", Tokenizer.Tokens("from 10.0.0.12:8080"));
    }

    [Fact]
    public void TrailingAndLeadingJoinersAreNotPartOfTheToken()
    {
        Assert.Equal(["end", "of", "sentence"], Tokenizer.Tokens("end of sentence."));
        Assert.Equal(["private"], Tokenizer.Tokens("_private"));
    }

    [Theory]
    [InlineData("request to svc.user_id failed", "user_id", true)]
    [InlineData("request to svc.user_id failed", "SVC.USER_ID", true)]
    [InlineData("request to svc.user_id failed", "user_i", false)]
    [InlineData("errors: 3", "error", false)]
    [InlineData("ERROR: disk", "error", true)]
    public void ContainsTokenMatchesWholeTokensOnly(string text, string token, bool expected)
    {
        Assert.Equal(expected, Tokenizer.ContainsToken(text, token));
    }

    [Fact]
    public void PhrasesMatchContiguousBaseTokens()
    {
        Assert.True(Tokenizer.ContainsPhrase("Connection reset by peer", ["reset", "by", "peer"]));
        Assert.False(Tokenizer.ContainsPhrase("reset the peer by", ["reset", "by", "peer"]));
    }

    [Fact]
    public void PrefixesMatchAtTokenStarts()
    {
        Assert.True(Tokenizer.ContainsPrefixAtBoundary("host web-12 up", "web-1"));
        Assert.False(Tokenizer.ContainsPrefixAtBoundary("cobweb-12", "web-1"));
    }
}
