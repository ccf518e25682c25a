using System.CommandLine;
using Logwell.Server.Hosting;

namespace Logwell.Cli;

/// <summary><c>logwell config show</c>: the settings a node started here would run with, secrets hidden.</summary>
internal static class ConfigCommands
{
    public static Command Config()
    {
        var data = new Option<string?>("--data") { Description = "data directory of the node (default ./data)" };
        var show = new Command("show", "Print every setting as a node started here would read it (appsettings, LOGWELL_ variables, --data), passwords, tokens and keys hidden.") { data };
        show.SetAction(result =>
        {
            foreach (var (name, value) in SettingsText.Describe(Settings.Load(result.GetValue(data))))
            {
                Console.WriteLine($"{name} = {value}");
            }
            return 0;
        });
        return new Command("config", "The node's settings.") { show };
    }
}
