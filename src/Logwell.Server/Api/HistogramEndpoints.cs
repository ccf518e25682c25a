using System.Text.Json;
using Logwell.Server.Hosting;
using Logwell.Core.Time;
using Logwell.Server.Security;
using Logwell.Storage.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Logwell.Server.Api;

/// <summary>
/// <c>GET /api/v1/histogram</c>: how many events match per interval of the window, every interval listed (empty ones
/// as 0), for the chart above the hits. The interval is given (<c>30s</c>, <c>5m</c>, <c>1h</c>, <c>1d</c>) or picked
/// for about 60 bars (<c>auto</c>, the default).
/// </summary>
internal static class HistogramEndpoints
{
    /// <summary>Most intervals one answer lists.</summary>
    public const int MaxBuckets = 10_000;

    public static void Map(IEndpointRouteBuilder routes) => routes.MapGet("/api/v1/histogram", HistogramAsync).WithMetadata(Permission.InRequest(Actions.Search));

    private static async Task HistogramAsync(HttpContext context)
    {
        var q = context.Request.Query;
        if (await SearchEndpoints.ReadSelectionAsync(context, q["indexset"], q["q"], q["filters"], q["from"], q["to"], q["timeout"]).ConfigureAwait(false) is not { } selection)
        {
            return;
        }
        var (store, query, fromTicks, toTicks) = selection;
        // An open end of the window is where the data ends.
        var bounds = await store.TimeBoundsAsync(context.RequestAborted).ConfigureAwait(false);
        var from = fromTicks ?? bounds?.Min ?? context.RequestServices.GetTime().GetUtcNow().UtcTicks;
        var to = toTicks ?? (bounds is { } b ? b.Max + 1 : from + 1);
        if (to <= from)
        {
            to = from + 1;
        }
        var intervalText = q["interval"].ToString();
        long interval;
        if (string.IsNullOrEmpty(intervalText) || intervalText == "auto")
        {
            interval = Intervals.Auto(to - from);
        }
        else if (!Intervals.TryParse(intervalText, out interval))
        {
            await ErrorResponses.WriteAsync(context, 400, "'interval' must be auto or a number with s, m, h or d, such as 30s or 5m").ConfigureAwait(false);
            return;
        }
        var first = Intervals.Floor(from, interval);
        var buckets = (to - 1 - first) / interval + 1;
        if (buckets > MaxBuckets)
        {
            await ErrorResponses.WriteAsync(context, 400, $"an interval of {intervalText} makes {buckets} bars over this window; at most {MaxBuckets}: widen the interval or narrow the window").ConfigureAwait(false);
            return;
        }

        var request = new SearchRequest(query, from, to);
        if (await SearchEndpoints.RunWithinTimeoutAsync(context, "histogram", selection.Timeout, ct => store.HistogramAsync(request, interval, ct)).ConfigureAwait(false) is not { } result)
        {
            return;
        }

        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body, JsonOutput.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("from", JsonOutput.FormatTime(from));
        writer.WriteString("to", JsonOutput.FormatTime(to));
        writer.WriteNumber("interval_ms", interval / TimeSpan.TicksPerMillisecond);
        writer.WriteNumber("total", result.Total);
        writer.WriteStartArray("buckets");
        for (var i = 0L; i < buckets; i++)
        {
            var start = first + i * interval;
            writer.WriteStartObject();
            writer.WriteString("t", JsonOutput.FormatTime(start));
            writer.WriteNumber("count", result.Counts.GetValueOrDefault(start));
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

}
