using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Logwell.Core.Time;

namespace Logwell.Cli;

/// <summary>Client verbs: they talk to a running node over its HTTP API.</summary>
internal static class ClientCommands
{
    private const string DefaultServer = "http://127.0.0.1:5080";

    /// <summary>The API key client verbs send (<c>--api-key</c>, else <c>$LOGWELL_API_KEY</c>).</summary>
    internal static readonly Option<string?> ApiKeyOption = new("--api-key")
    {
        Description = "API key to send to the node (default: $LOGWELL_API_KEY)",
        Recursive = true,
    };

    /// <param name="useStoredKey">Without <c>--api-key</c> and <c>$LOGWELL_API_KEY</c>, send the personal key <c>logwell login</c> kept for the node.</param>
    internal static readonly Option<string?> CaCertOption = new("--ca-cert")
    {
        Description = "PEM file of the CA (or the certificate itself) to trust for an https node whose certificate no system CA signed (default: $LOGWELL_CA_CERT)",
        Recursive = true,
    };

    /// <param name="trust">A PEM file to trust when neither --ca-cert nor $LOGWELL_CA_CERT names one (a worker trusts its node's own certificate).</param>
    /// <summary>The node the client verbs talk to: --server, else $LOGWELL_URL, else <paramref name="fallback"/> or the default.</summary>
    internal static string ServerUrl(ParseResult result, Option<string> server, string? fallback = null) =>
        result.GetValue(server) ?? Environment.GetEnvironmentVariable("LOGWELL_URL") ?? fallback ?? DefaultServer;

    /// <param name="fallback">The node's address when neither --server nor $LOGWELL_URL names one (a worker: its node's, from the settings).</param>
    internal static HttpClient CreateClient(ParseResult result, Option<string> server, bool useStoredKey = true, string? trust = null, string? fallback = null)
    {
        var url = ServerUrl(result, server, fallback);
        // http(s)://host:port, or a store's Unix socket: http://unix:/path.
        var client = Logwell.Server.Hosting.ApiWorker.StoreClient(url, TimeSpan.FromMinutes(5),
            (result.GetValue(CaCertOption) ?? Environment.GetEnvironmentVariable("LOGWELL_CA_CERT")) is { Length: > 0 } ca ? ca : trust);
        if ((result.GetValue(ApiKeyOption) ?? Environment.GetEnvironmentVariable("LOGWELL_API_KEY") ?? (useStoredKey ? LoginCommands.KeyFor(url) : null)) is { Length: > 0 } key)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    /// <summary>
    /// <c>--since 15m</c> as the time bound <c>now-15m</c> (null without <c>--since</c>); false after saying why it
    /// cannot be read.
    /// </summary>
    private static bool TryReadSince(string? since, out string? from)
    {
        from = null;
        if (since is null)
        {
            return true;
        }
        if (!TimeExpression.TryParseDuration(since, out _))
        {
            Console.Error.WriteLine($"error: cannot read --since '{since}': use 15m, 1h, 2d");
            return false;
        }
        from = "now-" + since;
        return true;
    }

    public static Command IndexSets(Option<string> server)
    {
        var command = new Command("indexsets", "Create, list, change and delete index sets.");

        var list = new Command("list", "List index sets with their event counts and size on disk.");
        list.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            using var response = await client.GetAsync("api/v1/indexsets", ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"{"NAME",-24} {"RETENTION",9} {"EVENTS",12} {"ON DISK",10} {"SEGMENTS",8}");
            foreach (var set in doc.RootElement.GetProperty("indexsets").EnumerateArray())
            {
                if (set.TryGetProperty("available", out var available) && available.ValueKind == JsonValueKind.False)
                {
                    Console.WriteLine($"{set.GetProperty("name").GetString(),-24} unavailable: {set.GetProperty("error").GetString()}");
                    continue;
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{set.GetProperty("name").GetString(),-24} {set.GetProperty("retention_days").GetInt32() + "d",9} {set.GetProperty("events").GetInt64(),12:N0} {FormatBytes(set.GetProperty("bytes_on_disk").GetInt64()),10} {set.GetProperty("segments").GetInt32(),8}"));
            }
            return 0;
        }));

        var name = new Argument<string>("name") { Description = "index set name: lowercase letters, digits, '-' and '_'" };
        var retention = new Option<int?>("--retention-days") { Description = "days to keep events (default 7)" };
        var create = new Command("create", "Create an index set.") { name, retention };
        create.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            var body = new Dictionary<string, object?> { ["name"] = result.GetValue(name), ["retention_days"] = result.GetValue(retention) };
            using var content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
            using var response = await client.PostAsync("api/v1/indexsets", content, ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"created index set {doc.RootElement.GetProperty("name").GetString()} (retention {doc.RootElement.GetProperty("retention_days").GetInt32()} days)");
            return 0;
        }));

        var deleteName = new Argument<string>("name") { Description = "index set to delete, with all its events" };
        var delete = new Command("delete", "Delete an index set and all its events.") { deleteName };
        delete.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            using var response = await client.DeleteAsync($"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(deleteName)!)}", ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                using var _ = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            }
            Console.WriteLine($"deleted index set {result.GetValue(deleteName)}");
            return 0;
        }));

        var setName = new Argument<string>("name") { Description = "index set to change" };
        var setRetention = new Option<int?>("--retention-days") { Description = "days to keep events" };
        var setArchive = new Option<string?>("--archive-after-days") { Description = "move whole days older than this many days to the archive (Logwell:ArchiveTo); 'off' to stop" };
        var setPatterns = new Option<string?>("--patterns") { Description = "'on' gives each new event the id of its log pattern (the field 'pattern'); 'off' stops it" };
        var set = new Command("set", "Change an index set's retention, archiving or pattern ids.") { setName, setRetention, setArchive, setPatterns };
        set.SetAction((result, ct) => Guard(async () =>
        {
            var body = new Dictionary<string, object?>();
            if (result.GetValue(setRetention) is { } days)
            {
                body["retention_days"] = days;
            }
            if (result.GetValue(setArchive) is { } archive)
            {
                body["archive_after_days"] = archive == "off" ? null
                    : int.TryParse(archive, NumberStyles.None, CultureInfo.InvariantCulture, out var after) ? after
                    : throw new CliException($"--archive-after-days must be a number of days or 'off', not '{archive}'");
            }
            if (result.GetValue(setPatterns) is { } patterns)
            {
                body["patterns"] = patterns switch
                {
                    "on" => true,
                    "off" => false,
                    _ => throw new CliException($"--patterns must be 'on' or 'off', not '{patterns}'"),
                };
            }
            if (body.Count == 0)
            {
                throw new CliException("say what to change: --retention-days, --archive-after-days or --patterns");
            }
            using var client = CreateClient(result, server);
            using var content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
            using var request = new HttpRequestMessage(HttpMethod.Patch, $"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(setName)!)}") { Content = content };
            using var response = await client.SendAsync(request, ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"index set {root.GetProperty("name").GetString()}: retention {root.GetProperty("retention_days").GetInt32()} days, {(root.TryGetProperty("archive_after_days", out var a) ? $"days older than {a.GetInt32()} days move to the archive" : "not archived")}, pattern ids {(root.TryGetProperty("patterns", out var p) && p.GetBoolean() ? "on" : "off")}"));
            return 0;
        }));

        command.Subcommands.Add(list);
        command.Subcommands.Add(create);
        command.Subcommands.Add(set);
        command.Subcommands.Add(delete);
        return command;
    }

    public static Command Pipeline(Option<string> server)
    {
        var command = new Command("pipeline", "Show, set, preview or remove an index set's cleaning pipeline.");
        Option<string> Index() => new("--index") { Description = "index set", Required = true };

        var showIndex = Index();
        var show = new Command("show", "Print the index set's pipeline as JSON (null when it has none).") { showIndex };
        show.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            using var response = await client.GetAsync($"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(showIndex)!)}/pipeline", ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine(JsonSerializer.Serialize(doc.RootElement.GetProperty("pipeline"), IndentedJson));
            return 0;
        }));

        var setIndex = Index();
        var file = new Argument<string>("file") { Description = "the pipeline definition, a JSON file ('-' for standard input)" };
        var set = new Command("set", "Save a pipeline: every event ingested afterwards goes through it.") { setIndex, file };
        set.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            var definition = await ReadTextAsync(result.GetValue(file)!, ct).ConfigureAwait(false);
            using var content = new StringContent(definition, Encoding.UTF8, "application/json");
            using var response = await client.PutAsync($"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(setIndex)!)}/pipeline", content, ct).ConfigureAwait(false);
            using var _ = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"pipeline of {result.GetValue(setIndex)} saved");
            return 0;
        }));

        var previewIndex = Index();
        var previewPipeline = new Option<string?>("--pipeline") { Description = "a definition to try (JSON file); default the saved one" };
        var lines = new Argument<string>("lines") { Description = "sample lines, a file ('-' for standard input)", DefaultValueFactory = _ => "-" };
        var json = new Option<bool>("--json") { Description = "print each event as a JSON line" };
        var preview = new Command("preview", "Run a pipeline over sample lines and print the events they become.") { previewIndex, previewPipeline, lines, json };
        preview.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            var body = new StringBuilder("{\"lines\":");
            var sample = (await ReadTextAsync(result.GetValue(lines)!, ct).ConfigureAwait(false)).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();
            body.Append(JsonSerializer.Serialize(sample));
            if (result.GetValue(previewPipeline) is { } pipelineFile)
            {
                body.Append(",\"pipeline\":").Append(await ReadTextAsync(pipelineFile, ct).ConfigureAwait(false));
            }
            body.Append('}');
            using var content = new StringContent(body.ToString(), Encoding.UTF8, "application/json");
            using var response = await client.PostAsync($"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(previewIndex)!)}/pipeline/preview", content, ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            foreach (var evt in doc.RootElement.GetProperty("events").EnumerateArray())
            {
                PrintHit(evt, result.GetValue(json));
            }
            Console.Error.WriteLine($"{doc.RootElement.GetProperty("events").GetArrayLength()} lines, {doc.RootElement.GetProperty("failed").GetInt32()} failed");
            return 0;
        }));

        var removeIndex = Index();
        var remove = new Command("remove", "Remove the index set's pipeline: events are stored as they arrive.") { removeIndex };
        remove.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            using var response = await client.DeleteAsync($"api/v1/indexsets/{Uri.EscapeDataString(result.GetValue(removeIndex)!)}/pipeline", ct).ConfigureAwait(false);
            using var _ = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"pipeline of {result.GetValue(removeIndex)} removed");
            return 0;
        }));

        command.Subcommands.Add(show);
        command.Subcommands.Add(set);
        command.Subcommands.Add(preview);
        command.Subcommands.Add(remove);
        return command;
    }

    public static Command Queues(Option<string> server)
    {
        var command = new Command("queues", "Show the task queues: pending, delayed, running, failed, dead and done tasks, and the oldest pending task's age.");
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            using var response = await client.GetAsync("api/v1/queues", ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"{"QUEUE",-16} {"PENDING",8} {"DELAYED",8} {"RUNNING",8} {"FAILED",8} {"DEAD",8} {"DONE",10} {"DONE/MIN",9} {"OLDEST",10}");
            foreach (var queue in doc.RootElement.GetProperty("queues").EnumerateArray())
            {
                var oldest = queue.GetProperty("oldest_pending_seconds");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{queue.GetProperty("name").GetString(),-16} {queue.GetProperty("pending").GetInt64(),8} {queue.GetProperty("delayed").GetInt64(),8} {queue.GetProperty("running").GetInt64(),8} {queue.GetProperty("failed").GetInt64(),8} {queue.GetProperty("dead").GetInt64(),8} {queue.GetProperty("done").GetInt64(),10} {queue.GetProperty("done_last_minute").GetInt64(),9} {(oldest.ValueKind == JsonValueKind.Null ? "-" : $"{oldest.GetDouble():0.#}s"),10}"));
            }
            var scheduler = doc.RootElement.GetProperty("scheduler");
            Console.WriteLine(scheduler.ValueKind == JsonValueKind.Null
                ? "scheduler: none active"
                : $"scheduler: {scheduler.GetProperty("holder").GetString()} (lease token {scheduler.GetProperty("token").GetInt64()})");
            return 0;
        }));
        foreach (var (verb, description) in new[] { ("retry", "Put a queue's dead tasks back to pending, with fresh attempts."), ("purge", "Delete a queue's dead tasks.") })
        {
            var queueName = new Argument<string>("queue") { Description = "queue name, such as export" };
            var action = new Command($"{verb}-dead", description) { queueName };
            action.SetAction((result, ct) => Guard(async () =>
            {
                using var client = CreateClient(result, server);
                using var response = await client.PostAsync($"api/v1/queues/{Uri.EscapeDataString(result.GetValue(queueName)!)}/dead/{verb}", null, ct).ConfigureAwait(false);
                using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
                Console.WriteLine($"{doc.RootElement.GetProperty(verb == "retry" ? "retried" : "purged").GetInt64()} dead tasks of {result.GetValue(queueName)} {(verb == "retry" ? "retried" : "purged")}");
                return 0;
            }));
            command.Subcommands.Add(action);
        }
        return command;
    }

    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    private static async Task<string> ReadTextAsync(string path, CancellationToken ct) =>
        path == "-" ? await Console.In.ReadToEndAsync(ct).ConfigureAwait(false) : await File.ReadAllTextAsync(path, ct).ConfigureAwait(false);

    public static Command Ingest(Option<string> server)
    {
        var index = new Option<string>("--index") { Description = "index set to ingest into", Required = true };
        var file = new Argument<string>("file") { Description = "file of JSON lines or plain text lines, or - for standard input" };
        var batchLines = new Option<int>("--batch-lines") { Description = "lines per request", DefaultValueFactory = _ => 20_000 };
        var command = new Command("ingest", "Send a file of JSON lines or text lines to an index set, in batches.") { index, file, batchLines };
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            var path = result.GetValue(file)!;
            await using var input = path == "-" ? Console.OpenStandardInput() : File.OpenRead(path);
            using var reader = new StreamReader(input, Encoding.UTF8);
            var indexName = result.GetValue(index)!;
            var perBatch = Math.Max(1, result.GetValue(batchLines));
            var showProgress = !Console.IsErrorRedirected;
            long accepted = 0, rejected = 0, lineOffset = 0;
            string? contentType = null;
            var batch = new StringBuilder();
            var linesInBatch = 0;
            var started = Settings.Time.GetTimestamp();

            async Task SendAsync()
            {
                if (linesInBatch == 0)
                {
                    return;
                }
                using var content = new StringContent(batch.ToString(), Encoding.UTF8);
                content.Headers.ContentType = new MediaTypeHeaderValue(contentType!);
                using var response = await client.PostAsync($"api/v1/indexsets/{Uri.EscapeDataString(indexName)}/ingest", content, ct).ConfigureAwait(false);
                using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
                accepted += doc.RootElement.GetProperty("accepted").GetInt64();
                rejected += doc.RootElement.GetProperty("rejected").GetInt64();
                foreach (var error in doc.RootElement.GetProperty("errors").EnumerateArray())
                {
                    Console.Error.WriteLine($"line {lineOffset + error.GetProperty("line").GetInt64()}: {error.GetProperty("error").GetString()}");
                }
                lineOffset += linesInBatch;
                batch.Clear();
                linesInBatch = 0;
                if (showProgress)
                {
                    var seconds = Settings.Time.GetElapsedTime(started).TotalSeconds;
                    Console.Error.Write(string.Create(CultureInfo.InvariantCulture, $"\r{accepted:N0} accepted, {rejected:N0} rejected, {accepted / Math.Max(seconds, 0.001):N0} events/s   "));
                }
            }

            while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                if (contentType is null && line.Trim().Length > 0)
                {
                    contentType = line.TrimStart().StartsWith('{') ? "application/x-ndjson" : "text/plain";
                }
                batch.Append(line).Append('\n');
                linesInBatch++;
                if (linesInBatch >= perBatch || batch.Length >= 16 << 20)
                {
                    await SendAsync().ConfigureAwait(false);
                }
            }
            await SendAsync().ConfigureAwait(false);
            if (showProgress)
            {
                Console.Error.WriteLine();
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{accepted} accepted, {rejected} rejected into {indexName}"));
            return rejected > 0 ? 1 : 0;
        }));
        return command;
    }

    public static Command Search(Option<string> server)
    {
        var index = new Option<string>("--index") { Description = "index set to search", DefaultValueFactory = _ => "default" };
        var query = new Argument<string>("query") { Description = "query in Lucene syntax, e.g. 'error AND host:web-*'", DefaultValueFactory = _ => "" };
        var since = new Option<string?>("--since") { Description = "only events newer than this, e.g. 15m, 1h, 2d" };
        var from = new Option<string?>("--from") { Description = "start time: ISO 8601, epoch ms or now-1h" };
        var to = new Option<string?>("--to") { Description = "end time: ISO 8601, epoch ms or now" };
        var limit = new Option<int>("--limit") { Description = "how many events to show", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "print each hit as a JSON line" };
        var sort = new Option<string?>("--sort") { Description = "desc (newest first, the default), asc, or a field: latency:desc" };
        var command = new Command("search", "Search an index set, newest first.") { index, query, since, from, to, limit, json, sort };
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            if (!TryReadSince(result.GetValue(since), out var sinceFrom))
            {
                return 2;
            }
            var fromValue = sinceFrom ?? result.GetValue(from);
            var url = new StringBuilder("api/v1/search?indexset=").Append(Uri.EscapeDataString(result.GetValue(index)!))
                .Append("&q=").Append(Uri.EscapeDataString(result.GetValue(query) ?? ""))
                .Append("&limit=").Append(result.GetValue(limit).ToString(CultureInfo.InvariantCulture));
            if (fromValue is not null)
            {
                url.Append("&from=").Append(Uri.EscapeDataString(fromValue));
            }
            if (result.GetValue(to) is { } toValue)
            {
                url.Append("&to=").Append(Uri.EscapeDataString(toValue));
            }
            if (result.GetValue(sort) is { } sortValue)
            {
                url.Append("&sort=").Append(Uri.EscapeDataString(sortValue));
            }
            using var response = await client.GetAsync(url.ToString(), ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            if (root.TryGetProperty("columns", out var columns))
            {
                PrintTable(columns, root.GetProperty("rows"), result.GetValue(json));
                return 0;
            }
            foreach (var hit in root.GetProperty("hits").EnumerateArray())
            {
                PrintHit(hit, result.GetValue(json));
            }
            if (!result.GetValue(json))
            {
                var total = root.GetProperty("total").GetInt64();
                var exact = root.GetProperty("total_is_exact").GetBoolean();
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{root.GetProperty("hits").GetArrayLength()} shown of {(exact ? "" : "at least ")}{total:N0} matching ({root.GetProperty("took_ms").GetDouble():0.#} ms)"));
            }
            return 0;
        }));
        return command;
    }

    public static Command Export(Option<string> server)
    {
        var index = new Option<string>("--index") { Description = "index set to export", DefaultValueFactory = _ => "default" };
        var query = new Argument<string>("query") { Description = "query in Lucene syntax (no pipes)", DefaultValueFactory = _ => "" };
        var since = new Option<string?>("--since") { Description = "only events newer than this, e.g. 15m, 1h, 2d" };
        var from = new Option<string?>("--from") { Description = "start time: ISO 8601, epoch ms or now-1h" };
        var to = new Option<string?>("--to") { Description = "end time: ISO 8601, epoch ms or now" };
        var fields = new Option<string?>("--fields") { Description = "columns, comma-separated (t is the time, message the message)" };
        var format = new Option<string>("--format") { Description = "csv or ndjson", DefaultValueFactory = _ => "csv" };
        var wait = new Option<bool>("--wait") { Description = "wait for the export, showing progress, then download it" };
        var output = new Option<string?>("--output", "-o") { Description = "with --wait: the file to write (default logwell-export-ID.FORMAT.gz)" };
        var command = new Command("export", "Start an asynchronous export of the matching events (newest first) to a gzip file on the node.")
        {
            index, query, since, from, to, fields, format, wait, output,
        };
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            if (!TryReadSince(result.GetValue(since), out var sinceFrom))
            {
                return 2;
            }
            var fromValue = sinceFrom ?? result.GetValue(from);
            var body = JsonSerializer.Serialize(new Dictionary<string, string?>
            {
                ["indexset"] = result.GetValue(index),
                ["q"] = result.GetValue(query) ?? "",
                ["from"] = fromValue,
                ["to"] = result.GetValue(to),
                ["fields"] = result.GetValue(fields),
                ["format"] = result.GetValue(format),
            });
            using var created = await client.PostAsync("api/v1/exports", new StringContent(body, Encoding.UTF8, "application/json"), ct).ConfigureAwait(false);
            using var record = await ReadOrFailAsync(created, ct).ConfigureAwait(false);
            var id = record.RootElement.GetProperty("id").GetString()!;
            if (!result.GetValue(wait))
            {
                Console.WriteLine(id);
                Console.Error.WriteLine($"export {id} queued; follow it with GET /api/v1/exports/{id}");
                return 0;
            }
            string state;
            while (true)
            {
                using var shown = await client.GetAsync($"api/v1/exports/{id}", ct).ConfigureAwait(false);
                using var doc = await ReadOrFailAsync(shown, ct).ConfigureAwait(false);
                var root = doc.RootElement;
                state = root.GetProperty("state").GetString()!;
                var percent = root.GetProperty("percent");
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"export {id}: {state}, {root.GetProperty("events_written").GetInt64():N0} events{(percent.ValueKind == JsonValueKind.Number ? $" ({percent.GetDouble():0.#}%)" : "")}"));
                if (state is "done" or "failed" or "expired")
                {
                    if (state == "failed")
                    {
                        throw new CliException($"export {id} failed: {root.GetProperty("error").GetString()}");
                    }
                    if (root.GetProperty("truncated").GetBoolean())
                    {
                        Console.Error.WriteLine($"export {id}: more events matched than one export holds; the file has the newest {root.GetProperty("events_written").GetInt64():N0}");
                    }
                    break;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500), Settings.Time, ct).ConfigureAwait(false);
            }
            if (state != "done")
            {
                throw new CliException($"export {id} is {state}");
            }
            var path = result.GetValue(output) ?? $"logwell-export-{id}.{result.GetValue(format)}.gz";
            using var download = await client.GetAsync($"api/v1/exports/{id}/download", HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (!download.IsSuccessStatusCode)
            {
                using var _ = await ReadOrFailAsync(download, ct).ConfigureAwait(false);
            }
            var temporary = path + ".part";
            await using (var file = File.Create(temporary))
            {
                await download.Content.CopyToAsync(file, ct).ConfigureAwait(false);
            }
            File.Move(temporary, path, overwrite: true);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"export {id}: {new FileInfo(path).Length:N0} bytes written to {path}"));
            return 0;
        }));
        return command;
    }

    public static Command Nodes(Option<string> server)
    {
        var command = new Command("nodes", "List the registered nodes with their health (passing, or critical when their heartbeats stopped).");
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            using var response = await client.GetAsync("api/v1/nodes", ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            Console.WriteLine($"{"ID",-28} {"ADDRESS",-22} {"ROLE",-6} {"VERSION",-10} {"HEALTH",-9} LAST HEARTBEAT");
            foreach (var node in doc.RootElement.GetProperty("nodes").EnumerateArray())
            {
                var address = $"{node.GetProperty("address").GetString()}:{node.GetProperty("port").GetInt32()}";
                Console.WriteLine($"{node.GetProperty("id").GetString(),-28} {address,-22} {node.GetProperty("role").GetString(),-6} {node.GetProperty("version").GetString(),-10} {node.GetProperty("health").GetString(),-9} {node.GetProperty("heartbeat_at").GetString()}");
            }
            return 0;
        }));
        return command;
    }

    public static Command Tail(Option<string> server)
    {
        var index = new Option<string>("--index") { Description = "index set to follow", DefaultValueFactory = _ => "default" };
        var query = new Argument<string>("query") { Description = "only events matching this query, e.g. 'level:ERROR'", DefaultValueFactory = _ => "" };
        var json = new Option<bool>("--json") { Description = "print each event as a JSON line" };
        var command = new Command("tail", "Follow an index set: print matching events as they arrive, until Ctrl-C.") { index, query, json };
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            client.Timeout = Timeout.InfiniteTimeSpan;
            var url = "api/v1/tail?indexset=" + Uri.EscapeDataString(result.GetValue(index)!) + "&q=" + Uri.EscapeDataString(result.GetValue(query) ?? "");
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                (await ReadOrFailAsync(response, ct).ConfigureAwait(false)).Dispose();
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
            string? eventName = null;
            try
            {
                while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
                {
                    if (line.StartsWith("event: ", StringComparison.Ordinal))
                    {
                        eventName = line["event: ".Length..];
                    }
                    else if (line.StartsWith("data: ", StringComparison.Ordinal))
                    {
                        using var data = JsonDocument.Parse(line["data: ".Length..]);
                        if (eventName is not null)
                        {
                            throw new CliException($"tail ended: {data.RootElement.GetProperty("error").GetString()}");
                        }
                        PrintHit(data.RootElement, result.GetValue(json));
                    }
                    else if (line.Length == 0)
                    {
                        eventName = null;
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return 0;
            }
            throw new CliException("the node closed the tail");
        }));
        return command;
    }

    public static Command Fields(Option<string> server)
    {
        var index = new Option<string>("--index") { Description = "index set to look at", DefaultValueFactory = _ => "default" };
        var query = new Argument<string>("query") { Description = "only events matching this query", DefaultValueFactory = _ => "" };
        var since = new Option<string?>("--since") { Description = "only events newer than this, e.g. 15m, 1h, 2d" };
        var command = new Command("fields", "List the fields of the matching events with their types and most frequent values.") { index, query, since };
        command.SetAction((result, ct) => Guard(async () =>
        {
            using var client = CreateClient(result, server);
            var url = new StringBuilder("api/v1/fields?indexset=").Append(Uri.EscapeDataString(result.GetValue(index)!))
                .Append("&q=").Append(Uri.EscapeDataString(result.GetValue(query) ?? ""));
            if (!TryReadSince(result.GetValue(since), out var sinceFrom))
            {
                return 2;
            }
            if (sinceFrom is not null)
            {
                url.Append("&from=").Append(Uri.EscapeDataString(sinceFrom));
            }
            using var response = await client.GetAsync(url.ToString(), ct).ConfigureAwait(false);
            using var doc = await ReadOrFailAsync(response, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            Console.WriteLine($"{"FIELD",-30} {"EVENTS",8}  {"TYPES",-16} TOP VALUES");
            foreach (var field in root.GetProperty("fields").EnumerateArray())
            {
                var types = string.Join(",", field.GetProperty("types").EnumerateArray().Select(t => t.GetString()));
                var top = string.Join("  ", field.GetProperty("top").EnumerateArray().Select(v => $"{v.GetProperty("value").GetString()} ({v.GetProperty("count").GetInt64()})"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{field.GetProperty("name").GetString(),-30} {field.GetProperty("count").GetInt64(),8}  {types,-16} {top}"));
            }
            Console.Error.WriteLine(root.GetProperty("sampled").GetBoolean()
                ? string.Create(CultureInfo.InvariantCulture, $"from the newest {root.GetProperty("events").GetInt64():N0} matching events")
                : string.Create(CultureInfo.InvariantCulture, $"from all {root.GetProperty("events").GetInt64():N0} matching events"));
            return 0;
        }));
        return command;
    }

    /// <summary>A pipeline's table: aligned columns (numbers to the right), or one JSON object per row.</summary>
    private static void PrintTable(JsonElement columns, JsonElement rows, bool json)
    {
        var names = columns.EnumerateArray().Select(c => c.GetString() ?? "").ToArray();
        var cells = rows.EnumerateArray().Select(r => r.EnumerateArray().ToArray()).ToList();
        if (json)
        {
            foreach (var row in cells)
            {
                var line = new StringBuilder("{");
                for (var i = 0; i < names.Length; i++)
                {
                    line.Append(i == 0 ? "" : ",").Append(JsonSerializer.Serialize(names[i])).Append(':').Append(row[i].GetRawText());
                }
                Console.WriteLine(line.Append('}'));
            }
            return;
        }
        static string Text(JsonElement cell) => cell.ValueKind switch
        {
            JsonValueKind.String => cell.GetString()!,
            JsonValueKind.Null => "",
            _ => cell.GetRawText(),
        };
        var widths = names.Select((name, i) => Math.Max(name.Length, cells.Count == 0 ? 0 : cells.Max(r => Text(r[i]).Length))).ToArray();
        var numeric = names.Select((_, i) => cells.Count > 0 && cells.All(r => r[i].ValueKind is JsonValueKind.Number or JsonValueKind.Null)).ToArray();
        string Line(IEnumerable<string> values) => string.Join("  ", values.Select((v, i) => numeric[i] ? v.PadLeft(widths[i]) : v.PadRight(widths[i]))).TrimEnd();
        Console.WriteLine(Line(names));
        foreach (var row in cells)
        {
            Console.WriteLine(Line(row.Select(Text)));
        }
    }

    /// <summary>One hit as a line: its time, message and fields (the pattern id only with --json); or its JSON.</summary>
    private static void PrintHit(JsonElement hit, bool json)
    {
        if (json)
        {
            Console.WriteLine(hit.GetRawText());
            return;
        }
        var extra = new StringBuilder();
        foreach (var field in hit.GetProperty("fields").EnumerateObject())
        {
            if (field.Name == Logwell.Core.Patterns.PatternTagger.Field)
            {
                continue;
            }
            extra.Append(' ').Append(field.Name).Append('=').Append(field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString() : field.Value.GetRawText());
        }
        Console.WriteLine($"{hit.GetProperty("t").GetString()} {hit.GetProperty("message").GetString()}{extra}");
    }

    internal static async Task<JsonDocument> ReadOrFailAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new CliException($"{(int)response.StatusCode} {response.ReasonPhrase}: {ErrorText(text)}");
        }
        return JsonDocument.Parse(text);
    }

    /// <summary>The message of a node's JSON error (with what was expected), or the text as it came.</summary>
    internal static string ErrorText(string text)
    {
        try
        {
            using var error = JsonDocument.Parse(text);
            var message = error.RootElement.GetProperty("error").GetString() ?? text;
            if (error.RootElement.TryGetProperty("expected", out var expected))
            {
                message += $" (expected {expected.GetString()})";
            }
            return message;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return text;
        }
    }

    internal static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (CliException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (HttpRequestException e)
        {
            Console.Error.WriteLine($"error: cannot reach the Logwell node: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException or UnauthorizedAccessException
            || (e is ArgumentException and not ArgumentOutOfRangeException and not ArgumentNullException))
        {
            // What the command was told or found on disk does not hold (a damaged backup, a bad path): said, not a trace.
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KiB"),
        < 1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB"),
    };

    private sealed class CliException(string message) : Exception(message);
}
