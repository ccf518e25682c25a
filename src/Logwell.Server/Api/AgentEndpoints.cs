using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Logwell.Server.Agent;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Api;

/// <summary>
/// Central management of <c>logwell agent</c>: <c>/api/v1/collection-configs</c> (list; <c>PUT {name}</c> with the keys
/// of one of agent.yaml's inputs plus <c>hosts</c> and <c>tags</c>, the agents it is for; delete), and
/// <c>/api/v1/agents</c> (the agents that reported, with their health; <c>POST {name}/report</c>, which an agent calls
/// every poll interval and which answers with the configs for it).
/// </summary>
internal static partial class AgentEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/collection-configs", ListConfigsAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        routes.MapPut("/api/v1/collection-configs/{name}", PutConfigAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        routes.MapDelete("/api/v1/collection-configs/{name}", DeleteConfigAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        routes.MapGet("/api/v1/agents", ListAgentsAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        routes.MapDelete("/api/v1/agents/{name}", ForgetAgentAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        // An agent's key needs the ingest permission somewhere; it is given the configs of the index sets it may ingest into.
        routes.MapPost("/api/v1/agents/{name}/report", ReportAsync).WithMetadata(Permission.InRequest(Actions.Ingest));
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex ValidName();

    private static CollectionConfigStore Store(HttpContext context) => context.RequestServices.GetRequiredService<CollectionConfigStore>();

    private static async Task ListConfigsAsync(HttpContext context)
    {
        var configs = await Task.Run(Store(context).List, context.RequestAborted).ConfigureAwait(false);
        await WriteAsync(context, 200, writer =>
        {
            writer.WriteStartArray("collection_configs");
            foreach (var config in configs)
            {
                WriteConfig(writer, config);
            }
            writer.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static void WriteConfig(Utf8JsonWriter writer, CollectionConfig config)
    {
        writer.WriteStartObject();
        writer.WriteString("name", config.Name);
        using (var input = JsonDocument.Parse(config.Input))
        {
            foreach (var property in input.RootElement.EnumerateObject())
            {
                property.WriteTo(writer);
            }
        }
        writer.WriteStartArray("hosts");
        config.Hosts.ToList().ForEach(writer.WriteStringValue);
        writer.WriteEndArray();
        writer.WriteStartArray("tags");
        config.Tags.ToList().ForEach(writer.WriteStringValue);
        writer.WriteEndArray();
        writer.WriteString("updated_at", config.UpdatedAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        writer.WriteEndObject();
    }

    private static async Task PutConfigAsync(HttpContext context, string name)
    {
        if (!ValidName().IsMatch(name))
        {
            await ErrorResponses.WriteAsync(context, 400, "a collection config's name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit").ConfigureAwait(false);
            return;
        }
        using var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 256 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        if (body.RootElement.ValueKind != JsonValueKind.Object)
        {
            await ErrorResponses.WriteAsync(context, 400, "expected a JSON object such as {\"paths\": [\"/var/log/nginx/*.log\"], \"index_set\": \"nginx\", \"tags\": [\"web\"]}").ConfigureAwait(false);
            return;
        }
        var hosts = new List<string>();
        var tags = new List<string>();
        using var input = new MemoryStream();
        using (var writer = new Utf8JsonWriter(input))
        {
            writer.WriteStartObject();
            foreach (var property in body.RootElement.EnumerateObject())
            {
                if (property.Name is "hosts" or "tags")
                {
                    if (property.Value.ValueKind != JsonValueKind.Array || property.Value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String || v.GetString()!.Length == 0))
                    {
                        await ErrorResponses.WriteAsync(context, 400, $"'{property.Name}' must be a list of names").ConfigureAwait(false);
                        return;
                    }
                    (property.Name == "hosts" ? hosts : tags).AddRange(property.Value.EnumerateArray().Select(v => v.GetString()!));
                }
                else if (property.Name != "name")
                {
                    property.WriteTo(writer);
                }
            }
            writer.WriteEndObject();
        }
        var json = System.Text.Encoding.UTF8.GetString(input.ToArray());
        if (Strings(body.RootElement).Any(text => text.Contains('\0', StringComparison.Ordinal)))
        {
            // PostgreSQL's text holds no NUL, and no path has one.
            await ErrorResponses.WriteAsync(context, 400, "a collection config cannot hold the NUL character").ConfigureAwait(false);
            return;
        }
        try
        {
            AgentOptions.ParseCentralInput(json, name);
        }
        catch (AgentConfigException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
            return;
        }
        var store = Store(context);
        var created = await Task.Run(() => store.Put(name, json, hosts, tags), context.RequestAborted).ConfigureAwait(false);
        var config = (await Task.Run(store.List, context.RequestAborted).ConfigureAwait(false)).FirstOrDefault(c => c.Name == name);
        if (config is null)
        {
            await ErrorResponses.WriteAsync(context, 409, $"collection config '{name}' was deleted while it was being saved").ConfigureAwait(false);
            return;
        }
        await WriteAsync(context, created ? 201 : 200, writer =>
        {
            writer.WritePropertyName("collection_config");
            WriteConfig(writer, config);
        }).ConfigureAwait(false);
    }

    private static async Task DeleteConfigAsync(HttpContext context, string name)
    {
        if (!ValidName().IsMatch(name))
        {
            await ErrorResponses.WriteAsync(context, 404, $"no collection config named '{name}'").ConfigureAwait(false);
            return;
        }
        if (!await Task.Run(() => Store(context).Delete(name), context.RequestAborted).ConfigureAwait(false))
        {
            await ErrorResponses.WriteAsync(context, 404, $"no collection config named '{name}'").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = 204;
    }

    private static async Task ListAgentsAsync(HttpContext context)
    {
        var agents = await Task.Run(Store(context).Agents, context.RequestAborted).ConfigureAwait(false);
        var now = context.RequestServices.GetTime().GetUtcNow();
        await WriteAsync(context, 200, writer =>
        {
            writer.WriteStartArray("agents");
            foreach (var agent in agents)
            {
                writer.WriteStartObject();
                writer.WriteString("name", agent.Name);
                writer.WriteString("id", agent.Id);
                writer.WriteString("version", agent.Version);
                writer.WriteStartArray("tags");
                agent.Tags.ToList().ForEach(writer.WriteStringValue);
                writer.WriteEndArray();
                writer.WriteString("address", agent.Address);
                writer.WriteString("first_seen", agent.FirstSeen.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
                writer.WriteString("last_seen", agent.LastSeen.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
                writer.WriteNumber("seen_seconds_ago", Math.Max(0, Math.Round((now - agent.LastSeen).TotalSeconds, 1)));
                writer.WriteString("config_version", agent.ConfigVersion);
                writer.WritePropertyName("health");
                using (var health = JsonDocument.Parse(agent.Health))
                {
                    health.RootElement.WriteTo(writer);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static async Task ForgetAgentAsync(HttpContext context, string name)
    {
        if (name.Length > 255 || name.Contains('\0', StringComparison.Ordinal))
        {
            await ErrorResponses.WriteAsync(context, 404, "no agent by that name has reported").ConfigureAwait(false);
            return;
        }
        if (!await Task.Run(() => Store(context).Forget(name), context.RequestAborted).ConfigureAwait(false))
        {
            await ErrorResponses.WriteAsync(context, 404, $"no agent named '{name}' has reported").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = 204;
    }

    /// <summary>
    /// An agent's report: <c>{"id", "version", "tags", "health": {...}}</c>. Recorded, and answered with the configs for
    /// this agent (by name and tags) that the caller may ingest into, and their version.
    /// </summary>
    private static async Task ReportAsync(HttpContext context, string name)
    {
        if (name.Length > 255 || name.Contains('\0', StringComparison.Ordinal))
        {
            await ErrorResponses.WriteAsync(context, 400, "an agent's name is at most 255 characters").ConfigureAwait(false);
            return;
        }
        using var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 256 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String
            || !root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.String
            || !root.TryGetProperty("tags", out var tagList) || tagList.ValueKind != JsonValueKind.Array || tagList.EnumerateArray().Any(t => t.ValueKind != JsonValueKind.String)
            || !root.TryGetProperty("health", out var health) || health.ValueKind != JsonValueKind.Object)
        {
            await ErrorResponses.WriteAsync(context, 400, "an agent's report is {\"id\": \"…\", \"version\": \"…\", \"tags\": [\"…\"], \"health\": {…}}").ConfigureAwait(false);
            return;
        }
        var tags = tagList.EnumerateArray().Select(t => t.GetString()!).ToList();
        if (id.GetString()!.Length is 0 or > 64 || version.GetString()!.Length > 64
            || Strings(root).Append(name).Any(text => text.Contains('\0', StringComparison.Ordinal)))
        {
            await ErrorResponses.WriteAsync(context, 400, "an agent's id is 1 to 64 characters, its version at most 64, and no text of a report holds the NUL character").ConfigureAwait(false);
            return;
        }
        var caller = context.Caller();
        var store = Store(context);
        var (configs, configVersion) = await Task.Run(() => store.For(name, tags), context.RequestAborted).ConfigureAwait(false);
        var allowed = configs.Where(c => IndexSetOf(c) is { } set && caller.Can(Actions.Ingest, set)).ToList();
        var address = context.Connection.RemoteIpAddress?.ToString() ?? "";
        await Task.Run(() => store.Report(name, id.GetString()!, version.GetString()!, tags, address, health.GetRawText(), configVersion), context.RequestAborted).ConfigureAwait(false);
        await WriteAsync(context, 200, writer =>
        {
            writer.WriteString("config_version", configVersion);
            writer.WriteStartArray("collection_configs");
            foreach (var config in allowed)
            {
                WriteConfig(writer, config);
            }
            writer.WriteEndArray();
        }).ConfigureAwait(false);
    }

    /// <summary>Every string in a JSON value, property names included.</summary>
    private static IEnumerable<string> Strings(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => [element.GetString()!],
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Strings),
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Strings(p.Value).Prepend(p.Name)),
        _ => [],
    };

    private static string? IndexSetOf(CollectionConfig config)
    {
        using var input = JsonDocument.Parse(config.Input);
        return input.RootElement.TryGetProperty("index_set", out var set) && set.ValueKind == JsonValueKind.String ? set.GetString() : null;
    }

    private static async Task WriteAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        write(writer);
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
