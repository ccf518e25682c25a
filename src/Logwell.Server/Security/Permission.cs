using System.Net;
using Microsoft.AspNetCore.Http;

namespace Logwell.Server.Security;

/// <summary>The action an endpoint needs on a kind of resource; every endpoint declares one.</summary>
public sealed record Permission(string Action, string Resource)
{
    public static readonly Permission Public = new("none", "none");
    public static readonly Permission ListIndexSets = new("view", "indexset");
    public static readonly Permission ManageIndexSets = new("manage", "indexset");
    public static readonly Permission Ingest = new("ingest", "indexset");
    public static readonly Permission Search = new("search", "indexset");
    public static readonly Permission ViewQueues = new("view", "queue");
    public static readonly Permission ManageQueues = new("manage", "queue");
    public static readonly Permission Export = new("export", "indexset");
    public static readonly Permission ViewMetrics = new("view", "metrics");
    public static readonly Permission ViewNodes = new("view", "node");
    public static readonly Permission ManageSavedSearches = new("manage", "savedsearch");
}

/// <summary>
/// The one authorization layer. Deny by default: an endpoint without a declared permission is refused. Until users and
/// roles exist, every declared permission is granted to loopback clients only.
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
        if (permission != Permission.Public && !IsLoopback(context.Connection.RemoteIpAddress))
        {
            return ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"'{permission.Action}' on '{permission.Resource}' is allowed from loopback only until users and roles are configured");
        }
        return next(context);
    }

    private static bool IsLoopback(IPAddress? address) => address is null || IPAddress.IsLoopback(address);
}
