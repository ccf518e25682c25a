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

    /// <summary><c>logwell collection-configs list|set|delete</c>: the collection configs agents get from the server.</summary>
    public static Command CollectionConfigs(Option<string> server)
    {
        var list = new Command("list", "List the collection configs: which files, which index set, which agents.");
        list.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            using var response = await client.GetAsync("api/v1/collection-configs", ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"{"NAME",-20} {"INDEX SET",-16} {"FOR",-24} PATHS");
            foreach (var config in doc.RootElement.GetProperty("collection_configs").EnumerateArray())
            {
                var hosts = config.GetProperty("hosts").EnumerateArray().Select(h => h.GetString());
                var tags = config.GetProperty("tags").EnumerateArray().Select(t => "tag:" + t.GetString());
                var target = string.Join(",", hosts.Concat(tags)) is { Length: > 0 } named ? named : "every agent";
                Console.WriteLine($"{config.GetProperty("name").GetString(),-20} {config.GetProperty("index_set").GetString(),-16} {target,-24} {string.Join(" ", config.GetProperty("paths").EnumerateArray().Select(p => p.GetString()))}");
            }
            return 0;
        }));
        var name = new Argument<string>("name") { Description = "the config's name" };
        var file = new Option<string>("--file", "-f") { Description = "the config as JSON: the keys of one of agent.yaml's inputs (paths, index_set, multiline, fields, …) and hosts and tags, the agents it is for; - reads standard input", Required = true };
        var set = new Command("set", "Create or replace a collection config; agents it is for apply it at their next poll.") { name, file };
        set.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            var path = result.GetValue(file)!;
            var body = path == "-" ? await Console.In.ReadToEndAsync(ct).ConfigureAwait(false) : await File.ReadAllTextAsync(path, ct).ConfigureAwait(false);
            using var client = ClientCommands.CreateClient(result, server);
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            using var response = await client.PutAsync("api/v1/collection-configs/" + Uri.EscapeDataString(result.GetValue(name)!), content, ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"{(response.StatusCode == System.Net.HttpStatusCode.Created ? "created" : "replaced")} collection config {result.GetValue(name)}");
            return 0;
        }));
        var deleteName = new Argument<string>("name") { Description = "the config's name" };
        var delete = new Command("delete", "Delete a collection config; agents let its files go at their next poll.") { deleteName };
        delete.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            using var response = await client.DeleteAsync("api/v1/collection-configs/" + Uri.EscapeDataString(result.GetValue(deleteName)!), ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                (await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false)).Dispose();
            }
            Console.WriteLine($"deleted collection config {result.GetValue(deleteName)}");
            return 0;
        }));
        return new Command("collection-configs", "Collection configs: which files which agents collect (docs/agent.md).") { list, set, delete };
    }

    /// <summary><c>logwell agents list|forget</c>: the agents that report to the server, with their health.</summary>
    public static Command Agents(Option<string> server)
    {
        var list = new Command("list", "List the agents that reported, with their last report and lag.");
        list.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            using var response = await client.GetAsync("api/v1/agents", ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"{"NAME",-20} {"ADDRESS",-16} {"SEEN",-8} {"FILES",5} {"BEHIND",12} {"BUFFERED",12}  LAST ERROR");
            foreach (var agent in doc.RootElement.GetProperty("agents").EnumerateArray())
            {
                var health = agent.GetProperty("health");
                long Number(string key) => health.TryGetProperty(key, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.Number ? v.GetInt64() : 0;
                var error = health.TryGetProperty("last_error", out var e) && e.ValueKind == System.Text.Json.JsonValueKind.String ? e.GetString() : "";
                Console.WriteLine($"{agent.GetProperty("name").GetString(),-20} {agent.GetProperty("address").GetString(),-16} {agent.GetProperty("seen_seconds_ago").GetDouble(),6:0}s {Number("files"),5} {Number("bytes_behind"),12} {Number("buffer_bytes"),12}  {error}");
            }
            return 0;
        }));
        var name = new Argument<string>("name") { Description = "the agent's name" };
        var forget = new Command("forget", "Forget an agent retired for good (it is listed again if it reports).") { name };
        forget.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            using var response = await client.DeleteAsync("api/v1/agents/" + Uri.EscapeDataString(result.GetValue(name)!), ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                (await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false)).Dispose();
            }
            Console.WriteLine($"forgot agent {result.GetValue(name)}");
            return 0;
        }));
        return new Command("agents", "The agents that report to the server (docs/agent.md).") { list, forget };
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
