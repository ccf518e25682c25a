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
    private readonly Dictionary<string, FieldValue[]?> _fields = new(StringComparer.Ordinal);

    public BlockRows(Segment segment, int index)
    {
        _segment = segment;
        _meta = segment.Blocks[index];
        Index = index;
        Count = _meta.Rows;
        Timestamps = new long[Count];
        Seqs = new long[Count];
        var t = 0L;
        var s = 0L;
        foreach (var column in _meta.Columns)
        {
            if (column.Column is SegmentFormat.TimestampColumn or SegmentFormat.SeqColumn)
            {
                var raw = new byte[column.RawLength];
                _segment.ReadColumn(index, column, raw);
                var reader = new ByteReader(raw);
                if (column.Column == SegmentFormat.TimestampColumn)
                {
                    t = reader.ReadVarInt();
                    Timestamps[0] = t;
                    for (var i = 1; i < Count; i++)
                    {
                        t += (long)reader.ReadVarUInt();
                        Timestamps[i] = t;
                    }
                }
                else
                {
                    for (var i = 0; i < Count; i++)
                    {
                        s += reader.ReadVarInt();
                        Seqs[i] = s;
                    }
                }
            }
        }
        FieldNames = [.. _meta.Columns.Where(c => c.Column >= SegmentFormat.FirstField).Select(c => segment.FieldNames[c.Column - SegmentFormat.FirstField])];
    }

    public int Index { get; }
    public int Count { get; }
    public long[] Timestamps { get; }
    public long[] Seqs { get; }

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
