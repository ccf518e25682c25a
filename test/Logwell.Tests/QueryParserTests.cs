using Logwell.Core.Query;

namespace Logwell.Tests;

public sealed class QueryParserTests
{
    [Fact]
    public void EmptyQueryMatchesEverything()
    {
        Assert.IsType<MatchAllNode>(QueryParser.Parse(""));
        Assert.IsType<MatchAllNode>(QueryParser.Parse("  *  "));
    }

    [Fact]
    public void DefaultOperatorIsAnd()
    {
        var node = Assert.IsType<AndNode>(QueryParser.Parse("error timeout"));
        Assert.Equal([new TermNode(null, "error"), new TermNode(null, "timeout")], node.Children);
    }

    [Fact]
    public void OrBindsLooserThanAnd()
    {
        var node = Assert.IsType<OrNode>(QueryParser.Parse("a AND b OR c"));
        Assert.IsType<AndNode>(node.Children[0]);
        Assert.Equal(new TermNode(null, "c"), node.Children[1]);
    }

    [Fact]
    public void FieldsPhrasesWildcardsAndNegation()
    {
        var node = Assert.IsType<AndNode>(QueryParser.Parse("level:ERROR AND host:web-* AND NOT \"connection reset\" -debug"));
        Assert.Equal(new TermNode("level", "error"), node.Children[0]);
        Assert.Equal(new PrefixNode("host", "web-"), node.Children[1]);
        var not = Assert.IsType<NotNode>(node.Children[2]);
        Assert.Equal(new PhraseNode(null, ["connection", "reset"], "connection reset"), not.Child);
        Assert.Equal(new NotNode(new TermNode(null, "debug")), node.Children[3]);
    }

    [Fact]
    public void ParenthesesGroup()
    {
        var node = Assert.IsType<AndNode>(QueryParser.Parse("(a OR b) c"));
        Assert.IsType<OrNode>(node.Children[0]);
    }

    [Fact]
    public void TermWithPunctuationBecomesAPhrase()
    {
        Assert.Equal(new PhraseNode("host", ["web", "1"], "web-1"), QueryParser.Parse("host:web-1"));
        Assert.Equal(new TermNode(null, "user_id"), QueryParser.Parse("user_id"));
    }

    [Theory]
    [InlineData("\"unclosed phrase", 0, "a closing '\"'")]
    [InlineData("(error OR warn", 14, "')'")]
    [InlineData("error AND", 9, "a term, a \"phrase\", field:value or '('")]
    [InlineData("error)", 5, "an operator, a clause or the end of the query")]
    [InlineData("host:", 5, "a value, a \"phrase\" or '*'")]
    [InlineData("we*b", 2, "a term ending in '*'")]
    [InlineData("OR error", 0, "a term, a \"phrase\", field:value or '('")]
    public void QueryWithAnErrorReportsItsPositionAndWhatWasExpected(string text, int position, string expected)
    {
        Assert.False(QueryParser.TryParse(text, out _, out var error));
        Assert.NotNull(error);
        Assert.Equal(position, error.Position);
        Assert.Equal(expected, error.Expected);
    }

    [Fact]
    public void DeeplyNestedQueryIsRefusedWithoutExhaustingTheStack()
    {
        var text = new string('(', 10_000) + "x" + new string(')', 10_000);
        Assert.False(QueryParser.TryParse(text, out _, out var error));
        Assert.Contains("nests deeper", error!.Message, StringComparison.Ordinal);
        Assert.False(QueryParser.TryParse(string.Concat(Enumerable.Repeat("NOT ", 5_000)) + "x", out _, out error));
        Assert.Equal(64 * 4, error!.Position);
    }

    [Fact]
    public void OverlongQueryIsRefused()
    {
        Assert.False(QueryParser.TryParse(new string('a', QueryParser.MaxLength + 1), out _, out var error));
        Assert.Contains("longer than", error!.Message, StringComparison.Ordinal);
    }
}
