using Logwell.Storage.Encoding;
using System.Text.Json;
using Logwell.Jobs;
using Logwell.Server.Api;
using Logwell.Server.Exports;
using Logwell.Server.SavedSearches;
using Logwell.Server.Tasks;
using Logwell.Server.Security;
using Logwell.Storage;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Logwell.Server.Hosting;

/// <summary>Builds the HTTP node: the engine, the endpoints, the error boundary and the authorization layer.</summary>
public static class LogwellApp
{
    /// <param name="time">The clock of every component of the node: the engine, queues, stores, endpoints and hosts.</param>
    /// <param name="apiWorker">
    /// For a worker process of <c>logwell api</c> over a shared log store: the endpoints only. The worker listens on its
    /// master's socket (no <c>Urls</c>); the master registers the node; tasks, the scheduler and syslog are left to the
    /// node's other processes.
    /// </param>
    /// <param name="front">Middleware of the caller's, put before the node's own (an API worker's drain and status).</param>
    public static WebApplication Build(WebApplicationBuilder builder, TimeProvider time, bool apiWorker = false, Action<WebApplication>? front = null)
    {
        var options = builder.Configuration.GetSection(LogwellOptions.Section).Get<LogwellOptions>() ?? new LogwellOptions();
        options.Validate();
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton<ILogStore>(services =>
        {
            if (options.LogStore != "clickhouse")
            {
                return LogEngine.Open(options.ToEngineOptions(), time, services.GetRequiredService<ILoggerFactory>());
            }
            var store = Logwell.Storage.ClickHouse.ClickHouseLogStore.Open(options.ToClickHouseOptions(), time, services.GetRequiredService<ILoggerFactory>());
            if (options.QueueBackend == "redis")
            {
                // The nodes share Redis: live tails follow what every node acknowledges.
                store.TailRelay = new RedisTailRelay(options.RedisConnection, options.RedisPrefix, store, time, services.GetRequiredService<ILogger<RedisTailRelay>>());
            }
            return store;
        });
        TlsCertificate? tls = null;
        if (options.Tls)
        {
            tls = new TlsCertificate(options.TlsCertificateFile, options.TlsKeyFile, time);
            builder.Services.AddSingleton(tls);
            // A year, for the node's names; ASP.NET Core leaves localhost, 127.0.0.1 and [::1] out, since HSTS holds
            // for a host on every port and would turn the browser's other local services to https too.
            builder.Services.AddHsts(hsts => hsts.MaxAge = TimeSpan.FromDays(365));
        }
        if (!apiWorker)
        {
            builder.WebHost.UseUrls(options.ListenUrls());
        }
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            kestrel.AddServerHeader = false;
            if (tls is not null)
            {
                kestrel.ConfigureHttpsDefaults(https =>
                {
                    https.ServerCertificate = tls.Leaf;
                    // Each connection gets the certificate as it is now, with its intermediates: a renewal needs no restart.
                    https.OnAuthenticate = (_, ssl) => ssl.ServerCertificateContext = tls.Context;
                });
            }
        });
        builder.Services.AddRouting();
        builder.Services.AddSingleton(new NodeStart(time.GetUtcNow()));
        // The task queues every process of the node shares: a file beside the index sets.
        builder.Services.AddSingleton(_ => TaskQueues.Open(options, time));
        builder.Services.AddSingleton(services => MetaDatabase.Open(options, time, line => services.GetRequiredService<ILoggerFactory>().CreateLogger("Logwell.Metadata").LogWarning("{Line}", line)));
        builder.Services.AddSingleton(services => new AccessStore(services.GetRequiredService<MetaDatabase>(), time));
        builder.Services.AddSingleton(services => new AccessService(services.GetRequiredService<AccessStore>(), time, options.DataDirectory, options.SeqApiKeys, options.KeyRequestsPerSecond,
            TimeSpan.FromMinutes(options.SessionIdleMinutes), TimeSpan.FromHours(options.SessionLifetimeHours), options.KeyQuerySecondsPerMinute, options.MetricsScrapeToken));
        builder.Services.AddSingleton(services => new ExportStore(services.GetRequiredService<MetaDatabase>(), options.ExportPath, time));
        builder.Services.AddSingleton(services => new SavedSearchStore(services.GetRequiredService<MetaDatabase>(), time));
        builder.Services.AddSingleton(services => new Agent.CollectionConfigStore(services.GetRequiredService<MetaDatabase>(), time));
        builder.Services.AddSingleton<ILogStoreAccess>(services => new LocalLogStore(services.GetRequiredService<ILogStore>(), options, time));
        builder.Services.AddSingleton(services => options.MetadataDialect == MetaDialect.Sqlite
            ? new NodeRegistry(options.RegistryPath, time)
            : new NodeRegistry(services.GetRequiredService<MetaDatabase>(), time));
        if (!apiWorker)
        {
            builder.Services.AddSingleton<RegistryHost>();
            builder.Services.AddHostedService(services => services.GetRequiredService<RegistryHost>());
            builder.Services.AddHostedService<WorkerHost>();
            builder.Services.AddHostedService<SchedulerHost>();
            builder.Services.AddSingleton<SyslogListener>();
            builder.Services.AddHostedService(services => services.GetRequiredService<SyslogListener>());
        }
        builder.Services.AddSingleton<AuditLog>();
        builder.Services.AddHostedService(services => services.GetRequiredService<AuditLog>());
        builder.Services.AddSingleton(services => new PatternCatalog(services.GetRequiredService<MetaDatabase>(), services.GetRequiredService<ILogStore>(), time,
            services.GetRequiredService<ILogger<PatternCatalog>>(), (long)options.HealthMinFreeDiskMegabytes << 20));
        builder.Services.AddHostedService(services => services.GetRequiredService<PatternCatalog>());

        var app = builder.Build();
        front?.Invoke(app);
        _ = app.Services.GetRequiredService<ILogStore>();
        // The metadata file's migrations and the node credential, before the first request.
        _ = app.Services.GetRequiredService<AccessService>();
        // A Unix socket to listen on (http://unix:/path) needs its directory; a socket file left by a process that
        // ended is replaced, one that still answers is not.
        // An API worker listens on its master's socket, not on Urls.
        foreach (var url in apiWorker ? [] : options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (url.StartsWith("http://unix:", StringComparison.OrdinalIgnoreCase))
            {
                var path = url["http://unix:".Length..];
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                if (File.Exists(path))
                {
                    using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                    try
                    {
                        probe.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
                        throw new InvalidOperationException($"another process listens on {path}");
                    }
                    catch (System.Net.Sockets.SocketException)
                    {
                        File.Delete(path);
                    }
                }
            }
        }
        if (tls is not null)
        {
            tls.Logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Logwell.Tls");
            if (tls.Problem(time.GetUtcNow()) is { } problem)
            {
                tls.Logger.LogWarning("{Problem}", problem);
            }
            app.UseHsts();
        }
        foreach (var exposed in apiWorker ? [] : options.ClearTextExposure())
        {
            app.Logger.LogWarning("{Address} is reachable from other machines without TLS: passwords, API keys and events cross the network in clear text. Give --tls-cert and --tls-key (PEM), or put a TLS-ending proxy in front", exposed);
        }
        // Outermost: the audit log sees each request's final status, a 500 of the error boundary included.
        app.UseMiddleware<AuditMiddleware>();
        app.UseMiddleware<ErrorBoundaryMiddleware>();
        app.UseMiddleware<RequestOriginMiddleware>(options.AllowedHosts, options.Urls);
        app.UseRouting();
        app.UseMiddleware<AuthorizationMiddleware>();
        // Request counts and durations by endpoint, for /metrics.
        app.UseHttpMetrics();
        HealthEndpoints.Map(app);
        ServerMetrics.Start(app.Services.GetRequiredService<ITaskQueue>(), Path.GetFullPath(options.DataDirectory), time);
        app.MapMetrics("/metrics").WithMetadata(Permission.OnNode(Actions.ViewMetrics) with { ScrapeToken = true });
        IndexSetEndpoints.Map(app);
        PipelineEndpoints.Map(app);
        MaskingEndpoints.Map(app);
        IngestEndpoints.Map(app);
        ElasticsearchEndpoints.Map(app);
        WebUiEndpoints.Map(app, ElasticsearchEndpoints.InfoAsync);
        SeqEndpoints.Map(app);
        OtlpEndpoints.Map(app);
        LokiEndpoints.Map(app);
        SearchEndpoints.Map(app);
        HistogramEndpoints.Map(app);
        FieldsEndpoints.Map(app);
        TailEndpoints.Map(app);
        ContextEndpoints.Map(app);
        QueueEndpoints.Map(app);
        ExportEndpoints.Map(app);
        NodeEndpoints.Map(app);
        SavedSearchEndpoints.Map(app);
        AgentEndpoints.Map(app);
        SupervisorEndpoints.Map(app);
        AccessEndpoints.Map(app);
        ArchiveEndpoints.Map(app);
        app.MapPost("/api/v1/maintenance/retention", static async context =>
        {
            await context.RequestServices.GetLogStore().ApplyRetentionAsync(context.RequestAborted).ConfigureAwait(false);
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        }).WithMetadata(Permission.OnNode(Actions.Operate));
        app.MapPost("/api/v1/maintenance/merge", static context =>
        {
            context.RequestServices.GetLogStore().RequestMerges();
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return Task.CompletedTask;
        }).WithMetadata(Permission.OnNode(Actions.Operate));
        app.MapPost("/api/v1/maintenance/backup", NodeBackup.HandleAsync).WithMetadata(Permission.OnNode(Actions.Operate));
        app.MapFallback(static context => ErrorResponses.WriteAsync(context, 404, $"no such endpoint: {context.Request.Method} {context.Request.Path}"))
            .WithMetadata(Permission.Public);
        return app;
    }

    internal static ILogStore GetLogStore(this IServiceProvider services) => services.GetRequiredService<ILogStore>();

    /// <summary>The node's one clock, given to <see cref="Build"/>.</summary>
    internal static TimeProvider GetTime(this IServiceProvider services) => services.GetRequiredService<TimeProvider>();

    /// <summary>The embedded task queue's file in the data directory.</summary>
    public static string TaskQueueFile(LogwellOptions options)
    {
        var directory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, "tasks.db");
    }
}

/// <summary>Turns what escapes an endpoint into a JSON error: the client's fault with its status, a bug as a logged 500.</summary>
internal sealed class ErrorBoundaryMiddleware(RequestDelegate next, ILogger<ErrorBoundaryMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            var message = e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? $"request body exceeds the limit of {context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value.MaxBodyBytes} bytes"
                : e.Message;
            await ErrorResponses.WriteAsync(context, e.StatusCode, message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (JsonException e)
        {
            await ErrorResponses.WriteAsync(context, 400, $"invalid JSON: {e.Message}").ConfigureAwait(false);
        }
        catch (Logwell.Storage.Segments.SegmentDamagedException e)
        {
            // The disk changed bytes a checksum covers: the operator must act, the client learns what is wrong and where.
            logger.LogError("{Method} {Path}: {Error}", context.Request.Method, context.Request.Path, e.Message);
            await ErrorResponses.WriteAsync(context, 500, $"{e.Message}. Reads that need other segments still answer; `logwell verify` lists every damaged segment, and restoring the index set from a backup repairs it (docs/operations/backup-and-recovery.md)").ConfigureAwait(false);
        }
        catch (Exception e) when (DurableFile.IsDiskFull(e) || e is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 13 /* SQLITE_FULL */ })
        {
            logger.LogWarning("{Method} {Path}: the data disk is full ({Error})", context.Request.Method, context.Request.Path, e.Message);
            await ErrorResponses.WriteAsync(context, StatusCodes.Status507InsufficientStorage, $"the data disk is full ({e.Message}); nothing of this request was stored, retry once space is freed").ConfigureAwait(false);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Unhandled error in {Method} {Path}", context.Request.Method, context.Request.Path);
            await ErrorResponses.WriteAsync(context, 500, "internal error; the server log has the details").ConfigureAwait(false);
        }
    }
}
