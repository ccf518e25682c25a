using System.Text.Json;
using Logwell.Jobs;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/queues</c>: per task queue, tasks pending, delayed, running, failed (waiting to retry), dead and done,
/// completed in the last minute, and the oldest pending task's age; and the scheduler lease's holder. <c>POST /api/v1/queues/{queue}/dead/retry</c> and <c>.../dead/purge</c> act on
/// a queue's dead tasks.
/// </summary>
internal static class QueueEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/queues", ListAsync).WithMetadata(Permission.OnNode(Actions.ViewMetrics));
        routes.MapPost("/api/v1/queues/{queue}/dead/retry", (HttpContext context, string queue) => ActAsync(context, queue, retry: true)).WithMetadata(Permission.OnNode(Actions.Operate));
        routes.MapPost("/api/v1/queues/{queue}/dead/purge", (HttpContext context, string queue) => ActAsync(context, queue, retry: false)).WithMetadata(Permission.OnNode(Actions.Operate));
    }

    private static async Task ListAsync(HttpContext context)
    {
        var queues = context.RequestServices.GetRequiredService<ITaskQueue>();
        var stats = await queues.StatsAsync(context.RequestAborted).ConfigureAwait(false);
        var scheduler = await queues.LeaseHolderAsync(Scheduler.LeaseName, context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("queues");
        foreach (var queue in stats)
        {
            writer.WriteStartObject();
            writer.WriteString("name", queue.Queue);
            writer.WriteNumber("pending", queue.Pending);
            writer.WriteNumber("delayed", queue.Delayed);
            writer.WriteNumber("running", queue.Running);
            writer.WriteNumber("failed", queue.Failed);
            writer.WriteNumber("dead", queue.Dead);
            writer.WriteNumber("done", queue.Done);
            writer.WriteNumber("done_last_minute", queue.DoneLastMinute);
            if (queue.OldestPendingAge is { } age)
            {
                writer.WriteNumber("oldest_pending_seconds", Math.Round(age.TotalSeconds, 3));
            }
            else
            {
                writer.WriteNull("oldest_pending_seconds");
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        if (scheduler is null)
        {
            writer.WriteNull("scheduler");
        }
        else
        {
            writer.WriteStartObject("scheduler");
            writer.WriteString("holder", scheduler.Holder);
            writer.WriteNumber("token", scheduler.Token);
            writer.WriteString("lease_until", scheduler.Until.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task ActAsync(HttpContext context, string queue, bool retry)
    {
        var tasks = context.RequestServices.GetRequiredService<ITaskQueue>();
        var count = retry ? await tasks.RetryDeadAsync(queue, context.RequestAborted).ConfigureAwait(false) : await tasks.PurgeDeadAsync(queue, context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("queue", queue);
        writer.WriteNumber(retry ? "retried" : "purged", count);
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
