using Logwell.Storage.Segments;

namespace Logwell.Storage.Engine;

/// <summary>
/// Blocks read by searches, least recently used first out, within a byte budget shared by all index sets. An entry
/// starts small and grows as queries decode its columns: a block whose postings alone were read costs little.
/// </summary>
internal sealed class BlockCache(long capacityBytes)
{
    private const long EntryOverhead = 512;

    private readonly Lock _lock = new();
    private readonly Dictionary<(long Segment, int Block), LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _order = new();
    private long _bytes;

    private sealed class Entry((long Segment, int Block) key, BlockRows rows)
    {
        public (long Segment, int Block) Key { get; } = key;
        public BlockRows Rows { get; } = rows;
        public long Bytes { get; set; } = EntryOverhead;
    }

    /// <summary>The block's rows if the cache holds them, without counting as a use.</summary>
    public BlockRows? Peek(long segment, int block)
    {
        lock (_lock)
        {
            return _entries.TryGetValue((segment, block), out var node) ? node.Value.Rows : null;
        }
    }

    public BlockRows GetOrAdd(long segment, int block, Func<BlockRows> load)
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
        var rows = load();
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var existing))
            {
                return existing.Value.Rows;
            }
            var entry = new Entry(key, rows);
            var added = _order.AddFirst(entry);
            _entries[key] = added;
            _bytes += entry.Bytes;
            rows.OnDecoded = bytes => Grow(added, bytes);
            Trim();
        }
        return rows;
    }

    private void Grow(LinkedListNode<Entry> node, long bytes)
    {
        lock (_lock)
        {
            if (node.List is null)
            {
                return; // already evicted: the reader that holds it lets it go when done
            }
            node.Value.Bytes += bytes;
            _bytes += bytes;
            Trim();
        }
    }

    private void Trim()
    {
        while (_bytes > capacityBytes && _order.Last is { } last)
        {
            Remove(last);
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _order.Remove(node);
        _entries.Remove(node.Value.Key);
        _bytes -= node.Value.Bytes;
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
                    Remove(node);
                }
                node = next;
            }
        }
    }
}
