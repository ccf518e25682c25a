using Logwell.Storage;
using Logwell.Storage.Encoding;
using System.Globalization;
using System.Threading.Channels;
using Logwell.Core.Events;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Http;

namespace Logwell.Server.Api;

/// <summary>A reason an ingest request is refused, which each protocol writes in its own error format.</summary>
internal sealed record IngestError(int Status, string Message)
{
    /// <summary>Sets the headers that go with the status: <c>Retry-After</c> on 429.</summary>
    public void SetHeaders(HttpContext context)
    {
        if (Status == StatusCodes.Status429TooManyRequests)
        {
            context.Response.Headers.RetryAfter = ErrorResponses.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>
/// What every ingest endpoint does around its protocol: find the index set (creating it where the node auto-creates),
/// refuse before reading the body when the index set is backed up, read the body within the limit, append durably.
/// </summary>
internal static class IngestPath
{
    /// <summary>The media type of the request, without parameters, in lower case ("" when none).</summary>
    public static string MediaType(HttpContext context) => (context.Request.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();

    /// <summary>
    /// The index set's store and the request body, or why the request is refused (404, 429 before the body is read,
    /// 413, 415 for an unknown encoding). The caller sets <see cref="IngestError.SetHeaders"/> and answers in its format.
    /// </summary>
    public static async Task<(ILogIndexSet? Store, byte[]? Body, int Length, IngestError? Error)> BeginAsync(HttpContext context, LogwellOptions options, string indexSet)
    {
        var (store, refused) = await TargetAsync(context, options, indexSet).ConfigureAwait(false);
        if (refused is not null)
        {
            return (null, null, 0, refused);
        }
        var (body, length, error) = await RequestBodies.ReadAsync(context, options.MaxBodyBytes, pooled: true).ConfigureAwait(false);
        if (body is not null)
        {
            ServerMetrics.IngestedBytes.Add(length, new KeyValuePair<string, object?>("indexset", indexSet));
        }
        return body is null ? (null, null, 0, new IngestError(error!.Status, error.Message)) : (store, body, length, null);
    }

    /// <summary>The index set's store, or why the request is refused (404, 429).</summary>
    private static async Task<(ILogIndexSet? Store, IngestError? Error)> TargetAsync(HttpContext context, LogwellOptions options, string indexSet)
    {
        if (!context.Allows(Actions.Ingest, indexSet))
        {
            return (null, new IngestError(StatusCodes.Status403Forbidden, Access.DeniedMessage(context, Actions.Ingest, "indexset:" + indexSet)));
        }
        var engine = context.RequestServices.GetLogStore();
        if (engine.Unreachable is { } unreachable)
        {
            return (null, new IngestError(StatusCodes.Status503ServiceUnavailable, $"the log store cannot be reached ({unreachable}); no event of this request was stored, retry later"));
        }
        if (!engine.TryGet(indexSet, out var store))
        {
            if (engine.Unavailable.TryGetValue(indexSet, out var reason))
            {
                return (null, new IngestError(StatusCodes.Status503ServiceUnavailable, $"index set '{indexSet}' is unavailable ({reason}); no event of this request was stored"));
            }
            if (!options.AutoCreateIndexSets)
            {
                return (null, new IngestError(404, $"index set '{indexSet}' does not exist (create it with POST /api/v1/indexsets)"));
            }
            store = await engine.GetOrCreateAsync(indexSet).ConfigureAwait(false);
        }
        return store.IsBackedUp ? (null, new IngestError(StatusCodes.Status429TooManyRequests, ErrorResponses.BackedUpMessage(indexSet))) : (store, null);
    }

    /// <summary>
    /// Appends and waits until the events are durable; null when they are, else why none of them was acknowledged.
    /// Not tied to the request: once queued the batch is written, whether or not the client waits.
    /// </summary>
    /// <remarks>
    /// With an <c>Idempotency-Key</c> header, the request's events for this index set are written as a unit the store
    /// recognises when the client sends it again (<see cref="ILogIndexSet.AppendOnceAsync"/>).
    /// </remarks>
    public static async Task<IngestError?> AppendAsync(HttpContext context, ILogIndexSet store, List<LogEvent> events)
    {
        if (events.Count == 0)
        {
            return null;
        }
        try
        {
            if (context.Request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } key)
            {
                await store.AppendOnceAsync(events, key, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                await store.AppendAsync(events, CancellationToken.None).ConfigureAwait(false);
            }
            return null;
        }
        catch (Exception e) when (e is ObjectDisposedException or ChannelClosedException)
        {
            return new IngestError(404, $"index set '{store.Name}' was deleted; no event of this request was stored");
        }
        catch (IOException e)
        {
            // 503 rather than 507 for a full disk: every shipper retries a 503.
            var cause = DurableFile.IsDiskFull(e) ? $"the data disk is full: {e.Message}" : e.Message;
            return new IngestError(StatusCodes.Status503ServiceUnavailable, $"could not make the events durable ({cause}); no event of this request was acknowledged, retry later");
        }
    }
}
