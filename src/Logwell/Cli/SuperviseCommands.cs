using System.CommandLine;
using System.Runtime.InteropServices;
using Logwell.Hosting.Supervisor;

namespace Logwell.Cli;

/// <summary><c>logwell supervise</c> (supervisord) and <c>logwell ctl</c> (supervisorctl).</summary>
internal static class SuperviseCommands
{
    public static Command Supervise()
    {
        var config = new Option<string?>("--config", "-c") { Description = "a supervisord configuration file ([supervisord], [program:NAME], [group:NAME]); without it, the default deployment of one node" };
        var data = new Option<string?>("--data") { Description = "data directory: the control socket (run/supervisor.sock) and process logs (logs/) go there (default ./data)" };
        var urls = new Option<string?>("--urls") { Description = "without -c: where the node listens (default http://127.0.0.1:5080)" };
        var printDefault = new Option<bool>("--print-default-config") { Description = "print the default deployment's configuration and exit" };
        var command = new Command("supervise", "Run and watch processes as supervisord does, from its configuration format; logwell ctl controls them.") { config, data, urls, printDefault };
        command.SetAction(async (result, _) =>
        {
            var dataDirectory = Path.GetFullPath(result.GetValue(data) ?? "./data");
            var defaultConfig = DefaultDeployment(dataDirectory, result.GetValue(urls) ?? "http://127.0.0.1:5080");
            if (result.GetValue(printDefault))
            {
                Console.Write(defaultConfig);
                return 0;
            }
            var path = result.GetValue(config);
            if (path is null)
            {
                // The default deployment, written where the supervisor's other files are.
                path = Path.Combine(dataDirectory, "run", "default-supervisor.conf");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllTextAsync(path, defaultConfig, CancellationToken.None).ConfigureAwait(false);
            }
            Supervisor supervisor;
            try
            {
                supervisor = new Supervisor(path, dataDirectory, Console.Out, Settings.Time);
            }
            catch (Exception e) when (e is ConfigException or IOException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            using var stop = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
            try
            {
                return await supervisor.RunAsync(stop.Token).ConfigureAwait(false);
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    /// <summary>
    /// One node's processes in the Production environment: the store (the log engine, on a Unix socket), the API master
    /// on the node's URL, a worker program per queue (4 tasks at once, replaced after 50), and the scheduler; all on the
    /// embedded stores of the data directory.
    /// </summary>
    internal static string DefaultDeployment(string dataDirectory, string urls)
    {
        var logwell = Environment.ProcessPath is { } process && Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? $"{Quote(process)} {Quote(typeof(SuperviseCommands).Assembly.Location)}"
            : Quote(Environment.ProcessPath ?? "logwell");
        var data = Quote(dataDirectory);
        var store = Quote("http://unix:" + Path.Combine(dataDirectory, "run", "store.sock"));
        var text = new System.Text.StringBuilder();
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
            ; The default deployment of one Logwell node (logwell supervise --print-default-config).
            [supervisord]
            identifier = logwell
            environment = LOGWELL_ENVIRONMENT="Production"

            [program:store]
            command = {logwell} store --data {data} --urls {store}
            priority = 10
            autorestart = true
            startsecs = 2
            stopwaitsecs = 60

            [program:api]
            command = {logwell} api --data {data} --urls {Quote(urls)} --store {store} --workers 16 --cheaper 4 --cheaper-initial 4 --cheaper-step 2 --cheaper-overload 5 --max-requests 1000 --max-requests-jitter 50 --timeout 65 --graceful-timeout 30
            priority = 15
            autorestart = true
            stopwaitsecs = 40

            """).Append('\n');
        foreach (var queue in Logwell.Server.Tasks.BuiltinTasks.Queues)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
                [program:worker-{queue}]
                command = {logwell} worker -Q {queue} -c 4 --max-tasks-per-child 50 --once --data {data} --server {store}
                priority = 20
                autorestart = true
                stopwaitsecs = 35

                """).Append('\n');
        }
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
            [program:scheduler]
            command = {logwell} scheduler --data {data}
            priority = 30
            autorestart = true

            [group:workers]
            programs = {string.Join(",", Logwell.Server.Tasks.BuiltinTasks.Queues.Select(q => "worker-" + q))}

            """);
        return text.ToString();
    }

    private static string Quote(string value) => value.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '\\' or '%')
        ? "'" + value.Replace("%", "%%", StringComparison.Ordinal).Replace("'", "'\"'\"'", StringComparison.Ordinal) + "'"
        : value;

    public static Command Ctl()
    {
        var data = new Option<string?>("--data") { Description = "data directory of the supervisor (default ./data)" };
        var words = new Argument<string[]>("command")
        {
            Description = "status [NAME...] | start|stop|restart NAME...|GROUP:*|all | signal SIG NAME... | tail [-f] NAME [stdout|stderr] | reread | update | shutdown | pid",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("ctl", "Control a running logwell supervise, as supervisorctl does.") { data, words };
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                await using var stdout = Console.OpenStandardOutput();
                return await SupervisorClient.RunAsync(result.GetValue(data) ?? "./data", result.GetValue(words)!, stdout, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
        });
        return command;
    }
}
