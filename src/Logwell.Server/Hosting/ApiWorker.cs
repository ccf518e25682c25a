using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Logwell.Server.Hosting;

/// <summary>
/// One worker process of <c>logwell api</c>: it accepts on the socket its master owns (the descriptor in
/// <c>LOGWELL_API_LISTEN_FD</c>) and hands each request to the node's store process, or, over a shared log store
/// (ClickHouse), serves it itself with the node's whole pipeline; either way it holds no state and any worker can
/// serve any request. After <c>LOGWELL_API_MAX_REQUESTS</c> requests it drains: every answer closes its
/// connection, so clients leave its keep-alive connections after their current request; after a second it stops
/// accepting, and once none of its connections is open (at most half the graceful timeout) it stops, finishes what it
/// has (the other half) and exits with code 3. It prints DRAINING when it starts, so the master starts its replacement at once. SIGTERM drains
/// it the same way; it exits with 0.
/// </summary>
public static class ApiWorker
{
    /// <summary>How long a stopping worker keeps accepting while it closes its keep-alive connections.</summary>
    private static readonly TimeSpan DrainWindow = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Kestrel's sockets transport, with a way to stop accepting while the connections already accepted go on, and a
    /// count of those connections. Kestrel's own stop closes idle keep-alive connections at once, and a client that had
    /// just sent a request on one, or on a connection accepted a moment before the stop, would find it cut; a draining
    /// worker stops accepting first and leaves Kestrel's stop for when no connection is left.
    /// </summary>
    private sealed class StoppableListeners
    {
        private readonly List<Listener> _listeners = [];
        private long _open;

        /// <summary>Connections accepted and not yet closed.</summary>
        public long Open => Interlocked.Read(ref _open);

        public bool Bound
        {
            get
            {
                lock (_listeners)
                {
                    return _listeners.Count > 0;
                }
            }
        }

        public IConnectionListenerFactory Over(IConnectionListenerFactory sockets) => new Factory(sockets, this);

        public void Closed() => Interlocked.Decrement(ref _open);

        /// <summary>Unbinds every listener and waits (a second at most) for its accept loop to end, so <see cref="Open"/> counts every connection it accepted.</summary>
        public async Task StopAcceptingAsync(TimeProvider time)
        {
            Listener[] all;
            lock (_listeners)
            {
                all = [.. _listeners];
            }
            foreach (var listener in all)
            {
                await listener.Inner.UnbindAsync().ConfigureAwait(false);
                await Task.WhenAny(listener.Ended.Task, Task.Delay(TimeSpan.FromSeconds(1), time)).ConfigureAwait(false);
            }
        }

        private sealed class Factory(IConnectionListenerFactory sockets, StoppableListeners owner) : IConnectionListenerFactory
        {
            public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
            {
                var listener = new Listener(await sockets.BindAsync(endpoint, cancellationToken).ConfigureAwait(false), owner);
                lock (owner._listeners)
                {
                    owner._listeners.Add(listener);
                }
                return listener;
            }
        }

        private sealed class Listener(IConnectionListener inner, StoppableListeners owner) : IConnectionListener
        {
            public IConnectionListener Inner => inner;

            /// <summary>Completes when an accept returns nothing: the listener is unbound and accepts no more.</summary>
            public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public EndPoint EndPoint => inner.EndPoint;

            public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
            {
                var connection = await inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
                if (connection is null)
                {
                    Ended.TrySetResult();
                }
                else
                {
                    Interlocked.Increment(ref owner._open);
                }
                return connection;
            }

            public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => inner.UnbindAsync(cancellationToken);

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }

    /// <summary>The host's lifetime without its signal handlers: the worker handles SIGTERM and SIGINT itself.</summary>
    private sealed class SignalFreeLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer", "Host",
    };

    /// <summary>An HTTP client for a store at <c>http://host:port</c> or on a Unix socket, <c>http://unix:/path</c>.</summary>
    /// <param name="trustFile">A PEM file whose certificates an https node's certificate may chain to (a private CA), or
    /// be (the node's own certificate, pinned), besides the system's CAs.</param>
    public static HttpClient StoreClient(string storeUrl, TimeSpan timeout, string? trustFile = null)
    {
        const string unix = "http://unix:";
        if (storeUrl.StartsWith(unix, StringComparison.OrdinalIgnoreCase))
        {
            var path = storeUrl[unix.Length..].TrimEnd('/');
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return new HttpClient(handler) { BaseAddress = new Uri("http://localhost/"), Timeout = timeout };
        }
        var tcp = new SocketsHttpHandler();
        if (trustFile is not null)
        {
            var trusted = new X509Certificate2Collection();
            trusted.ImportFromPemFile(trustFile);
            tcp.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => Trusted(certificate, chain, errors, trusted);
        }
        return new HttpClient(tcp) { BaseAddress = new Uri(storeUrl.TrimEnd('/') + "/"), Timeout = timeout };
    }

    /// <summary>A server certificate the system trusts, one that chains to <paramref name="trusted"/>, or one of them.</summary>
    private static bool Trusted(X509Certificate? certificate, X509Chain? sent, SslPolicyErrors errors, X509Certificate2Collection trusted)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }
        if (certificate is null)
        {
            return false;
        }
        using var leaf = new X509Certificate2(certificate);
        if (trusted.Any(t => t.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span)))
        {
            // Exactly the certificate given (a worker pinning its node's own): whatever name it was reached by.
            return true;
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(trusted);
        custom.ChainPolicy.ExtraStore.AddRange(trusted);
        if (sent is not null)
        {
            // The intermediates the server sent with its certificate.
            custom.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
        }
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return custom.Build(leaf);
    }

    /// <summary>gunicorn's default access log line, with the duration in milliseconds added.</summary>
    public const string DefaultAccessLogFormat = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\" %(M)sms";

    /// <param name="accessLogFormat">gunicorn's access log atoms (<c>%(h)s</c> client, <c>%(t)s</c> time, <c>%(r)s</c> request line,
    /// <c>%(m)s</c>, <c>%(U)s</c>, <c>%(q)s</c>, <c>%(s)s</c> status, <c>%(b)s</c> bytes, <c>%(f)s</c> referer, <c>%(a)s</c>
    /// user agent, <c>%(D)s</c> µs, <c>%(M)s</c> ms, <c>%(L)s</c> s, <c>%(p)s</c> worker pid); null: no access log.</param>
    /// <param name="nodeKey">The node credential, sent to the store with each request so that it believes the client
    /// address in X-Forwarded-For over TCP too.</param>
    /// <param name="nodeSettings">The node's settings when its log store is shared (ClickHouse): the worker then serves
    /// every endpoint itself over that store, instead of handing the request to the store process.</param>
    public static async Task<int> RunAsync(string storeUrl, long maxBodyBytes, string? accessLogFormat, TimeProvider time, CancellationToken cancellationToken, string? nodeKey = null,
        Microsoft.Extensions.Configuration.IConfiguration? nodeSettings = null)
    {
        // Milliseconds on the monotonic clock, for request ages and busy time.
        long Ms() => (long)(time.GetTimestamp() * 1000.0 / time.TimestampFrequency);

        var fd = ulong.Parse(Environment.GetEnvironmentVariable("LOGWELL_API_LISTEN_FD") ?? throw new InvalidOperationException("an API worker is started by logwell api (LOGWELL_API_LISTEN_FD is not set)"), CultureInfo.InvariantCulture);
        var maxRequests = long.Parse(Environment.GetEnvironmentVariable("LOGWELL_API_MAX_REQUESTS") ?? "0", CultureInfo.InvariantCulture);
        var number = Environment.GetEnvironmentVariable("LOGWELL_API_WORKER") ?? "?";
        var graceful = TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("LOGWELL_API_GRACEFUL_TIMEOUT") ?? "30", CultureInfo.InvariantCulture));

        var listeners = new StoppableListeners();
        var builder = nodeSettings is null ? WebApplication.CreateSlimBuilder() : WebApplication.CreateBuilder();
        if (nodeSettings is not null)
        {
            Microsoft.Extensions.Configuration.ChainedBuilderExtensions.AddConfiguration(builder.Configuration, nodeSettings);
        }
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console => { console.SingleLine = true; console.TimestampFormat = "yyyy-MM-dd HH:mm:ss,fff "; });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // Kestrel's sockets transport behind one that can stop accepting while the accepted connections go on.
        builder.Services.RemoveAll<IConnectionListenerFactory>();
        builder.Services.AddSingleton<IConnectionListenerFactory>(services => listeners.Over(ActivatorUtilities.CreateInstance<SocketTransportFactory>(services)));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ListenHandle(fd, listen => listen.Use(next => async connection =>
            {
                try
                {
                    await next(connection).ConfigureAwait(false);
                }
                finally
                {
                    // Counted open from its accept (StoppableListeners) to here: a drain waits for it to close.
                    listeners.Closed();
                }
            }));
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = maxBodyBytes;
        });
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = graceful / 2);
        // Signals are handled here, not by the host: a stop drains first.
        builder.Services.AddSingleton<IHostLifetime, SignalFreeLifetime>();
        IHostApplicationLifetime? lifetime = null;
        long served = 0;
        var exitCode = 0;
        var draining = 0;
        // Before it stops accepting, a worker answers for a while with Connection: close, so clients leave its
        // keep-alive connections after their current request instead of finding them closed under a new one.
        void Drain(int code)
        {
            if (Interlocked.Exchange(ref draining, 1) == 1)
            {
                return;
            }
            exitCode = code;
            // Tells the master, which starts the replacement now rather than when this one exits.
            Console.WriteLine("DRAINING");
            Console.Out.Flush();
            _ = Task.Run(async () =>
            {
                // Every answer now closes its connection. For the drain window the worker still accepts (a lone worker's
                // replacement gets ready meanwhile); then it stops accepting, and stops once none of its connections is
                // left open, at most half the graceful timeout after the drain began (the other half is for the requests
                // still running). Only then does Kestrel's own stop run, which closes idle connections at once: a client
                // sending on one of those would see it cut, so none may be left.
                var drainStarted = time.GetTimestamp();
                await Task.Delay(DrainWindow, time, CancellationToken.None).ConfigureAwait(false);
                await listeners.StopAcceptingAsync(time).ConfigureAwait(false);
                while (time.GetElapsedTime(drainStarted) < graceful / 2 && listeners.Open > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), time, CancellationToken.None).ConfigureAwait(false);
                }
                lifetime!.StopApplication();
            }, CancellationToken.None);
        }
        // What the master watches: requests in flight and the oldest one, reported every second on standard output.
        var inFlight = new System.Collections.Concurrent.ConcurrentDictionary<long, (long Started, string Line)>();
        long nextRequest = 0;
        // Busy time: how much of each second had at least one request in flight (uWSGI's busyness).
        var busy = new Lock();
        var active = 0;
        long busySince = 0;
        long busyMs = 0;
        void Front(WebApplication app)
        {
            if (accessLogFormat is not null)
            {
                app.Use(async (context, next) =>
                {
                    var started = time.GetTimestamp();
                    try
                    {
                        await next(context).ConfigureAwait(false);
                    }
                    finally
                    {
                        var line = AccessLine(accessLogFormat, context, time.GetLocalNow(), time.GetElapsedTime(started));
                        lock (Console.Out)
                        {
                            Console.WriteLine(line);
                        }
                    }
                });
            }
            app.Use(async (context, next) =>
            {
                // Streams that last by design (the live tail) are not requests the timeout is about.
                var watched = !context.Request.Path.StartsWithSegments("/api/v1/tail", StringComparison.Ordinal);
                var id = Interlocked.Increment(ref nextRequest);
                if (watched)
                {
                    inFlight[id] = (Ms(), $"{context.Request.Method} {context.Request.Path}{context.Request.QueryString}");
                }
                lock (busy)
                {
                    if (active++ == 0)
                    {
                        busySince = Ms();
                    }
                }
                try
                {
                    await next(context).ConfigureAwait(false);
                }
                finally
                {
                    inFlight.TryRemove(id, out _);
                    lock (busy)
                    {
                        if (--active == 0)
                        {
                            busyMs += Ms() - busySince;
                        }
                    }
                }
            });
            app.Use(async (context, next) =>
            {
                var count = Interlocked.Increment(ref served);
                if (maxRequests > 0 && count >= maxRequests)
                {
                    // The allowance is used up: the master starts a replacement once this one exits.
                    Drain(3);
                }
                if (Volatile.Read(ref draining) == 1)
                {
                    context.Response.Headers.Connection = "close";
                }
                await next(context).ConfigureAwait(false);
            });
        }

        // The front of the pipeline (access log, status, drain) comes before the node's own.
        await using var app = nodeSettings is null ? builder.Build() : LogwellApp.Build(builder, time, apiWorker: true, front: Front);
        if (nodeSettings is null)
        {
            Front(app);
        }
        using var store = StoreClient(storeUrl, Timeout.InfiniteTimeSpan);
        lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            Drain(0);
        });
        using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            Drain(0);
        });
        using var reporter = time.CreateTimer(_ =>
        {
            var now = Ms();
            long busyThisSecond;
            lock (busy)
            {
                busyThisSecond = busyMs + (active > 0 ? now - busySince : 0);
                busyMs = 0;
                busySince = now;
            }
            // One snapshot: requests end while this runs, and an empty set has no oldest.
            var requests = inFlight.Values.ToArray();
            if (requests.Length == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"STATUS 0 {busyThisSecond} 0 -"));
            }
            else
            {
                var oldest = requests.MinBy(r => r.Started);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"STATUS {requests.Length} {busyThisSecond} {Math.Max(0, now - oldest.Started)} {oldest.Line}"));
            }
            Console.Out.Flush();
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        if (nodeSettings is null)
        {
            app.MapGet("/livez", static context => context.Response.WriteAsync("[+]process ok: answering\nlivez check passed\n"));
            app.Run(context => ProxyAsync(context, store, nodeKey));
        }
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        if (!listeners.Bound)
        {
            throw new InvalidOperationException("the API worker's listening socket was not bound through its stoppable transport");
        }
        Console.WriteLine("READY");
        Console.Out.Flush();
        await app.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{time.GetLocalNow():yyyy-MM-dd HH:mm:ss,fff} [worker {number} {Environment.ProcessId}] stopped after {Interlocked.Read(ref served)} requests"));
        return exitCode;
    }

    private const string BytesSent = "logwell.bytes-sent";

    /// <summary>Common Log Format time: <c>[26/Nov/2026:10:00:00 +0100]</c>.</summary>
    private static string Time(DateTimeOffset now) => string.Create(CultureInfo.InvariantCulture,
        $"[{now:dd/MMM/yyyy:HH:mm:ss} {(now.Offset < TimeSpan.Zero ? '-' : '+')}{now.Offset:hhmm}]");

    private static string AccessLine(string format, HttpContext context, DateTimeOffset now, TimeSpan took)
    {
        var request = context.Request;
        var bytes = context.Items[BytesSent] as long? ?? context.Response.ContentLength ?? 0;
        string Quoted(string? value) => string.IsNullOrEmpty(value) ? "-" : value.Replace("\"", "\\\"", StringComparison.Ordinal);
        return System.Text.RegularExpressions.Regex.Replace(format, @"%\((?<atom>[A-Za-z]+)\)s", match => match.Groups["atom"].Value switch
        {
            "h" => context.Connection.RemoteIpAddress?.ToString() ?? "-",
            "l" or "u" => "-",
            "t" => Time(now),
            "r" => Quoted($"{request.Method} {request.Path}{request.QueryString} {request.Protocol}"),
            "m" => request.Method,
            "U" => request.Path.Value ?? "/",
            "q" => request.QueryString.HasValue ? request.QueryString.Value![1..] : "",
            "s" => context.Response.StatusCode.ToString(CultureInfo.InvariantCulture),
            "b" => bytes == 0 ? "-" : bytes.ToString(CultureInfo.InvariantCulture),
            "B" => bytes.ToString(CultureInfo.InvariantCulture),
            "f" => Quoted(request.Headers.Referer),
            "a" => Quoted(request.Headers.UserAgent),
            "D" => ((long)took.TotalMicroseconds).ToString(CultureInfo.InvariantCulture),
            "M" => ((long)took.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            "L" => took.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture),
            "p" => $"<{Environment.ProcessId}>",
            _ => "-",
        });
    }

    /// <summary>Hands the request to the store and streams its answer back (server-sent events included, chunk by chunk).</summary>
    private static async Task ProxyAsync(HttpContext context, HttpClient store, string? nodeKey)
    {
        // The store decides who may do what; it reads the client's address from the X-Forwarded-For added below.
        var client = context.Connection.RemoteIpAddress;
        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), context.Request.Path.Value!.TrimStart('/') + context.Request.QueryString.Value);
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            request.Content = new StreamContent(context.Request.Body);
        }
        foreach (var (name, values) in context.Request.Headers)
        {
            if (HopByHop.Contains(name) || name.Equals(Security.AccessService.NodeKeyHeader, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", client?.ToString());
        if (nodeKey is not null)
        {
            request.Headers.TryAddWithoutValidation(Security.AccessService.NodeKeyHeader, nodeKey);
        }
        // The store checks the name the client used (and the page's Origin against it), as if it were reached directly.
        if (context.Request.Host.HasValue)
        {
            request.Headers.Host = context.Request.Host.Value;
        }
        HttpResponseMessage response;
        try
        {
            response = await store.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, $"the node's store does not answer ({e.Message}); retry shortly").ConfigureAwait(false);
            return;
        }
        using (response)
        {
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!HopByHop.Contains(name))
                {
                    context.Response.Headers[name] = values.ToArray();
                }
            }
            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer, context.RequestAborted).ConfigureAwait(false)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                context.Items[BytesSent] = (context.Items[BytesSent] as long? ?? 0) + read;
            }
        }
    }
}
