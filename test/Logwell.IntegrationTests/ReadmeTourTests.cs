using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.IntegrationTests;

/// <summary>The README's tour, command by command, against a fresh node: it prints what the README shows, on any date.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed partial class ReadmeTourTests
{
    /// <summary>The commands of the README's first <c>console</c> block, each with the lines printed after it.</summary>
    private static List<(string Command, List<string> Output)> Tour()
    {
        var lines = File.ReadAllLines(Path.Combine(LogwellNode.RepositoryRoot, "README.md"));
        var start = Array.IndexOf(lines, "```console");
        Assert.True(start >= 0, "README.md has no ```console block");
        var steps = new List<(string, List<string>)>();
        for (var i = start + 1; lines[i] != "```"; i++)
        {
            if (lines[i].StartsWith("$ ", StringComparison.Ordinal))
            {
                steps.Add((lines[i][2..], []));
            }
            else if (lines[i].Length > 0)
            {
                steps[^1].Item2.Add(lines[i]);
            }
        }
        return steps;
    }

    /// <summary>Words as a POSIX shell splits them, for the quoting the tour uses: '…' and "…".</summary>
    private static List<string> Words(string command)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < command.Length; i++)
        {
            var c = command[i];
            if (c is '\'' or '"')
            {
                var end = command.IndexOf(c, i + 1);
                Assert.True(end > i, $"unclosed quote in '{command}'");
                word.Append(command, i + 1, end - i - 1);
                i = end;
                inWord = true;
            }
            else if (c == ' ')
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }
        if (inWord)
        {
            words.Add(word.ToString());
        }
        return words;
    }

    /// <summary>
    /// What differs from run to run: how long a search took, bytes on disk (an index set's settings hold its creation
    /// time), and the secrets and ids the tour makes, which the README shows as <c>…</c>.
    /// </summary>
    [GeneratedRegex(@"(?<ms>\(\d+(\.\d+)? ms\))|(?<size>\s+\d+(\.\d+)? (B|KiB|MiB)\b)|(?<=^password: )\S+$|(?<=\(id )[0-9a-f]+(?=\))|(?<key>^lw_[A-Za-z0-9_-]+$)")]
    private static partial Regex Varying();

    // By which alternative matched, not by the text: a generated password may end in B or begin with lw_.
    private static string Normalize(string line) => Varying().Replace(line, m =>
        m.Groups["size"].Success ? " … B" : m.Groups["key"].Success ? "lw_…" : m.Groups["ms"].Success ? "(… ms)" : "…");

    [GeneratedRegex(@"^lw_[A-Za-z0-9_-]+$", RegexOptions.Multiline)]
    private static partial Regex Secret();

    [Fact]
    public async Task TheTourPrintsWhatTheReadmeShows()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var tour = Tour();
        Assert.True(tour.Count >= 5, "the tour has fewer commands than expected");
        // The users and keys verbs work on the data directory: the node's, as if the tour ran beside it.
        var env = new Dictionary<string, string> { ["LOGWELL_DATADIRECTORY"] = node.DataDirectory };
        string? key = null;
        foreach (var (command, expected) in tour)
        {
            // The README shows a key as lw_…; the tour uses the one it made.
            var words = Words(key is null ? command : command.Replace("lw_…", key, StringComparison.Ordinal));
            Assert.Equal("logwell", words[0]);
            var (_, stdout, stderr) = await CliTests.RunWithAsync(LogwellNode.RepositoryRoot, node, null, env, [.. words.Skip(1)]);
            if (Secret().Match(stdout) is { Success: true } made)
            {
                key = made.Value;
            }
            var printed = (stdout + stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Normalize(l.TrimEnd('\r')));
            Assert.Equal(string.Join('\n', expected.Select(Normalize)), string.Join('\n', printed));
        }
    }

    /// <summary>The README's HTTP example, run by bash and curl as a reader would, against a fresh node.</summary>
    [SkippableFact]
    public async Task TheHttpExampleFindsWhatItSends()
    {
        Skip.IfNot(File.Exists("/usr/bin/curl"), "curl is not installed (test.sh installs it from Debian when run as root)");
        var lines = File.ReadAllLines(Path.Combine(LogwellNode.RepositoryRoot, "README.md"));
        var start = Array.IndexOf(lines, "The same over HTTP:") + 2;
        Assert.Equal("```sh", lines[start]);
        var end = Array.IndexOf(lines, "```", start + 1);
        var script = string.Join('\n', lines[(start + 1)..end]);
        Assert.Contains("localhost:5080", script, StringComparison.Ordinal);

        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var address = node.BaseAddress.Authority;
        // Printed once the server listens, which may be just after it first answers.
        await WorkerProcessTests.WaitForAsync(() => node.Output.Contains($"Logwell web UI at http://{address}/", StringComparison.Ordinal), TimeSpan.FromSeconds(30), () => node.Output);
        var run = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", ["-euo", "pipefail", "-c", script.Replace("localhost:5080", address, StringComparison.Ordinal).Replace("curl ", "curl -sS --fail-with-body ", StringComparison.Ordinal)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = run.StandardOutput.ReadToEndAsync();
        var stderr = run.StandardError.ReadToEndAsync();
        await run.WaitForExitAsync();
        Assert.True(run.ExitCode == 0, $"{await stdout}\n{await stderr}");
        // Three answers: the index set, the ingest, the search that finds the error line alone.
        var answers = (await stdout).Replace("}{", "}\n{", StringComparison.Ordinal).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, answers.Length);
        Assert.Contains("\"accepted\":2", answers[1], StringComparison.Ordinal);
        using var search = System.Text.Json.JsonDocument.Parse(answers[2]);
        var hit = Assert.Single(search.RootElement.GetProperty("hits").EnumerateArray());
        Assert.Equal("payment failed: gateway timeout", hit.GetProperty("message").GetString());
    }
}
