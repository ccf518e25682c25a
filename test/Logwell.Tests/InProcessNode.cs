using Logwell.Server.Hosting;
using Logwell.Storage;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Logwell.Tests;

/// <summary>
/// A node's whole HTTP pipeline (middleware, endpoints, engine on a temporary directory) served in this process by
/// ASP.NET Core's test server: requests without sockets, for request-level tests and fuzzing. No task worker, no
/// scheduler, no syslog.
/// </summary>
internal sealed class InProcessNode : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private readonly WebApplication _app;

    private InProcessNode(WebApplication app, TempDirectory directory)
    {
        _app = app;
        _directory = directory;
        Http = app.GetTestClient();
    }

    public HttpClient Http { get; }

    public string DataDirectory => _directory.Path;

    public IServiceProvider Services => _app.Services;

    public static async Task<InProcessNode> StartAsync(IDictionary<string, string?>? settings = null, TimeProvider? time = null)
    {
        var directory = new TempDirectory();
        if (settings?.TryGetValue("Logwell:DataDirectory", out var data) == true && data is not null)
        {
            // A data directory of the caller's, kept when the node is disposed (a restart reopens it).
            directory.Dispose();
            directory = new TempDirectory(data);
        }
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.Logging.ClearProviders();
        var errors = new ErrorLog();
        builder.Logging.AddProvider(errors);
        builder.WebHost.UseTestServer();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Logwell:DataDirectory"] = directory.Path,
            ["Logwell:AutoCreateIndexSets"] = "true",
            ["Logwell:ServeWorkerQueues"] = "",
            ["Logwell:ServeScheduler"] = "false",
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }
        var app = LogwellApp.Build(builder, time ?? TimeProvider.System);
        await app.StartAsync().ConfigureAwait(false);
        return new InProcessNode(app, directory) { _errors = errors };
    }

    private ErrorLog _errors = null!;

    /// <summary>What the node logged as errors (with their exceptions), newest last: what a 500 was.</summary>
    public IReadOnlyList<string> Errors => _errors.Entries;

    private sealed class ErrorLog : ILoggerProvider, ILogger
    {
        private readonly List<string> _entries = [];

        public IReadOnlyList<string> Entries
        {
            get
            {
                lock (_entries)
                {
                    return [.. _entries];
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                lock (_entries)
                {
                    _entries.Add(formatter(state, exception) + (exception is null ? "" : "\n" + exception));
                }
            }
        }

        public void Dispose()
        {
        }
    }

    public LogEngine Engine => (LogEngine)_app.Services.GetRequiredService<ILogStore>();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync().ConfigureAwait(false);
        await Engine.DisposeAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _directory.Dispose();
    }
}
