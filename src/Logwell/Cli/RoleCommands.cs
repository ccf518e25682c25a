using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Logwell.Hosting;
using Logwell.Jobs;
using Logwell.Server.Exports;
using Logwell.Server.Hosting;
using Logwell.Server.Tasks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Logwell.Cli;

/// <summary>The background roles: <c>logwell worker</c> and <c>logwell scheduler</c>.</summary>
internal static class RoleCommands
{
    public static Command Worker(Option<string> server)
    {
        var queues = new Option<string>("--queues", "-Q") { Description = "queues to take tasks from, comma-separated", DefaultValueFactory = _ => string.Join(",", BuiltinTasks.Queues) };
        var concurrency = new Option<int>("--concurrency", "-c") { Description = "tasks run at once", DefaultValueFactory = _ => 4 };
        var maxTasks = new Option<int>("--max-tasks-per-child") { Description = "replace the worker process after this many tasks (0: never)", DefaultValueFactory = _ => 0 };
        var maxMemory = new Option<string?>("--max-memory-per-child") { Description = "replace the worker process above this working set, such as 512MB (KB, MB, GB: powers of 1024)" };
        var grace = new Option<int>("--grace") { Description = "seconds running tasks get to finish on SIGTERM before they are handed back", DefaultValueFactory = _ => 30 };
        var data = new Option<string?>("--data") { Description = "data directory of the node (default ./data)" };
        var once = new Option<bool>("--once") { Description = "run one worker process and exit with its code (3: recycle, 4: a task outlived its hard limit), for a supervisor to replace" };
        var command = new Command("worker", "Run tasks from task queues. Tasks that read the log store reach it through the node's API (--server).")
        {
            queues, concurrency, maxTasks, maxMemory, grace, data, once,
        };
        command.SetAction(async (result, _) =>
        {
            var queueList = TaskQueues.ParseQueues(result.GetValue(queues)!);
            if (queueList.Count == 0)
            {
                return Fail("name at least one queue with -Q");
            }
            if (result.GetValue(concurrency) < 1 || result.GetValue(maxTasks) < 0 || result.GetValue(grace) < 0)
            {
                return Fail("-c must be at least 1; --max-tasks-per-child and --grace at least 0");
            }
            long maxBytes = 0;
            if (result.GetValue(maxMemory) is { } memoryText && !TryParseSize(memoryText, out maxBytes))
            {
                return Fail($"--max-memory-per-child: '{memoryText}' is not a size such as 512MB");
            }
            if (!result.GetValue(once))
            {
                return await SuperviseSelfAsync("worker").ConfigureAwait(false);
            }
            var options = Settings.Load(result.GetValue(data));
            using var loggers = Settings.CreateLoggers();
            var logger = loggers.CreateLogger("Logwell.Worker");
            await using var queue = TaskQueues.Open(options, Settings.Time);
            // Its node's API, from the node's settings (https with the node's own certificate pinned when it has one),
            // unless --server or $LOGWELL_URL say otherwise.
            using var client = ClientCommands.CreateClient(result, server, trust: options.Tls ? options.TlsCertificateFile : null, fallback: options.LocalUrl());
            // The node's own credential, not a user's: tasks read what whoever queued them may read (an export
            // carries its owner's grant filters).
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
                Logwell.Server.Security.NodeCredential.ReadOrCreate(options.DataDirectory));
            var handlers = BuiltinTasks.Create(options, queue, new ExportStore(MetaDatabase.Open(options, Settings.Time, Console.Error.WriteLine), options.ExportPath, Settings.Time), new HttpLogStore(client), Settings.Time, loggers);
            var name = TaskQueues.ProcessName("worker");
            var worker = new Worker(queue, handlers, new WorkerOptions(queueList)
            {
                Concurrency = result.GetValue(concurrency),
                MaxTasksPerChild = result.GetValue(maxTasks),
                MaxMemoryBytes = maxBytes,
                Lease = TimeSpan.FromSeconds(options.TaskLeaseSeconds),
                GracePeriod = TimeSpan.FromSeconds(result.GetValue(grace)),
            }, name, Settings.Time, logger);
            using var stop = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
            logger.LogInformation("Worker {Name}: queues {Queues}, concurrency {Concurrency}", name, string.Join(",", queueList), result.GetValue(concurrency));
            var exit = await worker.RunAsync(stop.Token).ConfigureAwait(false);
            logger.LogInformation("Worker {Name}: {Exit} after {Tasks} tasks", name, exit, worker.Finished);
            return (int)exit;
        });
        return command;
    }

    public static Command Scheduler()
    {
        var data = new Option<string?>("--data") { Description = "data directory of the node (default ./data)" };
        var command = new Command("scheduler", "Issue the periodic tasks. Run several: one holds the lease and issues, the others stand by to take over.") { data };
        command.SetAction(async (result, _) =>
        {
            var options = Settings.Load(result.GetValue(data));
            using var loggers = Settings.CreateLoggers();
            await using var queue = TaskQueues.Open(options, Settings.Time);
            var lease = TimeSpan.FromSeconds(options.SchedulerLeaseSeconds);
            var scheduler = new Scheduler(queue, BuiltinTasks.Schedule(options), new SchedulerOptions { Lease = lease, Tick = lease / 5 },
                TaskQueues.ProcessName("scheduler"), Settings.Time, loggers.CreateLogger("Logwell.Scheduler"));
            using var stop = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
            await scheduler.RunAsync(stop.Token).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Run alone, a role replaces its own process: this parent runs the role with <c>--once</c> as a child, starts a new
    /// child when one exits to be recycled or dies, and passes SIGTERM and SIGINT on (then waits for the child).
    /// </summary>
    private static async Task<int> SuperviseSelfAsync(string role)
    {
        var arguments = Environment.GetCommandLineArgs().Skip(1).Append("--once").ToList();
        var executable = Environment.ProcessPath!;
        if (Path.GetFileNameWithoutExtension(executable) == "dotnet")
        {
            // Started as `dotnet logwell.dll ...`: the first argument is the program.
            arguments.Insert(0, typeof(RoleCommands).Assembly.Location);
        }
        using var stop = new CancellationTokenSource();
        Process? child = null;
        void Forward(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
            if (child is { HasExited: false } running)
            {
                Signals.Send(running.Id, context.Signal == PosixSignal.SIGINT ? 2 : 15);
            }
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Forward);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Forward);
        var generation = 0;
        while (true)
        {
            var start = new ProcessStartInfo(executable) { UseShellExecute = false };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }
            child = Process.Start(start)!;
            generation++;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"logwell {role}: process {child.Id} started (generation {generation})"));
            await child.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            var code = child.ExitCode;
            child.Dispose();
            if (stop.IsCancellationRequested)
            {
                return code == (int)WorkerExit.Stopped ? 0 : code;
            }
            switch (code)
            {
                case (int)WorkerExit.Recycle:
                    Console.Error.WriteLine($"logwell {role}: process recycled; starting a new one");
                    break;
                case (int)WorkerExit.HardLimit:
                    Console.Error.WriteLine($"logwell {role}: a task outlived its hard time limit; replacing the process");
                    break;
                case (int)WorkerExit.Stopped:
                    return 0;
                default:
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"logwell {role}: process exited with {code}; starting a new one in 1 s"));
                    try
                    {
                        await Task.Delay(TimeSpan.FromSeconds(1), Settings.Time, stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return code;
                    }
                    break;
            }
        }
    }

    /// <summary>512MB, 1GB, 2048KB or a number of bytes, at least one; units are powers of 1024.</summary>
    internal static bool TryParseSize(string text, out long bytes) => Core.Text.ByteSizes.TryParse(text, out bytes) && bytes > 0;

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return 2;
    }
}

/// <summary>Settings for roles that run without the web host: the same files, <c>LOGWELL_</c> variables and flags as <c>serve</c>.</summary>
internal static class Settings
{
    /// <summary>
    /// The clock of every component this process builds, and the one place the system clock is named: everything else
    /// reads the time and waits through the <see cref="TimeProvider"/> it is given (src/BannedSymbols.txt).
    /// </summary>
#pragma warning disable RS0030 // The composition root.
    public static TimeProvider Time { get; } = TimeProvider.System;
#pragma warning restore RS0030

    public static string EnvironmentName(string? flag = null) => flag
        ?? Environment.GetEnvironmentVariable("LOGWELL_ENVIRONMENT")
        ?? Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT")
        ?? Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT")
        ?? "Development";

    /// <summary>The settings as every role reads them: appsettings, <c>LOGWELL_</c> variables, then the data directory given.</summary>
    public static IConfiguration Configuration(string? dataDirectory) => Build(dataDirectory);

    private static IConfiguration Build(string? dataDirectory)
    {
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddJsonFile($"appsettings.{EnvironmentName()}.json", optional: true)
            .AddInMemoryCollection(LogwellEnvironment())
            .Build();
        if (dataDirectory is not null)
        {
            configuration["Logwell:DataDirectory"] = dataDirectory;
        }
        // Relative data paths are relative to where logwell was started, not to the binary.
        configuration["Logwell:DataDirectory"] = Path.GetFullPath(configuration["Logwell:DataDirectory"] ?? "./data", Environment.CurrentDirectory);
        return configuration;
    }

    public static LogwellOptions Load(string? dataDirectory)
    {
        var options = Build(dataDirectory).GetSection(LogwellOptions.Section).Get<LogwellOptions>() ?? new LogwellOptions();
        options.Validate();
        return options;
    }

    public static ILoggerFactory CreateLoggers()
    {
        var configuration = Build(null);
        return LoggerFactory.Create(logging => logging
            .AddConfiguration(configuration.GetSection("Logging"))
            .AddSimpleConsole(console => { console.SingleLine = true; console.TimestampFormat = "HH:mm:ss.fff "; }));
    }

    /// <summary><c>LOGWELL_X__Y=v</c> sets <c>Logwell:X:Y</c>.</summary>
    public static Dictionary<string, string?> LogwellEnvironment()
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            var key = (string)entry.Key;
            if (key.StartsWith("LOGWELL_", StringComparison.Ordinal) && key is not "LOGWELL_URL" and not "LOGWELL_ENVIRONMENT" and not "LOGWELL_LOGHUB_DIR" and not "LOGWELL_API_KEY" and not "LOGWELL_CA_CERT")
            {
                values["Logwell:" + key["LOGWELL_".Length..].Replace("__", ":", StringComparison.Ordinal)] = (string?)entry.Value;
            }
        }
        return values;
    }
}
