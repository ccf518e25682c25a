using System.CommandLine;
using System.Runtime.InteropServices;
using Logwell.Hosting.Supervisor;

namespace Logwell.Cli;

/// <summary><c>logwell supervise</c> (supervisord) and <c>logwell ctl</c> (supervisorctl).</summary>
internal static class SuperviseCommands
{
    public static Command Supervise()
    {
        var config = new Option<string?>("--config", "-c") { Description = "a supervisord configuration file ([supervisord], [program:NAME], [group:NAME])" };
        var data = new Option<string?>("--data") { Description = "data directory: the control socket (run/supervisor.sock) and process logs (logs/) go there (default ./data)" };
        var command = new Command("supervise", "Run and watch processes as supervisord does, from its configuration format; logwell ctl controls them.") { config, data };
        command.SetAction(async (result, _) =>
        {
            if (result.GetValue(config) is not { } path)
            {
                Console.Error.WriteLine("error: give the configuration with -c FILE");
                return 2;
            }
            var dataDirectory = Path.GetFullPath(result.GetValue(data) ?? "./data");
            Supervisor supervisor;
            try
            {
                supervisor = new Supervisor(path, dataDirectory, Console.Out);
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
