using Logwell.Storage.Segments;

namespace Logwell.Storage.Engine;

/// <summary>Decoded blocks, least recently used first out, within a byte budget shared by all index sets.</summary>
internal sealed class BlockCache(long capacityBytes)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(long Segment, int Block), LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _order = new();
    private long _bytes;

    private sealed record Entry((long Segment, int Block) Key, BlockRows Rows, long Bytes);

    public BlockRows GetOrAdd(long segment, int block, long estimatedBytes, Func<BlockRows> load)
    {
        var key = (segment, block);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                return node.Value.Rows;
            }
        }
        var events = load();
        if (estimatedBytes > capacityBytes / 4)
        {
            return events;
        }
        lock (_lock)
        {
            if (_entries.ContainsKey(key))
            {
                return events;
            }
            var node = _order.AddFirst(new Entry(key, events, estimatedBytes));
            _entries[key] = node;
            _bytes += estimatedBytes;
            while (_bytes > capacityBytes && _order.Last is { } last)
            {
                _order.RemoveLast();
                _entries.Remove(last.Value.Key);
                _bytes -= last.Value.Bytes;
            }
        }
        return events;
    }

    public void Evict(long segment)
    {
        lock (_lock)
        {
            var node = _order.First;
            while (node is not null)
            {
                var next = node.Next;
                if (node.Value.Key.Segment == segment)
                {
                    _order.Remove(node);
                    _entries.Remove(node.Value.Key);
                    _bytes -= node.Value.Bytes;
                }
                node = next;
            }
        }
    }
}
