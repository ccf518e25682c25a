using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.Cli;

/// <summary><c>logwell lb haproxy-config</c>: the repository's <c>deploy/haproxy.cfg</c> with the registry's nodes as its servers.</summary>
internal static partial class LbCommands
{
    public static Command Lb(Option<string> server)
    {
        var bind = new Option<string>("--bind") { Description = "the address HAProxy listens on", DefaultValueFactory = _ => ":8080" };
        var socket = new Option<string>("--socket") { Description = "HAProxy's stats socket (drain a node through it)", DefaultValueFactory = _ => "/run/haproxy/logwell.sock" };
        var haproxy = new Command("haproxy-config", "Print an HAProxy configuration whose servers are the nodes in the registry that answer requests (roles serve and api), read through any node.") { bind, socket };
        haproxy.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            using var response = await client.GetAsync("api/v1/nodes", ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var nodes = doc.RootElement.GetProperty("nodes").EnumerateArray()
                .Select(n => (Id: n.GetProperty("id").GetString()!, Address: n.GetProperty("address").GetString()!, Port: n.GetProperty("port").GetInt32(), Role: n.GetProperty("role").GetString()!))
                .ToList();
            var (config, skipped) = HaproxyConfig(nodes, result.GetValue(bind)!, result.GetValue(socket)!);
            foreach (var reason in skipped)
            {
                Console.Error.WriteLine($"left out: {reason}");
            }
            Console.Write(config);
            return 0;
        }));
        return new Command("lb", "Load balancer configuration from the registry.") { haproxy };
    }

    /// <summary>
    /// The shipped configuration with <paramref name="bind"/>, <paramref name="socket"/> and one checked server line per
    /// node that answers requests; the nodes left out and why (a role behind an API master, a Unix socket, an address
    /// of every interface, which no balancer can reach).
    /// </summary>
    public static (string Config, IReadOnlyList<string> Skipped) HaproxyConfig(IEnumerable<(string Id, string Address, int Port, string Role)> nodes, string bind, string socket)
    {
        var skipped = new List<string>();
        var servers = new List<string>();
        foreach (var node in nodes.OrderBy(n => n.Id, StringComparer.Ordinal))
        {
            if (node.Role is not ("serve" or "api"))
            {
                skipped.Add($"{node.Id}: role {node.Role} is reached through its API master");
            }
            else if (node.Port == 0 || node.Address.StartsWith("unix:", StringComparison.Ordinal))
            {
                skipped.Add($"{node.Id}: listens on a Unix socket");
            }
            else if (node.Address is "0.0.0.0" or "::" or "[::]" or "+" or "*")
            {
                skipped.Add($"{node.Id}: registered {node.Address}; set its AdvertiseAddress");
            }
            else
            {
                var host = node.Address.Contains(':', StringComparison.Ordinal) && !node.Address.StartsWith('[') ? $"[{node.Address}]" : node.Address;
                servers.Add($"    server {ServerName().Replace(node.Id, "_")} {host}:{node.Port} check");
            }
        }
        using var template = typeof(LbCommands).Assembly.GetManifestResourceStream("haproxy.cfg")!;
        using var reader = new StreamReader(template, Encoding.UTF8);
        var text = new StringBuilder();
        while (reader.ReadLine() is { } line)
        {
            var trimmed = line.TrimStart();
            if (trimmed.StartsWith("server ", StringComparison.Ordinal))
            {
                continue;
            }
            text.Append(trimmed switch
            {
                _ when trimmed.StartsWith("bind ", StringComparison.Ordinal) => $"    bind {bind}",
                _ when trimmed.StartsWith("stats socket ", StringComparison.Ordinal) => $"    stats socket {socket} mode 600 level admin",
                _ => line,
            }).Append('\n');
        }
        foreach (var line in servers)
        {
            text.Append(line).Append('\n');
        }
        return (text.ToString(), skipped);
    }

    // HAProxy's server names: letters, digits and "-_.:".
    [GeneratedRegex("[^A-Za-z0-9_.:-]")]
    private static partial Regex ServerName();
}
