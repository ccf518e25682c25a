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
    /// <summary>Method, route and the action each endpoint of a node (default settings) declares, with where it applies.</summary>
    internal static readonly string[] Table =
    [
        "* /metrics -> view_metrics on *",
        "* {*path:nonfile} -> public",
        "DELETE /api/v1/access/grants/{id} -> manage_access on *",
        "DELETE /api/v1/access/groups/{group} -> manage_access on *",
        "DELETE /api/v1/access/groups/{group}/members/{user} -> manage_access on *",
        "DELETE /api/v1/access/keys/{id} -> manage_access on *",
        "DELETE /api/v1/access/roles/{role} -> manage_access on *",
        "DELETE /api/v1/access/session -> authenticated",
        "DELETE /api/v1/access/spaces/{space} -> manage_access on *",
        "DELETE /api/v1/access/users/{user} -> manage_access on *",
        "DELETE /api/v1/agents/{name} -> operate on *",
        "DELETE /api/v1/collection-configs/{name} -> operate on *",
        "DELETE /api/v1/indexsets/{name} -> manage_indexset on indexset:{name}",
        "DELETE /api/v1/indexsets/{name}/masking -> manage_masking on indexset:{name}",
        "DELETE /api/v1/indexsets/{name}/pipeline -> manage_pipeline on indexset:{name}",
        "DELETE /api/v1/saved-searches/{id} -> manage_saved_search in request",
        "GET / -> public",
        "GET /_cluster/health -> authenticated",
        "GET /_component_template/{name} -> authenticated",
        "GET /_index_template/{name} -> authenticated",
        "GET /_license -> authenticated",
        "GET /_template/{name} -> authenticated",
        "GET /access -> public",
        "GET /api/v1/access/grants -> manage_access on *",
        "GET /api/v1/access/groups -> manage_access on *",
        "GET /api/v1/access/keys -> manage_access on *",
        "GET /api/v1/access/me -> authenticated",
        "GET /api/v1/access/roles -> manage_access on *",
        "GET /api/v1/access/session -> authenticated",
        "GET /api/v1/access/spaces -> manage_access on *",
        "GET /api/v1/access/users -> manage_access on *",
        "GET /api/v1/agents -> operate on *",
        "GET /api/v1/collection-configs -> operate on *",
        "GET /api/v1/context -> search in request",
        "GET /api/v1/export -> export in request",
        "GET /api/v1/exports -> export in request",
        "GET /api/v1/exports/{id} -> export in request",
        "GET /api/v1/exports/{id}/download -> export in request",
        "GET /api/v1/fields -> search in request",
        "GET /api/v1/histogram -> search in request",
        "GET /api/v1/indexsets -> view_space in request",
        "GET /api/v1/indexsets/{name}/archive -> view_space on indexset:{name}",
        "GET /api/v1/indexsets/{name}/archive/restore/{task} -> view_space on indexset:{name}",
        "GET /api/v1/indexsets/{name}/masking -> view_space on indexset:{name}",
        "GET /api/v1/indexsets/{name}/patterns -> search on indexset:{name}",
        "GET /api/v1/indexsets/{name}/pipeline -> view_space on indexset:{name}",
        "GET /api/v1/nodes -> view_metrics on *",
        "GET /api/v1/queues -> view_metrics on *",
        "GET /api/v1/saved-searches -> search in request",
        "GET /api/v1/search -> search in request",
        "GET /api/v1/supervisor -> view_metrics on *",
        "GET /api/v1/tail -> search in request",
        "GET /audit -> public",
        "GET /healthz -> public",
        "GET /indexsets -> public",
        "GET /livez -> public",
        "GET /operations -> public",
        "GET /collection -> public",
        "GET /readyz -> public",
        "GET /ui/{**path} -> public",
        "HEAD / -> public",
        "HEAD /_component_template/{name} -> authenticated",
        "HEAD /_index_template/{name} -> authenticated",
        "HEAD /_template/{name} -> authenticated",
        "PATCH /api/v1/indexsets/{name} -> manage_indexset on indexset:{name}",
        "POST /_bulk -> ingest in request",
        "POST /_component_template/{name} -> authenticated",
        "POST /_index_template/{name} -> authenticated",
        "POST /_template/{name} -> authenticated",
        "POST /api/events/raw -> ingest in request",
        "POST /api/v1/access/grants -> manage_access on *",
        "POST /api/v1/access/groups -> manage_access on *",
        "POST /api/v1/access/groups/{group}/members -> manage_access on *",
        "POST /api/v1/access/keys -> manage_access on *",
        "POST /api/v1/access/login -> authenticated",
        "POST /api/v1/access/logout -> authenticated",
        "POST /api/v1/access/roles -> manage_access on *",
        "POST /api/v1/access/session -> public",
        "POST /api/v1/access/spaces -> manage_access on *",
        "POST /api/v1/access/users -> manage_access on *",
        "POST /api/v1/agents/{name}/report -> ingest in request",
        "POST /api/v1/exports -> export in request",
        "POST /api/v1/indexsets -> create_indexset in request",
        "POST /api/v1/indexsets/{name}/archive/restore -> manage_indexset on indexset:{name}",
        "POST /api/v1/indexsets/{name}/ingest -> ingest on indexset:{name}",
        "POST /api/v1/indexsets/{name}/pipeline/preview -> manage_pipeline on indexset:{name}",
        "POST /api/v1/maintenance/archive -> operate on *",
        "POST /api/v1/maintenance/archive-restore -> operate on *",
        "POST /api/v1/maintenance/backup -> operate on *",
        "POST /api/v1/maintenance/merge -> operate on *",
        "POST /api/v1/maintenance/retention -> operate on *",
        "POST /api/v1/queues/{queue}/dead/purge -> operate on *",
        "POST /api/v1/queues/{queue}/dead/retry -> operate on *",
        "POST /api/v1/saved-searches -> manage_saved_search in request",
        "POST /api/v1/search -> search in request",
        "POST /loki/api/v1/push -> ingest in request",
        "POST /v1/logs -> ingest in request",
        "POST /{index}/_bulk -> ingest in request",
        "POST /{index}/_create/{id} -> ingest in request",
        "POST /{index}/_doc -> ingest in request",
        "POST /{index}/_doc/{id} -> ingest in request",
        "PUT /_bulk -> ingest in request",
        "PUT /_component_template/{name} -> authenticated",
        "PUT /_index_template/{name} -> authenticated",
        "PUT /_template/{name} -> authenticated",
        "PUT /api/v1/access/spaces/{space}/indexsets/{indexset} -> manage_access on *",
        "PUT /api/v1/access/users/{user}/disabled -> manage_access on *",
        "PUT /api/v1/access/users/{user}/password -> authenticated",
        "PUT /api/v1/collection-configs/{name} -> operate on *",
        "PUT /api/v1/indexsets/{name}/masking -> manage_masking on indexset:{name}",
        "PUT /api/v1/indexsets/{name}/pipeline -> manage_pipeline on indexset:{name}",
        "PUT /{index}/_bulk -> ingest in request",
        "PUT /{index}/_create/{id} -> ingest in request",
        "PUT /{index}/_doc/{id} -> ingest in request",
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
                var declared = permission is null ? "NONE" : permission.ToString();
                foreach (var method in methods)
                {
                    rows.Add($"{method} {endpoint.RoutePattern.RawText} -> {declared}");
                }
            }
        }
        return [.. rows.Distinct().Order(StringComparer.Ordinal)];
    }
}
