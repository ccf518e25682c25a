using System.Net.Http.Json;
using System.Text.Json.Serialization;

namespace Logwell.Server.Hosting;

/// <summary>
/// A node's entry in a Consul agent's catalog, through the agent's HTTP API (<c>PUT /v1/agent/service/register</c> and
/// <c>/deregister</c>): service <c>logwell</c>, its role and tags as tags, and an HTTP check on <c>/readyz</c> every
/// 2 s, with Consul removing the entry after 90 s critical (the registry's own rule). Plain HTTP calls rather than a
/// client library: two requests are all Logwell makes, and the agent API has been stable since Consul 1.0.
/// </summary>
public sealed class ConsulRegistration(HttpClient http, string token)
{
    public const string ServiceName = "logwell";

    /// <summary>The body of the registration of the node <paramref name="id"/> listening at <paramref name="scheme"/>://host:port.</summary>
    public static ConsulService Service(string id, string scheme, string host, int port, string role, IReadOnlyList<string> tags) => new(
        id,
        ServiceName,
        host,
        port,
        [role, .. tags],
        new Dictionary<string, string>(StringComparer.Ordinal) { ["version"] = RegistryHost.Version, ["role"] = role },
        new ConsulCheck(
            $"{scheme}://{(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host)}:{port}/readyz",
            "2s",
            "2s",
            "90s"));

    public async Task RegisterAsync(ConsulService service, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, "v1/agent/service/register") { Content = JsonContent.Create(service) };
        await SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    public async Task DeregisterAsync(string id, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"v1/agent/service/deregister/{Uri.EscapeDataString(id)}");
        await SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private async Task SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (token.Length > 0)
        {
            request.Headers.Add("X-Consul-Token", token);
        }
        using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new HttpRequestException($"the Consul agent answered {(int)response.StatusCode}: {body.Trim()}", null, response.StatusCode);
        }
    }

    /// <summary>
    /// Registers the node, again every minute (an agent restarted without its state forgets services), until
    /// <paramref name="stop"/>; then deregisters it. The agent being away is logged, never fatal.
    /// </summary>
    public static async Task RunAsync(LogwellOptions options, ConsulService service, TimeProvider time, Action<string> log, CancellationToken stop)
    {
        using var http = new HttpClient { BaseAddress = new Uri(options.ConsulAddress.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(10) };
        var consul = new ConsulRegistration(http, options.ConsulToken);
        var registered = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await consul.RegisterAsync(service, stop).ConfigureAwait(false);
                if (!registered)
                {
                    log($"Consul: registered {service.Id} as service {service.Name} at {service.Address}:{service.Port}");
                }
                registered = true;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !stop.IsCancellationRequested)
            {
                log($"Consul: the agent at {options.ConsulAddress} did not take the registration ({e.Message}); trying again in a minute");
            }
            try
            {
                await Task.Delay(TimeSpan.FromMinutes(1), time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        if (registered)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
                await consul.DeregisterAsync(service.Id, timeout.Token).ConfigureAwait(false);
                log($"Consul: deregistered {service.Id}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                log($"Consul: {service.Id} was not deregistered ({e.Message}); the agent removes it 90 s after its check fails");
            }
        }
    }
}

/// <summary>A service definition as the Consul agent API takes it.</summary>
public sealed record ConsulService(
    [property: JsonPropertyName("ID")] string Id,
    [property: JsonPropertyName("Name")] string Name,
    [property: JsonPropertyName("Address")] string Address,
    [property: JsonPropertyName("Port")] int Port,
    [property: JsonPropertyName("Tags")] IReadOnlyList<string> Tags,
    [property: JsonPropertyName("Meta")] IReadOnlyDictionary<string, string> Meta,
    [property: JsonPropertyName("Check")] ConsulCheck Check);

/// <summary>An HTTP check as the Consul agent API takes it.</summary>
public sealed record ConsulCheck(
    [property: JsonPropertyName("HTTP")] string Http,
    [property: JsonPropertyName("Interval")] string Interval,
    [property: JsonPropertyName("Timeout")] string Timeout,
    [property: JsonPropertyName("DeregisterCriticalServiceAfter")] string DeregisterCriticalServiceAfter);
