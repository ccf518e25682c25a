using System.Globalization;
using System.Threading.Channels;
using Logwell.Storage;
using Logwell.Core.Events;
using Logwell.Server.Hosting;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Security;

/// <summary>
/// The audit log: who did what, from where, to which resource, with what outcome and how long it took, as events of
/// the system index set <c>_audit</c> (read with <c>view_audit</c> through the normal search; no client can write it;
/// kept <c>AuditRetentionDays</c>, 180 by default). Entries are made for every state-changing request but accepted
/// ingest (the data path: a shipper's batches would double the writes), every search, export and download, and every
/// refusal for missing or wrong credentials (failed sign-ins included) or a missing grant.
/// </summary>
public sealed class AuditLog : BackgroundService
{
    // Requests wait for room rather than lose an entry when the writer falls this far behind.
    private readonly Channel<LogEvent> _entries = Channel.CreateBounded<LogEvent>(new BoundedChannelOptions(100_000) { SingleReader = true });
    private readonly ILogStore _logStore;
    private readonly LogwellOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<AuditLog> _logger;

    public AuditLog(ILogStore logStore, IOptions<LogwellOptions> options, TimeProvider time, ILogger<AuditLog> logger)
    {
        _logStore = logStore;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <summary>Records a request once it is answered.</summary>
    public ValueTask RecordAsync(LogEvent entry) => _entries.Writer.WriteAsync(entry);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var store = await StoreRetry.UntilDoneAsync(OpenAsync, _time, _logger, "Opening the audit log", stoppingToken).ConfigureAwait(false);
        var batch = new List<LogEvent>();
        // Drains what is queued after the stop, so the entries of the last requests are kept.
        while (await _entries.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (batch.Count < 10_000 && _entries.Reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }
            try
            {
                // Requests wait (the queue is bounded) while the store fails, rather than lose their entries.
                await StoreRetry.UntilDoneAsync(async () =>
                {
                    await store.AppendAsync(batch, CancellationToken.None).ConfigureAwait(false);
                    return true;
                }, _time, _logger, $"Writing {batch.Count} audit entries", stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or ChannelClosedException or HttpRequestException)
            {
                _logger.LogError(e, "Audit log: {Count} entries could not be written: {Reason}", batch.Count, e.Message);
                if (e is ObjectDisposedException or ChannelClosedException)
                {
                    return;
                }
            }
            batch.Clear();
        }
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        _entries.Writer.TryComplete();
        return base.StopAsync(cancellationToken);
    }

    private async Task<ILogIndexSet> OpenAsync()
    {
        if (_logStore.TryGet(IndexSetName.Audit, out var store))
        {
            return store;
        }
        var (_, error, created) = await _logStore.CreateAsync(IndexSetName.Audit, _options.AuditRetentionDays, system: true).ConfigureAwait(false);
        return created ?? throw new InvalidOperationException($"the audit log cannot be created: {error}");
    }

    /// <summary>Whether a request is recorded: see the class's summary.</summary>
    internal static bool Records(HttpContext context, Permission? permission)
    {
        var status = context.Response.StatusCode;
        // Refusals, and every sign-in of the web UI, whatever its outcome.
        if (status is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden || context.Items.ContainsKey(ClaimedUserKey))
        {
            return true;
        }
        if (permission is null || permission.Scope == ScopeFrom.Public)
        {
            return false;
        }
        if (permission.Action is Actions.Search or Actions.Export)
        {
            return true;
        }
        var reads = HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method) || HttpMethods.IsOptions(context.Request.Method);
        return !reads && !(permission.Action == Actions.Ingest && status < 300);
    }

    /// <summary>Where a sign-in endpoint leaves the user name a request claimed, for the entry of a failed sign-in.</summary>
    public const string ClaimedUserKey = "logwell.claimed_user";

    /// <summary>Where an endpoint that reads its index set and query from the body (POST search, exports) leaves them for the entry.</summary>
    public const string IndexSetKey = "logwell.audit_indexset";

    public const string QueryKey = "logwell.audit_query";

    /// <summary>The entry for an answered request.</summary>
    internal static LogEvent Entry(HttpContext context, Permission? permission, TimeSpan took, DateTimeOffset at)
    {
        var request = context.Request;
        var caller = context.Features.Get<Caller>();
        var status = context.Response.StatusCode;
        var outcome = status switch
        {
            StatusCodes.Status401Unauthorized => "unauthenticated",
            StatusCodes.Status403Forbidden => "denied",
            < 400 => "success",
            < 500 => "failure",
            _ => "error",
        };
        var fields = new List<Field>
        {
            new("outcome", FieldValue.FromString(outcome)),
            new("status", FieldValue.FromLong(status)),
            new("method", FieldValue.FromString(request.Method)),
            new("path", FieldValue.FromString(request.Path.Value ?? "/")),
            new("client", FieldValue.FromString(AccessService.ClientAddress(context)?.ToString() ?? "local")),
            new("duration_ms", FieldValue.FromDouble(Math.Round(took.TotalMilliseconds, 3))),
        };
        if (caller is not null)
        {
            fields.Add(new("user", FieldValue.FromString(caller.Owner ?? caller.Name)));
            fields.Add(new("caller", FieldValue.FromString(caller.Kind)));
            if (caller.KeyId is { } keyId)
            {
                fields.Add(new("key_id", FieldValue.FromString(keyId)));
            }
        }
        else if ((context.Items[ClaimedUserKey] as string ?? BasicUser(request)) is { } attempted)
        {
            // A failed sign-in: who it claimed to be.
            fields.Add(new("user", FieldValue.FromString(attempted)));
        }
        if (permission is not null && permission.Action != "none")
        {
            fields.Add(new("action", FieldValue.FromString(permission.Action)));
        }
        var indexSet = (permission?.RouteKey is { } key ? request.RouteValues[key] as string : null)
            ?? request.RouteValues["index"] as string
            ?? context.Items[IndexSetKey] as string
            ?? (request.Query["indexset"].ToString() is { Length: > 0 } named ? named : null);
        if (indexSet is not null)
        {
            fields.Add(new("indexset", FieldValue.FromString(indexSet)));
        }
        if ((context.Items[QueryKey] as string ?? request.Query["q"].ToString()) is { Length: > 0 } query)
        {
            fields.Add(new("query", FieldValue.FromString(query.Length > 4096 ? query[..4096] : query)));
        }
        var who = caller?.Description ?? "an unauthenticated client";
        var message = string.Create(CultureInfo.InvariantCulture, $"{request.Method} {request.Path} {status} {outcome} by {who}");
        return new LogEvent(at.UtcTicks, message, [.. fields]);
    }

    private static string? BasicUser(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        try
        {
            var decoded = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon > 0 && !decoded[(colon + 1)..].StartsWith(AccessStore.KeyPrefix, StringComparison.Ordinal) ? decoded[..colon] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>Hands every answered request that the audit log records to it, with how long it took.</summary>
public sealed class AuditMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var time = context.RequestServices.GetRequiredService<TimeProvider>();
        var started = time.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            var permission = context.GetEndpoint()?.Metadata.GetMetadata<Permission>();
            if (AuditLog.Records(context, permission))
            {
                await context.RequestServices.GetRequiredService<AuditLog>()
                    .RecordAsync(AuditLog.Entry(context, permission, time.GetElapsedTime(started), time.GetUtcNow())).ConfigureAwait(false);
            }
        }
    }
}
