using System.Net;
using Logwell.Server.Api;
using Microsoft.AspNetCore.Http;

namespace Logwell.Server.Security;

/// <summary>
/// Keeps web pages from driving the node through the user's browser, before users exist and after:
/// <list type="bullet">
/// <item>A request whose <c>Host</c> is not one of the node's names is refused (421): a DNS-rebinding page reaches the
/// node under its own name and is turned away. The node's names are IP literals (a page cannot rebind an address),
/// <c>localhost</c>, the machine's host name, the hosts of <c>Urls</c> and the <c>AllowedHosts</c> setting
/// (<c>*.example.com</c> for a domain, <c>*</c> for any).</item>
/// <item>A state-changing request (anything but GET, HEAD, OPTIONS) sent by a page of another origin is refused (403):
/// <c>Sec-Fetch-Site: cross-site</c> or <c>same-site</c>, or an <c>Origin</c> other than the node's own. Shippers send
/// neither header, so ingest goes on as before.</item>
/// </list>
/// ASP.NET Core's host filtering middleware takes a fixed list of names; this one also takes every IP literal, which a
/// node listening on all interfaces needs, and answers in the node's JSON error format.
/// </summary>
public sealed class RequestOriginMiddleware
{
    private readonly RequestDelegate _next;
    private readonly HashSet<string> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<string> _suffixes = [];
    private readonly bool _anyHost;

    public RequestOriginMiddleware(RequestDelegate next, string allowedHosts, string urls)
    {
        _next = next;
        _names.Add("localhost");
        _suffixes.Add(".localhost");
        try
        {
            _names.Add(Dns.GetHostName());
        }
        catch (System.Net.Sockets.SocketException)
        {
            // No host name: the other names still hold.
        }
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (Uri.TryCreate(url.Replace("://*", "://any", StringComparison.Ordinal).Replace("://+", "://any", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                && !url.StartsWith("http://unix:", StringComparison.OrdinalIgnoreCase) && uri.Host != "any")
            {
                _names.Add(uri.Host);
            }
        }
        foreach (var host in allowedHosts.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (host == "*")
            {
                _anyHost = true;
            }
            else if (host.StartsWith("*.", StringComparison.Ordinal))
            {
                _suffixes.Add(host[1..]);
            }
            else
            {
                _names.Add(host);
            }
        }
    }

    public Task InvokeAsync(HttpContext context)
    {
        var host = context.Request.Host;
        if (host.HasValue && !IsNodeName(host.Host))
        {
            return ErrorResponses.WriteAsync(context, StatusCodes.Status421MisdirectedRequest,
                $"this node does not answer to the host name '{host.Host}': add it to the AllowedHosts setting (or use the node's address)");
        }
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method) && !HttpMethods.IsOptions(context.Request.Method)
            && CrossSite(context.Request) is { } reason)
        {
            return ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"a {context.Request.Method} from a page of another site is refused ({reason}); use the Logwell UI, the API from a program, or the CLI");
        }
        return _next(context);
    }

    private bool IsNodeName(string host)
    {
        if (_anyHost || _names.Contains(host) || IPAddress.TryParse(host, out _))
        {
            return true;
        }
        foreach (var suffix in _suffixes)
        {
            if (host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Why the request comes from a page of another site, or null when it does not.</summary>
    private static string? CrossSite(HttpRequest request)
    {
        var fetchSite = request.Headers["Sec-Fetch-Site"].ToString();
        if (fetchSite.Equals("cross-site", StringComparison.OrdinalIgnoreCase) || fetchSite.Equals("same-site", StringComparison.OrdinalIgnoreCase))
        {
            return $"Sec-Fetch-Site: {fetchSite}";
        }
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0)
        {
            return null;
        }
        // Host and port alone: behind a proxy that ends TLS, the page is https and the request reaching the node http.
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || !request.Host.HasValue
            || !Uri.TryCreate($"{uri.Scheme}://{request.Host}", UriKind.Absolute, out var own)
            || !string.Equals(uri.Authority, own.Authority, StringComparison.OrdinalIgnoreCase))
        {
            return $"Origin: {origin}";
        }
        return null;
    }
}
