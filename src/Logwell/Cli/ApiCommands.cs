using System.CommandLine;
using Logwell.Hosting.ApiMaster;
using Logwell.Server.Hosting;

namespace Logwell.Cli;

/// <summary><c>logwell api</c>: the API master, and <c>logwell api-worker</c>, the processes it runs.</summary>
internal static class ApiCommands
{
    public static Command Api()
    {
        var urls = new Option<string>("--urls") { Description = "where to listen", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var store = new Option<string?>("--store") { Description = "the node's store: http://unix:/path/to.sock or http://host:port (default http://unix:DATA/run/store.sock)" };
        var data = new Option<string?>("--data") { Description = "data directory (default ./data)" };
        var workers = new Option<int>("--workers") { Description = "most worker processes", DefaultValueFactory = _ => 16 };
        var cheaperInitial = new Option<int>("--cheaper-initial") { Description = "worker processes at start", DefaultValueFactory = _ => 4 };
        var cheaper = new Option<int>("--cheaper") { Description = "fewest worker processes", DefaultValueFactory = _ => 4 };
        var cheaperStep = new Option<int>("--cheaper-step") { Description = "workers added at once under load", DefaultValueFactory = _ => 2 };
        var cheaperOverload = new Option<int>("--cheaper-overload") { Description = "seconds between busyness checks", DefaultValueFactory = _ => 5 };
        var busynessMax = new Option<int>("--cheaper-busyness-max") { Description = "average busyness (percent) over which workers are added", DefaultValueFactory = _ => 50 };
        var busynessMin = new Option<int>("--cheaper-busyness-min") { Description = "average busyness (percent) under which a worker goes", DefaultValueFactory = _ => 25 };
        var busynessMultiplier = new Option<int>("--cheaper-busyness-multiplier") { Description = "checks in a row under the minimum before a worker goes", DefaultValueFactory = _ => 10 };
        var backlogAlert = new Option<int>("--cheaper-busyness-backlog-alert") { Description = "connections waiting in the listen queue that add workers at once", DefaultValueFactory = _ => 33 };
        var maxRequests = new Option<int>("--max-requests") { Description = "requests a worker serves before it is replaced (0: never)", DefaultValueFactory = _ => 1000 };
        var jitter = new Option<int>("--max-requests-jitter") { Description = "up to this many more, drawn per worker, so workers are not replaced all at once", DefaultValueFactory = _ => 50 };
        var graceful = new Option<int>("--graceful-timeout") { Description = "seconds a stopping worker gets to finish its requests", DefaultValueFactory = _ => 30 };
        var accessLog = new Option<string>("--access-log-format") { Description = "the access log line, in gunicorn's atoms (%(h)s client, %(t)s time, %(r)s request, %(s)s status, %(b)s bytes, %(M)s ms, %(f)s referer, %(a)s agent...)", DefaultValueFactory = _ => ApiWorker.DefaultAccessLogFormat };
        var noAccessLog = new Option<bool>("--no-access-log") { Description = "write no access log" };
        var timeout = new Option<int>("--timeout") { Description = "seconds a request may run before its worker is killed and replaced (0: no limit; the live tail is exempt)", DefaultValueFactory = _ => 65 };
        var command = new Command("api", "Run the HTTP API as a master and worker processes on one listening socket (gunicorn and uWSGI semantics); the workers serve every endpoint over a shared log store (ClickHouse), or reach the embedded engine through the store process.")
        {
            urls, store, data, workers, cheaperInitial, cheaper, cheaperStep, cheaperOverload, busynessMax, busynessMin, busynessMultiplier, backlogAlert,
            maxRequests, jitter, graceful, timeout, accessLog, noAccessLog,
        };
        command.SetAction(async (result, _) =>
        {
            if (result.GetValue(cheaper) < 1 || result.GetValue(cheaper) > result.GetValue(workers) || result.GetValue(cheaperStep) < 1 || result.GetValue(cheaperOverload) < 1
                || result.GetValue(busynessMin) < 0 || result.GetValue(busynessMax) > 100 || result.GetValue(busynessMin) >= result.GetValue(busynessMax) || result.GetValue(busynessMultiplier) < 1 || result.GetValue(backlogAlert) < 1)
            {
                Console.Error.WriteLine("error: --cheaper must be from 1 to --workers, --cheaper-step and --cheaper-overload at least 1, 0 <= --cheaper-busyness-min < --cheaper-busyness-max <= 100, the multiplier and backlog alert at least 1");
                return 2;
            }
            if (result.GetValue(workers) < 1 || result.GetValue(cheaperInitial) < 1 || result.GetValue(maxRequests) < 0 || result.GetValue(jitter) < 0 || result.GetValue(graceful) < 1 || result.GetValue(timeout) < 0)
            {
                Console.Error.WriteLine("error: --workers and --cheaper-initial must be at least 1, --max-requests and --max-requests-jitter at least 0, --graceful-timeout at least 1, --timeout at least 0");
                return 2;
            }
            foreach (var exposed in new LogwellOptions { Urls = result.GetValue(urls)! }.ClearTextExposure())
            {
                // The master serves plain HTTP only.
                Console.Error.WriteLine($"WARNING: {exposed} is reachable from other machines WITHOUT TLS: passwords, API keys and events cross the network in clear text. Put a TLS-ending proxy in front, or run serve with --tls-cert and --tls-key.");
            }
            var dataDirectory = Path.GetFullPath(result.GetValue(data) ?? "./data");
            var storeUrl = result.GetValue(store) ?? $"http://unix:{Path.Combine(dataDirectory, "run", "store.sock")}";
            var self = Environment.ProcessPath!;
            List<string> worker = Path.GetFileNameWithoutExtension(self) == "dotnet" ? [self, typeof(ApiCommands).Assembly.Location] : [self];
            worker.AddRange(["api-worker", "--store", storeUrl, "--data", dataDirectory]);
            if (!result.GetValue(noAccessLog))
            {
                worker.AddRange(["--access-log-format", result.GetValue(accessLog)!]);
            }
            var master = new ApiMaster(new ApiMasterOptions
            {
                Listen = new Uri(result.GetValue(urls)!),
                WorkerCommand = worker,
                StatusFile = Path.Combine(dataDirectory, "run", "api-master.status.json"),
                Workers = result.GetValue(workers),
                CheaperInitial = result.GetValue(cheaperInitial),
                Cheaper = result.GetValue(cheaper),
                CheaperStep = result.GetValue(cheaperStep),
                CheaperOverload = TimeSpan.FromSeconds(result.GetValue(cheaperOverload)),
                BusynessMax = result.GetValue(busynessMax),
                BusynessMin = result.GetValue(busynessMin),
                BusynessMultiplier = result.GetValue(busynessMultiplier),
                BacklogAlert = result.GetValue(backlogAlert),
                MaxRequests = result.GetValue(maxRequests),
                MaxRequestsJitter = result.GetValue(jitter),
                GracefulTimeout = TimeSpan.FromSeconds(result.GetValue(graceful)),
                Timeout = TimeSpan.FromSeconds(result.GetValue(timeout)),
            }, Console.Out, Settings.Time);
            using var stop = new CancellationTokenSource();
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
            using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
            // The master is the node in the registry, with its listening address and the role api.
            var settings = Settings.Load(dataDirectory);
            var listen = new Uri(result.GetValue(urls)!);
            using var registered = new CancellationTokenSource();
            var registry = Task.Run(async () =>
            {
                // Registered once ready: when a worker accepts.
                await Task.WhenAny(master.FirstReady, Task.Delay(Timeout.InfiniteTimeSpan, Settings.Time, registered.Token)).ConfigureAwait(false);
                if (registered.IsCancellationRequested)
                {
                    return;
                }
                var id = string.IsNullOrEmpty(settings.NodeId) ? $"{Environment.MachineName}:{listen.Port}" : settings.NodeId;
                var host = settings.AdvertiseAddress.Length > 0 ? settings.AdvertiseAddress : listen.Host;
                void Log(string line) => Console.WriteLine($"{Settings.Time.GetLocalNow():yyyy-MM-dd HH:mm:ss,fff} [master {Environment.ProcessId}] registry: {line}");
                var consul = settings.ConsulAddress.Length > 0
                    ? ConsulRegistration.RunAsync(settings, ConsulRegistration.Service(id, listen.Scheme, host, listen.Port, "api", settings.NodeTags), Settings.Time, Log, registered.Token)
                    : Task.CompletedTask;
                await RegistryLoop.RunAsync(NodeRegistry.Open(settings, Settings.Time), id, host, listen.Port, "api", settings, Settings.Time, Log, registered.Token).ConfigureAwait(false);
                await consul.ConfigureAwait(false);
            }, CancellationToken.None);
            var code = await master.RunAsync(stop.Token).ConfigureAwait(false);
            await registered.CancelAsync().ConfigureAwait(false);
            await registry.ConfigureAwait(false);
            return code;
        });
        return command;
    }

    public static Command Worker()
    {
        var store = new Option<string>("--store") { Description = "the node's store", Required = true };
        var data = new Option<string?>("--data") { Description = "data directory (default ./data)" };
        var accessLog = new Option<string?>("--access-log-format") { Description = "the access log line; none: no access log" };
        var command = new Command("api-worker", "One worker process of logwell api (started by it).") { store, data, accessLog };
        command.Hidden = true;
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = Settings.Load(result.GetValue(data));
            // Over a shared log store (ClickHouse) each worker serves the endpoints itself; over the embedded engine,
            // which one process owns, it hands requests to the store process.
            return await ApiWorker.RunAsync(result.GetValue(store)!, options.MaxBodyBytes, result.GetValue(accessLog), Settings.Time, cancellationToken,
                Logwell.Server.Security.NodeCredential.ReadOrCreate(options.DataDirectory),
                options.LogStore == "clickhouse" ? Settings.Configuration(result.GetValue(data)) : null).ConfigureAwait(false);
        });
        return command;
    }
}
