using Logwell.Server.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Tests;

/// <summary>
/// Every endpoint of a node, with the permission it declares, against the table below: an endpoint added without a
/// row here (and without a permission) fails, so the authorization tests built on this table cover every endpoint.
/// </summary>
public sealed class EndpointTableTests
{
    /// <summary>Method, route and the action and resource each endpoint of a node (default settings) declares.</summary>
    internal static readonly string[] Table =
    [
        "* /metrics -> view metrics",
        "* {*path:nonfile} -> none none",
        "DELETE /api/v1/indexsets/{name} -> manage indexset",
        "DELETE /api/v1/indexsets/{name}/pipeline -> manage indexset",
        "DELETE /api/v1/saved-searches/{id} -> manage savedsearch",
        "GET / -> none none",
        "GET /_cluster/health -> none none",
        "GET /_component_template/{name} -> none none",
        "GET /_index_template/{name} -> none none",
        "GET /_license -> none none",
        "GET /_template/{name} -> none none",
        "GET /api/v1/context -> search indexset",
        "GET /api/v1/export -> export indexset",
        "GET /api/v1/exports -> export indexset",
        "GET /api/v1/exports/{id} -> export indexset",
        "GET /api/v1/exports/{id}/download -> export indexset",
        "GET /api/v1/fields -> search indexset",
        "GET /api/v1/histogram -> search indexset",
        "GET /api/v1/indexsets -> view indexset",
        "GET /api/v1/indexsets/{name}/pipeline -> view indexset",
        "GET /api/v1/nodes -> view node",
        "GET /api/v1/queues -> view queue",
        "GET /api/v1/saved-searches -> search indexset",
        "GET /api/v1/search -> search indexset",
        "GET /api/v1/supervisor -> view node",
        "GET /api/v1/tail -> search indexset",
        "GET /healthz -> none none",
        "GET /indexsets -> none none",
        "GET /livez -> none none",
        "GET /operations -> none none",
        "GET /readyz -> none none",
        "GET /ui/{**path} -> none none",
        "HEAD / -> none none",
        "HEAD /_component_template/{name} -> none none",
        "HEAD /_index_template/{name} -> none none",
        "HEAD /_template/{name} -> none none",
        "PATCH /api/v1/indexsets/{name} -> manage indexset",
        "POST /_bulk -> ingest indexset",
        "POST /_component_template/{name} -> ingest indexset",
        "POST /_index_template/{name} -> ingest indexset",
        "POST /_template/{name} -> ingest indexset",
        "POST /api/events/raw -> ingest indexset",
        "POST /api/v1/exports -> export indexset",
        "POST /api/v1/indexsets -> manage indexset",
        "POST /api/v1/indexsets/{name}/ingest -> ingest indexset",
        "POST /api/v1/indexsets/{name}/pipeline/preview -> view indexset",
        "POST /api/v1/maintenance/merge -> manage indexset",
        "POST /api/v1/maintenance/retention -> manage indexset",
        "POST /api/v1/queues/{queue}/dead/purge -> manage queue",
        "POST /api/v1/queues/{queue}/dead/retry -> manage queue",
        "POST /api/v1/saved-searches -> manage savedsearch",
        "POST /api/v1/search -> search indexset",
        "POST /loki/api/v1/push -> ingest indexset",
        "POST /v1/logs -> ingest indexset",
        "POST /{index}/_bulk -> ingest indexset",
        "POST /{index}/_create/{id} -> ingest indexset",
        "POST /{index}/_doc -> ingest indexset",
        "POST /{index}/_doc/{id} -> ingest indexset",
        "PUT /_bulk -> ingest indexset",
        "PUT /_component_template/{name} -> ingest indexset",
        "PUT /_index_template/{name} -> ingest indexset",
        "PUT /_template/{name} -> ingest indexset",
        "PUT /api/v1/indexsets/{name}/pipeline -> manage indexset",
        "PUT /{index}/_bulk -> ingest indexset",
        "PUT /{index}/_create/{id} -> ingest indexset",
        "PUT /{index}/_doc/{id} -> ingest indexset",
    ];

    [Fact]
    public async Task EveryEndpointDeclaresThePermissionTheTableLists()
    {
        await using var node = await InProcessNode.StartAsync();
        var actual = Endpoints(node.Services);
        var missing = actual.Except(Table).ToList();
        var gone = Table.Except(actual).ToList();
        Assert.True(missing.Count == 0 && gone.Count == 0,
            $"endpoints not in the table (give each a permission and a row): [{string.Join("; ", missing)}]; rows without an endpoint: [{string.Join("; ", gone)}]");
        Assert.DoesNotContain(actual, row => row.EndsWith("-> NONE", StringComparison.Ordinal));
    }

    internal static List<string> Endpoints(IServiceProvider services)
    {
        var rows = new List<string>();
        foreach (var source in services.GetServices<EndpointDataSource>())
        {
            foreach (var endpoint in source.Endpoints.OfType<RouteEndpoint>())
            {
                var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"];
                var permission = endpoint.Metadata.GetMetadata<Permission>();
                var declared = permission is null ? "NONE" : $"{permission.Action} {permission.Resource}";
                foreach (var method in methods)
                {
                    rows.Add($"{method} {endpoint.RoutePattern.RawText} -> {declared}");
                }
            }
        }
        return [.. rows.Distinct().Order(StringComparer.Ordinal)];
    }
}
