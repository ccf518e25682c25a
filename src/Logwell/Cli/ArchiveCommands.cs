using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Logwell.Cli;

/// <summary>
/// <c>logwell archive list|restore|run</c>: an index set's archived days, a range of them restored as an index set of
/// its own, and an archive pass now; all through the node's API.
/// </summary>
internal static class ArchiveCommands
{
    public static Command Archive(Option<string> server)
    {
        var command = new Command("archive", "The days index sets moved to the archive (archive_after_days, Logwell:ArchiveTo): list them, restore a range into search, or run a pass now.");

        var listIndex = new Option<string>("--index") { Description = "the index set", Required = true };
        var list = new Command("list", "List the index set's archived days, the restores in progress and the index sets restored from it.") { listIndex };
        list.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            using var response = await client.GetAsync($"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(listIndex)!)}/archive", ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            if (!root.GetProperty("archive_set_up").GetBoolean())
            {
                Console.WriteLine("no archive is set up on the node (Logwell:ArchiveTo)");
            }
            Console.WriteLine("DAY (UTC)    SEGMENTS        EVENTS          BYTES");
            foreach (var day in root.GetProperty("archived").EnumerateArray())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{day.GetProperty("day").GetString(),-12} {day.GetProperty("segments").GetInt32(),8} {day.GetProperty("events").GetInt64(),13:N0} {day.GetProperty("bytes").GetInt64(),14:N0}"));
            }
            foreach (var restoring in root.GetProperty("restoring").EnumerateArray())
            {
                Console.WriteLine($"restoring {restoring.GetProperty("first_day").GetString()}..{restoring.GetProperty("last_day").GetString()} as {restoring.GetProperty("as").GetString()}: {restoring.GetProperty("percent").GetInt32()}%");
            }
            foreach (var restored in root.GetProperty("restored").EnumerateArray())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"restored {restored.GetProperty("first_day").GetString()}..{restored.GetProperty("last_day").GetString()} as {restored.GetProperty("name").GetString()}: {restored.GetProperty("events").GetInt64():N0} events, deleted at {restored.GetProperty("expires").GetDateTimeOffset().UtcDateTime:yyyy-MM-dd HH:mm} UTC"));
            }
            return 0;
        }));

        var index = new Option<string>("--index") { Description = "the index set whose archive to restore", Required = true };
        var from = new Option<string>("--from") { Description = "the first day (UTC), such as 2026-10-01", Required = true };
        var to = new Option<string>("--to") { Description = "the last day (UTC), inclusive", Required = true };
        var @as = new Option<string?>("--as") { Description = "the name of the index set to restore into (default INDEX-restored)" };
        var expire = new Option<int?>("--expire-days") { Description = "delete the restored index set after this many days (default 7)" };
        var wait = new Option<bool>("--wait") { Description = "wait for the restore to finish, showing its progress" };
        var restore = new Command("restore", "Restore archived days into search as an index set of their own, which deletes itself after --expire-days; a task on the default queue.") { index, from, to, @as, expire, wait };
        restore.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            var name = result.GetValue(index)!;
            var body = new Dictionary<string, object?> { ["from"] = result.GetValue(from), ["to"] = result.GetValue(to) };
            if (result.GetValue(@as) is { } target)
            {
                body["as"] = target;
            }
            if (result.GetValue(expire) is { } days)
            {
                body["expire_days"] = days;
            }
            using var client = ClientCommands.CreateClient(result, server);
            using var content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
            using var response = await client.PostAsync($"api/v1/indexsets/{Uri.EscapeDataString(name)}/archive/restore", content, ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var task = doc.RootElement.GetProperty("task").GetInt64();
            var restoredAs = doc.RootElement.GetProperty("as").GetString()!;
            Console.WriteLine($"restore of {name} {doc.RootElement.GetProperty("from").GetString()}..{doc.RootElement.GetProperty("to").GetString()} as {restoredAs}: task {task}");
            if (!result.GetValue(wait))
            {
                return 0;
            }
            var shown = -1;
            while (true)
            {
                using (var state = await ClientCommands.ReadOrFailAsync(await client.GetAsync($"api/v1/indexsets/{Uri.EscapeDataString(name)}/archive/restore/{task}", ct).ConfigureAwait(false), ct).ConfigureAwait(false))
                {
                    var status = state.RootElement.GetProperty("state").GetString();
                    if (status == "done")
                    {
                        Console.WriteLine($"restored: search it as index set {restoredAs}");
                        return 0;
                    }
                    if (status == "dead")
                    {
                        Console.Error.WriteLine($"error: the restore failed: {state.RootElement.GetProperty("error").GetString()}");
                        return 1;
                    }
                }
                using (var archive = await ClientCommands.ReadOrFailAsync(await client.GetAsync($"api/v1/indexsets/{Uri.EscapeDataString(name)}/archive", ct).ConfigureAwait(false), ct).ConfigureAwait(false))
                {
                    foreach (var restoring in archive.RootElement.GetProperty("restoring").EnumerateArray().Where(r => r.GetProperty("as").GetString() == restoredAs))
                    {
                        var percent = restoring.GetProperty("percent").GetInt32();
                        if (percent != shown)
                        {
                            Console.WriteLine($"{percent}%");
                            shown = percent;
                        }
                    }
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500), Settings.Time, ct).ConfigureAwait(false);
            }
        }));

        var run = new Command("run", "Run an archive pass now: move the days past each index set's archive_after_days to the archive, and delete archived days past retention.");
        run.SetAction((result, ct) => ClientCommands.Guard(async () =>
        {
            using var client = ClientCommands.CreateClient(result, server);
            client.Timeout = Timeout.InfiniteTimeSpan;
            using var response = await client.PostAsync("api/v1/maintenance/archive", null, ct).ConfigureAwait(false);
            using var doc = await ClientCommands.ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            foreach (var day in root.GetProperty("archived").EnumerateArray())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"archived {day.GetProperty("index").GetString()} {day.GetProperty("day").GetString()}: {day.GetProperty("segments").GetInt32()} segments, {day.GetProperty("events").GetInt64():N0} events"));
            }
            Console.WriteLine($"{root.GetProperty("archived").GetArrayLength()} days archived, {root.GetProperty("expired").GetInt32()} archived days past retention deleted");
            var problems = root.GetProperty("problems");
            foreach (var problem in problems.EnumerateArray())
            {
                Console.Error.WriteLine($"warning: {problem.GetString()}");
            }
            return problems.GetArrayLength() == 0 ? 0 : 1;
        }));

        command.Subcommands.Add(list);
        command.Subcommands.Add(restore);
        command.Subcommands.Add(run);
        return command;
    }
}
