using System.Globalization;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Server.Security;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/fields</c>: the fields of the matching events (the search page's sidebar): for each, how many events
/// have it, the types of its values and its 5 most frequent values. Computed over the newest <c>sample</c> matches
/// (10,000 unless asked); the answer says whether that was all of them.
/// </summary>
internal static class FieldsEndpoints
{
    public const int DefaultSample = 10_000;
    public const int MaxSample = 100_000;
    private const int TopValues = 5;
    // Distinct values counted per field; past this, new values of a field are no longer tracked (counts stay exact
    // for the ones that are).
    private const int MaxTrackedValues = 10_000;
    // Field values read for one answer, whatever the shape of the events (10,000 events of 100 fields).
    private const long MaxFieldValues = 1_000_000;

    public static void Map(IEndpointRouteBuilder routes) => routes.MapGet("/api/v1/fields", FieldsAsync).WithMetadata(Permission.InRequest(Actions.Search));

    private sealed class FieldStats
    {
        public long Count;
        public readonly SortedSet<string> Types = new(StringComparer.Ordinal);
        public readonly Dictionary<string, long> Values = new(StringComparer.Ordinal);
    }

    private static async Task FieldsAsync(HttpContext context)
    {
        var q = context.Request.Query;
        if (await SearchEndpoints.ReadSelectionAsync(context, q["indexset"], q["q"], q["filters"], q["from"], q["to"], q["timeout"]).ConfigureAwait(false) is not { } selection)
        {
            return;
        }
        var (store, query, from, to) = selection;
        var sample = DefaultSample;
        var sampleText = q["sample"].ToString();
        if (sampleText.Length > 0 && (!int.TryParse(sampleText, NumberStyles.None, CultureInfo.InvariantCulture, out sample) || sample < 1 || sample > MaxSample))
        {
            await ErrorResponses.WriteAsync(context, 400, $"'sample' must be a whole number from 1 to {MaxSample}").ConfigureAwait(false);
            return;
        }

        var request = new SearchRequest(query, from, to, null, sample);
        // The whole of the work, counting included, runs within the timeout; it reads at most MaxFieldValues values.
        if (await SearchEndpoints.RunWithinTimeoutAsync(context, "fields", selection.Timeout, async ct => Count(Shown(selection, await store.SearchAsync(request, ct).ConfigureAwait(false)), ct)).ConfigureAwait(false) is not { } counted)
        {
            return;
        }
        var (result, fields, examined) = counted;

        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteNumber("events", examined);
        writer.WriteBoolean("sampled", examined < result.Total || !result.TotalIsExact);
        writer.WriteNumber("total", result.Total);
        writer.WriteBoolean("total_is_exact", result.TotalIsExact);
        writer.WriteStartArray("fields");
        foreach (var (name, stats) in fields.OrderByDescending(f => f.Value.Count).ThenBy(f => f.Key, StringComparer.Ordinal))
        {
            writer.WriteStartObject();
            writer.WriteString("name", name);
            writer.WriteNumber("count", stats.Count);
            writer.WriteStartArray("types");
            foreach (var type in stats.Types)
            {
                writer.WriteStringValue(type);
            }
            writer.WriteEndArray();
            writer.WriteStartArray("top");
            foreach (var (value, count) in stats.Values.OrderByDescending(v => v.Value).ThenBy(v => v.Key, StringComparer.Ordinal).Take(TopValues))
            {
                writer.WriteStartObject();
                writer.WriteString("value", value);
                writer.WriteNumber("count", count);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// The field statistics of the hits, newest first, until <see cref="MaxFieldValues"/> values have been read: with
    /// wide events the sample shrinks rather than the cost growing.
    /// </summary>
    /// <summary>The values as the caller may read them: top values of a masked field are counted masked.</summary>
    private static SearchResult Shown(SearchEndpoints.Selection selection, SearchResult result) =>
        selection.Mask is null ? result : result with { Hits = [.. result.Hits.Select(selection.Shown)] };

    private static Counted Count(SearchResult result, CancellationToken cancellationToken)
    {
        var fields = new Dictionary<string, FieldStats>(StringComparer.Ordinal);
        var values = 0L;
        var examined = 0;
        foreach (var hit in result.Hits)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (values >= MaxFieldValues)
            {
                break;
            }
            examined++;
            foreach (var field in hit.Fields)
            {
                values++;
                if (!fields.TryGetValue(field.Name, out var stats))
                {
                    fields[field.Name] = stats = new FieldStats();
                }
                stats.Count++;
                stats.Types.Add(TypeName(field.Value));
                if (field.Value.SearchText is { } value && (stats.Values.Count < MaxTrackedValues || stats.Values.ContainsKey(value)))
                {
                    stats.Values[value] = stats.Values.GetValueOrDefault(value) + 1;
                }
            }
        }
        return new Counted(result, fields, examined);
    }

    private sealed record Counted(SearchResult Result, Dictionary<string, FieldStats> Fields, int Examined);

    private static string TypeName(FieldValue value) => value.Kind switch
    {
        FieldKind.String => "string",
        FieldKind.Long or FieldKind.Double => "number",
        FieldKind.True or FieldKind.False => "boolean",
        // JSON text: an array, or a number too large to hold exactly.
        FieldKind.Json => value.Text is ['[', ..] ? "array" : "number",
        _ => "null",
    };
}
