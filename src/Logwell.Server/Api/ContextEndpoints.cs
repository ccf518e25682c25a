using System.Globalization;
using System.Text.Json;
using Logwell.Storage;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Server.Security;
using Logwell.Server.Hosting;
using Logwell.Storage.Engine;
using Logwell.Storage.Querying;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/context</c>: the events just before and after one event (its <c>id</c> from a search) from the same
/// source, in time order: the same <c>host</c> and <c>path</c> when the event has them, else the whole index set.
/// </summary>
internal static class ContextEndpoints
{
    public const int DefaultCount = 10;
    public const int MaxCount = 1_000;

    private static readonly string[] SourceFields = ["host", "path"];

    public static void Map(IEndpointRouteBuilder routes) => routes.MapGet("/api/v1/context", ContextAsync).WithMetadata(Permission.InRequest(Actions.Search));

    private static async Task ContextAsync(HttpContext context)
    {
        var q = context.Request.Query;
        if (await SearchEndpoints.ReadSelectionAsync(context, q["indexset"], null, null, null, null, q["timeout"]).ConfigureAwait(false) is not { } selection)
        {
            return;
        }
        if (!JsonOutput.TryParseId(q["id"], out var seq))
        {
            await ErrorResponses.WriteAsync(context, 400, "'id' must be the id of an event, as a search returns it (16 hex digits)").ConfigureAwait(false);
            return;
        }
        if (!TryCount(q["before"], out var before) || !TryCount(q["after"], out var after))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'before' and 'after' must be whole numbers from 0 to {MaxCount}").ConfigureAwait(false);
            return;
        }
        var store = selection.Store;
        if (await SearchEndpoints.RunWithinTimeoutAsync(context, "context", selection.Timeout, ct => AroundAsync(store, selection.Query, seq, before, after, context.RequestServices.GetTime().GetUtcNow(), ct)).ConfigureAwait(false) is not { } found)
        {
            return;
        }
        if (found.Event is null)
        {
            await ErrorResponses.WriteAsync(context, 404, $"no event with id {q["id"]} in index set '{store.Name}'").ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WritePropertyName("event");
        var shown = selection.Shown(found.Event);
        JsonOutput.WriteHit(writer, shown);
        writer.WriteStartObject("source");
        foreach (var (name, _) in found.Source)
        {
            // The source's values as the caller reads them.
            writer.WriteString(name, shown.TryGetField(name, out var value) ? value.SearchText : null);
        }
        writer.WriteEndObject();
        foreach (var (name, events) in new[] { ("before", found.Before), ("after", found.After) })
        {
            writer.WriteStartArray(name);
            foreach (var evt in events)
            {
                JsonOutput.WriteHit(writer, selection.Shown(evt));
            }
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private sealed record Found(LogEvent? Event, List<(string Name, string Value)> Source, IReadOnlyList<LogEvent> Before, IReadOnlyList<LogEvent> After);

    /// <param name="visible">What the caller may see of the index set (all of it, or what their grants' filters match):
    /// the event itself and its neighbours are taken from it alone.</param>
    private static async Task<Found> AroundAsync(ILogIndexSet store, QueryNode visible, long seq, int before, int after, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var evt = await store.FindBySeqAsync(seq, cancellationToken).ConfigureAwait(false);
        if (evt is null || visible is not MatchAllNode && !EventMatcher.Compile(visible, now)(evt))
        {
            return new Found(null, [], [], []);
        }
        var source = new List<(string, string)>();
        var clauses = new List<QueryNode>();
        foreach (var name in SourceFields)
        {
            if (evt.TryGetField(name, out var value) && value.Kind == FieldKind.String)
            {
                source.Add((name, value.Text!));
                clauses.Add(new RangeNode(name, value.Text, value.Text, true, true));
            }
        }
        if (visible is not MatchAllNode)
        {
            clauses.Add(visible);
        }
        QueryNode query = clauses.Count switch
        {
            0 => MatchAllNode.Instance,
            1 => clauses[0],
            _ => new AndNode(clauses),
        };
        var position = new EventPosition(evt.Timestamp, evt.Seq);
        var older = before == 0 ? [] : (await store.SearchAsync(new SearchRequest(query, After: position, Limit: before), cancellationToken).ConfigureAwait(false)).Hits.Reverse().ToList();
        var newer = after == 0 ? [] : (await store.SearchAsync(new SearchRequest(query, After: position, Limit: after) { OldestFirst = true }, cancellationToken).ConfigureAwait(false)).Hits;
        return new Found(evt, source, older, newer);
    }

    private static bool TryCount(string? text, out int count)
    {
        count = DefaultCount;
        return string.IsNullOrEmpty(text) || (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out count) && count <= MaxCount);
    }
}
