using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Storage.ClickHouse;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Logwell.Server.Hosting;

/// <summary>
/// Live tails across the nodes of a cluster, through Redis publish/subscribe: a node publishes each batch it
/// acknowledges on the index set's channel (<c>PREFIXtail:NAME</c>), and subscribes to a channel while it has tails on
/// that index set. A channel nobody listens to (<c>PUBLISH</c> answers 0) is left alone for a second, so a cluster
/// without tails sends its events to Redis about once a second per index set, not with every batch. A tail started on
/// another node thus sees events within about a second; what Redis cannot carry (it is down) is missed by the tails,
/// never by the store.
/// </summary>
internal sealed class RedisTailRelay : ITailRelay, IDisposable
{
    private readonly ConnectionMultiplexer _redis;
    private readonly ISubscriber _subscriber;
    private readonly string _prefix;
    private readonly string _node = Guid.NewGuid().ToString("N");
    private readonly ClickHouseLogStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, long> _quietUntil = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool> _following = new(StringComparer.Ordinal);
    private Task _changes = Task.CompletedTask;

    public RedisTailRelay(string configuration, string prefix, ClickHouseLogStore store, TimeProvider time, ILogger<RedisTailRelay> logger)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        _redis = ConnectionMultiplexer.Connect(options);
        _subscriber = _redis.GetSubscriber();
        _prefix = prefix;
        _store = store;
        _time = time;
        _logger = logger;
    }

    private RedisChannel Channel(string indexSet) => RedisChannel.Literal(_prefix + "tail:" + indexSet);

    public void Send(string indexSet, IReadOnlyList<LogEvent> events)
    {
        var now = _time.GetTimestamp();
        if (_quietUntil.TryGetValue(indexSet, out var until) && now < until)
        {
            return;
        }
        var header = Encoding.UTF8.GetBytes(_node + "\n");
        var block = ClickHouseEvents.Block(events);
        var message = new byte[header.Length + block.Length];
        header.CopyTo(message, 0);
        block.CopyTo(message, header.Length);
        _ = PublishAsync(indexSet, message, now);
    }

    private async Task PublishAsync(string indexSet, byte[] message, long now)
    {
        try
        {
            var listeners = await _subscriber.PublishAsync(Channel(indexSet), message).ConfigureAwait(false);
            if (listeners == 0)
            {
                _quietUntil[indexSet] = now + _time.TimestampFrequency;
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _logger.LogDebug("Tail relay: a batch of {IndexSet} was not published ({Error})", indexSet, e.Message);
        }
    }

    /// <summary>
    /// Subscribes on the first tail of an index set and unsubscribes after its last, in the order the changes came (the
    /// hub reports them under its lock, so this must not block: the changes run one after another in the background).
    /// </summary>
    public void Following(string indexSet, bool following)
    {
        lock (_following)
        {
            if (_following.GetValueOrDefault(indexSet) == following)
            {
                return;
            }
            _following[indexSet] = following;
            var channel = Channel(indexSet);
            _changes = _changes.ContinueWith(async _ =>
            {
                try
                {
                    if (following)
                    {
                        await _subscriber.SubscribeAsync(channel, OnMessage).ConfigureAwait(false);
                    }
                    else
                    {
                        await _subscriber.UnsubscribeAsync(channel, OnMessage).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    _logger.LogWarning("Tail relay: could not {Change} index set {IndexSet} ({Error}); its tails show this node's events only", following ? "follow" : "stop following", indexSet, e.Message);
                }
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
        }
    }

    private void OnMessage(RedisChannel channel, RedisValue message)
    {
        var name = channel.ToString();
        var prefix = _prefix + "tail:";
        if (name.StartsWith(prefix, StringComparison.Ordinal))
        {
            Received(name[prefix.Length..], message);
        }
    }

    private void Received(string indexSet, RedisValue message)
    {
        byte[] bytes = message!;
        var newline = Array.IndexOf(bytes, (byte)'\n');
        if (newline < 0 || Encoding.UTF8.GetString(bytes, 0, newline) == _node)
        {
            return;
        }
        var events = new List<LogEvent>();
        foreach (var line in Encoding.UTF8.GetString(bytes, newline + 1, bytes.Length - newline - 1).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var row = JsonDocument.Parse(line);
            events.Add(ClickHouseEvents.Read(row.RootElement));
        }
        _store.Relayed(indexSet, events);
    }

    public void Dispose() => _redis.Dispose();
}
