using System.Threading.Channels;
using Logwell.Core.Events;

namespace Logwell.Storage.Engine;

/// <summary>
/// Events as they are acknowledged, for a live tail. Each subscriber has a bounded queue of batches: one that falls
/// behind by more than its capacity is cut off (<see cref="Overflowed"/>, and the queue completes) instead of making
/// the server hold ever more events for it.
/// </summary>
public sealed class TailSubscription : IDisposable
{
    private readonly Channel<IReadOnlyList<LogEvent>> _batches;
    private readonly Action<TailSubscription> _unsubscribe;
    private int _overflowed;

    internal TailSubscription(int capacity, Action<TailSubscription> unsubscribe)
    {
        _batches = Channel.CreateBounded<IReadOnlyList<LogEvent>>(new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        _unsubscribe = unsubscribe;
    }

    /// <summary>Acknowledged batches in order; completes when the subscriber was cut off or the index set closed.</summary>
    public ChannelReader<IReadOnlyList<LogEvent>> Batches => _batches.Reader;

    /// <summary>True when the subscriber fell too far behind and was cut off.</summary>
    public bool Overflowed => Volatile.Read(ref _overflowed) == 1;

    internal void Offer(IReadOnlyList<LogEvent> batch)
    {
        if (!_batches.Writer.TryWrite(batch) && Interlocked.Exchange(ref _overflowed, 1) == 0)
        {
            _batches.Writer.TryComplete();
            _unsubscribe(this);
        }
    }

    internal void Close() => _batches.Writer.TryComplete();

    public void Dispose()
    {
        _batches.Writer.TryComplete();
        _unsubscribe(this);
    }
}
