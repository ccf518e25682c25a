using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Logwell.Cli;

/// <summary>
/// <c>logwell login</c> and <c>logwell logout</c>: a personal API key per node, kept in the user's configuration
/// directory (<c>~/.config/logwell/credentials.json</c>, mode 0600) and sent by every client verb to that node.
/// </summary>
internal static class LoginCommands
{
    /// <summary>Where personal keys are kept, by node URL.</summary>
    public static string CredentialsFile =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify), "logwell", "credentials.json");

    /// <summary>The URL as the file keys it.</summary>
    private static string Normalize(string url) => Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.ToString() : url;

    /// <summary>The personal key kept for <paramref name="url"/>, or null.</summary>
    public static string? KeyFor(string url)
    {
        var entry = Read()[Normalize(url)];
        return entry?["key"]?.GetValue<string>();
    }

    private static JsonObject Read()
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(CredentialsFile)) as JsonObject ?? [];
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static void Write(JsonObject credentials)
    {
        var path = CredentialsFile;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + "." + Environment.ProcessId + ".tmp";
        Logwell.Hosting.FileModes.WriteSecretFile(temporary, Encoding.UTF8.GetBytes(credentials.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
        File.Move(temporary, path, overwrite: true);
    }

    public static Command Login(Option<string> server)
    {
        var user = new Option<string?>("--user") { Description = "user name (asked for on a terminal when not given)" };
        var password = new Option<string?>("--password") { Description = "the password (otherwise read from standard input or asked for)" };
        var expires = new Option<string>("--expires") { Description = "how long the personal key works", DefaultValueFactory = _ => "90d" };
        var command = new Command("login", "Sign in to a node with a user name and password; its client verbs then use a personal key kept for that node.") { user, password, expires };
        command.SetAction(async (result, ct) =>
        {
            var name = result.GetValue(user);
            if (name is null)
            {
                if (Console.IsInputRedirected)
                {
                    Console.Error.WriteLine("error: give --user when standard input is not a terminal");
                    return 1;
                }
                Console.Error.Write("User: ");
                name = Console.ReadLine()?.Trim();
            }
            var (secret, _) = AccessCommands.ReadPassword(result.GetValue(password), generate: false);
            if (string.IsNullOrEmpty(name) || secret is null)
            {
                return 1;
            }
            using var client = ClientCommands.CreateClient(result, server, useStoredKey: false);
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{name}:{secret}")));
            var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["name"] = KeyName(), ["expires_in"] = result.GetValue(expires)! });
            using var response = await client.PostAsync("api/v1/access/login", new StringContent(body, Encoding.UTF8, "application/json"), ct).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                Console.Error.WriteLine($"error: {(int)response.StatusCode} {response.ReasonPhrase}: {ClientCommands.ErrorText(text)}");
                return 1;
            }
            var answer = JsonNode.Parse(text)!;
            var credentials = Read();
            // As given (a Unix socket's URL too), for KeyFor to find.
            var url = Normalize(ClientCommands.ServerUrl(result, server));
            credentials[url] = new JsonObject
            {
                ["key"] = answer["secret"]!.GetValue<string>(),
                ["id"] = answer["id"]!.GetValue<string>(),
                ["user"] = name,
                ["expires_at"] = answer["expires_at"]?.DeepClone(),
            };
            Write(credentials);
            Console.WriteLine($"logged in to {url} as {name}; the personal key (id {answer["id"]}) expires {answer["expires_at"]} and is kept in {CredentialsFile}");
            return 0;
        });
        return command;
    }

    /// <summary>The personal key's name: <c>cli-</c> and this machine's name, as a key name may be written.</summary>
    private static string KeyName()
    {
        var host = new string([.. Environment.MachineName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '-')]);
        var name = "cli-" + host;
        return name.Length > Logwell.Server.Security.Names.MaxLength ? name[..Logwell.Server.Security.Names.MaxLength] : name;
    }

    public static Command Logout(Option<string> server)
    {
        var command = new Command("logout", "Revoke the personal key kept for the node and forget it.");
        command.SetAction(async (result, ct) =>
        {
            using var client = ClientCommands.CreateClient(result, server, useStoredKey: false);
            var url = Normalize(ClientCommands.ServerUrl(result, server));
            var credentials = Read();
            if (credentials[url]?["key"]?.GetValue<string>() is not { } key)
            {
                Console.Error.WriteLine($"not logged in to {url}");
                return 1;
            }
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            try
            {
                using var response = await client.PostAsync("api/v1/access/logout", null, ct).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode && response.StatusCode != System.Net.HttpStatusCode.Unauthorized)
                {
                    Console.Error.WriteLine($"warning: the node did not revoke the key ({(int)response.StatusCode}); it is forgotten here");
                }
            }
            catch (HttpRequestException e)
            {
                Console.Error.WriteLine($"warning: the node could not be reached to revoke the key ({e.Message}); it is forgotten here");
            }
            credentials.Remove(url);
            Write(credentials);
            Console.WriteLine($"logged out of {url}");
            return 0;
        });
        return command;
    }
}
