using System.Text.Json;
using Logwell.Hosting;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/supervisor</c>: the processes of this node's supervisor (name, state, pid, spawns and
/// supervisorctl's description) and its API master's workers, from the status files they keep in <c>DATA/run/</c>;
/// <c>null</c> for a role that does not run here (a plain <c>logwell serve</c> has neither).
/// </summary>
internal static class SupervisorEndpoints
{
    public static void Map(IEndpointRouteBuilder routes) => routes.MapGet("/api/v1/supervisor", ShowAsync).WithMetadata(Permission.OnNode(Actions.ViewMetrics));

    private static async Task ShowAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var run = Path.Combine(Path.GetFullPath(options.DataDirectory), "run");
        var now = context.RequestServices.GetTime().GetUtcNow();
        using var supervisor = RunStatus.Read(run, "supervisor.status.json", now);
        using var master = RunStatus.Read(run, "api-master.status.json", now);
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WritePropertyName("processes");
        if (supervisor is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            supervisor.RootElement.WriteTo(writer);
        }
        writer.WritePropertyName("api_master");
        if (master is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            master.RootElement.WriteTo(writer);
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
