using System.Buffers;
using Logwell.Core.Events;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// One block of a segment as columns, each read and decoded when a query first needs it: timestamps, sequence numbers,
/// the messages (kept as UTF-8), each field (as values, or as dictionary codes) and the row postings. Events are built
/// only for the rows a search returns.
/// </summary>
internal sealed class BlockRows
{
    private readonly Segment _segment;
    private readonly BlockMeta _meta;
    private readonly Lock _lock = new();
    private MessageColumn? _messages;
    private BlockPostings? _postings;
    private long[]? _timestamps;
    private long[]? _seqs;
    private readonly Dictionary<string, byte[]?> _fieldBytes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FieldValue[]?> _fields = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string[] Dictionary, int[] Codes)?> _codes = new(StringComparer.Ordinal);

    public BlockRows(Segment segment, int index)
    {
        _segment = segment;
        _meta = segment.Blocks[index];
        Index = index;
        Count = _meta.Rows;
        FieldNames = [.. _meta.Columns.Where(c => c.Column >= SegmentFormat.FirstField).Select(c => segment.FieldNames[c.Column - SegmentFormat.FirstField])];
    }

    public int Index { get; }

    /// <summary>Told how many bytes each column takes once decoded (the block cache sizes its entry by them).</summary>
    public Action<long>? OnDecoded { get; set; }

    /// <summary>About how many bytes the columns decoded so far take.</summary>
    public long DecodedBytes { get; private set; }

    private void Decoded(long bytes)
    {
        DecodedBytes += bytes;
        OnDecoded?.Invoke(bytes);
    }
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
                    if (_timestamps is null)
                    {
                        _timestamps = DecodeInt64Column(SegmentFormat.TimestampColumn);
                        Decoded(Count * 8L);
                    }
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
                    if (_seqs is null)
                    {
                        _seqs = DecodeInt64Column(SegmentFormat.SeqColumn);
                        Decoded(Count * 8L);
                    }
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

    /// <summary>The messages as UTF-8 (decoded on first use).</summary>
    public MessageColumn Messages
    {
        get
        {
            if (_messages is { } known)
            {
                return known;
            }
            lock (_lock)
            {
                if (_messages is null)
                {
                    var column = _meta.Columns.First(c => c.Column == SegmentFormat.MessageColumn);
                    var raw = new byte[column.RawLength];
                    _segment.ReadColumn(Index, column, raw);
                    var offsets = new int[Count];
                    var lengths = new int[Count];
                    var reader = new ByteReader(raw);
                    for (var i = 0; i < Count; i++)
                    {
                        lengths[i] = reader.ReadLength();
                        offsets[i] = reader.Position;
                        reader.Skip(lengths[i]);
                    }
                    _messages = new MessageColumn(raw, offsets, lengths);
                    Decoded(raw.Length + Count * 8L);
                }
                return _messages;
            }
        }
    }

    public string Message(int row) => System.Text.Encoding.UTF8.GetString(Messages.Utf8(row));

    /// <summary>The block's row postings; null for a block written before segments had them.</summary>
    public BlockPostings? Postings
    {
        get
        {
            if (_meta.Postings is not { } column)
            {
                return null;
            }
            if (_postings is { } known)
            {
                return known;
            }
            lock (_lock)
            {
                if (_postings is null)
                {
                    var raw = new byte[column.RawLength];
                    _segment.ReadColumn(Index, column, raw);
                    _postings = BlockPostings.Parse(raw, Count);
                    Decoded(raw.Length + _postings.Tokens * 12L);
                }
                return _postings;
            }
        }
    }

    /// <summary>
    /// A dictionary-coded field as its distinct strings and each row's code: <c>-1</c> where the row lacks the field,
    /// <c>-2</c> where it holds a value of another kind (read it from <see cref="Field"/>). Null when the field is not
    /// dictionary-coded in this block.
    /// </summary>
    public (string[] Dictionary, int[] Codes)? FieldCodes(string name)
    {
        lock (_lock)
        {
            if (_codes.TryGetValue(name, out var cached))
            {
                return cached;
            }
            (string[], int[])? result = null;
            if (RawField(name) is { } raw)
            {
                var reader = new ByteReader(raw);
                if (reader.ReadByte() == SegmentFormat.DictionaryStrings)
                {
                    var dictionary = new string[(int)reader.ReadVarUInt()];
                    for (var i = 0; i < dictionary.Length; i++)
                    {
                        dictionary[i] = reader.ReadString();
                    }
                    var codes = new int[Count];
                    for (var row = 0; row < Count; row++)
                    {
                        var kind = reader.ReadByte();
                        if (kind == 0)
                        {
                            codes[row] = -1;
                        }
                        else if (kind == (byte)FieldKind.String)
                        {
                            var code = reader.ReadVarUInt();
                            if (code >= (ulong)dictionary.Length)
                            {
                                throw new InvalidDataException($"{_segment.Path}: block {Index} field {name}: dictionary code out of range");
                            }
                            codes[row] = (int)code;
                        }
                        else
                        {
                            EventCodec.ReadValue(ref reader, kind);
                            codes[row] = -2;
                        }
                    }
                    result = (dictionary, codes);
                    Decoded(Count * 4L + dictionary.Sum(d => 24L + d.Length * 2L));
                }
            }
            _codes[name] = result;
            return result;
        }
    }

    /// <summary>
    /// A field's column as stored (decompressed) when every value in it is text (strings, JSON, nulls), so a token that
    /// does not occur in these bytes matches no row; null when the block lacks the field or holds other values in it.
    /// </summary>
    public byte[]? TextFieldBytes(string name)
    {
        lock (_lock)
        {
            if (RawField(name) is not { } raw)
            {
                return null;
            }
            var reader = new ByteReader(raw);
            if (reader.ReadByte() != SegmentFormat.PlainStrings)
            {
                return null;
            }
            for (var row = 0; row < Count; row++)
            {
                switch ((FieldKind)reader.ReadByte())
                {
                    case 0 or FieldKind.Null:
                        break;
                    case FieldKind.String or FieldKind.Json:
                        reader.Skip(reader.ReadLength());
                        break;
                    default:
                        return null;
                }
            }
            return raw;
        }
    }

    // Callers hold the lock.
    private byte[]? RawField(string name)
    {
        if (_fieldBytes.TryGetValue(name, out var cached))
        {
            return cached;
        }
        byte[]? raw = null;
        if (FieldColumn(name) is { } column)
        {
            raw = new byte[column.RawLength];
            _segment.ReadColumn(Index, column, raw);
            Decoded(raw.Length);
        }
        _fieldBytes[name] = raw;
        return raw;
    }

    private ColumnMeta? FieldColumn(string name)
    {
        var id = Array.IndexOf(_segment.FieldNames, name);
        if (id >= 0)
        {
            var columnId = SegmentFormat.FirstField + id;
            foreach (var column in _meta.Columns)
            {
                if (column.Column == columnId)
                {
                    return column;
                }
            }
        }
        return null;
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
            if (RawField(name) is { } raw)
            {
                values = Segment.DecodeFieldColumn(raw, Count);
                Decoded(Count * 32L + raw.Length);
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
        return new LogEvent(Timestamps[row], Message(row), [.. fields]) { Seq = Seqs[row] };
    }
}

/// <summary>A block's messages as UTF-8: row <c>i</c> is <c>Lengths[i]</c> bytes at <c>Offsets[i]</c> of <c>Bytes</c>.</summary>
internal sealed record MessageColumn(byte[] Bytes, int[] Offsets, int[] Lengths)
{
    public ReadOnlySpan<byte> Utf8(int row) => Bytes.AsSpan(Offsets[row], Lengths[row]);
}
