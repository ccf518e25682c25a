using System.Diagnostics;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// The npm shipper libraries in <c>test/Logwell.IntegrationTests/clients</c>, installed with <c>npm ci</c> on first use.
/// Null, with the reason, where Node.js, npm or the registry is missing.
/// </summary>
internal static class NodeClients
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static async Task<(string? Directory, string Why)> EnsureAsync()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Logwell.slnx")))
        {
            root = root.Parent;
        }
        var directory = Path.Combine(root?.FullName ?? ".", "test", "Logwell.IntegrationTests", "clients");
        await Gate.WaitAsync();
        try
        {
            var node = await RunAsync("node", ["--version"], directory, TimeSpan.FromSeconds(30));
            if (node.Code != 0)
            {
                return (null, "Node.js is not installed (test.sh installs nodejs and npm from Debian when run as root)");
            }
            if (!File.Exists(Path.Combine(directory, "node_modules", "winston-loki", "package.json")))
            {
                var install = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], directory, TimeSpan.FromMinutes(5));
                if (install.Code != 0)
                {
                    return (null, $"npm could not install the shipper clients (winston-loki): {install.Output[^Math.Min(install.Output.Length, 400)..]}");
                }
            }
            return (directory, "");
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <inheritdoc cref="ProgramRunner.RunAsync"/>
    public static Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> arguments, string directory, TimeSpan timeout) =>
        ProgramRunner.RunAsync(program, arguments, directory, timeout);
}
