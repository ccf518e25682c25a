using System.Text.RegularExpressions;
using Logwell.Core.Query;

namespace Logwell.Tests;

public sealed class RegexShapeTests
{
    [Theory]
    [InlineData("upstre.m", 8, 1)]
    [InlineData("re(set|try)", 5, 0)]
    [InlineData("CONN?ection", 10, 0)]
    [InlineData("(re)?tr(y|ied)", 7, 0)]
    [InlineData(@"web-[0-9]{2,3}", 7, 3)]
    [InlineData(@"\d{1,2}x", 3, 2)]
    [InlineData("[^a]", 1, 1)]
    [InlineData(@"\bfoo\b", 3, 0)]
    [InlineData("^(?i)foo$", 3, 0)]
    [InlineData("(?<name>ab)c(?:d|ef)", 5, 0)]
    [InlineData("x{,3}", 5, 1)]
    [InlineData(@"\u0031\x41", 2, 1)]
    [InlineData(@"[a-f\.]{4}", 4, 0)]
    [InlineData(@"[\w]", 1, 1)]
    [InlineData(@"[\s\D]+?", null, 0)]
    [InlineData(".*peer", null, null)]
    [InlineData("[a-z]+_id", null, 0)]
    [InlineData(@"a\d*", null, null)]
    [InlineData("(ab)*", null, 0)]
    [InlineData("(?#note)ab", 2, 0)]
    [InlineData("[\u0660-\u0669]", 1, 1)]
    public void BoundsHoldTheLongestMatchAndItsDigits(string pattern, int? length, int? digits) =>
        Assert.Equal(new RegexShape(length, digits), RegexShape.Of(pattern));

    [Theory]
    [InlineData(@"[\u0020-~]")]
    [InlineData("(?=a)b")]
    [InlineData("(?>a)")]
    [InlineData(@"(a)\1")]
    [InlineData(@"[\d-z]")]
    [InlineData("a{100000}{100000}{100000}")]
    [InlineData("(ab")]
    [InlineData("ab)")]
    public void WhatTheParserDoesNotReadHasNoShape(string pattern) => Assert.Null(RegexShape.Of(pattern));

    /// <summary>Every string that matches one of many random patterns is within the pattern's bounds.</summary>
    [Fact]
    public void NoMatchIsLongerOrHoldsMoreDigitsThanTheBounds()
    {
        var random = new Random(5);
        string[] atoms = ["a", "b", "1", ".", @"\d", @"\w", "[a1]", "[^b]", "[0-9]", "_", @"\.", "(a|1b)", "(?:(?:b1)?)", "(?:x{2})", "(?:[a-b]{1,2})"];
        const string alphabet = "ab1_.x9 -";
        var checkedMatches = 0;
        for (var n = 0; n < 300; n++)
        {
            var pattern = string.Concat(Enumerable.Range(0, random.Next(1, 5)).Select(_ => atoms[random.Next(atoms.Length)] + (random.Next(5) == 0 ? "?" : random.Next(8) == 0 ? "+" : "")));
            var shape = RegexShape.Of(pattern);
            Assert.NotNull(shape);
            var regex = new Regex($"^(?:{pattern})$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | RegexOptions.Singleline);
            for (var s = 0; s < 400; s++)
            {
                var text = new string([.. Enumerable.Range(0, random.Next(0, 9)).Select(_ => alphabet[random.Next(alphabet.Length)])]);
                if (regex.IsMatch(text))
                {
                    checkedMatches++;
                    Assert.True(shape.MaxLength is null || text.Length <= shape.MaxLength, $"'{text}' matches /{pattern}/ past length {shape.MaxLength}");
                    Assert.True(shape.MaxDigits is null || text.Count(char.IsDigit) <= shape.MaxDigits, $"'{text}' matches /{pattern}/ past {shape.MaxDigits} digits");
                }
            }
        }
        Assert.True(checkedMatches > 1000, $"only {checkedMatches} matches were checked");
    }
}
