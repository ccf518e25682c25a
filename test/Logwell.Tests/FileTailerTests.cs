using System.Text;
using Logwell.Server.Agent;
using Microsoft.Extensions.Time.Testing;

namespace Logwell.Tests;

/// <summary>The agent's file reading on real files: rotation by rename and by copytruncate, deleted files, encodings, multiline events, open handles, checkpoints.</summary>
public sealed class FileTailerTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public void Dispose() => _dir.Dispose();

    private AgentOptions Options(string inputYaml, string files = "") => AgentOptions.Parse($"""
        data_dir: state
        output:
          urls: [http://127.0.0.1:1]
        {files}
        inputs:
        {inputYaml}
        """, _dir.Path);

    private static string Input(string extra = "") => $"""
          - paths: [logs/*.log]
            index_set: app
            start_at: beginning
        {extra}
        """;

    private string Log(string name) => Path.Combine(_dir.Path, "logs", name);

    private void Append(string name, IEnumerable<string> lines, Encoding? encoding = null)
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "logs"));
        File.AppendAllText(Log(name), string.Concat(lines.Select(l => l + "\n")), encoding ?? new UTF8Encoding(false));
    }

    private static IEnumerable<string> Numbered(int from, int to) => Enumerable.Range(from, to - from + 1).Select(i => $"line {i}");

    /// <summary>Scans and reads until nothing more comes, moving the clock on so that quiet and renamed files close.</summary>
    private static List<FileEvent> Drain(FileTailer tailer, FakeTimeProvider time, List<(TrackedFile, long)>? retired = null)
    {
        var events = new List<FileEvent>();
        retired ??= [];
        for (var quiet = 0; quiet < 3;)
        {
            tailer.Scan();
            quiet = tailer.Read(events.Add, retired) ? 0 : quiet + 1;
            time.Advance(TimeSpan.FromSeconds(3));
        }
        return events;
    }

    [Fact]
    public void RenamedFileIsReadToItsEndAndTheNewFileFromItsBeginning()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 100));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        // The writer still holds the old file after the rename: its last lines land there.
        using (var old = new StreamWriter(new FileStream(Log("app.log"), FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete)))
        {
            File.Move(Log("app.log"), Log("app.log.1"));
            Append("app.log", Numbered(151, 200));
            tailer.Scan();
            old.Write(string.Concat(Numbered(101, 150).Select(l => l + "\n")));
        }
        var retired = new List<(TrackedFile, long)>();
        events.AddRange(Drain(tailer, _time, retired));
        Assert.Equal(Numbered(1, 200), events.Select(e => e.Text).Order(Comparer<string>.Create(ByNumber)));
        Assert.Single(retired);
        Assert.Single(tailer.Files);
    }

    private static int ByNumber(string a, string b) => int.Parse(a.Split(' ')[1]).CompareTo(int.Parse(b.Split(' ')[1]));

    [Fact]
    public void CopyTruncateLosesNoLineTheCopyHolds()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 100));
        var metrics = new AgentMetrics();
        var tailer = new FileTailer(options, _time, metrics, [], []);
        var events = Drain(tailer, _time);
        // Written after the last read, then copied and truncated (logrotate's copytruncate), then written on.
        Append("app.log", Numbered(101, 150));
        File.Copy(Log("app.log"), Log("app.log.1"));
        using (var truncate = new FileStream(Log("app.log"), FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            truncate.SetLength(0);
        }
        Append("app.log", Numbered(151, 160));
        events.AddRange(Drain(tailer, _time));
        Assert.Equal(Numbered(1, 160), events.Select(e => e.Text));
        Assert.Equal(1, metrics.Truncations.Value);
        Assert.Equal(1, metrics.RecoveredFromCopies.Value);
    }

    [Fact]
    public void ATruncatedFileWrittenPastItsOldSizeIsNoticedByItsContent()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 10));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        // Replaced by longer content before the agent looked again: same inode, larger size, other bytes.
        File.WriteAllText(Log("app.log"), string.Concat(Numbered(1001, 1030).Select(l => l + "\n")));
        events.AddRange(Drain(tailer, _time));
        Assert.Equal([.. Numbered(1, 10), .. Numbered(1001, 1030)], events.Select(e => e.Text));
    }

    [Fact]
    public void ADeletedFileStillWrittenIsReadWhileItGrows()
    {
        var options = Options(Input());
        Directory.CreateDirectory(Path.Combine(_dir.Path, "logs"));
        using var writer = new StreamWriter(new FileStream(Log("app.log"), FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete)) { AutoFlush = true };
        writer.Write("line 1\n");
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        File.Delete(Log("app.log"));
        writer.Write("line 2\nline 3\n");
        tailer.Scan();
        tailer.Read(events.Add, []);
        Assert.Equal(Numbered(1, 3), events.Select(e => e.Text));
    }

    [Fact]
    public void ThousandsOfFilesAreReadThroughFewOpenHandles()
    {
        var options = Options(Input(), "files:\n  max_open: 8\n  close_inactive: 1s");
        for (var f = 0; f < 200; f++)
        {
            Append($"f{f}.log", [$"file {f} first"]);
        }
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        Assert.True(tailer.OpenFiles <= 8, $"{tailer.OpenFiles} files open");
        for (var f = 0; f < 200; f += 7)
        {
            Append($"f{f}.log", [$"file {f} second"]);
        }
        events.AddRange(Drain(tailer, _time));
        Assert.True(tailer.OpenFiles <= 8, $"{tailer.OpenFiles} files open");
        Assert.Equal(200 + 29, events.Count);
        Assert.Equal(events.Count, events.Select(e => e.Text).Distinct().Count());
    }

    [Fact]
    public void StackTracesAndTracebacksBecomeOneEventEach()
    {
        var options = Options(Input("""
                multiline:
                  start: '^\d{4}-\d\d-\d\d '
            """));
        Append("app.log", [
            "2026-12-07 10:00:00 ERROR request failed",
            "java.lang.IllegalStateException: no connection",
            "\tat com.example.Pool.take(Pool.java:42)",
            "\tat com.example.Handler.run(Handler.java:7)",
            "Caused by: java.net.ConnectException: refused",
            "\t... 12 more",
            "2026-12-07 10:00:01 ERROR Traceback (most recent call last):",
            "  File \"app.py\", line 3, in <module>",
            "    main()",
            "ZeroDivisionError: division by zero",
            "2026-12-07 10:00:02 INFO next",
        ]);
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        Assert.Equal(3, events.Count);
        Assert.StartsWith("2026-12-07 10:00:00 ERROR request failed\njava.lang.IllegalStateException", events[0].Text, StringComparison.Ordinal);
        Assert.EndsWith("\t... 12 more", events[0].Text, StringComparison.Ordinal);
        Assert.EndsWith("ZeroDivisionError: division by zero", events[1].Text, StringComparison.Ordinal);
        Assert.Equal("2026-12-07 10:00:02 INFO next", events[2].Text);
        // Each event's bytes follow the last one's: a checkpoint after any of them is at a line's start.
        Assert.Equal(events[0].End, events[1].Start);
        Assert.Equal(new FileInfo(Log("app.log")).Length, events[2].End);
        // The marker a checkpoint keeps is taken from the bytes as read, and is the one the file shows there.
        using var handle = File.OpenHandle(Log("app.log"));
        Assert.NotNull(events[0].Marker);
        Assert.All(events.Where(e => e.Marker is not null), e => Assert.Equal(FileTailer.MarkerAt(handle, e.End), e.Marker));
    }

    [Fact]
    public void GbkAndUtf16FilesArriveAsText()
    {
        var options = Options("""
              - paths: [logs/gbk.log]
                index_set: app
                start_at: beginning
                encoding: gbk
              - paths: [logs/wide.log]
                index_set: app
                start_at: beginning
            """);
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        Append("gbk.log", ["用户登录成功 user=张三", "连接超时"], Encoding.GetEncoding(936));
        Append("wide.log", ["ünïcode wide"], new UnicodeEncoding(bigEndian: false, byteOrderMark: true));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        Assert.Equal(new[] { "用户登录成功 user=张三", "连接超时", "ünïcode wide" }.Order(StringComparer.Ordinal), events.Select(e => e.Text).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AFirstScanAtTheEndSkipsWhatWasThereButARestartSkipsNothing()
    {
        var options = Options("""
              - paths: [logs/*.log]
                index_set: app
                include_lines: ['^keep']
            """);
        Append("app.log", ["keep old"]);
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        Assert.Empty(Drain(tailer, _time));
        Append("app.log", ["keep 1", "drop 2", "keep 3"]);
        var events = Drain(tailer, _time);
        Assert.Equal(["keep 1", "keep 3"], events.Select(e => e.Text));
        var file = Assert.Single(tailer.Files);
        var checkpoint = new FilePosition(file.Identity, file.Path, events[^1].End, FileTailer.MarkerOf(file, events[^1].End), FileTailer.InputKey(options.Inputs[0]), file.CopiesBefore);
        tailer.CloseAll();

        // A restart: the file resumes at its checkpoint, and a file created meanwhile is read whole.
        Append("app.log", ["keep 4"]);
        Append("new.log", ["keep new"]);
        var restarted = new FileTailer(options, _time, new AgentMetrics(), [checkpoint], tailer.ScannedInputs);
        Assert.Equal(["keep 4", "keep new"], Drain(restarted, _time).Select(e => e.Text).Order(StringComparer.Ordinal));
        restarted.CloseAll();
    }

    [Fact]
    public void ARestartFindsAFileRenamedWhileTheAgentWasDown()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 5));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        var file = Assert.Single(tailer.Files);
        var checkpoint = new FilePosition(file.Identity, file.Path, events[^1].End, FileTailer.MarkerOf(file, events[^1].End), FileTailer.InputKey(options.Inputs[0]), file.CopiesBefore);
        tailer.CloseAll();
        Append("app.log", Numbered(6, 8));
        File.Move(Log("app.log"), Log("app.log.1"));
        Append("app.log", Numbered(9, 10));
        var restarted = new FileTailer(options, _time, new AgentMetrics(), [checkpoint], tailer.ScannedInputs);
        Assert.Equal(Numbered(6, 10), Drain(restarted, _time).Select(e => e.Text).Order(Comparer<string>.Create(ByNumber)));
        restarted.CloseAll();
    }

    [Fact]
    public void ARestartAfterACopyTruncateReadsTheRestFromTheCopy()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 5));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        var file = Assert.Single(tailer.Files);
        var checkpoint = new FilePosition(file.Identity, file.Path, events[^1].End, FileTailer.MarkerOf(file, events[^1].End), FileTailer.InputKey(options.Inputs[0]), file.CopiesBefore);
        tailer.CloseAll();
        // While the agent is down: written, copied and truncated, then written past the old size.
        Append("app.log", Numbered(6, 8));
        File.Copy(Log("app.log"), Log("app.log.1"));
        File.WriteAllText(Log("app.log"), "");
        Append("app.log", Numbered(9, 30));
        var restarted = new FileTailer(options, _time, new AgentMetrics(), [checkpoint], tailer.ScannedInputs);
        Assert.Equal(Numbered(6, 30), Drain(restarted, _time).Select(e => e.Text));
        restarted.CloseAll();
    }

    /// <summary>logrotate's copytruncate with <c>rotate N</c>: older copies shift up one, the file is copied to <c>.1</c> and truncated.</summary>
    private void CopyTruncate(string name)
    {
        // File systems keep birth times to a clock tick (4 ms on Linux at 250 Hz): copies made in one tick could not
        // be told apart by birth. logrotate's rotations are further apart than that; so are this test's.
        Thread.Sleep(20);
        for (var n = 8; n >= 1; n--)
        {
            if (File.Exists(Log($"{name}.{n}")))
            {
                File.Move(Log($"{name}.{n}"), Log($"{name}.{n + 1}"));
            }
        }
        File.Copy(Log(name), Log($"{name}.1"));
        using var truncate = new FileStream(Log(name), FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        truncate.SetLength(0);
    }

    [Fact]
    public void CopiesMadeWhileTheAgentWasFarBehindAreReadWhole()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 10));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        // Three rotations without the agent reading in between (its buffer full, say).
        Append("app.log", Numbered(11, 20));
        CopyTruncate("app.log");
        Append("app.log", Numbered(21, 30));
        CopyTruncate("app.log");
        Append("app.log", Numbered(31, 40));
        CopyTruncate("app.log");
        Append("app.log", Numbered(41, 50));
        events.AddRange(Drain(tailer, _time));
        Assert.Equal(Numbered(1, 50), events.Select(e => e.Text).Order(Comparer<string>.Create(ByNumber)));
        Assert.Equal(50, events.Count);
    }

    [Fact]
    public void ARestartAtTheStartOfAFileReadsTheCopiesMadeWhileTheAgentWasDown()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 10));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        CopyTruncate("app.log");
        events.AddRange(Drain(tailer, _time));
        // The agent stops right after the truncation: its checkpoint is at 0, where no bytes tell what was read.
        var file = Assert.Single(tailer.Files, f => f.Matched);
        Assert.Equal(0, file.Offset);
        var checkpoint = new FilePosition(file.Identity, file.Path, 0, 0, FileTailer.InputKey(options.Inputs[0]), file.CopiesBefore);
        tailer.CloseAll();
        Append("app.log", Numbered(11, 20));
        CopyTruncate("app.log");
        Append("app.log", Numbered(21, 25));
        var restarted = new FileTailer(options, _time, new AgentMetrics(), [checkpoint], tailer.ScannedInputs);
        events.AddRange(Drain(restarted, _time));
        Assert.Equal(Numbered(1, 25), events.Select(e => e.Text).Order(Comparer<string>.Create(ByNumber)));
        restarted.CloseAll();
    }

    [Fact]
    public void ARestartAfterTwoRotationsByRenameReadsTheFileItNeverSaw()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 5));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        var file = Assert.Single(tailer.Files);
        var checkpoint = new FilePosition(file.Identity, file.Path, events[^1].End, FileTailer.MarkerOf(file, events[^1].End), FileTailer.InputKey(options.Inputs[0]), file.CopiesBefore);
        tailer.CloseAll();
        // While the agent is down, logrotate's create mode twice: the middle file is never seen under the name.
        foreach (var (from, to) in new[] { (6, 10), (11, 15) })
        {
            Append("app.log", Numbered(from, from + 1));
            Thread.Sleep(20); // birth times are kept to a clock tick; rotations are further apart
            if (File.Exists(Log("app.log.1")))
            {
                File.Move(Log("app.log.1"), Log("app.log.2"));
            }
            File.Move(Log("app.log"), Log("app.log.1"));
            Append("app.log", Numbered(from + 2, to));
        }
        var restarted = new FileTailer(options, _time, new AgentMetrics(), [checkpoint], tailer.ScannedInputs);
        var after = Drain(restarted, _time);
        Assert.Equal(Numbered(6, 15), after.Select(e => e.Text).Order(Comparer<string>.Create(ByNumber)));
        restarted.CloseAll();
    }

    [Fact]
    public void AnInputWhoseGlobsChangeKeepsItsFilesWhereTheyStand()
    {
        var options = Options(Input());
        Append("app.log", Numbered(1, 5));
        var tailer = new FileTailer(options, _time, new AgentMetrics(), [], []);
        var events = Drain(tailer, _time);
        Append("app.log", Numbered(6, 7));
        // The same files under a wider glob and an exclude: another input by its key, the file goes on where it was.
        var wider = Options("""
              - paths: [logs/*.log, logs/*.txt]
                index_set: app
                exclude_lines: ['^line 7$']
            """);
        var retired = new List<(TrackedFile, long)>();
        tailer.Reconfigure(wider, events.Add, retired);
        Assert.Empty(retired);
        events.AddRange(Drain(tailer, _time));
        Assert.Equal(Numbered(1, 6), events.Select(e => e.Text));
        tailer.CloseAll();
    }

    [Fact]
    public void APatternThatTakesTooLongKeepsTheEvent()
    {
        // Catastrophic backtracking on a long line of 'a's: the 1 s limit of every pattern is met.
        // An include that cannot decide keeps the line (it does not match, so a pattern that decided would drop it).
        var filter = new Logwell.Core.Ingest.LineFilter([new System.Text.RegularExpressions.Regex("^(a+)+$", System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromMilliseconds(50))], []);
        Assert.True(filter.Keeps(new string('a', 40) + "b"));
    }

    [Theory]
    [InlineData("inputs:\n  - paths: [a.log]\n    index_set: app\n    colour: red\n", "agent.yaml:4:5: unknown key 'colour'")]
    [InlineData("output:\n  urls: [http://x:1]\ninputs:\n  - paths: [a.log]\n    index_set: App!\n", "index_set")]
    [InlineData("output:\n  urls: [ftp://x]\ninputs:\n  - paths: [a.log]\n    index_set: app\n", "not an http or https URL")]
    [InlineData("output:\n  urls: [http://x:1]\ninputs:\n  - paths: [a.log]\n    index_set: app\n    multiline: {start: '(['}\n", "not a valid regular expression")]
    [InlineData("output:\n  urls: [http://x:1]\n  batch_wait: soon\ninputs:\n  - paths: [a.log]\n    index_set: app\n", "output.batch_wait must be a duration")]
    [InlineData("output:\n  urls: [http://x:1]\ninputs:\n  - paths: [a.log]\n    index_set: app\n    encoding: latin-9\n", "inputs[0].encoding")]
    [InlineData("output: [\n", "agent.yaml:")]
    public void ABadConfigurationSaysWhatAndWhere(string yaml, string expected)
    {
        var error = Assert.Throws<AgentConfigException>(() => AgentOptions.Parse(yaml, _dir.Path));
        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), error.Message);
    }
}
