using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Logwell.IntegrationTests;

/// <summary>
/// One configuration run under Debian's supervisord (on its own socket) and under <c>logwell supervise</c>: the same
/// <c>ctl</c> commands must print the same lines with the same exit codes, and the programs' log files must hold the
/// same lines. Skipped when supervisord is not installed (<c>./test.sh</c> installs Debian's <c>supervisor</c>).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class SupervisordComparisonTests
{
    private const string LongName = "a-very-long-program-name-that-exceeds-the-column";

    // Every program ends in exec sleep, so that stopping it leaves no child behind under either supervisor.
    private static readonly string Programs = $$"""
        [include]
        files = conf.d/*.conf missing/*.conf

        [program:printer]
        command = sh -c "i=0; while [ $i -lt 200 ]; do echo \"%(process_num)d line $i\"; i=$((i+1)); done; exec sleep 1000"
        process_name = printer-%(process_num)d
        numprocs = 3
        stdout_logfile = %(here)s/logs/shared.log
        stdout_logfile_maxbytes = 0
        startsecs = 1

        [program:redir]
        command = /bin/sh -c "echo out-line; echo \"err-line\" >&2; exec sleep 1000"   ; a comment
        redirect_stderr = true
        stdout_logfile = %(here)s/logs/redir.log
        startsecs = 1

        [program:{{LongName}}]
        command = sleep 1000
        startsecs = 0

        [program:idle]
        command = sleep 1000
        autostart = false
        """;

    private const string Included = """
        [program:included]
        command = sh -c 'echo "it'"'"'s \"here\""; exec sleep 1000'
        stdout_logfile = %(here)s/../logs/included.log
        startsecs = 0
        """;

    private static readonly string[][] Commands =
    [
        ["status"],
        ["status", LongName, "idle"],
        ["status", "nosuch"],
        ["stop", "idle"],
        ["start", "redir"],
        ["start", "nosuch"],
        ["stop", "nosuch"],
        ["tail", "redir"],
        ["tail", "redir", "stderr"],
        ["tail", "nosuch"],
        ["start", "idle"],
        ["stop", "idle"],
        ["restart", "redir"],
        ["restart", "all"],
        ["status", "printer:*"],
    ];

    [SkippableFact]
    public async Task LogwellSuperviseAnswersAsSupervisordDoes()
    {
        Skip.If(Which("supervisord") is null || Which("supervisorctl") is null, "needs Debian's supervisor package (supervisord, supervisorctl)");
        using var dir = new TempDirectory();
        var reference = await RunAsync(Path.Combine(dir.Path, "supervisord"), supervisord: true);
        var logwell = await RunAsync(Path.Combine(dir.Path, "logwell"), supervisord: false);

        for (var i = 0; i < Commands.Length; i++)
        {
            var command = string.Join(' ', Commands[i]);
            Assert.True(reference.Answers[i].Code == logwell.Answers[i].Code, $"ctl {command}: supervisorctl exits {reference.Answers[i].Code}, logwell ctl {logwell.Answers[i].Code}");
            Assert.True(reference.Answers[i].Output == logwell.Answers[i].Output, $"ctl {command}:\n--- supervisorctl\n{reference.Answers[i].Output}--- logwell ctl\n{logwell.Answers[i].Output}");
        }
        foreach (var log in new[] { "shared.log", "redir.log", "included.log" })
        {
            Assert.Equal(reference.Logs[log], logwell.Logs[log]);
        }
        // Three programs wrote 200 lines each to one file, and it kept them all.
        Assert.Equal(600, logwell.Logs["shared.log"].Count);
    }

    private sealed record Run(List<(int Code, string Output)> Answers, Dictionary<string, List<string>> Logs);

    private static async Task<Run> RunAsync(string home, bool supervisord)
    {
        Directory.CreateDirectory(Path.Combine(home, "conf.d"));
        Directory.CreateDirectory(Path.Combine(home, "logs"));
        var socket = Path.Combine(home, "supervisor.sock");
        var config = Path.Combine(home, "supervisord.conf");
        await File.WriteAllTextAsync(Path.Combine(home, "conf.d", "included.conf"), Included);
        await File.WriteAllTextAsync(config, $"""
            [unix_http_server]
            file = {socket}

            [supervisorctl]
            serverurl = unix://{socket}

            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

            [supervisord]
            nodaemon = true
            logfile = %(here)s/supervisord.log
            pidfile = %(here)s/supervisord.pid
            childlogdir = %(here)s/logs

            {Programs}
            """);
        var data = Path.Combine(home, "data");
        Func<string[], Task<(int, string)>> ctl = supervisord
            ? words => RunToEndAsync("supervisorctl", ["-c", config, .. words])
            : words => RunToEndAsync("dotnet", [LogwellNode.LogwellDll, "ctl", "--data", data, .. words]);
        var info = supervisord
            ? new ProcessStartInfo("supervisord") { ArgumentList = { "-c", config } }
            : new ProcessStartInfo("dotnet") { ArgumentList = { LogwellNode.LogwellDll, "supervise", "-c", config, "--data", data } };
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        using var server = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        server.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        server.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            // Every program that starts by itself is RUNNING, and the printers have printed.
            var running = 0;
            await WorkerProcessTests.WaitForAsync(() =>
            {
                var (_, status) = ctl(["status"]).GetAwaiter().GetResult();
                running = Regex.Matches(status, " RUNNING ").Count;
                return running == 6 && Lines(home, "shared.log") == 600 && Lines(home, "redir.log") == 2 && Lines(home, "included.log") == 1;
            }, TimeSpan.FromSeconds(60), () => $"{running} running\n{output}");
            // The logs before the commands below restart the programs that write them.
            var logs = new[] { "shared.log", "redir.log", "included.log" }.ToDictionary(
                name => name,
                name => name == "redir.log" ? [.. File.ReadAllLines(Path.Combine(home, "logs", name))] : File.ReadAllLines(Path.Combine(home, "logs", name)).Order(StringComparer.Ordinal).ToList());
            var answers = new List<(int, string)>();
            foreach (var words in Commands)
            {
                var (code, text) = await ctl(words);
                answers.Add((code, Normalize(words, text)));
            }
            await ctl(["shutdown"]);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await server.WaitForExitAsync(timeout.Token);
            return new Run(answers, logs);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>What differs by nature between two runs: pids, uptimes, stop times; and the order of lines that come together.</summary>
    private static string Normalize(string[] words, string text)
    {
        text = Pid().Replace(text, "pid N, uptime T");
        text = StoppedAt().Replace(text, "DATE");
        if (words is ["restart", "all"])
        {
            // Stopped together and started together: each half in any order.
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            text = string.Join('\n', lines.Where(l => l.EndsWith(": stopped", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
                .Concat(lines.Where(l => !l.EndsWith(": stopped", StringComparison.Ordinal)).Order(StringComparer.Ordinal))) + "\n";
        }
        return text;
    }

    private static async Task<(int, string)> RunToEndAsync(string file, string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static int Lines(string home, string log) =>
        File.Exists(Path.Combine(home, "logs", log)) ? File.ReadAllLines(Path.Combine(home, "logs", log)).Length : 0;

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    [GeneratedRegex(@"pid \d+, uptime \d+:\d\d:\d\d")]
    private static partial Regex Pid();

    [GeneratedRegex(@"[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M")]
    private static partial Regex StoppedAt();
}
