using System.Text.Json;
using Logwell.Storage;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Api;

/// <summary>
/// <c>/api/v1/indexsets/{name}/masking</c>: an index set's masking rules at read time (<see cref="ReadMask"/>).
/// <c>GET</c> shows them, <c>PUT</c> sets them, <c>DELETE</c> removes them; stored events never change.
/// </summary>
internal static class MaskingEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/indexsets/{name}/masking", ShowAsync).WithMetadata(Permission.OnRoute(Actions.ViewSpace));
        routes.MapPut("/api/v1/indexsets/{name}/masking", SetAsync).WithMetadata(Permission.OnRoute(Actions.ManageMasking));
        routes.MapDelete("/api/v1/indexsets/{name}/masking", RemoveAsync).WithMetadata(Permission.OnRoute(Actions.ManageMasking));
    }

    private static async Task<bool> ExistsAsync(HttpContext context, string name)
    {
        if (context.RequestServices.GetLogStore().TryGet(name, out _))
        {
            return true;
        }
        await ErrorResponses.WriteAsync(context, 404, $"index set '{name}' does not exist").ConfigureAwait(false);
        return false;
    }

    private static async Task ShowAsync(HttpContext context, string name)
    {
        if (!await ExistsAsync(context, name).ConfigureAwait(false))
        {
            return;
        }
        await WriteAsync(context, name, context.Caller().Rules.Masks.GetValueOrDefault(name)).ConfigureAwait(false);
    }

    private static async Task SetAsync(HttpContext context, string name)
    {
        if (!await ExistsAsync(context, name).ConfigureAwait(false))
        {
            return;
        }
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 256 * 1024).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var document = body;
        var access = context.RequestServices.GetRequiredService<AccessService>();
        ReadMask mask;
        try
        {
            mask = access.Store.SetMasking(name, document.RootElement.GetRawText());
        }
        catch (AccessException e)
        {
            await ErrorResponses.WriteAsync(context, e.Status, e.Message).ConfigureAwait(false);
            return;
        }
        access.Invalidate();
        await WriteAsync(context, name, mask).ConfigureAwait(false);
    }

    private static async Task RemoveAsync(HttpContext context, string name)
    {
        var access = context.RequestServices.GetRequiredService<AccessService>();
        if (!access.Store.RemoveMasking(name))
        {
            await ErrorResponses.WriteAsync(context, 404, $"index set '{name}' has no masking rules").ConfigureAwait(false);
            return;
        }
        access.Invalidate();
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private static async Task WriteAsync(HttpContext context, string name, ReadMask? mask)
    {
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("indexset", name);
        writer.WritePropertyName("masking");
        if (mask is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            using var definition = JsonDocument.Parse(mask.Definition);
            definition.RootElement.WriteTo(writer);
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
