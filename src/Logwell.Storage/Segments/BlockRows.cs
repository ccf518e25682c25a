using System.Buffers;
using Logwell.Core.Events;
using Logwell.Storage.Encoding;
using Logwell.Storage.Querying;

namespace Logwell.Storage.Segments;

/// <summary>
/// One block of a segment as columns, each read and decoded when a query first needs it: timestamps, sequence numbers,
/// the messages and text fields (kept as UTF-8), each field as values or grouped by dictionary value, and the row
/// postings. Events are built only for the rows a search returns.
/// </summary>
internal sealed class BlockRows
{
    private readonly Segment _segment;
    private readonly BlockMeta _meta;
    private readonly Lock _lock = new();
    private TextColumn? _messages;
    private BlockPostings? _postings;
    private long[]? _timestamps;
    private long[]? _seqs;
    private readonly Dictionary<string, byte[]?> _fieldBytes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TextColumn?> _textFields = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FieldValue[]?> _fields = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DictionaryColumn?> _codes = new(StringComparer.Ordinal);

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

    /// <summary>The segment the block belongs to.</summary>
    public Segment Segment => _segment;

    /// <summary>The newest timestamp in the block (from its metadata, without decoding).</summary>
    public long MaxTime => _meta.MaxTime;

    /// <summary>Told how many bytes each column takes once decoded (the block cache sizes its entry by them).</summary>
    public Action<long>? OnDecoded { get; set; }

    private void Decoded(long bytes) => OnDecoded?.Invoke(bytes);

    /// <summary>Timestamps of the rows, ascending (decoded on first use).</summary>
    public long[] Timestamps => _timestamps ?? DecodeOnce(ref _timestamps, SegmentFormat.TimestampColumn);

    /// <summary>Sequence numbers of the rows (decoded on first use).</summary>
    public long[] Seqs => _seqs ?? DecodeOnce(ref _seqs, SegmentFormat.SeqColumn);

    private long[] DecodeOnce(ref long[]? decoded, int columnId)
    {
        lock (_lock)
        {
            if (decoded is null)
            {
                decoded = DecodeInt64Column(columnId);
                Decoded(Count * 8L);
            }
            return decoded;
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
    public TextColumn Messages
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
                    var raw = GC.AllocateUninitializedArray<byte>(column.RawLength);
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
                    _messages = new TextColumn(raw, offsets, lengths);
                    Decoded(raw.Length + Count * 8L);
                }
                return _messages;
            }
        }
    }

    public string Message(int row) => System.Text.Encoding.UTF8.GetString(Messages.Utf8(row));

    /// <summary>Whether reading <see cref="Postings"/> reads nothing from the file.</summary>
    public bool PostingsRead => _meta.Postings is null || Volatile.Read(ref _postings) is not null;

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
                    var raw = GC.AllocateUninitializedArray<byte>(column.RawLength);
                    _segment.ReadColumn(Index, column, raw);
                    _postings = BlockPostings.Parse(raw, Count, Decoded);
                    Decoded(raw.Length + _postings.Tokens * 12L);
                }
                return _postings;
            }
        }
    }

    private readonly Dictionary<string, string[]?> _dictionaryValues = new(StringComparer.Ordinal);

    /// <summary>
    /// The distinct strings of a dictionary-coded field, read from the column's head without its rows' codes (a clause
    /// that no value matches needs no more); null when the field is not dictionary-coded in this block.
    /// </summary>
    public string[]? DictionaryValues(string name)
    {
        lock (_lock)
        {
            if (_codes.TryGetValue(name, out var column))
            {
                return column?.Values;
            }
            if (_dictionaryValues.TryGetValue(name, out var known))
            {
                return known;
            }
            string[]? values = null;
            if (RawField(name) is { } raw)
            {
                var reader = new ByteReader(raw);
                if (reader.ReadByte() == SegmentFormat.DictionaryStrings)
                {
                    values = new string[(int)reader.ReadVarUInt()];
                    for (var i = 0; i < values.Length; i++)
                    {
                        values[i] = reader.ReadString();
                    }
                    Decoded(values.Sum(d => 24L + d.Length * 2L));
                }
            }
            _dictionaryValues[name] = values;
            return values;
        }
    }

    /// <summary>
    /// A dictionary-coded field grouped by value: the rows holding each distinct string, and the rows holding a value
    /// of another kind (read those from <see cref="Field"/>). Null when the field is not dictionary-coded in this block.
    /// </summary>
    public DictionaryColumn? FieldCodes(string name)
    {
        lock (_lock)
        {
            if (_codes.TryGetValue(name, out var cached))
            {
                return cached;
            }
            DictionaryColumn? result = null;
            if (RawField(name) is { } raw)
            {
                var reader = new ByteReader(raw);
                if (reader.ReadByte() == SegmentFormat.DictionaryStrings)
                {
                    result = DictionaryColumn.Read(ref reader, Count);
                    result.OnBitmap = OnDecoded;
                    Decoded(Count * 4L + result.Values.Sum(d => 24L + d.Length * 2L));
                }
            }
            _codes[name] = result;
            return result;
        }
    }

    /// <summary>
    /// A field whose every value is a string (rows without a value or with null are empty) as UTF-8, read
    /// in place from the stored column; null when the block lacks the field or holds other kinds of values in it.
    /// </summary>
    public TextColumn? TextField(string name)
    {
        lock (_lock)
        {
            if (_textFields.TryGetValue(name, out var known))
            {
                return known;
            }
            var raw = RawField(name);
            var text = raw is null ? null : ReadTextColumn(raw);
            if (text is not null)
            {
                Decoded(Count * 8L);
            }
            _textFields[name] = text;
            return text;
        }
    }

    /// <summary>The bounds of a field's text in this block, from the footer (nothing is read); null when not known.</summary>
    public TextBounds? Bounds(string name)
    {
        lock (_lock)
        {
            return FieldColumn(name)?.Bounds;
        }
    }

    private TextColumn? ReadTextColumn(byte[] raw)
    {
        var reader = new ByteReader(raw);
        if (reader.ReadByte() != SegmentFormat.PlainStrings)
        {
            return null;
        }
        var offsets = new int[Count];
        var lengths = new int[Count];
        ulong[]? absent = null;
        for (var row = 0; row < Count; row++)
        {
            var kind = (FieldKind)reader.ReadByte();
            offsets[row] = reader.Position;
            switch (kind)
            {
                case 0 or FieldKind.Null:
                    RowBits.Set(absent ??= new ulong[(Count + 63) >> 6], row);
                    break;
                case FieldKind.String:
                    lengths[row] = reader.ReadLength();
                    offsets[row] = reader.Position;
                    reader.Skip(lengths[row]);
                    break;
                default:
                    return null;
            }
        }
        return new TextColumn(raw, offsets, lengths) { Absent = absent };
    }

    /// <summary>
    /// The rows where the field has a value (not null, nor an array of nulls), read from the stored column without building values;
    /// null when no row of the block has the field.
    /// </summary>
    public ulong[]? Present(string name)
    {
        byte[]? raw;
        lock (_lock)
        {
            raw = RawField(name);
        }
        if (raw is null)
        {
            return null;
        }
        var bits = new ulong[(Count + 63) / 64];
        var reader = new ByteReader(raw);
        if (reader.ReadByte() == SegmentFormat.DictionaryStrings)
        {
            var entries = (int)reader.ReadVarUInt();
            for (var i = 0; i < entries; i++)
            {
                reader.Skip(reader.ReadLength());
            }
            for (var row = 0; row < Count; row++)
            {
                var kind = (FieldKind)reader.ReadByte();
                if (kind == FieldKind.String)
                {
                    reader.ReadVarUInt();
                }
                else if (kind == FieldKind.Json)
                {
                    if (!FieldValue.IsValuelessJson(reader.ReadBytes(reader.ReadLength())))
                    {
                        bits[row >> 6] |= 1UL << row;
                    }
                    continue;
                }
                else
                {
                    SkipValue(ref reader, kind);
                }
                if (kind is not (0 or FieldKind.Null))
                {
                    bits[row >> 6] |= 1UL << row;
                }
            }
            return bits;
        }
        for (var row = 0; row < Count; row++)
        {
            var kind = (FieldKind)reader.ReadByte();
            if (kind == FieldKind.Json)
            {
                // An array of nothing but nulls ([], [null]) holds no value.
                if (!FieldValue.IsValuelessJson(reader.ReadBytes(reader.ReadLength())))
                {
                    bits[row >> 6] |= 1UL << row;
                }
                continue;
            }
            SkipValue(ref reader, kind);
            if (kind is not (0 or FieldKind.Null))
            {
                bits[row >> 6] |= 1UL << row;
            }
        }
        return bits;
    }

    private static void SkipValue(ref ByteReader reader, FieldKind kind)
    {
        switch (kind)
        {
            case FieldKind.Long:
                reader.ReadVarUInt();
                break;
            case FieldKind.Double:
                reader.Skip(8);
                break;
            case FieldKind.String or FieldKind.Json:
                reader.Skip(reader.ReadLength());
                break;
            case 0 or FieldKind.Null or FieldKind.True or FieldKind.False:
                break;
            default:
                throw new InvalidDataException($"unknown field kind {(int)kind}");
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
            raw = GC.AllocateUninitializedArray<byte>(column.RawLength);
            _segment.ReadColumn(Index, column, raw);
            Decoded(raw.Length);
        }
        _fieldBytes[name] = raw;
        return raw;
    }

    private Dictionary<int, ColumnMeta>? _columnsById;

    // Callers hold the lock.
    private ColumnMeta? FieldColumn(string name)
    {
        var id = _segment.FieldId(name);
        if (id < 0)
        {
            return null;
        }
        var columnId = SegmentFormat.FirstField + id;
        if (_meta.Columns.Length <= 16)
        {
            foreach (var column in _meta.Columns)
            {
                if (column.Column == columnId)
                {
                    return column;
                }
            }
            return null;
        }
        // A wide block: its columns by id, once, rather than a scan per lookup.
        _columnsById ??= _meta.Columns.ToDictionary(c => c.Column);
        return _columnsById.TryGetValue(columnId, out var found) ? found : null;
    }

    /// <summary>Blocks with more field columns than this build their events from a per-row list of values.</summary>
    private const int WideBlockFields = 256;

    private Core.Events.Field[][]? _rowFields;

    /// <summary>
    /// Each row's fields, for a wide block: every column read once and dropped, keeping only the values rows have (a
    /// sparse block's columns decoded whole would take rows × columns of memory).
    /// </summary>
    private Core.Events.Field[][] RowFields()
    {
        lock (_lock)
        {
            if (_rowFields is not null)
            {
                return _rowFields;
            }
            var rows = new List<Core.Events.Field>?[Count];
            var bytes = 0L;
            foreach (var name in FieldNames)
            {
                if (FieldColumn(name) is not { } column)
                {
                    continue;
                }
                var raw = ArrayPool<byte>.Shared.Rent(Math.Max(1, column.RawLength));
                try
                {
                    _segment.ReadColumn(Index, column, raw);
                    var values = Segment.DecodeFieldColumn(raw.AsSpan(0, column.RawLength), Count);
                    for (var row = 0; row < Count; row++)
                    {
                        if (values[row].Kind != 0)
                        {
                            (rows[row] ??= []).Add(new Core.Events.Field(name, values[row]));
                            bytes += 48;
                        }
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(raw);
                }
            }
            _rowFields = [.. rows.Select(r => r?.ToArray() ?? [])];
            Decoded(bytes + Count * 8L);
            return _rowFields;
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
        if (FieldNames.Length > WideBlockFields)
        {
            return new LogEvent(Timestamps[row], Message(row), [.. RowFields()[row]]) { Seq = Seqs[row] };
        }
        var fields = new List<Core.Events.Field>(FieldNames.Length);
        foreach (var name in FieldNames)
        {
            var value = ValueAt(name, row);
            if (value.Kind != 0)
            {
                fields.Add(new Core.Events.Field(name, value));
            }
        }
        return new LogEvent(Timestamps[row], Message(row), [.. fields]) { Seq = Seqs[row] };
    }

    /// <summary>
    /// One row's value of a field (<c>default</c> when the row lacks it). Dictionary and plain text columns are read
    /// at the row, so hits spread over many blocks (a page ordered by a field) do not each decode whole columns.
    /// </summary>
    private FieldValue ValueAt(string name, int row)
    {
        if (FieldCodes(name) is { } dictionary)
        {
            if (dictionary.CodeOf(row) is var code && code >= 0)
            {
                return FieldValue.FromString(dictionary.Values[code]);
            }
            if (Array.BinarySearch(dictionary.OtherRows, row) < 0)
            {
                return default;
            }
        }
        else if (TextField(name) is { } text)
        {
            if (text.Absent is { } absent && RowBits.Contains(absent, row))
            {
                // A row without text sits just after its kind byte: absent (0) or null.
                return text.Bytes[text.Offsets[row] - 1] == (byte)FieldKind.Null ? FieldValue.Null : default;
            }
            return FieldValue.FromString(System.Text.Encoding.UTF8.GetString(text.Utf8(row)));
        }
        return Field(name) is { } values ? values[row] : default;
    }
}

/// <summary>
/// A column of text as UTF-8, read in place: row <c>i</c> is <c>Lengths[i]</c> bytes at <c>Offsets[i]</c> of
/// <c>Bytes</c>; offsets ascend strictly (a row without text has length 0 at its place in the column).
/// </summary>
internal sealed record TextColumn(byte[] Bytes, int[] Offsets, int[] Lengths)
{
    /// <summary>The rows without a value (absent or null, as opposed to an empty string); null when every row has one.</summary>
    public ulong[]? Absent { get; init; }

    public ReadOnlySpan<byte> Utf8(int row) => Bytes.AsSpan(Offsets[row], Lengths[row]);

    /// <summary>The row whose text holds byte <paramref name="offset"/> of <c>Bytes</c>; -1 when none does.</summary>
    public int RowAt(int offset)
    {
        var i = Array.BinarySearch(Offsets, offset);
        if (i < 0)
        {
            i = ~i - 1;
        }
        return i >= 0 && offset < Offsets[i] + Lengths[i] ? i : -1;
    }
}

/// <summary>
/// A dictionary-coded column grouped by value: the rows holding <c>Values[c]</c> are
/// <c>Rows[Starts[c]..Starts[c+1]]</c>, ascending; <c>OtherRows</c> hold values that are not strings.
/// </summary>
internal sealed record DictionaryColumn(string[] Values, int[] Rows, int[] Starts, int[] OtherRows)
{
    private ulong[]?[]? _bitmaps;

    /// <summary>Told how many bytes a bitmap made for a value takes (the block cache sizes its entry by them).</summary>
    public Action<long>? OnBitmap { get; set; }

    public ReadOnlySpan<int> RowsOf(int code) => Rows.AsSpan(Starts[code], Starts[code + 1] - Starts[code]);

    /// <summary>
    /// Sets the rows of <paramref name="code"/> in <paramref name="result"/>. A value held by many rows is set from its
    /// bitmap, made on first use and kept with the cached block: a word-wise OR instead of a write per row, which is
    /// what a count such as <c>level:WARN</c> over every block spends its time on.
    /// </summary>
    public void OrInto(ulong[] result, int code)
    {
        var rows = RowsOf(code);
        // Fewer rows than the bitmap has words (one row in 64): setting them one by one costs less.
        if (rows.Length < result.Length)
        {
            foreach (var row in rows)
            {
                result[row >> 6] |= 1UL << row;
            }
            return;
        }
        var bitmaps = Volatile.Read(ref _bitmaps) ?? Interlocked.CompareExchange(ref _bitmaps, new ulong[]?[Values.Length], null) ?? _bitmaps!;
        var bitmap = Volatile.Read(ref bitmaps[code]);
        if (bitmap is null)
        {
            bitmap = new ulong[result.Length];
            foreach (var row in rows)
            {
                bitmap[row >> 6] |= 1UL << row;
            }
            if (Interlocked.CompareExchange(ref bitmaps[code], bitmap, null) is null)
            {
                OnBitmap?.Invoke(bitmap.Length * 8L);
            }
        }
        Querying.RowBits.Or(result, bitmap);
    }

    private int[]? _codeOfRow;

    /// <summary>
    /// The code of a row's value; -1 when the row holds no string of the dictionary. A few values are searched; past
    /// them, a code per row is made on first use and kept with the block.
    /// </summary>
    public int CodeOf(int row)
    {
        if (Values.Length > 16)
        {
            var codes = Volatile.Read(ref _codeOfRow);
            if (codes is null)
            {
                codes = new int[Rows.Length == 0 ? 0 : Rows.Max() + 1];
                Array.Fill(codes, -1);
                for (var code = 0; code < Values.Length; code++)
                {
                    foreach (var each in RowsOf(code))
                    {
                        codes[each] = code;
                    }
                }
                if (Interlocked.CompareExchange(ref _codeOfRow, codes, null) is null)
                {
                    OnBitmap?.Invoke(codes.Length * 4L);
                }
                codes = _codeOfRow;
            }
            return row < codes.Length ? codes[row] : -1;
        }
        for (var code = 0; code < Values.Length; code++)
        {
            if (Array.BinarySearch(Rows, Starts[code], Starts[code + 1] - Starts[code], row) >= 0)
            {
                return code;
            }
        }
        return -1;
    }

    public static DictionaryColumn Read(ref ByteReader reader, int count)
    {
        var values = new string[(int)reader.ReadVarUInt()];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = reader.ReadString();
        }
        var codes = new int[count];
        var perCode = new int[values.Length + 1];
        var others = new List<int>();
        for (var row = 0; row < count; row++)
        {
            var kind = reader.ReadByte();
            if (kind == 0)
            {
                codes[row] = -1;
            }
            else if (kind == (byte)FieldKind.String)
            {
                var code = reader.ReadVarUInt();
                if (code >= (ulong)values.Length)
                {
                    throw new InvalidDataException("dictionary code out of range");
                }
                codes[row] = (int)code;
                perCode[code + 1]++;
            }
            else
            {
                EventCodec.ReadValue(ref reader, kind);
                codes[row] = -1;
                others.Add(row);
            }
        }
        for (var c = 1; c < perCode.Length; c++)
        {
            perCode[c] += perCode[c - 1];
        }
        var starts = (int[])perCode.Clone();
        var rows = new int[perCode[^1]];
        for (var row = 0; row < count; row++)
        {
            if (codes[row] >= 0)
            {
                rows[perCode[codes[row]]++] = row;
            }
        }
        return new DictionaryColumn(values, rows, starts, [.. others]);
    }
}
