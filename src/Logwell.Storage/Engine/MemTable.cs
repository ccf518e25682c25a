using Logwell.Core.Events;

namespace Logwell.Storage.Engine;

/// <summary>
/// Durable events not yet in a segment, in arrival order. Append-only: a snapshot (array, count) stays valid while
/// later events are added, because a grown array is a copy and slots below the count are never written again.
/// </summary>
internal sealed class MemTable(string walPath)
{
    private readonly Lock _lock = new();
    private LogEvent[] _items = new LogEvent[1024];
    private int _count;

    public string WalPath { get; } = walPath;
    public long Bytes { get; private set; }
    public long MinTime { get; private set; } = long.MaxValue;
    public long MaxTime { get; private set; } = long.MinValue;
    public long MaxSeq { get; private set; }

    public int Count => Volatile.Read(ref _count);

    public void Add(List<LogEvent> events)
    {
        lock (_lock)
        {
            if (_count + events.Count > _items.Length)
            {
                var grown = new LogEvent[Math.Max(_items.Length * 2, _count + events.Count)];
                Array.Copy(_items, grown, _count);
                _items = grown;
            }
            foreach (var evt in events)
            {
                _items[_count++] = evt;
                Bytes += evt.EstimatedBytes();
                MinTime = Math.Min(MinTime, evt.Timestamp);
                MaxTime = Math.Max(MaxTime, evt.Timestamp);
                MaxSeq = Math.Max(MaxSeq, evt.Seq);
            }
        }
    }

    public MemTableSnapshot Snapshot()
    {
        lock (_lock)
        {
            return new MemTableSnapshot(_items, _count, MinTime, MaxTime);
        }
    }
}

internal readonly record struct MemTableSnapshot(LogEvent[] Items, int Count, long MinTime, long MaxTime);
