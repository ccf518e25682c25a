using System.Collections.Frozen;
using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Logwell.Server.Api;

/// <summary>
/// The web UI: plain ES modules and CSS embedded in this assembly, served from memory with an ETag (and Brotli when the
/// browser takes it). The pages are <c>/</c> (search), <c>/indexsets</c>, <c>/operations</c>, <c>/collection</c>, <c>/access</c> and <c>/audit</c>; their files are under
/// <c>/ui/</c>. <c>GET /</c> answers a browser (which asks for HTML) with the search page and any other client with the
/// Elasticsearch root document that shippers probe.
/// </summary>
internal static class WebUiEndpoints
{
    private const string ResourcePrefix = "web/";

    private sealed record Asset(byte[] Body, byte[] Brotli, string ContentType, string ETag);

    private static readonly Lazy<FrozenDictionary<string, Asset>> Assets = new(Load);

    public static readonly string[] Pages = ["/indexsets", "/operations", "/collection", "/access", "/audit"];

    public static void Map(IEndpointRouteBuilder routes, RequestDelegate elasticsearchRoot)
    {
        routes.MapMethods("/", ["GET", "HEAD"], context => WantsPage(context.Request) ? ServeAsync(context, "index.html") : elasticsearchRoot(context))
            .WithMetadata(Permission.Public);
        foreach (var page in Pages)
        {
            routes.MapGet(page, static context => ServeAsync(context, "index.html")).WithMetadata(Permission.Public);
        }
        routes.MapGet("/ui/{**path}", static (HttpContext context, string path) => ServeAsync(context, path)).WithMetadata(Permission.Public);
    }

    /// <summary>A browser navigating asks for HTML first; Elasticsearch clients ask for JSON or anything.</summary>
    private static bool WantsPage(HttpRequest request) =>
        HttpMethods.IsGet(request.Method)
        && request.Headers.Accept.Any(a => a is not null && a.Contains("text/html", StringComparison.OrdinalIgnoreCase));

    private static async Task ServeAsync(HttpContext context, string path)
    {
        if (!Assets.Value.TryGetValue(path, out var asset))
        {
            await ErrorResponses.WriteAsync(context, 404, $"no such file in the web UI: {path}").ConfigureAwait(false);
            return;
        }
        var response = context.Response;
        response.Headers.ETag = asset.ETag;
        // Revalidated on every load, so a new version of Logwell shows at once; unchanged files answer 304.
        response.Headers.CacheControl = "no-cache";
        response.Headers.XContentTypeOptions = "nosniff";
        if (asset.ContentType.StartsWith("text/html", StringComparison.Ordinal))
        {
            response.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";
            response.Headers.XFrameOptions = "DENY";
        }
        if (context.Request.Headers.IfNoneMatch.Any(tag => tag == asset.ETag))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        response.ContentType = asset.ContentType;
        var body = asset.Body;
        response.Headers.Vary = "Accept-Encoding";
        if (context.Request.Headers.AcceptEncoding.Any(e => e is not null && e.Contains("br", StringComparison.OrdinalIgnoreCase)))
        {
            response.Headers.ContentEncoding = "br";
            body = asset.Brotli;
        }
        response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(WebUiEndpoints).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            {
                continue;
            }
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var body = copy.ToArray();
            using var compressed = new MemoryStream();
            using (var brotli = new BrotliStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                brotli.Write(body);
            }
            var path = name[ResourcePrefix.Length..];
            assets[path] = new Asset(body, compressed.ToArray(), ContentType(path), $"\"{Convert.ToHexStringLower(SHA256.HashData(body).AsSpan(0, 12))}\"");
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentType(string path) => Path.GetExtension(path) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
}
