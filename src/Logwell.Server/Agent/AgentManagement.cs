using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Logwell.Server.Hosting;

namespace Logwell.Server.Agent;

/// <summary>
/// Central management, agent side: every poll interval the agent reports its health to the first server that answers
/// (<c>POST /api/v1/agents/{name}/report</c>) and gets the collection configs for it back; when they changed, it hands
/// the new inputs to the reading loop, which applies them without a restart.
/// </summary>
internal sealed class AgentManagement
{
    private readonly AgentOptions _options;
    private readonly AgentMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly string _agentId;
    private static readonly TimeSpan ReportTimeout = TimeSpan.FromSeconds(30);

    private readonly AgentLog _log;
    private readonly IReadOnlyList<HttpClient> _clients;
    private string? _version;
    private Change? _pending;

    /// <summary>The central inputs and the version of the configs they came from.</summary>
    public sealed record Change(IReadOnlyList<AgentInput> Inputs, string Version);

    public AgentManagement(AgentOptions options, AgentMetrics metrics, TimeProvider time, string agentId, AgentLog log, IReadOnlyList<HttpClient> clients)
    {
        _options = options;
        _metrics = metrics;
        _time = time;
        _agentId = agentId;
        _log = log;
        _clients = clients;
    }

    /// <summary>The version of the configs the reading loop applied last; reported to the server.</summary>
    public string? Applied { get; set; }

    /// <summary>The central inputs received since the last call, when they changed; null otherwise.</summary>
    public Change? TakeChanged() => Interlocked.Exchange(ref _pending, null);

    public async Task RunAsync(Func<JsonObject> health, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await ReportAsync(health(), stop).ConfigureAwait(false);
            try
            {
                await Task.Delay(_options.PollInterval!.Value, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task ReportAsync(JsonObject health, CancellationToken stop)
    {
        health["applied_config_version"] = Applied;
        var report = new JsonObject
        {
            ["id"] = _agentId,
            ["version"] = typeof(AgentManagement).Assembly.GetName().Version?.ToString() ?? "",
            ["tags"] = new JsonArray([.. _options.Tags.Select(t => JsonValue.Create(t))]),
            ["health"] = health,
        };
        for (var i = 0; i < _clients.Count; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"api/v1/agents/{Uri.EscapeDataString(_options.Name)}/report") { Content = JsonContent.Create(report) };
            if (_options.ApiKey is { } key)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }
            // A server that hangs gives the next one its turn within a report's time.
            using var timeout = new CancellationTokenSource(ReportTimeout, _time);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(stop, timeout.Token);
            try
            {
                using var response = await _clients[i].SendAsync(request, either.Token).ConfigureAwait(false);
                var text = await response.Content.ReadAsStringAsync(either.Token).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    _metrics.LastError = $"management: {_options.Urls[i]} answered {(int)response.StatusCode}: {text}";
                    continue;
                }
                Receive(text);
                return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or JsonException or AgentConfigException or InvalidOperationException or KeyNotFoundException)
            {
                _metrics.LastError = $"management: {_options.Urls[i]}: {e.Message}";
            }
            catch (OperationCanceledException) when (!stop.IsCancellationRequested)
            {
                _metrics.LastError = $"management: {_options.Urls[i]} did not answer in time";
            }
        }
    }

    private void Receive(string text)
    {
        using var answer = JsonDocument.Parse(text);
        var version = answer.RootElement.GetProperty("config_version").GetString()!;
        if (version == _version)
        {
            return;
        }
        var inputs = new List<AgentInput>();
        foreach (var config in answer.RootElement.GetProperty("collection_configs").EnumerateArray())
        {
            var name = config.GetProperty("name").GetString()!;
            var input = new JsonObject();
            foreach (var property in config.EnumerateObject().Where(p => p.Name is not ("name" or "hosts" or "tags" or "updated_at")))
            {
                input[property.Name] = JsonNode.Parse(property.Value.GetRawText());
            }
            try
            {
                inputs.Add(AgentOptions.ParseCentralInput(input.ToJsonString(), name));
            }
            catch (AgentConfigException e)
            {
                // A config this agent cannot use (written for a newer one): the others apply, this one is named.
                _metrics.LastError = e.Message;
                Log(e.Message);
            }
        }
        _version = version;
        Log($"collection configs {version}: {(inputs.Count == 0 ? "none" : string.Join(", ", inputs.Select(i => i.Name)))}");
        Volatile.Write(ref _pending, new Change(inputs, version));
    }

    private void Log(string line) => _log.Write(line);
}
