using System.Globalization;
using System.Text.Json;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/nodes</c>: the registered nodes with their health (passing, or critical once their heartbeats stopped)
/// and the health components each last reported.
/// </summary>
internal static class NodeEndpoints
{
    public static void Map(IEndpointRouteBuilder routes) => routes.MapGet("/api/v1/nodes", ListAsync).WithMetadata(Permission.OnNode(Actions.ViewMetrics));

    private static async Task ListAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var nodes = context.RequestServices.GetRequiredService<NodeRegistry>().List(TimeSpan.FromSeconds(options.RegistryCriticalSeconds));
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("nodes");
        foreach (var node in nodes)
        {
            writer.WriteStartObject();
            writer.WriteString("id", node.Id);
            writer.WriteString("address", node.Address);
            writer.WriteNumber("port", node.Port);
            writer.WriteString("role", node.Role);
            writer.WriteString("version", node.Version);
            writer.WriteStartArray("tags");
            foreach (var tag in node.Tags)
            {
                writer.WriteStringValue(tag);
            }
            writer.WriteEndArray();
            writer.WriteString("registered_at", node.RegisteredAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            writer.WriteString("heartbeat_at", node.HeartbeatAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            writer.WriteString("health", node.Health);
            writer.WritePropertyName("checks");
            WriteChecks(writer, node.Checks);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The components a node last reported, as stored; an unreadable report is left out rather than failing the list.</summary>
    private static void WriteChecks(Utf8JsonWriter writer, string checks)
    {
        try
        {
            using var document = JsonDocument.Parse(checks);
            if (document.RootElement.ValueKind == JsonValueKind.Array)
            {
                document.RootElement.WriteTo(writer);
                return;
            }
        }
        catch (JsonException)
        {
        }
        writer.WriteStartArray();
        writer.WriteEndArray();
    }
}
