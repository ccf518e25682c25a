using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// Debian's ZooKeeper (3.8) standalone, as a process of the test on a free loopback port with its own data directory;
/// the package's service is not touched. Short ticks, so that a killed ClickHouse replica's session expires in seconds.
/// </summary>
internal sealed class ZooKeeperServer : IAsyncDisposable
{
    public const string Jar = "/usr/share/java/zookeeper.jar";

    public const string Missing = "zookeeper is not installed (test.sh installs Debian's package when run as root)";

    private readonly Process _process;
    private readonly string _directory;

    private ZooKeeperServer(Process process, string directory, string address)
    {
        _process = process;
        _directory = directory;
        Address = address;
    }

    public static bool Installed => File.Exists(Jar) && File.Exists("/usr/bin/java");

    /// <summary>host:port of the client port.</summary>
    public string Address { get; }

    public static async Task<ZooKeeperServer> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("logwell-zookeeper-").FullName;
        var port = ClickHouseServer.FreePort();
        await File.WriteAllTextAsync(Path.Combine(directory, "zoo.cfg"), $"""
            tickTime=500
            minSessionTimeout=1000
            maxSessionTimeout=60000
            dataDir={directory}/data
            clientPort={port}
            clientPortAddress=127.0.0.1
            admin.enableServer=false
            4lw.commands.whitelist=ruok,stat,srvr,mntr
            """);
        // The jar brings no logging backend of its own: log4j 1.2 through slf4j, with no appender (quiet).
        var classPath = string.Join(':', directory, Jar, "/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar");
        var info = new ProcessStartInfo("/usr/bin/java", ["-Xmx256m", "-cp", classPath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", Path.Combine(directory, "zoo.cfg")])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = directory,
        };
        info.Environment.Remove("LD_PRELOAD");
        var process = Process.Start(info)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ZooKeeperServer(process, directory, $"127.0.0.1:{port}");
        await WorkerProcessTests.WaitForAsync(() => process.HasExited || Answers(port), TimeSpan.FromSeconds(60), () => output.ToString());
        if (process.HasExited)
        {
            await server.DisposeAsync();
            throw new InvalidOperationException("zookeeper exited at start: " + output);
        }
        return server;
    }

    /// <summary>Whether the server answers <c>ruok</c> with <c>imok</c>.</summary>
    private static bool Answers(int port)
    {
        try
        {
            using var client = new TcpClient("127.0.0.1", port);
            using var stream = client.GetStream();
            stream.Write("ruok"u8);
            var buffer = new byte[4];
            return stream.Read(buffer) == 4 && buffer.AsSpan().SequenceEqual("imok"u8);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
