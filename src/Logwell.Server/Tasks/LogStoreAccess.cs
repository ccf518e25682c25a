using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Server.Api;
using Logwell.Server.Hosting;
using Logwell.Storage;
using Logwell.Storage.Backup;
using Logwell.Storage.Engine;

namespace Logwell.Server.Tasks;

/// <summary>Which events a task reads: an index set, a query without pipes, a time window (UTC ticks).</summary>
/// <param name="DefaultOr">Clauses side by side are ORed (Lucene's default) rather than ANDed.</param>
/// <param name="Restriction">Queries any of which a selected event matches besides <paramref name="Query"/> (the
/// filters of the grants of whoever asked); null for none.</param>
public sealed record EventSelection(string IndexSet, string Query, long? From, long? To, bool DefaultOr = false, IReadOnlyList<string>? Restriction = null);

/// <summary>One page of matching events, newest first; <see cref="NextCursor"/> continues it (null on the last page).</summary>
public sealed record EventPage(IReadOnlyList<LogEvent> Events, long Total, bool TotalIsExact, string? NextCursor);

/// <summary>
/// What tasks need of the log store: read matching events page by page, apply retention, merge segments. Under
/// <c>serve</c> the engine is in the same process; a <c>logwell worker</c> reaches it through the node's HTTP API.
/// </summary>
public interface ILogStoreAccess
{
    /// <param name="trackTotalUpTo">Count matches exactly up to this many (the first page's total says how many there are).</param>
    Task<EventPage> PageAsync(EventSelection selection, string? cursor, int limit, long trackTotalUpTo, CancellationToken cancellationToken);

    Task ApplyRetentionAsync(CancellationToken cancellationToken);

    /// <summary>Starts a merge pass on every index set (merges also follow every flush).</summary>
    Task MergeAsync(CancellationToken cancellationToken);

    /// <summary>Backs the node up into a directory on its machine, then prunes there what <paramref name="retention"/> does not keep.</summary>
    Task BackupAsync(string to, BackupRetention retention, CancellationToken cancellationToken);

    /// <summary>Moves the days past each index set's <c>archive_after_days</c> to the archive (a pass of <see cref="NodeArchive"/>).</summary>
    Task ArchiveAsync(CancellationToken cancellationToken);

    /// <summary>Restores archived days as an index set of their own.</summary>
    Task RestoreArchiveAsync(ArchiveRestoreRequest request, CancellationToken cancellationToken);
}

/// <summary>The node's own log store, in this process.</summary>
public sealed class LocalLogStore(ILogStore logStore, LogwellOptions options, TimeProvider time) : ILogStoreAccess
{
    public Task<EventPage> PageAsync(EventSelection selection, string? cursor, int limit, long trackTotalUpTo, CancellationToken cancellationToken) => Task.Run(async () =>
    {
        if (!logStore.TryGet(selection.IndexSet, out var store))
        {
            throw new InvalidOperationException($"index set '{selection.IndexSet}' does not exist");
        }
        if (!QueryParser.TryParse(selection.Query, selection.DefaultOr, out var query, out var error))
        {
            throw new InvalidOperationException($"query error at position {error!.Position}: {error.Message}");
        }
        if (selection.Restriction is { } restriction)
        {
            var restricted = Restrictions.Parse(restriction);
            query = query is MatchAllNode ? restricted : new AndNode([query, restricted]);
        }
        EventPosition? after = null;
        if (cursor is not null)
        {
            if (!JsonOutput.TryParseCursor(cursor, out var position))
            {
                throw new InvalidOperationException($"bad cursor '{cursor}'");
            }
            after = position;
        }
        var result = await store.SearchAsync(new SearchRequest(query, selection.From, selection.To, after, limit, trackTotalUpTo), cancellationToken).ConfigureAwait(false);
        return new EventPage(result.Hits, result.Total, result.TotalIsExact, result.NextCursor is { } next ? JsonOutput.FormatCursor(next) : null);
    }, cancellationToken);

    public Task ApplyRetentionAsync(CancellationToken cancellationToken) => logStore.ApplyRetentionAsync(cancellationToken);

    public Task MergeAsync(CancellationToken cancellationToken)
    {
        logStore.RequestMerges();
        return Task.CompletedTask;
    }

    public async Task BackupAsync(string to, BackupRetention retention, CancellationToken cancellationToken)
    {
        var (_, pruned) = await NodeBackup.RunAsync(options, logStore, to, retention, time, cancellationToken).ConfigureAwait(false);
        if (pruned?.Error is { } error)
        {
            // The backup is saved; the task fails so that a prune that keeps failing is seen (and tried again).
            throw new IOException($"the backup into {to} is saved, but the prune after it failed: {error}");
        }
    }

    public async Task ArchiveAsync(CancellationToken cancellationToken)
    {
        var pass = await NodeArchive.RunAsync(options, logStore, time, cancellationToken).ConfigureAwait(false);
        if (pass.Problems.Count > 0)
        {
            // What was archived stays archived; the task fails so that the problem is seen.
            throw new IOException(string.Join("; ", pass.Problems));
        }
    }

    public Task RestoreArchiveAsync(ArchiveRestoreRequest request, CancellationToken cancellationToken) =>
        NodeArchive.RestoreAsync(options, logStore, request, time, cancellationToken);
}

/// <summary>A node's engine through its HTTP API (search pages as NDJSON, maintenance endpoints).</summary>
public sealed class HttpLogStore(HttpClient client) : ILogStoreAccess
{
    public async Task<EventPage> PageAsync(EventSelection selection, string? cursor, int limit, long trackTotalUpTo, CancellationToken cancellationToken)
    {
        var url = new System.Text.StringBuilder("api/v1/search?indexset=").Append(Uri.EscapeDataString(selection.IndexSet))
            .Append("&q=").Append(Uri.EscapeDataString(selection.Query))
            .Append("&limit=").Append(limit.ToString(CultureInfo.InvariantCulture))
            .Append("&track_total_hits=").Append(trackTotalUpTo.ToString(CultureInfo.InvariantCulture))
            .Append("&default_operator=").Append(selection.DefaultOr ? "OR" : "AND");
        if (selection.From is { } from)
        {
            url.Append("&from=").Append(Uri.EscapeDataString(JsonOutput.FormatTime(from)));
        }
        if (selection.To is { } to)
        {
            url.Append("&to=").Append(Uri.EscapeDataString(JsonOutput.FormatTime(to)));
        }
        if (selection.Restriction is { } restriction)
        {
            url.Append("&restrict=").Append(Uri.EscapeDataString(System.Text.Json.JsonSerializer.Serialize(restriction)));
        }
        if (cursor is not null)
        {
            url.Append("&cursor=").Append(Uri.EscapeDataString(cursor));
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, url.ToString());
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"search on {client.BaseAddress} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
        var total = long.Parse(Header(response, "X-Logwell-Total") ?? "0", CultureInfo.InvariantCulture);
        var exact = Header(response, "X-Logwell-Total-Is-Exact") == "true";
        var next = Header(response, "X-Logwell-Next-Cursor");
        var events = new List<LogEvent>(Math.Min(limit, 10_000));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length > 0)
            {
                events.Add(JsonOutput.ReadHit(line));
            }
        }
        return new EventPage(events, total, exact, next);
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    public Task ApplyRetentionAsync(CancellationToken cancellationToken) => PostAsync("api/v1/maintenance/retention", null, cancellationToken);

    public Task MergeAsync(CancellationToken cancellationToken) => PostAsync("api/v1/maintenance/merge", null, cancellationToken);

    public async Task BackupAsync(string to, BackupRetention retention, CancellationToken cancellationToken)
    {
        var answer = await PostAsync("api/v1/maintenance/backup", System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["to"] = to,
            ["keep_last"] = retention.Last,
            ["keep_daily"] = retention.Daily,
            ["keep_weekly"] = retention.Weekly,
        }), cancellationToken).ConfigureAwait(false);
        using var document = JsonDocument.Parse(answer);
        if (document.RootElement.TryGetProperty("pruned", out var pruned) && pruned.ValueKind == JsonValueKind.Object
            && pruned.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String)
        {
            throw new IOException($"the backup into {to} is saved, but the prune after it failed: {error.GetString()}");
        }
    }

    public async Task ArchiveAsync(CancellationToken cancellationToken)
    {
        var answer = await PostAsync("api/v1/maintenance/archive", null, cancellationToken).ConfigureAwait(false);
        using var document = JsonDocument.Parse(answer);
        if (document.RootElement.TryGetProperty("problems", out var problems) && problems.GetArrayLength() > 0)
        {
            throw new IOException(string.Join("; ", problems.EnumerateArray().Select(p => p.GetString())));
        }
    }

    public Task RestoreArchiveAsync(ArchiveRestoreRequest request, CancellationToken cancellationToken) =>
        PostAsync("api/v1/maintenance/archive-restore", System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["index"] = request.IndexSet,
            ["from"] = request.From.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["to"] = request.To.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["as"] = request.As,
            ["expire_days"] = request.ExpireDays,
        }), cancellationToken);

    private async Task<string> PostAsync(string path, string? json, CancellationToken cancellationToken)
    {
        using var content = json is null ? null : new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(path, content, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{path} on {client.BaseAddress} answered {(int)response.StatusCode}: {body}");
        }
        return body;
    }
}

/// <summary>Grant filters as one query: any of them matches (none: nothing does).</summary>
public static class Restrictions
{
    public static QueryNode Parse(IReadOnlyList<string> filters)
    {
        var nodes = new List<QueryNode>(filters.Count);
        foreach (var filter in filters)
        {
            // A filter that no longer reads (a grammar change since the grant) lets nothing through.
            nodes.Add(PipelineParser.TryParse(filter, false, out var parsed, out _) && parsed.Stages.Count == 0 ? parsed.Query : new NotNode(MatchAllNode.Instance));
        }
        return nodes.Count switch
        {
            0 => new NotNode(MatchAllNode.Instance),
            1 => nodes[0],
            _ => new OrNode(nodes),
        };
    }
}
