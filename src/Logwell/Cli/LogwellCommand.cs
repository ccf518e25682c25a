using System.CommandLine;
using Logwell.Server.Hosting;

namespace Logwell.Cli;

/// <summary>The <c>logwell</c> verbs: the server role and the client verbs that talk to a running node.</summary>
internal static class LogwellCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        // Data, exports, logs and sockets are for the account Logwell runs as.
        Logwell.Hosting.FileModes.SetMask(Logwell.Hosting.FileModes.OwnerOnly);
        var server = new Option<string>("--server")
        {
            Description = "URL of a running Logwell node (default: $LOGWELL_URL or http://127.0.0.1:5080)",
            Recursive = true,
        };

        var root = new RootCommand("Logwell: collect, store and search logs.")
        {
            ServeCommand.Create(),
            ServeCommand.Store(),
            ApiCommands.Api(),
            ApiCommands.Worker(),
            RoleCommands.Worker(server),
            RoleCommands.Scheduler(),
            SuperviseCommands.Supervise(),
            SuperviseCommands.Ctl(),
            ClientCommands.IndexSets(server),
            ClientCommands.Pipeline(server),
            ClientCommands.Queues(server),
            ClientCommands.Ingest(server),
            ClientCommands.Search(server),
            ClientCommands.Tail(server),
            ClientCommands.Fields(server),
            ClientCommands.Export(server),
            ClientCommands.Nodes(server),
            ConfigCommands.Config(),
            LbCommands.Lb(server),
            AgentCommands.Agent(),
            AgentCommands.CollectionConfigs(server),
            AgentCommands.Agents(server),
            BackupCommands.Backup(server),
            BackupCommands.Restore(),
            BackupCommands.Verify(),
            ArchiveCommands.Archive(server),
            AccessCommands.Users(),
            AccessCommands.Groups(),
            AccessCommands.Roles(),
            AccessCommands.Spaces(),
            AccessCommands.Grants(),
            AccessCommands.Keys(),
            LoginCommands.Login(server),
            LoginCommands.Logout(server),
        };
        root.Options.Add(server);
        root.Options.Add(ClientCommands.ApiKeyOption);
        root.Options.Add(ClientCommands.CaCertOption);
        // serve shuts down through the host (flushes the engine); no forced exit after Ctrl-C.
        try
        {
            return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (SettingsException e)
        {
            Console.Error.WriteLine($"error: invalid settings: {e.Message}");
            return 2;
        }
        catch (Logwell.Server.Hosting.MetadataUnreachableException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 3;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Console.Error.WriteLine($"Unhandled exception: {e}");
            return 1;
        }
    }
}
