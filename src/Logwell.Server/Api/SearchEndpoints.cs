using System.Globalization;
using System.Text.Json;
using Logwell.Storage;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Core.Time;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Logwell.Server.Tasks;
using Logwell.Storage.Engine;
using Logwell.Storage.Querying;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary><c>GET|POST /api/v1/search</c>: newest first, paged by cursor, as JSON or streamed NDJSON.</summary>
internal static class SearchEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/search", SearchFromQueryAsync).WithMetadata(Permission.InRequest(Actions.Search));
        routes.MapPost("/api/v1/search", SearchFromBodyAsync).WithMetadata(Permission.InRequest(Actions.Search));
    }

    private sealed record SearchParameters(string? IndexSet, string? Query, string? From, string? To, string? Limit, string? Cursor, string? TrackTotalHits, string? Filters, string? Timeout, string? Sort, string? DefaultOperator);

    private static Task SearchFromQueryAsync(HttpContext context)
    {
        var q = context.Request.Query;
        return SearchAsync(context, new SearchParameters(q["indexset"], q["q"], q["from"], q["to"], q["limit"], q["cursor"], q["track_total_hits"], q["filters"], q["timeout"], q["sort"], q["default_operator"]));
    }

    private static async Task SearchFromBodyAsync(HttpContext context)
    {
        var body = await RequestBodies.ReadJsonOrAnswerAsync(context, 1 << 20).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }
        using var _ = body;
        if (body.RootElement.ValueKind != JsonValueKind.Object)
        {
            await ErrorResponses.WriteAsync(context, 400, "expected a JSON object such as {\"indexset\": \"default\", \"q\": \"error\"}").ConfigureAwait(false);
            return;
        }
        string? Read(string name) => body.RootElement.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.Null => null,
            _ => value.GetRawText(),
        } : null;
        await SearchAsync(context, new SearchParameters(Read("indexset"), Read("q"), Read("from"), Read("to"), Read("limit"), Read("cursor"), Read("track_total_hits"), Read("filters"), Read("timeout"), Read("sort"), Read("default_operator"))).ConfigureAwait(false);
    }

    /// <summary>What every search-like request names: the index set, the query with its filters, the time window.</summary>
    internal sealed record Selection(ILogIndexSet Store, QueryNode Query, long? From, long? To)
    {
        /// <summary>How long the work may take: the request's <c>timeout</c>, else the node's setting.</summary>
        public TimeSpan Timeout { get; init; }

        /// <summary>The stages after <c>|</c> (only the search runs them).</summary>
        public IReadOnlyList<PipeStage> Stages { get; init; } = [];

        /// <summary>The masking rules the caller reads the index set through (null: values as stored).</summary>
        public ReadMask? Mask { get; init; }

        /// <summary>An event as the caller may read it.</summary>
        public LogEvent Shown(LogEvent evt) => Mask is null ? evt : Mask.Apply(evt);
    }

    /// <summary>
    /// Reads the selection, or answers the client's mistake (400, 404) and returns null. The default operator comes from
    /// <paramref name="defaultOperatorText"/> (a POST body's), else the URL's <c>default_operator</c>, else the setting.
    /// </summary>
    /// <param name="action">What the caller does with the selection (search, export): they need it on the index set,
    /// and see only the events the filters of the grants that give it match.</param>
    internal static async Task<Selection?> ReadSelectionAsync(HttpContext context, string? indexSetName, string? q, string? filterJson, string? fromText, string? toText, string? timeoutText, bool pipesAllowed = false, string? defaultOperatorText = null, string action = Actions.Search)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var timeout = TimeSpan.FromSeconds(options.SearchTimeoutSeconds);
        if (!string.IsNullOrEmpty(timeoutText))
        {
            if (!double.TryParse(timeoutText, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds >= 0.001) || seconds > options.MaxSearchTimeoutSeconds)
            {
                await ErrorResponses.WriteAsync(context, 400, $"'timeout' must be a number of seconds from 0.001 to {options.MaxSearchTimeoutSeconds}").ConfigureAwait(false);
                return null;
            }
            timeout = TimeSpan.FromSeconds(seconds);
        }
        var engine = context.RequestServices.GetLogStore();
        var indexSet = string.IsNullOrEmpty(indexSetName) ? IndexSetName.Default : indexSetName;
        // For the audit log's entry, wherever the request carried them (the query string or a JSON body).
        context.Items[AuditLog.IndexSetKey] = indexSet;
        if (q is not null)
        {
            context.Items[AuditLog.QueryKey] = q;
        }
        if (!context.Allows(action, indexSet))
        {
            await Access.DenyAsync(context, action, "indexset:" + indexSet).ConfigureAwait(false);
            return null;
        }
        var defaultOperator = defaultOperatorText ?? context.Request.Query["default_operator"].ToString();
        if (defaultOperator.Length == 0)
        {
            defaultOperator = options.DefaultOperator;
        }
        if (defaultOperator is not ("AND" or "OR"))
        {
            await ErrorResponses.WriteAsync(context, 400, "'default_operator' must be AND or OR").ConfigureAwait(false);
            return null;
        }
        if (!PipelineParser.TryParse(q, defaultOperator == "OR", out var pipeline, out var queryError))
        {
            await ErrorResponses.WriteAsync(context, 400, $"query error at position {queryError!.Position}: {queryError.Message}", queryError.Position, queryError.Expected).ConfigureAwait(false);
            return null;
        }
        if (pipeline.Stages.Count > 0 && !pipesAllowed)
        {
            await ErrorResponses.WriteAsync(context, 400, "pipes ('| stats ...') are for /api/v1/search; this endpoint takes a query alone").ConfigureAwait(false);
            return null;
        }
        var query = pipeline.Query;
        if (!StructuredFilters.TryParse(filterJson, out var filters, out var filterError))
        {
            await ErrorResponses.WriteAsync(context, 400, filterError!).ConfigureAwait(false);
            return null;
        }
        if (filters.Count > 0)
        {
            // The filters narrow the query: every result satisfies them all.
            query = query is MatchAllNode ? (filters.Count == 1 ? filters[0] : new AndNode(filters)) : new AndNode([query, .. filters]);
            if (QueryNode.CostError(query) is { } cost)
            {
                await ErrorResponses.WriteAsync(context, 400, $"{cost} (the filters count too)").ConfigureAwait(false);
                return null;
            }
        }
        if (GrantRestriction(context, action, indexSet) is { } restriction)
        {
            // Record-level access: the caller sees only what a grant's filter lets through, whatever they ask.
            query = query is MatchAllNode ? restriction : new AndNode([query, restriction]);
        }
        if (context.Request.Query["restrict"].ToString() is { Length: > 0 } restrictText)
        {
            // Narrows only, so anyone may send it: a worker passes the grant filters of whoever started an export.
            string[]? restrictFilters;
            try
            {
                restrictFilters = System.Text.Json.JsonSerializer.Deserialize<string[]>(restrictText);
            }
            catch (System.Text.Json.JsonException)
            {
                restrictFilters = null;
            }
            if (restrictFilters is null || restrictFilters.Any(f => f is null || !PipelineParser.TryParse(f, false, out var parsed, out _) || parsed.Stages.Count > 0))
            {
                await ErrorResponses.WriteAsync(context, 400, "'restrict' must be a JSON array of queries without pipes").ConfigureAwait(false);
                return null;
            }
            var restricted = Restrictions.Parse(restrictFilters);
            query = query is MatchAllNode ? restricted : new AndNode([query, restricted]);
        }
        var now = context.RequestServices.GetTime().GetUtcNow();
        long? from = null;
        long? to = null;
        if (!string.IsNullOrEmpty(fromText))
        {
            if (!TimeExpression.TryParse(fromText, now, out var value, out var timeError))
            {
                await ErrorResponses.WriteAsync(context, 400, $"bad 'from': {timeError}").ConfigureAwait(false);
                return null;
            }
            from = value.UtcTicks;
        }
        if (!string.IsNullOrEmpty(toText))
        {
            if (!TimeExpression.TryParse(toText, now, out var value, out var timeError))
            {
                await ErrorResponses.WriteAsync(context, 400, $"bad 'to': {timeError}").ConfigureAwait(false);
                return null;
            }
            to = value.UtcTicks;
        }
        if (from is not null && to is not null && from > to)
        {
            await ErrorResponses.WriteAsync(context, 400, "'from' is after 'to'").ConfigureAwait(false);
            return null;
        }
        if (!engine.TryGet(indexSet, out var store))
        {
            await (engine.Unavailable.TryGetValue(indexSet, out var reason)
                ? ErrorResponses.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, $"index set '{indexSet}' is unavailable: {reason}")
                : ErrorResponses.WriteAsync(context, 404, $"index set '{indexSet}' does not exist")).ConfigureAwait(false);
            return null;
        }
        var mask = context.Caller().MaskFor(indexSet);
        if (mask is not null && pipeline.Stages.Count > 0 && MaskedPipeField(pipeline.Stages, mask) is { } masked)
        {
            // Pipes aggregate stored values: a masked field's would show through.
            await ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"index set '{indexSet}' has masking rules and {context.Caller().Description} reads it masked: pipes over {(masked == "the events themselves" ? masked : $"'{masked}'")} need {Actions.ViewRaw}; start with stats, timechart, top or patterns over unmasked fields",
                action: Actions.ViewRaw, scope: "indexset:" + indexSet).ConfigureAwait(false);
            return null;
        }
        return new Selection(store, query, from, to) { Stages = pipeline.Stages, Timeout = timeout, Mask = mask };
    }

    /// <summary>
    /// The query the caller's grants restrict <paramref name="action"/> on the index set to (any of their filters), or
    /// null when a grant gives it unrestricted. The filters were read when the grants were made.
    /// </summary>
    /// <summary>
    /// Why pipes would show a masked value, or null: they must start with an aggregation (stats, timechart, top) over
    /// unmasked fields, since any other first stage works on whole stored events.
    /// </summary>
    private static string? MaskedPipeField(IReadOnlyList<PipeStage> stages, ReadMask mask)
    {
        if (stages[0] is not (StatsStage or TimechartStage or TopStage or PatternsStage))
        {
            return "the events themselves";
        }
        foreach (var stage in stages)
        {
            IEnumerable<string?> fields = stage switch
            {
                StatsStage stats => stats.By.Concat(stats.Aggregations.Select(a => a.Field)),
                TimechartStage chart => new[] { chart.By, chart.Aggregation.Field },
                TopStage top => [top.Field],
                PatternsStage => ["message"],
                FieldsStage columns => columns.Columns,
                SortStage sort => [sort.Column],
                _ => [],
            };
            if (fields.FirstOrDefault(f => f is not null && mask.Masks(f)) is { } masked)
            {
                return masked;
            }
        }
        return null;
    }

    internal static QueryNode? GrantRestriction(HttpContext context, string action, string indexSet) =>
        context.Caller().Filters(action, indexSet) is { } filters ? Restrictions.Parse(filters) : null;

    private static async Task SearchAsync(HttpContext context, SearchParameters parameters)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var selection = await ReadSelectionAsync(context, parameters.IndexSet, parameters.Query, parameters.Filters, parameters.From, parameters.To, parameters.Timeout, pipesAllowed: true, parameters.DefaultOperator).ConfigureAwait(false);
        if (selection is not var (store, query, from, to))
        {
            return;
        }
        if (selection.Stages.Count > 0)
        {
            await RunPipelineAsync(context, selection).ConfigureAwait(false);
            return;
        }
        var limit = options.DefaultSearchLimit;
        if (!string.IsNullOrEmpty(parameters.Limit)
            && (!int.TryParse(parameters.Limit, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit > options.MaxSearchLimit))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'limit' must be a whole number from 0 to {options.MaxSearchLimit}").ConfigureAwait(false);
            return;
        }
        long? trackTotal = null;
        if (!string.IsNullOrEmpty(parameters.TrackTotalHits))
        {
            if (parameters.TrackTotalHits is "true" or "True")
            {
                trackTotal = long.MaxValue;
            }
            else if (long.TryParse(parameters.TrackTotalHits, NumberStyles.None, CultureInfo.InvariantCulture, out var upTo))
            {
                trackTotal = upTo;
            }
            else if (parameters.TrackTotalHits is not ("false" or "False"))
            {
                await ErrorResponses.WriteAsync(context, 400, "'track_total_hits' must be true, false or a number of matches").ConfigureAwait(false);
                return;
            }
        }
        if (!TryReadSort(parameters.Sort, out var oldestFirst, out var fieldOrder))
        {
            await ErrorResponses.WriteAsync(context, 400, "'sort' must be desc (newest first, the default), asc (oldest first) or a field with :asc or :desc, such as latency:desc").ConfigureAwait(false);
            return;
        }
        if (fieldOrder is not null && selection.Mask?.Masks(fieldOrder.Field) == true)
        {
            // The order and the cursor would tell the stored values.
            await ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden, $"'{fieldOrder.Field}' is masked for {context.Caller().Description}: sorting by it needs {Actions.ViewRaw}",
                action: Actions.ViewRaw, scope: "indexset:" + store.Name).ConfigureAwait(false);
            return;
        }
        EventPosition? after = null;
        OrderKey? afterKey = null;
        if (!string.IsNullOrEmpty(parameters.Cursor))
        {
            bool read;
            if (fieldOrder is null)
            {
                read = JsonOutput.TryParseCursor(parameters.Cursor, out var position);
                after = position;
            }
            else
            {
                read = JsonOutput.TryParseCursor(parameters.Cursor, fieldOrder, out var key);
                afterKey = key;
            }
            if (!read)
            {
                await ErrorResponses.WriteAsync(context, 400, "'cursor' is not a cursor this server issued for this sort").ConfigureAwait(false);
                return;
            }
        }
        var time = context.RequestServices.GetTime();
        var started = time.GetTimestamp();
        var request = new SearchRequest(query, from, to, after, limit, trackTotal) { OldestFirst = oldestFirst, OrderBy = fieldOrder, AfterKey = afterKey };
        if (await RunWithinTimeoutAsync(context, "search", selection.Timeout, ct => store.SearchAsync(request, ct)).ConfigureAwait(false) is not { } result)
        {
            return;
        }
        var tookMs = time.GetElapsedTime(started).TotalMilliseconds;
        var nextCursor = result.NextCursor is { } next ? JsonOutput.FormatCursor(next)
            : result.NextOrderKey is { } nextKey ? JsonOutput.FormatCursor(fieldOrder!, nextKey)
            : null;

        if (WantsNdjson(context.Request))
        {
            context.Response.ContentType = "application/x-ndjson";
            context.Response.Headers["X-Logwell-Total"] = result.Total.ToString(CultureInfo.InvariantCulture);
            context.Response.Headers["X-Logwell-Total-Is-Exact"] = result.TotalIsExact ? "true" : "false";
            if (nextCursor is not null)
            {
                context.Response.Headers["X-Logwell-Next-Cursor"] = nextCursor;
            }
            await using var lineWriter = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
            foreach (var hit in result.Hits)
            {
                JsonOutput.WriteHit(lineWriter, selection.Shown(hit));
                await lineWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                lineWriter.Reset();
                await context.Response.Body.WriteAsync("\n"u8.ToArray(), context.RequestAborted).ConfigureAwait(false);
            }
            return;
        }

        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("hits");
        foreach (var hit in result.Hits)
        {
            JsonOutput.WriteHit(writer, selection.Shown(hit));
        }
        writer.WriteEndArray();
        writer.WriteNumber("total", result.Total);
        writer.WriteBoolean("total_is_exact", result.TotalIsExact);
        writer.WriteNumber("took_ms", Math.Round(tookMs, 3));
        if (nextCursor is null)
        {
            writer.WriteNull("next_cursor");
        }
        else
        {
            writer.WriteString("next_cursor", nextCursor);
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>desc</c> (or nothing) is newest first, <c>asc</c> oldest first; <c>field</c>, <c>field:asc</c> and
    /// <c>field:desc</c> order by a field (ascending unless <c>:desc</c>), where the names of the event time
    /// (<c>@timestamp</c>, <c>t</c>, ...) mean time order.
    /// </summary>
    internal static bool TryReadSort(string? text, out bool oldestFirst, out FieldOrder? fieldOrder)
    {
        oldestFirst = false;
        fieldOrder = null;
        if (string.IsNullOrEmpty(text) || text == "desc")
        {
            return true;
        }
        if (text == "asc")
        {
            oldestFirst = true;
            return true;
        }
        var colon = text.LastIndexOf(':');
        var field = colon < 0 ? text : text[..colon];
        var direction = colon < 0 ? "asc" : text[(colon + 1)..];
        if (field.Length == 0 || direction is not ("asc" or "desc"))
        {
            return false;
        }
        if (RangeMatcher.TimestampFields.Contains(field))
        {
            oldestFirst = direction == "asc";
            return true;
        }
        fieldOrder = new FieldOrder(field, direction == "desc");
        return true;
    }

    /// <summary>
    /// Runs engine work off the request's thread within the search timeout (a client that goes away cancels it).
    /// Null after answering 504 when the time ran out.
    /// </summary>
    internal static async Task<T?> RunWithinTimeoutAsync<T>(HttpContext context, string what, TimeSpan limit, Func<CancellationToken, Task<T>> work) where T : class
    {
        var time = context.RequestServices.GetTime();
        using var expiry = new CancellationTokenSource(limit, time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, expiry.Token);
        var started = time.GetTimestamp();
        try
        {
            var result = await Task.Run(() => work(timeout.Token), timeout.Token).ConfigureAwait(false);
            ServerMetrics.QueryDuration.Record(time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("kind", what));
            return result;
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            await ErrorResponses.WriteAsync(context, StatusCodes.Status504GatewayTimeout, string.Create(CultureInfo.InvariantCulture, $"{what} took longer than {limit.TotalSeconds:0.###} s: narrow the time range or the query")).ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>A query with pipes: the table its stages make, as <c>{"columns", "rows"}</c>.</summary>
    private static async Task RunPipelineAsync(HttpContext context, Selection selection)
    {
        var time = context.RequestServices.GetTime();
        var started = time.GetTimestamp();
        var pipeline = new Pipeline(selection.Query, selection.Stages);
        ResultTable? table;
        try
        {
            table = await RunWithinTimeoutAsync(context, "search", selection.Timeout, ct => selection.Store.RunPipelineAsync(pipeline, selection.From, selection.To, ct)).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message).ConfigureAwait(false);
            return;
        }
        if (table is null)
        {
            return;
        }
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("columns");
        foreach (var column in table.Columns)
        {
            writer.WriteStringValue(column);
        }
        writer.WriteEndArray();
        writer.WriteStartArray("rows");
        foreach (var row in table.Rows)
        {
            writer.WriteStartArray();
            foreach (var cell in row)
            {
                switch (cell)
                {
                    case null:
                        writer.WriteNullValue();
                        break;
                    case long n:
                        writer.WriteNumberValue(n);
                        break;
                    case double d when double.IsFinite(d):
                        writer.WriteNumberValue(d);
                        break;
                    case double:
                        writer.WriteNullValue();
                        break;
                    case bool b:
                        writer.WriteBooleanValue(b);
                        break;
                    case DateTime t:
                        writer.WriteStringValue(JsonOutput.FormatTime(t.Ticks));
                        break;
                    default:
                        writer.WriteStringValue(Convert.ToString(cell, CultureInfo.InvariantCulture));
                        break;
                }
            }
            writer.WriteEndArray();
        }
        writer.WriteEndArray();
        writer.WriteBoolean("truncated", table.Truncated);
        writer.WriteNumber("took_ms", Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3));
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static bool WantsNdjson(HttpRequest request)
    {
        foreach (var accept in request.Headers.Accept)
        {
            if (accept is not null && (accept.Contains("application/x-ndjson", StringComparison.OrdinalIgnoreCase) || accept.Contains("application/ndjson", StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }
        return false;
    }
}
