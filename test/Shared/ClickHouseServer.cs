using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Logwell.Tests;

/// <summary>
/// Debian's <c>clickhouse-server</c> (18.16) as a process of the test: its own configuration, data directory and free
/// loopback ports, nothing of the system's instance touched. <see cref="Installed"/> is false where the package is not.
/// </summary>
internal sealed class ClickHouseServer : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/clickhouse-server";

    private readonly string _directory;
    private readonly string _config;
    private Process _process = null!;

    private ClickHouseServer(string directory, string config, Uri endpoint)
    {
        _directory = directory;
        _config = config;
        Endpoint = endpoint;
    }

    public static bool Installed => File.Exists(Binary);

    private static readonly Lazy<Task<ClickHouseServer?>> SharedServer = new(async () =>
    {
        if (!Installed)
        {
            return null;
        }
        var server = await StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return server;
    });

    /// <summary>One server for the whole test run (tests keep apart by their own database); skips the calling test where none is installed.</summary>
    public static async Task<ClickHouseServer> SharedAsync()
    {
        var server = await SharedServer.Value;
        Skip.If(server is null, Missing);
        return server!;
    }

    /// <summary>The server's time zone: fourteen hours ahead of UTC, so that a date taken in the server's zone instead of UTC shows.</summary>
    public const string TimeZone = "Pacific/Kiritimati";

    public const string Missing = "clickhouse-server is not installed (test.sh installs Debian's package when run as root)";

    /// <summary>The HTTP interface.</summary>
    public Uri Endpoint { get; }

    /// <summary>
    /// A free loopback port below Linux's ephemeral range (32768 and up), so that no process binding port 0 (a Logwell
    /// node of another test) is given it between now and the server's start, or while a killed server is down.
    /// </summary>
    public static int FreePort()
    {
        while (true)
        {
            var port = System.Random.Shared.Next(20_000, 32_000);
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // Taken: draw another.
            }
        }
    }

    /// <param name="httpPort">The HTTP interface's port (a free one by default).</param>
    /// <param name="zooKeeper">host:port of the ZooKeeper that replicated tables coordinate through (none by default).</param>
    /// <param name="replica">This server's <c>{replica}</c> macro: its name among the replicas.</param>
    public static async Task<ClickHouseServer> StartAsync(int? httpPort = null, string? zooKeeper = null, string replica = "r1")
    {
        var directory = Directory.CreateTempSubdirectory("logwell-clickhouse-").FullName;
        var data = Path.Combine(directory, "data") + "/";
        var (http, tcp, interserver) = (httpPort ?? FreePort(), FreePort(), FreePort());
        var users = Path.Combine(directory, "users.xml");
        await File.WriteAllTextAsync(users, """
            <?xml version="1.0"?>
            <yandex>
                <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
                <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
                <quotas><default></default></quotas>
            </yandex>
            """);
        var config = Path.Combine(directory, "config.xml");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0"?>
            <yandex>
                <logger><level>warning</level><log>{directory}/server.log</log><errorlog>{directory}/server.err.log</errorlog><console>0</console></logger>
                <http_port>{http}</http_port>
                <tcp_port>{tcp}</tcp_port>
                <interserver_http_port>{interserver}</interserver_http_port>
                <interserver_http_host>127.0.0.1</interserver_http_host>
                <listen_host>127.0.0.1</listen_host>
                <path>{data}</path>
                <tmp_path>{data}tmp/</tmp_path>
                <user_files_path>{data}user_files/</user_files_path>
                <format_schema_path>{data}format_schemas/</format_schema_path>
                <users_config>{users}</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <mark_cache_size>67108864</mark_cache_size>
                <timezone>{TimeZone}</timezone>
                <macros><replica>{replica}</replica><shard>1</shard></macros>
                {(zooKeeper is null ? "" : $"<zookeeper><node><host>{zooKeeper.Split(':')[0]}</host><port>{zooKeeper.Split(':')[1]}</port></node><session_timeout_ms>4000</session_timeout_ms></zookeeper>")}
            </yandex>
            """);
        var server = new ClickHouseServer(directory, config, new Uri($"http://127.0.0.1:{http}/"));
        await server.LaunchAsync();
        return server;
    }

    /// <summary>Starts the server process on its configuration and data (again, after <see cref="KillAsync"/>) and waits until it answers.</summary>
    public async Task LaunchAsync()
    {
        var (config, directory, endpoint) = (_config, _directory, Endpoint);
        var info = new ProcessStartInfo(Binary, [$"--config-file={config}"])
        {
            // No terminal to read: a background job that did would be stopped.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = directory,
        };
        // A test run with its clock moved (test.sh runs some classes under faketime) starts the server on the real
        // clock: Logwell computes every time it stores and compares, the server none.
        info.Environment.Remove("LD_PRELOAD");
        var process = Process.Start(info)!;
        _process = process;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!process.HasExited && DateTime.UtcNow < deadline)
        {
            try
            {
                if ((await probe.GetAsync(new Uri(endpoint, "ping"))).IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        if (process.HasExited)
        {
            var log = File.Exists(Path.Combine(directory, "server.err.log")) ? await File.ReadAllTextAsync(Path.Combine(directory, "server.err.log")) : "";
            throw new InvalidOperationException($"clickhouse-server exited at start: {log}");
        }
    }

    /// <summary>SIGKILL: the server gets no chance to finish anything.</summary>
    public async Task KillAsync()
    {
        // The server has no processes of its own: SIGKILL to it alone. (Killing a tree stops every process with SIGSTOP
        // first; a test host ending between the two signals would leave a stopped server behind.)
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }
        await _process.WaitForExitAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file the server still closes: the system's temporary directory keeps it.
        }
    }
}
