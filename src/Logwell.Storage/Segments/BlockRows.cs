using System.Buffers;
using Logwell.Core.Events;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// One block of a segment as columns: timestamps and sequence numbers at once, the message and each field only when a
/// query first needs them. Events are built only for the rows a search returns.
/// </summary>
internal sealed class BlockRows
{
    private readonly Segment _segment;
    private readonly BlockMeta _meta;
    private readonly Lock _lock = new();
    private string[]? _messages;
    private long[]? _timestamps;
    private long[]? _seqs;
    private readonly Dictionary<string, FieldValue[]?> _fields = new(StringComparer.Ordinal);

    public BlockRows(Segment segment, int index)
    {
        _segment = segment;
        _meta = segment.Blocks[index];
        Index = index;
        Count = _meta.Rows;
        FieldNames = [.. _meta.Columns.Where(c => c.Column >= SegmentFormat.FirstField).Select(c => segment.FieldNames[c.Column - SegmentFormat.FirstField])];
    }

    public int Index { get; }
    public int Count { get; }

    /// <summary>Timestamps of the rows, ascending (decoded on first use).</summary>
    public long[] Timestamps
    {
        get
        {
            if (_timestamps is null)
            {
                lock (_lock)
                {
                    _timestamps ??= DecodeInt64Column(SegmentFormat.TimestampColumn);
                }
            }
            return _timestamps;
        }
    }

    /// <summary>Sequence numbers of the rows (decoded on first use).</summary>
    public long[] Seqs
    {
        get
        {
            if (_seqs is null)
            {
                lock (_lock)
                {
                    _seqs ??= DecodeInt64Column(SegmentFormat.SeqColumn);
                }
            }
            return _seqs;
        }
    }

    private long[] DecodeInt64Column(int columnId)
    {
        var column = _meta.Columns.First(c => c.Column == columnId);
        var raw = ArrayPool<byte>.Shared.Rent(Math.Max(1, column.RawLength));
        try
        {
            _segment.ReadColumn(Index, column, raw);
            var reader = new ByteReader(raw.AsSpan(0, column.RawLength));
            var values = new long[Count];
            if (columnId == SegmentFormat.TimestampColumn)
            {
                // First value, then non-negative deltas.
                var t = reader.ReadVarInt();
                values[0] = t;
                for (var i = 1; i < Count; i++)
                {
                    t += (long)reader.ReadVarUInt();
                    values[i] = t;
                }
            }
            else
            {
                var s = 0L;
                for (var i = 0; i < Count; i++)
                {
                    s += reader.ReadVarInt();
                    values[i] = s;
                }
            }
            return values;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>Names of the fields some row of this block has.</summary>
    public string[] FieldNames { get; }

    public string[] Messages
    {
        get
        {
            if (_messages is not null)
            {
                return _messages;
            }
            lock (_lock)
            {
                if (_messages is null)
                {
                    var column = _meta.Columns.First(c => c.Column == SegmentFormat.MessageColumn);
                    var raw = ArrayPool<byte>.Shared.Rent(Math.Max(1, column.RawLength));
                    var messages = new string[Count];
                    try
                    {
                        _segment.ReadColumn(Index, column, raw);
                        var reader = new ByteReader(raw.AsSpan(0, column.RawLength));
                        for (var i = 0; i < Count; i++)
                        {
                            messages[i] = reader.ReadString();
                        }
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(raw);
                    }
                    _messages = messages;
                }
                return _messages;
            }
        }
    }

    /// <summary>The values of one field, <c>default</c> where a row lacks it; null when no row of the block has it.</summary>
    public FieldValue[]? Field(string name)
    {
        lock (_lock)
        {
            if (_fields.TryGetValue(name, out var cached))
            {
                return cached;
            }
            FieldValue[]? values = null;
            var id = Array.IndexOf(_segment.FieldNames, name);
            if (id >= 0)
            {
                var columnId = SegmentFormat.FirstField + id;
                foreach (var column in _meta.Columns)
                {
                    if (column.Column == columnId)
                    {
                        var raw = new byte[column.RawLength];
                        _segment.ReadColumn(Index, column, raw);
                        values = Segment.DecodeFieldColumn(raw, Count);
                        break;
                    }
                }
            }
            _fields[name] = values;
            return values;
        }
    }

    /// <summary>Builds the event of one row (for the hits a search returns).</summary>
    public LogEvent ToEvent(int row)
    {
        var fields = new List<Core.Events.Field>(FieldNames.Length);
        foreach (var name in FieldNames)
        {
            var values = Field(name);
            if (values is not null && values[row].Kind != 0)
            {
                fields.Add(new Core.Events.Field(name, values[row]));
            }
        }
        return new LogEvent(Timestamps[row], Messages[row], [.. fields]) { Seq = Seqs[row] };
    }
}
