using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using Logwell.Core.Time;
using Logwell.Server.Hosting;
using Logwell.Server.Security;

namespace Logwell.Cli;

/// <summary>
/// <c>logwell users|groups|roles|spaces|grants|keys</c>: who may do what on a node, changed in its metadata file
/// (<c>--data</c>) by whoever may read and write the node's data directory (the first administrator is made this way).
/// A running node sees each change within a second.
/// </summary>
internal static class AccessCommands
{
    private static Option<string?> Data() => new("--data") { Description = "data directory of the node (default ./data)" };

    private static AccessStore Open(ParseResult result, Option<string?> data)
    {
        var options = Settings.Load(result.GetValue(data));
        return new AccessStore(MetaDatabase.Open(options, Settings.Time, Console.Error.WriteLine), Settings.Time);
    }

    /// <summary>Runs a change; an access rule's refusal is an error message and exit code 1.</summary>
    private static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (AccessException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    public static Command Users()
    {
        var command = new Command("users", "Create, list and delete users, set passwords.");

        var data = Data();
        var name = new Argument<string>("name") { Description = "user name: " + Names.Rule };
        var role = new Option<string?>("--role") { Description = "grant this role (admin, space_admin, editor, viewer, ingester or a custom one)" };
        var scope = new Option<string>("--scope") { Description = "where the role applies: * (default), space:NAME or indexset:NAME", DefaultValueFactory = _ => "*" };
        var password = new Option<string?>("--password") { Description = "the password (otherwise read from standard input, asked for on a terminal, or generated with --generate-password)" };
        var generate = new Option<bool>("--generate-password") { Description = "make a random password and print it once" };
        var create = new Command("create", "Create a user, optionally with a role.") { name, role, scope, password, generate, data };
        create.SetAction(result => Run(() =>
        {
            var store = Open(result, data);
            var scopeValue = ParseScope(result.GetValue(scope)!);
            var (secret, generated) = ReadPassword(result.GetValue(password), result.GetValue(generate));
            if (secret is null)
            {
                return 1;
            }
            var user = result.GetValue(name)!;
            if (result.GetValue(role) is { } roleName && !store.Load().Roles.ContainsKey(roleName))
            {
                throw new AccessException($"no role '{roleName}'");
            }
            store.CreateUser(user, secret);
            if (result.GetValue(role) is { } granted)
            {
                store.AddGrant("user", user, granted, scopeValue, null);
            }
            Console.WriteLine($"created user {user}" + (result.GetValue(role) is { } r ? $" with role {r} on {scopeValue}" : " (no grant yet: add one with logwell grants add)"));
            if (generated)
            {
                Console.WriteLine($"password: {secret}");
                Console.WriteLine("(shown once: keep it now)");
            }
            return 0;
        }));

        var listData = Data();
        var list = new Command("list", "List users with their groups and grants.") { listData };
        list.SetAction(result => Run(() =>
        {
            var rules = Open(result, listData).Load();
            Console.WriteLine($"{"NAME",-24} {"CREATED",-20} {"GROUPS",-20} GRANTS");
            foreach (var user in rules.Users.Values.OrderBy(u => u.Name, StringComparer.Ordinal))
            {
                var grants = rules.Grants.Where(g => g.PrincipalKind == "user" && g.Principal == user.Name).Select(g => $"{g.Role}@{g.Scope}");
                Console.WriteLine($"{user.Name,-24} {user.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),-20} {string.Join(",", rules.GroupsOf(user.Name)),-20} {string.Join(" ", grants)}");
            }
            return 0;
        }));

        var passwdData = Data();
        var passwdName = new Argument<string>("name");
        var passwdPassword = new Option<string?>("--password") { Description = "the new password (otherwise read from standard input or asked for)" };
        var passwdGenerate = new Option<bool>("--generate-password") { Description = "make a random password and print it once" };
        var passwd = new Command("passwd", "Set a user's password.") { passwdName, passwdPassword, passwdGenerate, passwdData };
        passwd.SetAction(result => Run(() =>
        {
            var store = Open(result, passwdData);
            var (secret, generated) = ReadPassword(result.GetValue(passwdPassword), result.GetValue(passwdGenerate));
            if (secret is null)
            {
                return 1;
            }
            store.SetPassword(result.GetValue(passwdName)!, secret);
            Console.WriteLine($"password of {result.GetValue(passwdName)} changed" + (generated ? $": {secret} (shown once)" : ""));
            return 0;
        }));

        var deleteData = Data();
        var deleteName = new Argument<string>("name");
        var delete = new Command("delete", "Delete a user with their grants; the API keys they own are revoked.") { deleteName, deleteData };
        delete.SetAction(result => Run(() =>
        {
            Open(result, deleteData).DeleteUser(result.GetValue(deleteName)!);
            Console.WriteLine($"deleted user {result.GetValue(deleteName)}");
            return 0;
        }));

        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        command.Subcommands.Add(passwd);
        command.Subcommands.Add(delete);
        foreach (var (verb, disabled) in new[] { ("disable", true), ("enable", false) })
        {
            var toggleData = Data();
            var toggleName = new Argument<string>("name");
            var toggle = new Command(verb, disabled
                ? "Disable a user: their password, sessions and personal keys stop working at once; grants and keys are kept for enable."
                : "Enable a disabled user again.") { toggleName, toggleData };
            toggle.SetAction(result => Run(() =>
            {
                Open(result, toggleData).SetDisabled(result.GetValue(toggleName)!, disabled);
                Console.WriteLine($"{verb}d user {result.GetValue(toggleName)}");
                return 0;
            }));
            command.Subcommands.Add(toggle);
        }
        return command;
    }

    public static Command Keys()
    {
        var command = new Command("keys", "Create, list and revoke API keys.");

        var data = Data();
        var name = new Argument<string>("name") { Description = "what the key is for (a shipper, a host): " + Names.Rule };
        var role = new Option<string?>("--role") { Description = "grant this role to the key (ingester for a shipper)" };
        var scope = new Option<string>("--scope") { Description = "where the role applies: * (default), space:NAME or indexset:NAME", DefaultValueFactory = _ => "*" };
        var filter = new Option<string?>("--filter") { Description = "a query: the key sees only the events it matches" };
        var owner = new Option<string?>("--owner") { Description = "the user the key belongs to (deleting them revokes it)" };
        var expires = new Option<string?>("--expires") { Description = "how long the key works: 30d, 12h (default: until revoked)" };
        var create = new Command("create", "Create an API key and print its secret once.") { name, role, scope, filter, owner, expires, data };
        create.SetAction(result => Run(() =>
        {
            var store = Open(result, data);
            var scopeValue = ParseScope(result.GetValue(scope)!);
            DateTimeOffset? expiry = null;
            if (result.GetValue(expires) is { } text)
            {
                if (!TimeExpression.TryParseDuration(text, out var duration))
                {
                    throw new AccessException($"cannot read --expires '{text}': use 30d, 12h, 90m");
                }
                expiry = Settings.Time.GetUtcNow() + duration;
            }
            if (result.GetValue(role) is { } roleName && !store.Load().Roles.ContainsKey(roleName))
            {
                throw new AccessException($"no role '{roleName}'");
            }
            var (key, secret) = store.CreateKey(result.GetValue(name)!, result.GetValue(owner), expiry);
            if (result.GetValue(role) is { } granted)
            {
                try
                {
                    store.AddGrant("key", key.Id, granted, scopeValue, result.GetValue(filter));
                }
                catch (AccessException)
                {
                    store.RevokeKey(key.Id);
                    throw;
                }
            }
            Console.WriteLine($"created API key {key.Name} (id {key.Id})" + (result.GetValue(role) is { } r ? $" with role {r} on {scopeValue}" : " (no grant yet: add one with logwell grants add --key " + key.Id + ")")
                + (expiry is { } at ? $", expires {at.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC" : ""));
            Console.WriteLine(secret);
            Console.Error.WriteLine("(the secret above is shown once: keep it now; send it as 'Authorization: Bearer <secret>')");
            return 0;
        }));

        var listData = Data();
        var list = new Command("list", "List API keys (never their secrets).") { listData };
        list.SetAction(result => Run(() =>
        {
            var rules = Open(result, listData).Load();
            var now = Settings.Time.GetUtcNow();
            Console.WriteLine($"{"ID",-16} {"NAME",-20} {"OWNER",-12} {"STATE",-8} GRANTS");
            foreach (var key in rules.Keys.OrderBy(k => k.CreatedAt))
            {
                var grants = rules.Grants.Where(g => g.PrincipalKind == "key" && g.Principal == key.Id).Select(g => $"{g.Role}@{g.Scope}" + (g.Filter is null ? "" : $"[{g.Filter}]"));
                var state = key.RevokedAt is not null ? "revoked" : key.ExpiresAt <= now ? "expired" : "active";
                Console.WriteLine($"{key.Id,-16} {key.Name,-20} {key.Owner ?? "-",-12} {state,-8} {string.Join(" ", grants)}");
            }
            return 0;
        }));

        var revokeData = Data();
        var id = new Argument<string>("id") { Description = "the key's id (logwell keys list)" };
        var revoke = new Command("revoke", "Revoke an API key: every process of the node refuses it within a second.") { id, revokeData };
        revoke.SetAction(result => Run(() =>
        {
            Open(result, revokeData).RevokeKey(result.GetValue(id)!);
            Console.WriteLine($"revoked API key {result.GetValue(id)}");
            return 0;
        }));

        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        command.Subcommands.Add(revoke);
        return command;
    }

    public static Command Grants()
    {
        var command = new Command("grants", "Give a user, group or key a role in a scope; list and remove grants.");

        var data = Data();
        var user = new Option<string?>("--user");
        var group = new Option<string?>("--group");
        var key = new Option<string?>("--key") { Description = "the key's id" };
        var role = new Option<string>("--role") { Required = true };
        var scope = new Option<string>("--scope") { Description = "* (default), space:NAME or indexset:NAME", DefaultValueFactory = _ => "*" };
        var filter = new Option<string?>("--filter") { Description = "a query ANDed into everything the grant lets them read (service:payments)" };
        var add = new Command("add", "Add a grant.") { user, group, key, role, scope, filter, data };
        add.SetAction(result => Run(() =>
        {
            var principals = new[] { ("user", result.GetValue(user)), ("group", result.GetValue(group)), ("key", result.GetValue(key)) }.Where(p => p.Item2 is not null).ToList();
            if (principals.Count != 1)
            {
                throw new AccessException("name exactly one of --user, --group and --key");
            }
            var grant = Open(result, data).AddGrant(principals[0].Item1, principals[0].Item2!, result.GetValue(role)!, ParseScope(result.GetValue(scope)!), result.GetValue(filter));
            Console.WriteLine($"granted {grant.Role} on {grant.Scope} to {grant.PrincipalKind} {grant.Principal}" + (grant.Filter is null ? "" : $" seeing only {grant.Filter}") + $" (grant {grant.Id})");
            return 0;
        }));

        var listData = Data();
        var list = new Command("list", "List grants.") { listData };
        list.SetAction(result => Run(() =>
        {
            Console.WriteLine($"{"ID",-16} {"TO",-28} {"ROLE",-14} {"SCOPE",-24} FILTER");
            foreach (var grant in Open(result, listData).Load().Grants)
            {
                Console.WriteLine($"{grant.Id,-16} {grant.PrincipalKind + " " + grant.Principal,-28} {grant.Role,-14} {grant.Scope,-24} {grant.Filter}");
            }
            return 0;
        }));

        var removeData = Data();
        var id = new Argument<string>("id");
        var remove = new Command("remove", "Remove a grant.") { id, removeData };
        remove.SetAction(result => Run(() =>
        {
            Open(result, removeData).RemoveGrant(result.GetValue(id)!);
            Console.WriteLine($"removed grant {result.GetValue(id)}");
            return 0;
        }));
        command.Subcommands.Add(add);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }

    public static Command Groups()
    {
        var command = new Command("groups", "Groups of users: grants to a group are every member's.");
        command.Subcommands.Add(Simple("create", "Create a group.", (store, args) => store.CreateGroup(args[0]), "name"));
        command.Subcommands.Add(Simple("delete", "Delete a group and its grants.", (store, args) => store.DeleteGroup(args[0]), "name"));
        command.Subcommands.Add(Simple("add-member", "Add a user to a group.", (store, args) => store.AddMember(args[0], args[1]), "group", "user"));
        command.Subcommands.Add(Simple("remove-member", "Remove a user from a group.", (store, args) => store.RemoveMember(args[0], args[1]), "group", "user"));
        return command;
    }

    public static Command Roles()
    {
        var command = new Command("roles", "Named sets of actions: the built-in admin, space_admin, editor, viewer, ingester, and custom ones.");
        var data = Data();
        var name = new Argument<string>("name");
        var actions = new Option<string>("--actions") { Required = true, Description = "comma-separated: " + string.Join(",", Actions.All) };
        var create = new Command("create", "Create a custom role.") { name, actions, data };
        create.SetAction(result => Run(() =>
        {
            Open(result, data).CreateRole(result.GetValue(name)!, result.GetValue(actions)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Console.WriteLine($"created role {result.GetValue(name)}");
            return 0;
        }));
        var listData = Data();
        var list = new Command("list", "List roles with their actions.") { listData };
        list.SetAction(result => Run(() =>
        {
            foreach (var role in Open(result, listData).Load().Roles.Values.OrderBy(r => !r.BuiltIn).ThenBy(r => r.Name, StringComparer.Ordinal))
            {
                Console.WriteLine($"{role.Name,-14} {(role.BuiltIn ? "built-in" : "custom"),-9} {string.Join(",", Actions.All.Where(role.Actions.Contains))}");
            }
            return 0;
        }));
        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        command.Subcommands.Add(Simple("delete", "Delete a custom role no grant uses.", (store, args) => store.DeleteRole(args[0]), "name"));
        return command;
    }

    public static Command Spaces()
    {
        var command = new Command("spaces", "Spaces hold index sets; a grant on a space reaches every index set in it.");
        command.Subcommands.Add(Simple("create", "Create a space.", (store, args) => store.CreateSpace(args[0]), "name"));
        command.Subcommands.Add(Simple("delete", "Delete an empty space.", (store, args) => store.DeleteSpace(args[0]), "name"));
        command.Subcommands.Add(Simple("place", "Move an index set into a space.", (store, args) => store.PlaceIndexSet(args[0], args[1]), "indexset", "space"));
        var data = Data();
        var list = new Command("list", "List spaces and the index sets placed in them (the others are in default).") { data };
        list.SetAction(result => Run(() =>
        {
            var rules = Open(result, data).Load();
            foreach (var space in rules.Spaces.Order(StringComparer.Ordinal))
            {
                Console.WriteLine($"{space,-24} {string.Join(" ", rules.PlacedIndexSets.Where(p => p.Value == space).Select(p => p.Key).Order(StringComparer.Ordinal))}");
            }
            return 0;
        }));
        command.Subcommands.Add(list);
        return command;
    }

    private static Command Simple(string verb, string description, Action<AccessStore, string[]> change, params string[] arguments)
    {
        var data = Data();
        var args = arguments.Select(a => new Argument<string>(a)).ToList();
        var command = new Command(verb, description) { data };
        foreach (var argument in args)
        {
            command.Arguments.Add(argument);
        }
        command.SetAction(result => Run(() =>
        {
            var values = args.Select(a => result.GetValue(a)!).ToArray();
            change(Open(result, data), values);
            Console.WriteLine($"{verb} {string.Join(" ", values)}: done");
            return 0;
        }));
        return command;
    }

    private static Scope ParseScope(string text) =>
        Scope.Parse(text, out var error) ?? throw new AccessException(error!);

    /// <summary>The password from the flag, generated, from standard input, or asked twice on the terminal; null after saying why not.</summary>
    internal static (string? Password, bool Generated) ReadPassword(string? flag, bool generate)
    {
        if (flag is not null)
        {
            return (flag, false);
        }
        if (generate)
        {
            return (Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_'), true);
        }
        if (Console.IsInputRedirected)
        {
            var line = Console.In.ReadLine();
            if (string.IsNullOrEmpty(line))
            {
                Console.Error.WriteLine("error: no password on standard input (or use --password, --generate-password)");
                return (null, false);
            }
            return (line, false);
        }
        var first = Prompt("Password: ");
        var second = Prompt("Again: ");
        if (first != second)
        {
            Console.Error.WriteLine("error: the passwords differ");
            return (null, false);
        }
        return (first, false);
    }

    private static string Prompt(string label)
    {
        Console.Error.Write(label);
        var text = new System.Text.StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                Console.Error.WriteLine();
                return text.ToString();
            }
            if (key.Key == ConsoleKey.Backspace)
            {
                if (text.Length > 0)
                {
                    text.Length--;
                }
            }
            else if (!char.IsControl(key.KeyChar))
            {
                text.Append(key.KeyChar);
            }
        }
    }
}
