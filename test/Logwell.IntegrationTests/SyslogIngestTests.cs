using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using static Logwell.IntegrationTests.HttpApiTests;
using static Logwell.Tests.EventTime;

namespace Logwell.IntegrationTests;

/// <summary>Syslog into a real node: raw TCP and UDP senders, and rsyslog from Debian forwarding to it.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class SyslogIngestTests
{
    private static int FreePort(SocketType type)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    internal static async Task<List<System.Text.Json.JsonElement>> WaitForAsync(HttpClient http, string indexSet, string query, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var (status, found) = await SendAsync(http, HttpMethod.Get, $"/api/v1/search?indexset={indexSet}&sort=asc&q={Uri.EscapeDataString(query)}");
            var hits = status == HttpStatusCode.OK ? found.GetProperty("hits").EnumerateArray().ToList() : [];
            if (hits.Count >= count || DateTime.UtcNow > deadline)
            {
                return hits;
            }
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task TcpAndUdpSyslogArriveParsedAndMalformedLinesAreKept()
    {
        using var dir = new TempDirectory();
        var tcpPort = FreePort(SocketType.Stream);
        var udpPort = FreePort(SocketType.Dgram);
        await using var node = await LogwellNode.StartAsync(dir.Path, "Production", new Dictionary<string, string>
        {
            ["LOGWELL_SYSLOGTCPPORT"] = tcpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["LOGWELL_SYSLOGUDPPORT"] = udpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["LOGWELL_SYSLOGMAXMESSAGEBYTES"] = "1000",
        });
        // The node says where syslog listens (right after it says where HTTP does).
        var announced = $"Logwell syslog on 127.0.0.1: tcp {tcpPort}, tls off, udp {udpPort}, into index set syslog";
        for (var wait = 0; wait < 100 && !node.Output.Contains(announced, StringComparison.Ordinal); wait++)
        {
            await Task.Delay(50);
        }
        Assert.Contains(announced, node.Output, StringComparison.Ordinal);

        // One connection counts octets; another sends lines, one of them not syslog at all and one too long.
        using (var counted = new TcpClient())
        {
            await counted.ConnectAsync(IPAddress.Loopback, tcpPort);
            var first = $"<165>1 {Day}T10:15:03Z web-1 shop 8710 ID47 [order@1 id=\"42\"] order 42 paid";
            var second = $"<163>1 {Day}T10:15:04Z web-1 shop 8710 - - payment\nfailed";
            var frames = $"{Encoding.UTF8.GetByteCount(first)} {first}{Encoding.UTF8.GetByteCount(second)} {second}";
            await counted.GetStream().WriteAsync(Encoding.UTF8.GetBytes(frames));
        }
        using (var lines = new TcpClient())
        {
            await lines.ConnectAsync(IPAddress.Loopback, tcpPort);
            // RFC 3164 has no year and pads the day with a space.
            var text = $"<34>{Yesterday.ToString("MMM", CultureInfo.InvariantCulture)} {Yesterday.Day,2} 09:05:07 db-1 sshd[4242]: Failed password for root\nthis is not syslog\n<14>1 - web-2 big - - - {new string('x', 2000)}\n<14>1 - web-2 tail - - - after the long one\n";
            await lines.GetStream().WriteAsync(Encoding.UTF8.GetBytes(text));
        }
        using (var udp = new UdpClient())
        {
            var datagram = Encoding.UTF8.GetBytes($"<30>1 {Day}T10:20:00.5Z host-u daemon - - - over udp");
            await udp.SendAsync(datagram, new IPEndPoint(IPAddress.Loopback, udpPort));
        }

        var hits = await WaitForAsync(node.Http, "syslog", "*", 7);
        Assert.Equal(7, hits.Count);
        System.Text.Json.JsonElement Hit(string start) => hits.Single(h => h.GetProperty("message").GetString()!.StartsWith(start, StringComparison.Ordinal));
        var paid = Hit("order 42 paid").GetProperty("fields");
        Assert.Equal("notice", paid.GetProperty("level").GetString());
        Assert.Equal("local4", paid.GetProperty("facility").GetString());
        Assert.Equal("42", paid.GetProperty("sd.order@1.id").GetString());
        Assert.Equal($"{Day}T10:15:03.0000000Z", Hit("order 42 paid").GetProperty("t").GetString());
        Assert.Equal("payment\nfailed", Hit("payment").GetProperty("message").GetString());
        Assert.Equal("sshd", Hit("Failed password").GetProperty("fields").GetProperty("app").GetString());
        Assert.Equal("no <PRI> at the start", Hit("this is not syslog").GetProperty("fields").GetProperty("syslog_error").GetString());
        var cut = hits.Single(h => h.GetProperty("fields").TryGetProperty("truncated", out _));
        Assert.Equal("big", cut.GetProperty("fields").GetProperty("app").GetString());
        Assert.Equal(1000, cut.GetProperty("message").GetString()!.Length + "<14>1 - web-2 big - - - ".Length);
        Assert.Equal("web-2", Hit("after the long one").GetProperty("fields").GetProperty("host").GetString());
        Assert.Equal("daemon", Hit("over udp").GetProperty("fields").GetProperty("app").GetString());
    }

    [SkippableFact]
    public async Task RsyslogForwardsOverTcpAndThroughOmelasticsearch()
    {
        Skip.IfNot(File.Exists("/usr/sbin/rsyslogd"), "rsyslog is not installed (test.sh installs rsyslog and rsyslog-elasticsearch from Debian when run as root)");
        Skip.IfNot(File.Exists("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so") || Directory.GetFiles("/usr/lib", "omelasticsearch.so", SearchOption.AllDirectories).Length > 0,
            "rsyslog's omelasticsearch module is not installed (package rsyslog-elasticsearch)");
        using var dir = new TempDirectory();
        var tcpPort = FreePort(SocketType.Stream);
        // Turned on from the command line this time, into an index set of its own. logger and rsyslog date the message
        // themselves, and under test.sh's moved clock that date need not follow the node's: the index sets keep every
        // date, so the message is not expired on arrival whichever clock dated it.
        await using var node = await LogwellNode.StartAsync(Path.Combine(dir.Path, "data"), "Development",
            env: new Dictionary<string, string> { ["LOGWELL_DEFAULTRETENTIONDAYS"] = "36500" },
            arguments: ["--syslog-tcp", tcpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--syslog-index", "forwarded"]);
        await using var rsyslog = await Rsyslog.StartAsync(Path.Combine(dir.Path, "rsyslog"), $$"""
            module(load="omelasticsearch")
            template(name="doc" type="list" option.jsonf="on") {
              property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
              property(outname="message" name="msg" format="jsonf")
              property(outname="host" name="hostname" format="jsonf")
              property(outname="app" name="programname" format="jsonf")
              property(outname="level" name="syslogseverity-text" format="jsonf")
            }
            action(type="omfwd" target="127.0.0.1" port="{{tcpPort}}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
            action(type="omelasticsearch" server="127.0.0.1" serverport="{{node.BaseAddress.Port}}" template="doc" searchIndex="rsyslog-2026.11.26" bulkmode="on" esVersion.major="8")
            """);
        await rsyslog.LogAsync("-t", "shop", "-p", "local3.err", "payment declined for order 7");

        var forwarded = await WaitForAsync(node.Http, "forwarded", "declined", 1);
        var viaTcp = Assert.Single(forwarded).GetProperty("fields");
        Assert.Equal("err", viaTcp.GetProperty("level").GetString());
        Assert.Equal("local3", viaTcp.GetProperty("facility").GetString());
        Assert.Equal("shop", viaTcp.GetProperty("app").GetString());

        var indexed = await WaitForAsync(node.Http, "rsyslog", "declined", 1);
        var viaBulk = Assert.Single(indexed);
        Assert.Equal("payment declined for order 7", viaBulk.GetProperty("message").GetString()!.Trim());
        Assert.Equal("shop", viaBulk.GetProperty("fields").GetProperty("app").GetString());
        Assert.Equal("err", viaBulk.GetProperty("fields").GetProperty("level").GetString());
    }
}
