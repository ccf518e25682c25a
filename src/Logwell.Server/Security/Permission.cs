using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Security;

/// <summary>Where an endpoint's action applies.</summary>
public enum ScopeFrom
{
    /// <summary>No credentials needed: health probes, the web UI's static files, the not-found answer.</summary>
    Public,

    /// <summary>Any valid credentials: the Elasticsearch compatibility answers shippers probe for.</summary>
    Authenticated,

    /// <summary>The node as a whole (operate, view_metrics, view_audit, manage_access): a grant on <c>*</c>.</summary>
    Node,

    /// <summary>The index set the route names (<see cref="Permission.RouteKey"/>).</summary>
    RouteIndexSet,

    /// <summary>
    /// What the endpoint reads from the request (the index set of a search, every target of a bulk request) or lists
    /// (only what the caller may see). The layer lets in callers that hold the action somewhere; the endpoint checks
    /// each index set it touches.
    /// </summary>
    Request,
}

/// <summary>The action an endpoint needs and where it applies; every endpoint declares one (deny by default).</summary>
public sealed record Permission(string Action, ScopeFrom Scope, string? RouteKey = null)
{
    /// <summary>The metrics scrape token (the <c>MetricsScrapeToken</c> setting) opens this endpoint too.</summary>
    public bool ScrapeToken { get; init; }

    public static readonly Permission Public = new("none", ScopeFrom.Public);

    public static readonly Permission Authenticated = new("none", ScopeFrom.Authenticated);

    /// <summary><paramref name="action"/> on the node as a whole.</summary>
    public static Permission OnNode(string action) => new(action, ScopeFrom.Node);

    /// <summary><paramref name="action"/> on the index set named by the route value <paramref name="routeKey"/>.</summary>
    public static Permission OnRoute(string action, string routeKey = "name") => new(action, ScopeFrom.RouteIndexSet, routeKey);

    /// <summary><paramref name="action"/> on the index sets the endpoint finds in the request and checks itself.</summary>
    public static Permission InRequest(string action) => new(action, ScopeFrom.Request);

    public override string ToString() => Scope switch
    {
        ScopeFrom.Public => "public",
        ScopeFrom.Authenticated => "authenticated",
        ScopeFrom.Node => $"{Action} on *",
        ScopeFrom.RouteIndexSet => $"{Action} on indexset:{{{RouteKey}}}",
        _ => $"{Action} in request",
    };
}

/// <summary>
/// The one access layer. Deny by default: an endpoint without a declared permission is refused; so is a caller
/// without a grant that gives the endpoint's action where it applies. Missing or wrong credentials answer 401, valid
/// ones that are not enough 403, each naming the action and the scope.
/// </summary>
public sealed class AuthorizationMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var endpoint = context.GetEndpoint();
        if (endpoint is null)
        {
            return next(context);
        }
        var permission = endpoint.Metadata.GetMetadata<Permission>();
        if (permission is null)
        {
            return ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden, "this endpoint declares no permission and is denied");
        }
        if (permission.Scope == ScopeFrom.Public)
        {
            return next(context);
        }
        var access = context.RequestServices.GetRequiredService<AccessService>();
        if (permission.ScrapeToken && access.IsScrape(context.Request))
        {
            return next(context);
        }
        var authentication = access.Authenticate(context);
        if (authentication.Caller is not { } caller)
        {
            if (authentication.RetryAfter is { } wait)
            {
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (authentication.Status == StatusCodes.Status401Unauthorized)
            {
                // As Elasticsearch answers: clients that wait for a challenge before sending basic credentials send them then.
                // A page's own requests (the web UI's fetches with X-Requested-With, its live tail's EventSource: any
                // browser request but a navigation) get no Basic challenge, which would open the browser's own prompt.
                var fromPage = context.Request.Headers.XRequestedWith.Count > 0
                    || context.Request.Headers["Sec-Fetch-Mode"].ToString() is { Length: > 0 } mode && mode != "navigate";
                context.Response.Headers.WWWAuthenticate = fromPage
                    ? new(["Bearer realm=\"logwell\"", "ApiKey"])
                    : new(["Basic realm=\"logwell\", charset=\"UTF-8\"", "Bearer realm=\"logwell\"", "ApiKey"]);
            }
            return ErrorResponses.WriteAsync(context, authentication.Status, authentication.Error!,
                action: permission.Scope == ScopeFrom.Authenticated ? null : permission.Action);
        }
        context.Features.Set(caller);
        switch (permission.Scope)
        {
            case ScopeFrom.Node when !caller.CanOnNode(permission.Action):
                return Access.DenyAsync(context, permission.Action, "*");
            case ScopeFrom.RouteIndexSet when context.Request.RouteValues[permission.RouteKey!] is string indexSet && !caller.Can(permission.Action, indexSet):
                return Access.DenyAsync(context, permission.Action, "indexset:" + indexSet);
            case ScopeFrom.Request when !caller.CanAnywhere(permission.Action):
                return Access.DenyAsync(context, permission.Action, "any");
            default:
                // A key's searches and exports draw on its query budget (a live tail runs as long as it is watched, so it does not).
                if (caller.KeyId is { } keyId && access.Limits.KeyQuerySecondsPerMinute > 0 && permission.Action is Actions.Search or Actions.Export
                    && !context.Request.Path.StartsWithSegments("/api/v1/tail"))
                {
                    return QueryAsync(context, access, caller, keyId);
                }
                return next(context);
        }
    }

    private async Task QueryAsync(HttpContext context, AccessService access, Caller caller, string keyId)
    {
        if (access.Limits.QueryBudgetWait(keyId) is { } wait)
        {
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await ErrorResponses.WriteAsync(context, StatusCodes.Status429TooManyRequests,
                $"{caller.Description} has spent its query budget: {access.Limits.KeyQuerySecondsPerMinute} seconds of searches and exports a minute (the KeyQuerySecondsPerMinute setting); retry after {Math.Ceiling(wait.TotalSeconds)} s").ConfigureAwait(false);
            return;
        }
        var started = access.Time.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            access.Limits.ChargeQuery(keyId, access.Time.GetElapsedTime(started));
        }
    }
}

/// <summary>What endpoints ask of the caller the access layer found.</summary>
public static class Access
{
    /// <summary>The caller of a request that passed the access layer.</summary>
    public static Caller Caller(this HttpContext context) =>
        context.Features.Get<Caller>() ?? throw new InvalidOperationException($"{context.Request.Path}: no caller; the endpoint is public and cannot ask for one");

    /// <summary>May the caller do <paramref name="action"/> on the index set.</summary>
    public static bool Allows(this HttpContext context, string action, string indexSet) => context.Caller().Can(action, indexSet);

    /// <summary>The 403 for a caller that lacks <paramref name="action"/> on <paramref name="scope"/>.</summary>
    public static Task DenyAsync(HttpContext context, string action, string scope) =>
        ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden, DeniedMessage(context, action, scope), action: action, scope: scope);

    public static string DeniedMessage(HttpContext context, string action, string scope) =>
        $"{context.Caller().Description} may not {action} on {(scope == "any" ? "any index set" : scope)}: no grant gives it";
}
