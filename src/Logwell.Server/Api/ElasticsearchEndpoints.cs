using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Logwell.Storage;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// The part of the Elasticsearch API that log shippers use: the bulk endpoint, single documents, and the read-only
/// calls they make before sending (<c>GET /</c>, <c>/_cluster/health</c>, <c>/_license</c>, templates). Answers carry
/// the <c>X-Elastic-Product</c> header that Elasticsearch clients check. Index names map to index sets by
/// <see cref="LogwellOptions.ElasticsearchIndexPattern"/>.
/// </summary>
internal static class ElasticsearchEndpoints
{
    /// <summary>The Elasticsearch version Logwell answers as: shippers choose their protocol by its major.</summary>
    public const string CompatibleVersion = "8.17.0";

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/_cluster/health", HealthAsync).WithMetadata(Permission.Authenticated);
        routes.MapGet("/_license", LicenseAsync).WithMetadata(Permission.Authenticated);
        foreach (var kind in new[] { "_index_template", "_template", "_component_template" })
        {
            routes.MapMethods($"/{kind}/{{name}}", ["GET", "HEAD"], TemplateMissingAsync).WithMetadata(Permission.Authenticated);
            routes.MapMethods($"/{kind}/{{name}}", ["PUT", "POST"], TemplateRefusedAsync).WithMetadata(Permission.Authenticated);
        }
        routes.MapMethods("/_bulk", ["POST", "PUT"], context => BulkAsync(context, null)).WithMetadata(Permission.InRequest(Actions.Ingest));
        routes.MapMethods("/{index}/_bulk", ["POST", "PUT"], (HttpContext context, string index) => BulkAsync(context, index)).WithMetadata(Permission.InRequest(Actions.Ingest));
        routes.MapPost("/{index}/_doc", (HttpContext context, string index) => DocumentAsync(context, index, "index")).WithMetadata(Permission.InRequest(Actions.Ingest));
        routes.MapMethods("/{index}/_doc/{id}", ["POST", "PUT"], (HttpContext context, string index) => DocumentAsync(context, index, "index")).WithMetadata(Permission.InRequest(Actions.Ingest));
        routes.MapMethods("/{index}/_create/{id}", ["POST", "PUT"], (HttpContext context, string index) => DocumentAsync(context, index, "create")).WithMetadata(Permission.InRequest(Actions.Ingest));
    }

    /// <summary><c>GET /</c> for Elasticsearch clients (a browser gets the web UI there).</summary>
    internal static Task InfoAsync(HttpContext context) => WriteAsync(context, 200, writer =>
    {
        writer.WriteString("name", Environment.MachineName);
        writer.WriteString("cluster_name", "logwell");
        writer.WriteString("cluster_uuid", "logwell");
        writer.WriteStartObject("version");
        writer.WriteString("number", CompatibleVersion);
        writer.WriteString("build_flavor", "default");
        writer.WriteString("build_type", "logwell");
        writer.WriteString("lucene_version", "9.12.0");
        writer.WriteString("minimum_wire_compatibility_version", "7.17.0");
        writer.WriteString("minimum_index_compatibility_version", "7.0.0");
        writer.WriteEndObject();
        writer.WriteString("tagline", "Logwell: the Elasticsearch bulk API for log shippers");
        writer.WriteString("api", "/api/v1");
    });

    private static Task HealthAsync(HttpContext context) => WriteAsync(context, 200, writer =>
    {
        var engine = context.RequestServices.GetLogStore();
        writer.WriteString("cluster_name", "logwell");
        writer.WriteString("status", "green");
        writer.WriteBoolean("timed_out", false);
        writer.WriteNumber("number_of_nodes", 1);
        writer.WriteNumber("number_of_data_nodes", 1);
        writer.WriteNumber("active_primary_shards", engine.Names().Count);
        writer.WriteNumber("active_shards", engine.Names().Count);
        writer.WriteNumber("relocating_shards", 0);
        writer.WriteNumber("initializing_shards", 0);
        writer.WriteNumber("unassigned_shards", 0);
        writer.WriteNumber("active_shards_percent_as_number", 100.0);
    });

    private static Task LicenseAsync(HttpContext context) => WriteAsync(context, 200, writer =>
    {
        writer.WriteStartObject("license");
        writer.WriteString("status", "active");
        writer.WriteString("uid", "logwell");
        writer.WriteString("type", "basic");
        writer.WriteString("issued_to", "logwell");
        writer.WriteString("issuer", "logwell");
        writer.WriteNumber("max_nodes", 1000);
        writer.WriteEndObject();
    });

    private static Task TemplateMissingAsync(HttpContext context, string name) =>
        WriteErrorAsync(context, 404, "resource_not_found_exception", $"index template [{name}] not found: Logwell keeps no index templates");

    private static Task TemplateRefusedAsync(HttpContext context, string name) =>
        WriteErrorAsync(context, 400, "illegal_argument_exception",
            $"index template [{name}] refused: Logwell keeps no index templates or mappings (fields take their types as events arrive); turn template management off in the shipper, e.g. setup.template.enabled: false or manage_template => false");

    /// <summary>One item of a bulk request: where it goes, and once handled, its answer.</summary>
    private sealed class Item(string action, string? index)
    {
        public string Action { get; } = action;
        public string? Index { get; } = index;
        public int Status { get; set; }
        public string? ErrorType { get; set; }
        public string? Reason { get; set; }
        public LogEvent? Event { get; set; }
    }

    private static async Task BulkAsync(HttpContext context, string? pathIndex)
    {
        var time = context.RequestServices.GetTime();
        var started = time.GetTimestamp();
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var (body, length, bodyError) = await RequestBodies.ReadAsync(context, options.MaxBodyBytes, pooled: true).ConfigureAwait(false);
        if (body is null)
        {
            await WriteErrorAsync(context, bodyError!.Status, bodyError.Status == 413 ? "content_too_long_exception" : "illegal_argument_exception", bodyError.Message).ConfigureAwait(false);
            return;
        }
        var received = time.GetUtcNow();
        var span = body.AsSpan(0, length);
        var lines = EventDecoder.EnumerateLines(span);
        var items = new List<Item>(lines.Count / 2);
        var documents = new EventDecoder.DocumentDecoder();
        for (var n = 0; n < lines.Count; n++)
        {
            var line = span.Slice(lines[n].Start, lines[n].Length);
            if (EventDecoder.IsBlank(line))
            {
                continue;
            }
            if (!TryReadAction(line, out var action, out var index, out var actionError))
            {
                // The pairing of actions and documents is lost: Elasticsearch refuses the whole request, and so
                // does Logwell, before storing anything.
                await WriteErrorAsync(context, 400, "illegal_argument_exception", $"Malformed action/metadata line [{n + 1}]: {actionError}").ConfigureAwait(false);
                return;
            }
            var item = new Item(action, index ?? pathIndex);
            items.Add(item);
            if (action == "delete")
            {
                Fail(item, 400, "illegal_argument_exception", "Logwell keeps logs append-only: bulk 'delete' is not supported (expire events by retention)");
                continue;
            }
            // index, create and update carry a document on the next line.
            n++;
            if (n >= lines.Count || EventDecoder.IsBlank(span.Slice(lines[n].Start, lines[n].Length)))
            {
                await WriteErrorAsync(context, 400, "illegal_argument_exception", $"The bulk request must be terminated by a newline [\\n]: action on line [{n}] has no document").ConfigureAwait(false);
                return;
            }
            if (action == "update")
            {
                Fail(item, 400, "illegal_argument_exception", "Logwell keeps logs append-only: bulk 'update' is not supported");
                continue;
            }
            if (lines[n].Length > options.MaxLineBytes)
            {
                Fail(item, 400, "document_parsing_exception", $"line [{n + 1}]: {EventDecoder.LineTooLong(lines[n].Length, options.MaxLineBytes)}");
            }
            else if (documents.TryDecode(span.Slice(lines[n].Start, lines[n].Length), received, out var evt, out var error))
            {
                item.Event = evt;
            }
            else
            {
                Fail(item, 400, "document_parsing_exception", $"line [{n + 1}]: {error}");
            }
        }

        await StoreAsync(context, options, items).ConfigureAwait(false);

        var errors = items.Any(i => i.Status >= 300);
        var filter = ResponseFilter.Parse(context.Request.Query["filter_path"].ToString());
        await WriteAsync(context, 200, writer =>
        {
            if (filter.Includes("took"))
            {
                writer.WriteNumber("took", (long)time.GetElapsedTime(started).TotalMilliseconds);
            }
            if (filter.Includes("errors"))
            {
                writer.WriteBoolean("errors", errors);
            }
            if (filter.IncludesItems)
            {
                writer.WriteStartArray("items");
                foreach (var item in items)
                {
                    writer.WriteStartObject();
                    WriteItem(writer, item, filter);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            }
        }).ConfigureAwait(false);
    }

    private static async Task DocumentAsync(HttpContext context, string index, string action)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var (body, length, bodyError) = await RequestBodies.ReadAsync(context, options.MaxBodyBytes, pooled: true).ConfigureAwait(false);
        if (body is null)
        {
            await WriteErrorAsync(context, bodyError!.Status, bodyError.Status == 413 ? "content_too_long_exception" : "illegal_argument_exception", bodyError.Message).ConfigureAwait(false);
            return;
        }
        var item = new Item(action, index);
        if (new EventDecoder.DocumentDecoder().TryDecode(body.AsSpan(0, length), context.RequestServices.GetTime().GetUtcNow(), out var evt, out var error))
        {
            item.Event = evt;
        }
        else
        {
            Fail(item, 400, "document_parsing_exception", error);
        }
        await StoreAsync(context, options, [item]).ConfigureAwait(false);
        if (item.Status >= 300)
        {
            if (item.Status == StatusCodes.Status429TooManyRequests)
            {
                context.Response.Headers.RetryAfter = ErrorResponses.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            }
            await WriteErrorAsync(context, item.Status, item.ErrorType!, item.Reason!).ConfigureAwait(false);
            return;
        }
        await WriteAsync(context, item.Status, writer => WriteResult(writer, item, ResponseFilter.Parse(context.Request.Query["filter_path"].ToString()))).ConfigureAwait(false);
    }

    /// <summary>Appends the items' events to their index sets and records each item's status.</summary>
    private static async Task StoreAsync(HttpContext context, LogwellOptions options, List<Item> items)
    {
        var engine = context.RequestServices.GetLogStore();
        var pattern = IndexPattern(options);
        // Per index name: its index set's store, or why its items fail.
        var batches = new Dictionary<string, (ILogIndexSet? Store, List<Item> Items, int Status, string Type, string Reason)>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (item.Event is null)
            {
                continue;
            }
            if (string.IsNullOrEmpty(item.Index))
            {
                Fail(item, 400, "action_request_validation_exception", "Validation Failed: 1: index is missing;");
                continue;
            }
            if (!batches.TryGetValue(item.Index, out var batch))
            {
                var name = IndexSetOf(item.Index, pattern);
                if (!IndexSetName.IsValid(name, out var nameError))
                {
                    batch = (null, [], 400, "invalid_index_name_exception", $"index [{item.Index}] maps to index set '{name}': {nameError}");
                }
                else if (!context.Allows(Actions.Ingest, name))
                {
                    // Checked before the index set is created: a caller that may not write to it may not make it either.
                    batch = (null, [], 403, "security_exception", $"index [{item.Index}]: {Access.DeniedMessage(context, Actions.Ingest, "indexset:" + name)}");
                }
                else
                {
                    ILogIndexSet? store = engine.TryGet(name, out var existing) ? existing
                        : options.AutoCreateIndexSets ? await engine.GetOrCreateAsync(name).ConfigureAwait(false)
                        : null;
                    batch = store is not null
                        ? (store, [], 0, "", "")
                        : (null, [], 404, "index_not_found_exception", $"no such index [{item.Index}]: index set '{name}' does not exist (create it with POST /api/v1/indexsets)");
                }
                batches[item.Index] = batch;
            }
            if (batch.Store is null)
            {
                Fail(item, batch.Status, batch.Type, batch.Reason);
                continue;
            }
            if (batch.Items.Count == 0 && batch.Store.IsBackedUp)
            {
                // Shippers retry items refused with 429.
                batch = (null, [], 429, "es_rejected_execution_exception", ErrorResponses.BackedUpMessage(batch.Store.Name));
                batches[item.Index] = batch;
                Fail(item, batch.Status, batch.Type, batch.Reason);
                continue;
            }
            batch.Items.Add(item);
        }
        foreach (var (store, batchItems, _, _, _) in batches.Values)
        {
            if (store is null || batchItems.Count == 0)
            {
                continue;
            }
            // The index set's cleaning pipeline replaces events in the list: read them back from it.
            var events = batchItems.Select(i => i.Event!).ToList();
            if (await IngestPath.AppendAsync(context, store, events).ConfigureAwait(false) is { } failed)
            {
                batchItems.ForEach(item => Fail(item, failed.Status, failed.Status == 404 ? "index_not_found_exception" : "unavailable_shards_exception", failed.Message));
                continue;
            }
            for (var i = 0; i < batchItems.Count; i++)
            {
                batchItems[i].Event = events[i];
                batchItems[i].Status = 201;
            }
        }
    }

    private static void Fail(Item item, int status, string type, string reason)
    {
        item.Status = status;
        item.ErrorType = type;
        item.Reason = reason;
        item.Event = null;
    }

    private static void WriteItem(Utf8JsonWriter writer, Item item, ResponseFilter filter)
    {
        writer.WriteStartObject(item.Action);
        if (item.Status >= 300)
        {
            if (filter.IncludesItem("_index"))
            {
                writer.WriteString("_index", item.Index);
            }
            if (filter.IncludesItem("_id"))
            {
                writer.WriteNull("_id");
            }
            if (filter.IncludesItem("status"))
            {
                writer.WriteNumber("status", item.Status);
            }
            if (filter.IncludesItem("error"))
            {
                writer.WriteStartObject("error");
                writer.WriteString("type", item.ErrorType);
                writer.WriteString("reason", item.Reason);
                writer.WriteEndObject();
            }
        }
        else
        {
            WriteResult(writer, item, filter);
        }
        writer.WriteEndObject();
    }

    private static void WriteResult(Utf8JsonWriter writer, Item item, ResponseFilter filter)
    {
        if (filter.IncludesItem("_index"))
        {
            writer.WriteString("_index", item.Index);
        }
        if (filter.IncludesItem("_id"))
        {
            writer.WriteString("_id", JsonOutput.FormatId(item.Event!.Seq));
        }
        if (filter.IncludesItem("_version"))
        {
            writer.WriteNumber("_version", 1);
        }
        if (filter.IncludesItem("result"))
        {
            writer.WriteString("result", "created");
        }
        if (filter.IncludesItem("_shards"))
        {
            writer.WriteStartObject("_shards");
            writer.WriteNumber("total", 1);
            writer.WriteNumber("successful", 1);
            writer.WriteNumber("failed", 0);
            writer.WriteEndObject();
        }
        if (filter.IncludesItem("_seq_no"))
        {
            writer.WriteNumber("_seq_no", item.Event!.Seq);
        }
        if (filter.IncludesItem("_primary_term"))
        {
            writer.WriteNumber("_primary_term", 1);
        }
        if (filter.IncludesItem("status"))
        {
            writer.WriteNumber("status", item.Status);
        }
    }

    /// <summary>
    /// Elasticsearch's <c>filter_path</c> as shippers use it on bulk answers (<c>errors,items.*.error,items.*.status</c>):
    /// top-level names, and names under <c>items.*.</c>; no filter keeps everything.
    /// </summary>
    private sealed class ResponseFilter
    {
        private readonly HashSet<string>? _top;
        private readonly HashSet<string>? _item;

        private ResponseFilter(HashSet<string>? top, HashSet<string>? item)
        {
            _top = top;
            _item = item;
        }

        public static ResponseFilter Parse(string text)
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                return new ResponseFilter(null, null);
            }
            var top = new HashSet<string>(StringComparer.Ordinal);
            HashSet<string>? item = [];
            foreach (var path in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = path.Split('.');
                top.Add(parts[0]);
                if (parts[0] is "items" or "*")
                {
                    if (parts.Length <= 2 || parts[2] == "*")
                    {
                        item = null;
                    }
                    else
                    {
                        item?.Add(parts[2]);
                    }
                }
            }
            return new ResponseFilter(top, item);
        }

        public bool Includes(string name) => _top is null || _top.Contains(name) || _top.Contains("*");

        public bool IncludesItems => Includes("items");

        public bool IncludesItem(string name) => _item is null || _item.Contains(name);
    }

    /// <summary>Reads <c>{"index": {"_index": "logs", ...}}</c> (or create, update, delete).</summary>
    private static bool TryReadAction(ReadOnlySpan<byte> line, out string action, out string? index, out string error)
    {
        action = "";
        index = null;
        error = "";
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject || !reader.Read() || reader.TokenType != JsonTokenType.PropertyName)
            {
                error = "expected an object with one action: index, create, update or delete";
                return false;
            }
            action = reader.GetString()!;
            if (action is not ("index" or "create" or "update" or "delete"))
            {
                error = $"unknown action [{action}]: use index, create, update or delete";
                return false;
            }
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = $"action [{action}] must hold an object, such as {{\"_index\": \"logs\"}}";
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                if (name == "_index" && reader.TokenType == JsonTokenType.String)
                {
                    index = reader.GetString();
                }
                else
                {
                    reader.Skip();
                }
            }
            if (!reader.Read() || reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                error = "expected one action per line";
                return false;
            }
            return true;
        }
        catch (JsonException e)
        {
            error = $"invalid JSON at column {(e.BytePositionInLine ?? 0) + 1}";
            return false;
        }
        catch (InvalidOperationException)
        {
            error = "the action holds a string that is not valid text (an unpaired surrogate escape such as \\ud800)";
            return false;
        }
    }

    private static readonly Dictionary<string, Regex> Patterns = [];

    private static Regex IndexPattern(LogwellOptions options)
    {
        lock (Patterns)
        {
            if (!Patterns.TryGetValue(options.ElasticsearchIndexPattern, out var regex))
            {
                regex = new Regex(options.ElasticsearchIndexPattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
                Patterns[options.ElasticsearchIndexPattern] = regex;
            }
            return regex;
        }
    }

    /// <summary>The index set of an index name: the pattern's <c>name</c> group when it matches, else the whole name.</summary>
    internal static string IndexSetOf(string index, Regex pattern) =>
        pattern.Match(index) is { Success: true } match && match.Groups["name"] is { Success: true } name ? name.Value : index;

    private static Task WriteErrorAsync(HttpContext context, int status, string type, string reason) => WriteAsync(context, status, writer =>
    {
        writer.WriteStartObject("error");
        writer.WriteStartArray("root_cause");
        writer.WriteStartObject();
        writer.WriteString("type", type);
        writer.WriteString("reason", reason);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteString("type", type);
        writer.WriteString("reason", reason);
        writer.WriteEndObject();
        writer.WriteNumber("status", status);
    });

    private static async Task WriteAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=UTF-8";
        context.Response.Headers["X-Elastic-Product"] = "Elasticsearch";
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }
        // Into the response's pipe, whose buffers are pooled: a bulk answer of an item per event is hundreds of
        // kilobytes, which a writer over the body stream would gather in arrays grown by doubling first.
        var body = context.Response.BodyWriter;
        using (var writer = new Utf8JsonWriter(body, JsonOutput.WriterOptions))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }
        await body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
