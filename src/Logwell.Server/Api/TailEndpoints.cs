using System.Buffers;
using System.Text.Json;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Storage.Querying;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/tail</c>: Server-Sent Events, one <c>data:</c> line per matching event as soon as it is
/// acknowledged. A comment line every 15 seconds keeps the connection alive. A client that reads too slowly is cut off
/// with a final <c>event: dropped</c> rather than making the server hold events for it. Before each batch is sent the
/// request's credentials are checked again against the rules as they are now: a revoked key, an ended session, a
/// removed grant or a changed filter or masking rule ends the stream with <c>event: end</c> (a client reconnects under
/// the new rules), so nothing is sent that the caller may no longer see.
/// </summary>
internal static class TailEndpoints
{
    /// <summary>Acknowledged batches a tail client may have waiting before it is cut off.</summary>
    public const int Capacity = 64;

    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static void Map(IEndpointRouteBuilder routes) => routes.MapGet("/api/v1/tail", TailAsync).WithMetadata(Permission.InRequest(Actions.Search));

    private static async Task TailAsync(HttpContext context)
    {
        var q = context.Request.Query;
        if (await SearchEndpoints.ReadSelectionAsync(context, q["indexset"], q["q"], q["filters"], null, null, null).ConfigureAwait(false) is not { } selection)
        {
            return;
        }
        var (store, query, _, _) = selection;
        var time = context.RequestServices.GetTime();
        var access = context.RequestServices.GetRequiredService<AccessService>();
        var granted = Access(context.Caller(), store.Name);
        var matches = EventMatcher.Compile(query, time.GetUtcNow());
        using var subscription = store.Tail(Capacity);
        var aborted = context.RequestAborted;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        var body = context.Response.Body;
        await body.WriteAsync(System.Text.Encoding.UTF8.GetBytes($": tailing {store.Name}\n\n"), aborted).ConfigureAwait(false);
        await body.FlushAsync(aborted).ConfigureAwait(false);

        var buffer = new ArrayBufferWriter<byte>(4096);
        await using var json = new Utf8JsonWriter(buffer, JsonOutput.WriterOptions);
        try
        {
            while (true)
            {
                using var keepAlive = new CancellationTokenSource(KeepAlive, time);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(aborted, keepAlive.Token);
                bool more;
                try
                {
                    more = await subscription.Batches.WaitToReadAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
                {
                    await body.WriteAsync(": keep-alive\n\n"u8.ToArray(), aborted).ConfigureAwait(false);
                    await body.FlushAsync(aborted).ConfigureAwait(false);
                    continue;
                }
                if (!more)
                {
                    var end = subscription.Overflowed
                        ? "event: dropped\ndata: {\"error\":\"this client read too slowly and was cut off; reconnect to go on\"}\n\n"
                        : "event: end\ndata: {\"error\":\"the index set closed\"}\n\n";
                    await body.WriteAsync(System.Text.Encoding.UTF8.GetBytes(end), aborted).ConfigureAwait(false);
                    return;
                }
                if (Revoked(access, context, store.Name, granted) is { } why)
                {
                    await body.WriteAsync(System.Text.Encoding.UTF8.GetBytes($"event: end\ndata: {JsonSerializer.Serialize(new { error = why })}\n\n"), aborted).ConfigureAwait(false);
                    return;
                }
                buffer.Clear();
                while (subscription.Batches.TryRead(out var batch))
                {
                    foreach (var evt in batch)
                    {
                        if (!matches(evt))
                        {
                            continue;
                        }
                        buffer.Write("data: "u8);
                        json.Reset();
                        JsonOutput.WriteHit(json, selection.Shown(evt));
                        await json.FlushAsync(aborted).ConfigureAwait(false);
                        buffer.Write("\n\n"u8);
                    }
                }
                if (buffer.WrittenCount > 0)
                {
                    await body.WriteAsync(buffer.WrittenMemory, aborted).ConfigureAwait(false);
                    await body.FlushAsync(aborted).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && aborted.IsCancellationRequested)
        {
            // The client went away.
        }
    }

    /// <summary>What a caller's access to an index set's events is: may search, under which filters, with which masking.</summary>
    private static string Access(Caller caller, string indexSet) =>
        !caller.Can(Actions.Search, indexSet) ? "none"
        : JsonSerializer.Serialize(new { filters = caller.Filters(Actions.Search, indexSet), mask = caller.MaskFor(indexSet)?.Definition });

    /// <summary>Why the stream may not go on under the rules as they are now, or null when it may.</summary>
    private static string? Revoked(AccessService access, HttpContext context, string indexSet, string granted)
    {
        var now = access.Authenticate(context, again: true);
        if (now.Caller is not { } caller)
        {
            return $"access ended: {now.Error}";
        }
        return Access(caller, indexSet) == granted ? null : "access to this index set changed (a grant, its filter or the masking rules): reconnect to go on under the new rules";
    }
}
