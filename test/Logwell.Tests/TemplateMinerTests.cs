using System.Text;
using Logwell.Core.Patterns;
using Xunit;

namespace Logwell.Tests;

public sealed class TemplateMinerTests
{
    [Theory]
    [InlineData("42", "<*>")]
    [InlineData("-3.5", "<*>")]
    [InlineData("10.250.19.102", "<*>")]
    [InlineData("12ms", "<*>")]
    [InlineData("99%", "<*>")]
    [InlineData("0x7fff5fbff8a8", "<*>")]
    [InlineData("deadbeef42", "<*>")]
    [InlineData("blk_-6952295868487656571", "blk_<*>")]
    [InlineData("attempt_1445144423722_0020_m_000001_0", "attempt_<*>")]
    [InlineData("msra-sa-41", "<*>")]
    [InlineData("core.1234", "core.<*>")]
    [InlineData("ssh2", "ssh2")]
    [InlineData("jk2_init()", "jk2_init()")]
    [InlineData("uid=0", "uid=<*>")]
    [InlineData("10.251.42.84:50010", "<*>:<*>")]
    [InlineData("/10.250.19.102", "/<*>")]
    [InlineData("(uid=0)", "(uid=<*>)")]
    [InlineData("Jul", "<*>")]
    [InlineData("done.", "done.")]
    [InlineData("22.", "<*>.")]
    [InlineData("tty=ssh", "tty=ssh")]
    public void TokensAreMaskedByTheirClass(string token, string masked)
    {
        var (tokens, _) = TemplateMiner.Tokenize(token);
        Assert.Equal([masked], tokens);
    }

    [Fact]
    public void ASizeUnitAfterANumberIsPartOfIt()
    {
        var miner = new TemplateMiner();
        var match = miner.Add("stored as bytes (estimated size 384.0 B, free 317.5 KB)");
        Assert.Equal("stored as bytes (estimated size <*>, free <*>)", TemplateMiner.Template(match));
    }

    [Theory]
    [InlineData("bglio12", "bglio7", "bglio<*>")]
    [InlineData("()", "(host.example.com)", "(<*>)")]
    [InlineData("rhost=1.2.3.4", "rhost=example.com", "rhost=<*>")]
    [InlineData("/a/b:", "/c:", "/<*>:")]
    [InlineData("<*>", "anything", "<*>")]
    [InlineData("alpha", "beta", "<*>")]
    [InlineData("same", "same", "same")]
    public void TwoTokensMergeKeepingWhatTheyShareAtEachEnd(string a, string b, string merged)
    {
        var result = TemplateMiner.MergeTokens(a, b);
        Assert.Equal(merged, result);
        Assert.True(TemplateMiner.Matches(result, a) || a.Contains("<*>", StringComparison.Ordinal));
        Assert.True(TemplateMiner.Matches(result, b));
    }

    [Theory]
    [InlineData("blk_<*>", "blk_123", true)]
    [InlineData("blk_<*>", "block_123", false)]
    [InlineData("(<*>)", "(x)", true)]
    [InlineData("(<*>)", "x)", false)]
    [InlineData("<*>:<*>", "host:80", true)]
    [InlineData("<*>:<*>", "host", false)]
    [InlineData("a<*>b<*>c", "aXbYc", true)]
    [InlineData("a<*>b<*>c", "aXYc", false)]
    [InlineData("ab<*>ba", "aba", false)]
    public void ATemplateTokenMatchesTheTokensItStandsFor(string template, string token, bool matches) =>
        Assert.Equal(matches, TemplateMiner.Matches(template, token));

    /// <summary>A small log of four kinds of events, each with its variables, as a source would write them.</summary>
    private static IEnumerable<(string Line, string Template)> Fixture()
    {
        var users = new[] { "root", "admin", "oracle", "test", "guest", "postgres", "ubuntu" };
        for (var i = 0; i < 60; i++)
        {
            var ip = $"10.{i % 7}.{i * 3 % 250}.{i + 1}";
            yield return ($"Received block blk_{1000 + i * 37} of size {i * 512 + 7} from /{ip}", "Received block blk_<*> of size <*> from /<*>");
            yield return ($"Accepted {(i % 2 == 0 ? "password" : "publickey")} for {users[i % users.Length]} from {ip} port {40000 + i} ssh2",
                $"Accepted {(i % 2 == 0 ? "password" : "publickey")} for <*> from <*> port <*> ssh2");
            yield return ($"Invalid user {users[i % users.Length]}{(i % 3 == 0 ? "" : "x")} from {ip}", "Invalid user <*> from <*>");
            yield return ($"Connection closed by {ip} [preauth]", "Connection closed by <*> [preauth]");
            if (i % 10 == 0)
            {
                yield return ("Server listening on 0.0.0.0 port 22.", "Server listening on <*> port <*>.");
            }
        }
    }

    [Fact]
    public void AnyWhiteSpaceSeparatesTokensAndOtherCharactersBeyondAsciiDoNot()
    {
        var miner = new TemplateMiner();
        var match = miner.Add("user\u00A0café\u2003logged in\tfrom 10.0.0.1 \u0001x\u00E9 5");
        Assert.Equal(8, match.Tokens.Length);
        Assert.Equal("user\u00A0café\u2003logged in\tfrom <*> \u0001x\u00E9 <*>", TemplateMiner.Template(match));
    }

    [Fact]
    public void IngestMasksEachTokenAsMaskingItAloneDoes()
    {
        // Ingest takes numbers, hexadecimal ids and addresses without masking them, and words from a cache: the same
        // tokens as masking every token of the message.
        var miner = new TemplateMiner();
        var random = new Random(5);
        const string Alphabet = "0123456789abcdefABCDEFxyzGB.:,-+_=()%!?é\u0001";
        var compared = 0;
        for (var m = 0; m < 3_000; m++)
        {
            var message = string.Join(' ', Enumerable.Range(0, random.Next(1, 8)).Select(_ =>
                new string([.. Enumerable.Range(0, random.Next(1, 10)).Select(_ => Alphabet[random.Next(random.Next(2) == 0 ? 10 : Alphabet.Length)])])));
            var expected = TemplateMiner.Tokenize(message).Tokens;
            // Twice: the second time the words come from the cache.
            Assert.Equal(expected, miner.Add(message).Tokens);
            Assert.Equal(expected, miner.Add(message).Tokens);
            compared += expected.Length;
        }
        Assert.True(compared > 10_000);
    }

    [Fact]
    public void LongTokensAreMaskedLikeShortOnes()
    {
        var miner = new TemplateMiner();
        var word = new string('a', 1_000);
        foreach (var digits in new[] { 3, 300, 3_000 })
        {
            var match = miner.Add($"stored id={new string('7', digits)}, key=k{new string('5', digits)}) as {word}.");
            Assert.Equal($"stored id=<*>, key=<*>) as {word}.", TemplateMiner.Template(match));
        }
    }

    [Fact]
    public void AFixtureGroupsIntoItsTemplates()
    {
        var miner = new TemplateMiner();
        var lines = Fixture().ToList();
        var matches = lines.Select(l => miner.Add(l.Line)).ToList();
        var found = matches.Select(TemplateMiner.Template).ToList();
        // Grouped right: the same template for exactly the lines of one kind, and each template as written.
        for (var i = 0; i < lines.Count; i++)
        {
            Assert.Equal(lines[i].Template, found[i]);
        }
        // "password" and "publickey" are the only two words at their place: two templates, not one with a variable;
        // the user names are many: a variable.
        Assert.Equal(6, found.Distinct().Count());
    }

    [Fact]
    public void FewShapesAtAPlaceAreConstantsButTypedIdentifiersAreNot()
    {
        var miner = new TemplateMiner();
        var sessions = Enumerable.Range(0, 40).Select(i => miner.Add($"session opened for user u{i:D3} by {(i % 8 == 0 ? "LOGIN" : "")}(uid={i % 2})")).ToList();
        var blocks = Enumerable.Range(0, 40).Select(i => miner.Add($"Block {(i % 2 == 0 ? "rdd" : "broadcast")}_{i}_{i * 3} stored as bytes in memory")).ToList();
        Assert.Equal(["session opened for user <*> by (uid=<*>)", "session opened for user <*> by LOGIN(uid=<*>)"],
            sessions.Select(TemplateMiner.Template).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(["Block <*> stored as bytes in memory"], blocks.Select(TemplateMiner.Template).Distinct());
    }

    [Fact]
    public void TheSameMessagesInTheSameOrderGiveTheSameTemplatesAndIds()
    {
        var first = new TemplateMiner();
        var second = new TemplateMiner();
        var a = Fixture().Select(l => TemplateMiner.Template(first.Add(l.Line))).ToList();
        var b = Fixture().Select(l => TemplateMiner.Template(second.Add(l.Line))).ToList();
        Assert.Equal(a, b);
        Assert.Equal(a.Select(TemplateMiner.Id), b.Select(TemplateMiner.Id));
        Assert.All(a.Select(TemplateMiner.Id), id => Assert.Matches("^[0-9a-f]{12}$", id));
        Assert.NotEqual(TemplateMiner.Id("Connection closed by <*> [preauth]"), TemplateMiner.Id("Connection closed by <*>"));
    }

    [Fact]
    public void TheIdKeptPerClusterIsAlwaysTheIdOfTheTemplateAsItStandsNow()
    {
        var miner = new TemplateMiner();
        var random = new Random(7);
        var words = new[] { "alpha", "beta", "gamma", "delta", "omega" };
        var checkedIds = 0;
        foreach (var (line, _) in Fixture().Concat(Fixture()))
        {
            // Lines of the fixture, and lines whose words change the templates as they come.
            foreach (var message in new[] { line, $"job {words[random.Next(words.Length)]} ended with {random.Next(100)}", $"state {words[random.Next(2)]} to {words[random.Next(5)]}" })
            {
                var match = miner.Add(message);
                Assert.Equal(TemplateMiner.Id(TemplateMiner.Template(match)), miner.IdOf(match));
                checkedIds++;
            }
        }
        Assert.True(checkedIds > 500);
    }

    [Fact]
    public void MemoryIsBoundedByDroppingTheClustersSeenLeastRecently()
    {
        var miner = new TemplateMiner(maxClusters: 50);
        for (var i = 0; i < 2_000; i++)
        {
            // Every message a new kind: words of its own, no variable.
            miner.Add($"{Word(i)} event happened in {Word(i * 7)} stage");
            Assert.True(miner.ClusterCount <= 50);
        }
        // A kind seen all along stays.
        var kept = new TemplateMiner(maxClusters: 50);
        for (var i = 0; i < 2_000; i++)
        {
            kept.Add($"heartbeat {i} ok");
            kept.Add($"{Word(i)} event happened in {Word(i * 7)} stage");
        }
        Assert.Equal("heartbeat <*> ok", TemplateMiner.Template(kept.Add("heartbeat 99999 ok")));
        Assert.True(kept.Add("heartbeat 1 ok").Cluster.Count > 1_000);

        static string Word(int n) => string.Concat(n.ToString("x", System.Globalization.CultureInfo.InvariantCulture).Select(c => (char)('g' + (c <= '9' ? c - '0' : c - 'a' + 10))));
    }

    [Fact]
    public void EmptyAndOddMessagesAreTakenAsTheyAre()
    {
        var miner = new TemplateMiner();
        Assert.Equal("", TemplateMiner.Template(miner.Add("")));
        Assert.Equal("", TemplateMiner.Template(miner.Add("   \t ")));
        Assert.Equal("<*>", TemplateMiner.Template(miner.Add("12345")));
        Assert.Equal("日本語 <*>", TemplateMiner.Template(miner.Add("日本語 42")));
        Assert.Equal("a  b\t<*>", TemplateMiner.Template(miner.Add("  a  b\t7  ")));
        // A token of a million alternating marks is masked in one pass, not a call per character.
        var marks = string.Concat(Enumerable.Repeat("!?", 500_000));
        Assert.Equal("end" + marks, TemplateMiner.Template(miner.Add("end" + marks)));
        // "may" is a word; "May" in a date is a variable.
        Assert.Equal("it may fail on <*>", TemplateMiner.Template(miner.Add("it may fail on May 3")));
        // Emoji stay whole when templates merge around them: no half of a surrogate pair is left alone.
        var emoji = Enumerable.Range(0, 6).Select(i => TemplateMiner.Template(miner.Add($"mood \U0001F600{char.ConvertFromUtf32(0x1F600 + i)} today"))).ToList()[^1];
        Assert.Equal("mood <*> today", emoji);
        Assert.DoesNotContain(emoji.EnumerateRunes(), r => r == Rune.ReplacementChar);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TemplateMiner(maxClusters: 0));
    }

    [Fact]
    public void MessagesOfOneClusterAreCountedUnderTheTemplatesTheyEndWith()
    {
        // Words at different places that would make the same key if the key forgot their places.
        var summary = new PatternSummary();
        var lines = new[] { "W a b c z z", "W x y c z z", "W a b c z z", "W ssh2 b c z z", "W ssh2 a b z z" };
        var miner = new TemplateMiner();
        var matches = new List<TemplateMiner.Match>();
        for (var i = 0; i < lines.Length; i++)
        {
            summary.Add(lines[i], i);
            matches.Add(miner.Add(lines[i]));
        }
        // Each row holds exactly the messages whose final template it is.
        var expected = matches.Select(TemplateMiner.Template).GroupBy(t => t).ToDictionary(g => g.Key, g => (long)g.Count());
        Assert.Equal(expected.OrderBy(e => e.Key, StringComparer.Ordinal), summary.Rows().Select(r => KeyValuePair.Create(r.Template, r.Count)).OrderBy(e => e.Key, StringComparer.Ordinal));
        Assert.All(summary.Rows(), r => Assert.True(TemplateMiner.Template(miner.Add(r.Example)) is not null));
    }

    [Fact]
    public void ASummaryKeepsTheCountsOfClustersItsMinerDropped()
    {
        var summary = new PatternSummary();
        // More kinds than a miner keeps (every message its own first word), then one kind many times.
        for (var i = 0; i < 12_000; i++)
        {
            summary.Add($"{Word(i)} started", i);
        }
        var rows = summary.Rows();
        Assert.Equal(12_000, rows.Count);
        Assert.All(rows, r => Assert.Equal(1, r.Count));
        Assert.Equal(12_000, summary.Total);

        static string Word(int n) => string.Concat(n.ToString("x", System.Globalization.CultureInfo.InvariantCulture).Select(c => (char)('g' + (c <= '9' ? c - '0' : c - 'a' + 10))));
    }
}
