using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Logwell.Tests;

/// <summary>
/// One <c>redis-server</c> (Debian's package) for the whole test run, on a free loopback port, with no persistence.
/// Tests share it by giving every queue its own key prefix. Where redis-server is not installed, tests that need it
/// are skipped with a message saying so.
/// </summary>
internal static class RedisServer
{
    private static readonly Lazy<(string? Address, string? Missing)> Started = new(Start);

    /// <summary>host:port of the server; skips the calling test when there is none.</summary>
    public static string Address
    {
        get
        {
            var (address, missing) = Started.Value;
            Skip.If(address is null, missing);
            return address!;
        }
    }

    private static (string?, string?) Start()
    {
        var binary = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists);
        if (binary is null)
        {
            return (null, "redis-server is not installed (Debian package redis-server; ./test.sh installs it as root)");
        }
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var directory = Directory.CreateTempSubdirectory("logwell-redis-").FullName;
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory })
        {
            info.ArgumentList.Add(argument);
        }
        // A test run with its clock moved (test.sh runs some classes under faketime) starts Redis on the real clock:
        // libfaketime and Redis's allocator do not load together, and the queue's times come from its client anyway.
        info.Environment.Remove("LD_PRELOAD");
        var process = ServerProcess.Launch(info, directory);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                using var stream = client.GetStream();
                stream.Write("PING\r\n"u8);
                var buffer = new byte[16];
                if (stream.Read(buffer) > 0 && buffer[0] == (byte)'+')
                {
                    return ($"127.0.0.1:{port}", null);
                }
            }
            catch (SocketException)
            {
            }
            if (process.HasExited)
            {
                return (null, $"redis-server exited with {process.ExitCode} at start");
            }
            Thread.Sleep(50);
        }
        return (null, "redis-server did not answer PING within 20 s");
    }
}
