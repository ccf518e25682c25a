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

/// <summary>The live tails of one index set: subscribers come and go, acknowledged batches go to each of them.</summary>
internal sealed class TailHub(Action<int>? countChanged = null)
{
    private readonly List<TailSubscription> _tails = [];
    private bool _closed;

    public TailSubscription Subscribe(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        // The count is reported under the lock, so that its changes arrive in order (the callback must not block).
        var subscription = new TailSubscription(capacity, s =>
        {
            lock (_tails)
            {
                if (_tails.Remove(s))
                {
                    countChanged?.Invoke(_tails.Count);
                }
            }
        });
        lock (_tails)
        {
            if (_closed)
            {
                subscription.Close();
                return subscription;
            }
            _tails.Add(subscription);
            countChanged?.Invoke(_tails.Count);
        }
        return subscription;
    }

    public void Publish(List<LogEvent> added)
    {
        TailSubscription[] tails;
        lock (_tails)
        {
            if (_tails.Count == 0 || added.Count == 0)
            {
                return;
            }
            tails = [.. _tails];
        }
        var batch = added.ToArray();
        foreach (var tail in tails)
        {
            tail.Offer(batch);
        }
    }

    /// <summary>Ends every tail (the index set closes); later subscribers get a finished stream.</summary>
    public void Close()
    {
        lock (_tails)
        {
            _closed = true;
            foreach (var tail in _tails)
            {
                tail.Close();
            }
            if (_tails.Count > 0)
            {
                _tails.Clear();
                countChanged?.Invoke(0);
            }
        }
    }
}
