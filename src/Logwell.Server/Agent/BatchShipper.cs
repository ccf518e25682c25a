using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Logwell.Server.Hosting;

namespace Logwell.Server.Agent;

/// <summary>
/// Sends the buffered batches to the servers, one at a time and in order, so that a batch is acknowledged only after
/// every batch before it. A failure moves to the next server; once every server failed, the agent waits (exponential
/// back-off from 0.5 s to 30 s, with jitter) and starts again from the first. A batch the server refuses for good
/// (400, 413, 422) is set aside in <c>rejected/</c> with the answer, counted, and passed.
/// </summary>
internal sealed class BatchShipper
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LastBackoff = TimeSpan.FromSeconds(30);

    private readonly AgentOptions _options;
    private readonly AgentBuffer _buffer;
    private readonly AgentMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly string _agentId;
    private readonly AgentLog _log;
    private readonly IReadOnlyList<HttpClient> _clients;
    private int _server;

    public BatchShipper(AgentOptions options, AgentBuffer buffer, AgentMetrics metrics, TimeProvider time, string agentId, AgentLog log, IReadOnlyList<HttpClient> clients)
    {
        _options = options;
        _buffer = buffer;
        _metrics = metrics;
        _time = time;
        _agentId = agentId;
        _log = log;
        _clients = clients;
    }

    /// <summary>Ships until <paramref name="stop"/>; a batch being sent when it comes is finished (or given up after 10 s).</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var attempt = 0;
        while (!stop.IsCancellationRequested)
        {
            QueuedBatch batch;
            try
            {
                batch = await _buffer.NextAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var body = AgentBuffer.ReadBody(batch);
            if (body is null)
            {
                _metrics.EventsRejected.Add(batch.Events);
                Log($"batch {batch.Seq} changed on disk (its checksum differs); set aside as {batch.File}.damaged");
                _buffer.Acked(batch, damaged: true);
                continue;
            }
            using var sending = new CancellationTokenSource();
            // A stop leaves the batch being sent 10 s to be answered.
            using var grace = _time.CreateTimer(_ => Cancel(sending), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            using var _ = stop.Register(() => grace.Change(TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan));
            var (ok, permanent, why) = await SendAsync(batch, body, sending.Token).ConfigureAwait(false);
            if (ok)
            {
                attempt = 0;
                _metrics.BatchesShipped.Add(1);
                _metrics.EventsShipped.Add(batch.Events);
                _metrics.BytesShipped.Add(body.Length);
                _buffer.Acked(batch);
                continue;
            }
            if (permanent)
            {
                Reject(batch, body, why);
                _buffer.Acked(batch);
                continue;
            }
            _metrics.LastError = why;
            _metrics.Retries.Add(1);
            // The next server at once; after a round of all of them, a pause.
            _server = (_server + 1) % _clients.Count;
            if (_clients.Count > 1)
            {
                _metrics.Failovers.Add(1);
            }
            if (_server != 0)
            {
                continue;
            }
            var delay = Backoff(attempt++);
            Log($"batch {batch.Seq}: {why}; every server failed, trying again in {delay.TotalSeconds:0.0} s");
            try
            {
                await Task.Delay(delay, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The batch was answered meanwhile.
        }
    }

    /// <summary>0.5 s doubling to 30 s, each drawn from 50–100% of its value so that agents do not come back together.</summary>
    internal static TimeSpan Backoff(int attempt) =>
        TimeSpan.FromMilliseconds(Math.Min(LastBackoff.TotalMilliseconds, FirstBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16))) * (0.5 + (Random.Shared.NextDouble() / 2)));

    private async Task<(bool Ok, bool Permanent, string Why)> SendAsync(QueuedBatch batch, byte[] body, CancellationToken cancellationToken)
    {
        var client = _clients[_server];
        var path = _options.Protocol == OutputProtocol.Elasticsearch ? "_bulk" : $"api/v1/indexsets/{batch.IndexSet}/ingest";
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        request.Content.Headers.ContentEncoding.Add("gzip");
        // The server stores a batch sent twice under one key once where it can (a replicated log store).
        request.Headers.Add("Idempotency-Key", $"{_agentId}-{batch.Seq}");
        if (_options.ApiKey is { } key)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        var server = _options.Urls[_server];
        try
        {
            using var response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return _options.Protocol == OutputProtocol.Elasticsearch ? BulkOutcome(batch, text, server) : (true, false, "");
            }
            var why = $"{server} answered {(int)response.StatusCode}: {Shorten(text)}";
            return (false, response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnprocessableContent, why);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            return (false, false, $"{server}: {e.Message}");
        }
    }

    /// <summary>An Elasticsearch bulk answer is 200 even when items failed: items refused for a passing reason (429, 5xx) send the batch again.</summary>
    private (bool, bool, string) BulkOutcome(QueuedBatch batch, string text, Uri server)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            if (!json.RootElement.TryGetProperty("errors", out var errors) || !errors.GetBoolean())
            {
                return (true, false, "");
            }
            var refused = 0;
            var present = 0;
            foreach (var item in json.RootElement.GetProperty("items").EnumerateArray())
            {
                var status = item.EnumerateObject().First().Value.GetProperty("status").GetInt32();
                if (status is 429 or >= 500)
                {
                    return (false, false, $"{server} refused items of batch {batch.Seq} with {status}");
                }
                // 409: an item with this _id went in when the batch was sent before.
                present += status == 409 ? 1 : 0;
                refused += status is >= 400 and not 409 ? 1 : 0;
            }
            _metrics.EventsAlreadyStored.Add(present);
            if (refused == 0)
            {
                return (true, false, "");
            }
            _metrics.EventsRejected.Add(refused);
            Log($"batch {batch.Seq}: {server} refused {refused} of its {batch.Events} events for good");
            return (true, false, "");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return (false, false, $"{server} answered a bulk request with something else: {Shorten(text)}");
        }
    }

    private void Reject(QueuedBatch batch, byte[] body, string why)
    {
        var directory = Path.Combine(_options.DataDir, "rejected");
        Directory.CreateDirectory(directory);
        var name = Path.Combine(directory, Path.GetFileNameWithoutExtension(batch.File));
        File.WriteAllBytes(name + ".ndjson.gz", body);
        File.WriteAllText(name + ".why", why + "\n");
        _metrics.EventsRejected.Add(batch.Events);
        _metrics.LastError = why;
        Log($"batch {batch.Seq} ({batch.Events} events) refused for good, set aside in {name}.ndjson.gz: {why}");
    }

    private void Log(string line) => _log.Write(line);

    private static string Shorten(string text) => text.Length > 300 ? text[..300] + "…" : text.Trim();
}
