using System.Diagnostics;

namespace Logwell.IntegrationTests;

/// <summary>
/// Debian's rsyslogd run in the foreground from a directory of its own: a Unix socket it reads (what
/// <see cref="LogAsync"/> writes to with <c>logger</c>) and the actions a test gives it.
/// </summary>
internal sealed class Rsyslog : IAsyncDisposable
{
    private readonly Process _process;

    private Rsyslog(Process process, string directory)
    {
        _process = process;
        Directory = directory;
    }

    public string Directory { get; }

    public string Socket => Path.Combine(Directory, "log.sock");

    /// <summary>Starts rsyslogd with the socket input and <paramref name="actions"/> (modules, templates, actions) and waits for its socket.</summary>
    /// <param name="global">More parameters of <c>global(...)</c>, such as <c>DefaultNetstreamDriverCAFile="..."</c>.</param>
    public static async Task<Rsyslog> StartAsync(string directory, string actions, string global = "")
    {
        System.IO.Directory.CreateDirectory(directory);
        var socket = Path.Combine(directory, "log.sock");
        var config = Path.Combine(directory, "rsyslog.conf");
        await File.WriteAllTextAsync(config, $$"""
            global(workDirectory="{{directory}}" {{global}})
            module(load="imuxsock" SysSock.Use="off")
            input(type="imuxsock" Socket="{{socket}}" CreatePath="on")
            {{actions}}
            """);
        var process = Process.Start(new ProcessStartInfo("/usr/sbin/rsyslogd", ["-n", "-f", config, "-i", Path.Combine(directory, "rsyslog.pid")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var rsyslog = new Rsyslog(process, directory);
        await WorkerProcessTests.WaitForAsync(() => File.Exists(socket) || process.HasExited, TimeSpan.FromSeconds(20), () => "rsyslogd starting");
        if (!File.Exists(socket))
        {
            var error = process.HasExited ? await process.StandardError.ReadToEndAsync() : "";
            await rsyslog.DisposeAsync();
            Assert.Fail($"rsyslogd did not open its socket: {error}");
        }
        return rsyslog;
    }

    /// <summary>Sends one message through the socket with util-linux's <c>logger</c>.</summary>
    public async Task LogAsync(params string[] arguments)
    {
        var (code, output) = await NodeClients.RunAsync("logger", ["--socket", Socket, .. arguments], Directory, TimeSpan.FromSeconds(10));
        Assert.True(code == 0, output);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
