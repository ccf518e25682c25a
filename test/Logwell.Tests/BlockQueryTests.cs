using Logwell.Storage.Querying;

namespace Logwell.Tests;

public sealed class BlockQueryTests
{
    // The run every match of the pattern must hold, which narrows the rows a regular expression is tested on.
    [Theory]
    [InlineData("connection", "connection")]
    [InlineData("conn[a-z]+ion", "conn")]
    [InlineData("time.*out", "time")]
    [InlineData("CONN?ection", "ection")]
    [InlineData("log+in", "log")]
    [InlineData("colou?r:", "colo")]
    [InlineData("abc{0,2}defg", "defg")]
    [InlineData("(re)?trying", "trying")]
    [InlineData("re(set|try)", null)]
    [InlineData("reset|retry", null)]
    [InlineData("[reset]+", null)]
    [InlineData("a[]|x]bcdef", "bcdef")]
    [InlineData("\\d+ ms", " ms")]
    [InlineData("took \\d+ ms", " ms")]
    [InlineData("kernel panic", null)]
    [InlineData("x.y.z", null)]
    public void ARegexNarrowsByTheRunEveryMatchHolds(string pattern, string? literal) =>
        Assert.Equal(literal, BlockQuery.RegexLiteral(pattern));
}
