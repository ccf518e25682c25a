using System.CommandLine;
using System.Runtime.InteropServices;
using Logwell.Server.Agent;
using Logwell.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Logwell.Cli;

/// <summary><c>logwell agent -c agent.yaml</c>: collects log files on a host and ships them to Logwell (docs/agent.md).</summary>
internal static class AgentCommands
{
    public static Command Agent()
    {
        var config = new Option<string>("--config", "-c") { Description = "the agent's configuration (YAML; see docs/agent.md)", Required = true };
        var check = new Option<bool>("--check") { Description = "read and check the configuration, print it, and exit" };
        var command = new Command("agent", "Collect log files on this host and ship them to Logwell, at least once, through rotation, restarts and outages.") { config, check };
        command.SetAction(async (result, ct) =>
        {
            AgentOptions options;
            try
            {
                options = AgentOptions.Load(result.GetValue(config)!);
            }
            catch (AgentConfigException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            if (result.GetValue(check))
            {
                Console.WriteLine(options);
                return 0;
            }
            using var stop = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
            var agent = new FileAgent(options, Settings.Time, Console.Out);
            await using var metrics = options.MetricsListen is { } listen ? await StartMetricsAsync(listen, agent).ConfigureAwait(false) : null;
            try
            {
                await agent.RunAsync(stop.Token).ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary><c>GET /metrics</c> on <paramref name="listen"/> (<c>host:port</c>), in Prometheus' text format.</summary>
    private static async Task<WebApplication> StartMetricsAsync(string listen, FileAgent agent)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{listen}");
        var app = builder.Build();
        app.MapGet("/metrics", () => Results.Text(agent.MetricsText(), "text/plain; version=0.0.4"));
        await app.StartAsync().ConfigureAwait(false);
        return app;
    }
}
