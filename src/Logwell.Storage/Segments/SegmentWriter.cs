using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Logwell.Core.Events;
using Logwell.Core.Text;
using Logwell.Storage.Encoding;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Storage.Segments;

/// <summary>
/// Writes one immutable segment from events given in ascending (timestamp, seq) order, a block at a time, to a
/// temporary file that <see cref="Complete"/> fsyncs and renames into place.
/// </summary>
internal sealed class SegmentWriter : IDisposable
{
    private readonly string _path;
    private readonly string _tempPath;
    private readonly string _day;
    private readonly int _blockRows;
    private readonly Zstd.Compressor _compressor;
    private readonly SafeFileHandle _handle;
    private readonly List<LogEvent> _pending = [];
    private readonly List<BlockMeta> _blocks = [];
    private readonly FieldNumbers _fields = new();

    // Per block, reused: the (row, value) lists by field id, and the ids present.
    private readonly List<List<(int Row, FieldValue Value)>?> _present = [];
    private readonly List<int> _presentIds = [];
    private int[] _codes = [];
    private long[] _timestamps = [];
    private readonly PostingsBuilder _tokens = new();
    private readonly TermDictionaryBuilder _terms = new();
    private readonly ByteWriter _raw = new(1 << 16);
    private readonly ByteWriter _block = new(1 << 16);
    private long _offset = SegmentFormat.HeaderSize;
    private long _events;
    private long _minTime = long.MaxValue;
    private long _maxTime = long.MinValue;
    private long _minSeq = long.MaxValue;
    private long _maxSeq = long.MinValue;
    private EventPosition _last = new(long.MinValue, long.MinValue);
    private bool _completed;

    public SegmentWriter(string path, string day, int blockRows, int compressionLevel)
    {
        _path = path;
        _tempPath = path + ".tmp";
        _day = day;
        _blockRows = blockRows;
        _compressor = new Zstd.Compressor(compressionLevel);
        _handle = File.OpenHandle(_tempPath, FileMode.Create, FileAccess.Write);
        Span<byte> header = stackalloc byte[SegmentFormat.HeaderSize];
        SegmentFormat.HeaderMagic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], SegmentFormat.Version);
        RandomAccess.Write(_handle, header, 0);
    }

    public long Events => _events + _pending.Count;

    public void Add(LogEvent evt)
    {
        Append(evt);
        if (_pending.Count >= _blockRows)
        {
            WriteBlock();
        }
    }

    /// <summary>Rows added and not yet written: they become a block at <see cref="EndBlock"/> (or in <see cref="Add"/>).</summary>
    public int PendingRows => _pending.Count;

    /// <summary>Adds a row to the block being gathered without ending it, however many rows it has.</summary>
    public void Append(LogEvent evt)
    {
        var position = new EventPosition(evt.Timestamp, evt.Seq);
        if (position <= _last)
        {
            throw new InvalidOperationException("segment events must be added in ascending (timestamp, seq) order");
        }
        _last = position;
        _pending.Add(evt);
    }

    /// <summary>Writes the rows gathered so far as a block (nothing when there are none).</summary>
    public void EndBlock()
    {
        if (_pending.Count > 0)
        {
            WriteBlock();
        }
    }

    /// <summary>
    /// Writes block <paramref name="index"/> of <paramref name="source"/> as it is stored, each part checked against
    /// its checksum: a merge copies the blocks no other input overlaps instead of decoding, re-tokenizing and
    /// re-compressing their rows. No rows may be pending, and the block's rows must all come after those written. Only
    /// the block directory changes: the source's field ids become this segment's. The source's words reach this
    /// segment's term dictionary through <see cref="AddTerms"/>.
    /// </summary>
    public void CopyBlock(Segment source, int index, ref byte[] buffer)
    {
        if (_pending.Count > 0)
        {
            throw new InvalidOperationException("a block is copied only when no rows are pending");
        }
        if (source.Version != SegmentFormat.Version)
        {
            throw new InvalidOperationException($"a block of a version {source.Version} segment cannot be copied into version {SegmentFormat.Version}");
        }
        var meta = source.Blocks[index];
        // Timestamps ascend within a block: its first row is at MinTime, its last at MaxTime.
        var seqs = source.OpenBlock(index).Seqs;
        if (new EventPosition(meta.MinTime, seqs[0]) <= _last)
        {
            throw new InvalidOperationException("segment events must be added in ascending (timestamp, seq) order");
        }
        var stored = source.ReadStoredBlock(index, ref buffer);
        var columns = new ColumnMeta[meta.Columns.Length];
        for (var c = 0; c < columns.Length; c++)
        {
            var column = meta.Columns[c];
            columns[c] = column.Column < SegmentFormat.FirstField
                ? column
                : column with { Column = SegmentFormat.FirstField + _fields.Of(source.FieldNames[column.Column - SegmentFormat.FirstField]) };
        }
        // Columns in ascending id order, as blocks written here have them.
        Array.Sort(columns, static (a, b) => a.Column.CompareTo(b.Column));
        RandomAccess.Write(_handle, stored, _offset);
        _blocks.Add(meta with { Offset = _offset, Columns = columns });
        _offset += stored.Length;
        _last = new EventPosition(meta.MaxTime, seqs[^1]);
        _minTime = Math.Min(_minTime, meta.MinTime);
        _maxTime = Math.Max(_maxTime, meta.MaxTime);
        foreach (var seq in seqs)
        {
            _minSeq = Math.Min(_minSeq, seq);
        }
        _maxSeq = Math.Max(_maxSeq, meta.MaxSeq);
        _events += meta.Rows;
    }

    /// <summary>
    /// Adds every word of <paramref name="source"/>'s term dictionary to this segment's, under this segment's field
    /// ids: what a merge does for each input, since it may copy the input's blocks without tokenizing their rows. A
    /// source whose dictionary is incomplete leaves this one incomplete; one without a dictionary (before version 4)
    /// adds nothing, since its blocks are never copied.
    /// </summary>
    public void AddTerms(Segment source)
    {
        if (_terms.Incomplete)
        {
            return;
        }
        var dictionary = source.ReadTermsOnce();
        if (dictionary is null)
        {
            return;
        }
        if (!dictionary.Complete)
        {
            _terms.MarkIncomplete();
            return;
        }
        foreach (var (scope, term) in dictionary.All())
        {
            if (scope == 0)
            {
                _terms.Add(TokenHash.Of(term), 0, term);
                continue;
            }
            if (scope - 1 >= source.FieldNames.Length)
            {
                throw new InvalidDataException($"{source.Path}: the term dictionary names field {scope - 1}, which the segment does not have");
            }
            var field = source.FieldNames[scope - 1];
            _terms.Add(TokenHash.Of(field, term), _fields.Of(field) + 1, term);
        }
    }

    public SegmentInfo Complete()
    {
        if (_pending.Count > 0)
        {
            WriteBlock();
        }
        _raw.Clear();
        _terms.Write(_raw);
        var dictionary = _compressor.Wrap(_raw.WrittenSpan);
        RandomAccess.Write(_handle, dictionary, _offset);
        var dictionaryMeta = (Offset: _offset, Length: dictionary.Length, RawLength: _raw.Length, Crc: Crc32.HashToUInt32(dictionary));
        _offset += dictionary.Length;
        var footer = BuildFooter(dictionaryMeta);
        var compressed = _compressor.Wrap(footer.WrittenSpan);
        var trailer = new byte[SegmentFormat.TrailerSize];
        BinaryPrimitives.WriteInt32LittleEndian(trailer, compressed.Length);
        BinaryPrimitives.WriteInt32LittleEndian(trailer.AsSpan(4), footer.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(8), Crc32.HashToUInt32(compressed));
        SegmentFormat.TrailerMagic.CopyTo(trailer.AsSpan(12));
        RandomAccess.Write(_handle, compressed, _offset);
        _offset += compressed.Length;
        RandomAccess.Write(_handle, trailer, _offset);
        _offset += trailer.Length;
        RandomAccess.FlushToDisk(_handle);
        _handle.Dispose();
        File.Move(_tempPath, _path, overwrite: true);
        DurableFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(_path))!);
        _completed = true;
        return new SegmentInfo(Path.GetFileName(_path), _day, _events, _minTime, _maxTime, _minSeq, _maxSeq, _offset);
    }

    private void WriteBlock()
    {
        var rows = _pending;
        _tokens.Clear();
        _block.Clear();
        var columns = new List<ColumnMeta>();

        // Timestamps: first value, then non-negative deltas. They are kept for the block's rows per minute.
        _raw.Clear();
        if (_timestamps.Length < rows.Count)
        {
            _timestamps = new long[rows.Count];
        }
        var previous = rows[0].Timestamp;
        _timestamps[0] = previous;
        _raw.WriteVarInt(previous);
        for (var i = 1; i < rows.Count; i++)
        {
            _raw.WriteVarUInt((ulong)(rows[i].Timestamp - previous));
            previous = rows[i].Timestamp;
            _timestamps[i] = previous;
        }
        AddColumn(SegmentFormat.TimestampColumn, columns);

        _raw.Clear();
        var previousSeq = 0L;
        foreach (var evt in rows)
        {
            _raw.WriteVarInt(evt.Seq - previousSeq);
            previousSeq = evt.Seq;
        }
        AddColumn(SegmentFormat.SeqColumn, columns);

        _raw.Clear();
        var sink = new HashSink(_tokens, _terms, null, 0, keepRows: true);
        var shortest = int.MaxValue;
        var (least, greatest) = (rows[0].Message, rows[0].Message);
        for (var row = 0; row < rows.Count; row++)
        {
            var message = rows[row].Message;
            _raw.WriteString(message);
            shortest = Math.Min(shortest, message.Length);
            if (string.CompareOrdinal(message, greatest) > 0)
            {
                greatest = message;
            }
            else if (string.CompareOrdinal(message, least) < 0)
            {
                least = message;
            }
            sink.Row = row;
            Tokenizer.Tokenize(message, ref sink);
        }
        AddColumn(SegmentFormat.MessageColumn, columns, TextBounds.Of(least, greatest, shortest));

        // One column per field present in this block, gathered in one pass over the rows as (row, value) lists: memory
        // follows the values present, not rows times columns, however sparse the fields are. Each column is then laid
        // out over the rows in one reused array and written.
        _presentIds.Clear();
        for (var row = 0; row < rows.Count; row++)
        {
            var fields = rows[row].Fields;
            for (var place = 0; place < fields.Length; place++)
            {
                var field = fields[place];
                var id = _fields.At(place, field.Name);
                while (_present.Count <= id)
                {
                    _present.Add(null);
                }
                var present = _present[id] ??= [];
                if (present.Count == 0)
                {
                    _presentIds.Add(id);
                }
                present.Add((row, field.Value));
            }
        }
        // Columns in ascending id order, as earlier writers wrote them.
        _presentIds.Sort();
        var values = new FieldValue[rows.Count];
        foreach (var id in _presentIds)
        {
            var present = _present[id]!;
            Array.Clear(values);
            foreach (var (row, value) in present)
            {
                values[row] = value;
            }
            present.Clear();
            var (bounds, counts) = WriteFieldColumn(id, values);
            AddColumn(SegmentFormat.FirstField + id, columns, bounds, counts);
        }

        _raw.Clear();
        _tokens.Write(_raw, rows.Count, SegmentFormat.PostingsMinRows(rows.Count));
        var postings = AddColumn(SegmentFormat.PostingsColumn, null);
        // The token filter is random bits: stored as they are, not compressed.
        var filterOffset = _block.Length;
        var filter = MemoryMarshal.AsBytes(TokenFilter.Build(CollectionsMarshal.AsSpan(_tokens.Hashes)).AsSpan());
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("segments are written on little-endian machines");
        }
        _block.WriteBytes(filter);
        var filterMeta = new ColumnMeta(SegmentFormat.FilterColumn, filterOffset, filter.Length, filter.Length, Crc32.HashToUInt32(filter));

        var bytes = _block.WrittenSpan;
        RandomAccess.Write(_handle, bytes, _offset);
        long maxSeq = long.MinValue;
        foreach (var evt in rows)
        {
            maxSeq = Math.Max(maxSeq, evt.Seq);
            _minSeq = Math.Min(_minSeq, evt.Seq);
        }
        _maxSeq = Math.Max(_maxSeq, maxSeq);
        _blocks.Add(new BlockMeta(_offset, bytes.Length, rows.Count, rows[0].Timestamp, rows[^1].Timestamp, maxSeq, [.. columns], postings, filterMeta, MinuteRows.Of(_timestamps.AsSpan(0, rows.Count))));
        _offset += bytes.Length;
        _minTime = Math.Min(_minTime, rows[0].Timestamp);
        _maxTime = Math.Max(_maxTime, rows[^1].Timestamp);
        _events += rows.Count;
        _pending.Clear();
    }

    /// <summary>
    /// Writes one field's column; <c>default</c> entries are rows without the field. A dictionary-coded column keeps no
    /// row postings (a query tests its few distinct values and then the codes); its tokens still enter the token filter.
    /// </summary>
    /// <returns>
    /// The column's <see cref="TextBounds"/> when it holds only strings (and nulls), least and greatest only when plain;
    /// its <see cref="ValueCounts"/> when it is dictionary-coded, small and holds only strings.
    /// </returns>
    private (TextBounds? Bounds, ValueCounts? Counts) WriteFieldColumn(int id, FieldValue[] values)
    {
        var name = _fields.Names[id];
        _raw.Clear();
        // Strings repeat a lot in logs (hosts, levels, services): use a dictionary when few values are distinct. Each
        // row's code is kept from this pass; a value that is the same string instance as the row before's is not hashed.
        Dictionary<string, int>? dictionary = new(StringComparer.Ordinal);
        if (_codes.Length < values.Length)
        {
            _codes = new int[values.Length];
        }
        var stringCount = 0;
        string? lastText = null;
        var lastCode = 0;
        for (var row = 0; row < values.Length; row++)
        {
            var value = values[row];
            if (value.Kind == FieldKind.String)
            {
                stringCount++;
                if (dictionary is null)
                {
                    continue;
                }
                if (!ReferenceEquals(value.Text, lastText))
                {
                    ref var code = ref CollectionsMarshal.GetValueRefOrAddDefault(dictionary, value.Text!, out var exists);
                    if (!exists)
                    {
                        code = dictionary.Count - 1;
                    }
                    (lastText, lastCode) = (value.Text, code);
                    if (dictionary.Count > 4096 || dictionary.Count > values.Length / 4 + 16)
                    {
                        dictionary = null;
                        continue;
                    }
                }
                _codes[row] = lastCode;
            }
        }
        if (stringCount == 0)
        {
            dictionary = null;
        }
        var sink = new HashSink(_tokens, _terms, name, id + 1, keepRows: dictionary is null);
        if (dictionary is not null)
        {
            _raw.WriteByte(SegmentFormat.DictionaryStrings);
            _raw.WriteVarUInt((ulong)dictionary.Count);
            foreach (var entry in dictionary.OrderBy(e => e.Value))
            {
                _raw.WriteString(entry.Key);
                Tokenizer.Tokenize(entry.Key, ref sink);
            }
        }
        else
        {
            _raw.WriteByte(SegmentFormat.PlainStrings);
        }

        // Bounds: the fewest characters of a column of strings (and nulls); its least and greatest value when plain.
        string? low = null;
        string? high = null;
        var bounded = true;
        var onlyStrings = true;
        var rowsOf = dictionary is not null && dictionary.Count <= ValueCounts.MaxValues ? new int[dictionary.Count] : null;
        var minLength = int.MaxValue;
        for (var row = 0; row < values.Length; row++)
        {
            var value = values[row];
            if (value.Kind == 0)
            {
                _raw.WriteByte(0);
                continue;
            }
            if (bounded && value.Kind != FieldKind.Null)
            {
                if (value.Kind != FieldKind.String)
                {
                    bounded = false;
                }
                else if (dictionary is not null)
                {
                    // A dictionary's strings are measured once each, below.
                }
                else if (high is null)
                {
                    (low, high) = (value.Text, value.Text);
                    minLength = value.Text!.Length;
                }
                else
                {
                    minLength = Math.Min(minLength, value.Text!.Length);
                    if (string.CompareOrdinal(value.Text, high) > 0)
                    {
                        high = value.Text;
                    }
                    else if (string.CompareOrdinal(value.Text, low) < 0)
                    {
                        low = value.Text;
                    }
                }
            }
            if (value.Kind == FieldKind.String && dictionary is not null)
            {
                _raw.WriteByte((byte)FieldKind.String);
                _raw.WriteVarUInt((ulong)_codes[row]);
                if (rowsOf is not null)
                {
                    rowsOf[_codes[row]]++;
                }
                continue;
            }
            onlyStrings = false;
            EventCodec.WriteValue(_raw, value);
            var text = value.SearchText;
            if (text is not null)
            {
                sink.Row = row;
                // An array's values are searched one by one (a phrase never spans two): its tokens keep no positions,
                // so phrases on them are tested value by value.
                sink.Positional = value.Kind != FieldKind.Json;
                if (value.Kind == FieldKind.Json)
                {
                    // The values as search reads them: decoded, so "caf\u00e9" is indexed as café.
                    foreach (var each in value.Texts())
                    {
                        Tokenizer.Tokenize(each, ref sink);
                    }
                }
                else
                {
                    Tokenizer.Tokenize(text, ref sink);
                }
            }
        }
        if (bounded && dictionary is not null && dictionary.Count > 0)
        {
            ValueCounts? counts = null;
            if (rowsOf is not null && onlyStrings)
            {
                var strings = new string[dictionary.Count];
                foreach (var (text, code) in dictionary)
                {
                    strings[code] = text;
                }
                counts = new ValueCounts(strings, rowsOf);
            }
            return (new TextBounds(null, null, dictionary.Keys.Min(key => key.Length)), counts);
        }
        if (!bounded || high is null)
        {
            return (null, null);
        }
        return (TextBounds.Of(low!, high, minLength), null);
    }

    private ColumnMeta AddColumn(int column, List<ColumnMeta>? columns, TextBounds? bounds = null, ValueCounts? counts = null)
    {
        var offset = _block.Length;
        var length = _compressor.WrapInto(_raw.WrittenSpan, _block);
        var meta = new ColumnMeta(column, offset, length, _raw.Length, Crc32.HashToUInt32(_block.WrittenSpan.Slice(offset, length)), bounds, counts);
        columns?.Add(meta);
        return meta;
    }

    private ByteWriter BuildFooter((long Offset, int Length, int RawLength, uint Crc) dictionary)
    {
        var footer = new ByteWriter(1 << 16);
        footer.WriteVarUInt(SegmentFormat.Version);
        footer.WriteString(_day);
        footer.WriteVarUInt((ulong)_events);
        footer.WriteInt64(_minTime);
        footer.WriteInt64(_maxTime);
        footer.WriteInt64(_minSeq);
        footer.WriteInt64(_maxSeq);
        footer.WriteVarUInt((ulong)_fields.Count);
        for (var id = 0; id < _fields.Count; id++)
        {
            footer.WriteString(_fields.Names[id]);
        }
        footer.WriteVarUInt((ulong)_blocks.Count);
        foreach (var block in _blocks)
        {
            footer.WriteVarUInt((ulong)block.Offset);
            footer.WriteVarUInt((ulong)block.Length);
            footer.WriteVarUInt((ulong)block.Rows);
            footer.WriteInt64(block.MinTime);
            footer.WriteVarUInt((ulong)(block.MaxTime - block.MinTime));
            footer.WriteVarInt(block.MaxSeq);
            footer.WriteVarUInt((ulong)block.Columns.Length);
            foreach (var column in block.Columns)
            {
                footer.WriteVarUInt((ulong)column.Column);
                footer.WriteVarUInt((ulong)column.Offset);
                footer.WriteVarUInt((ulong)column.Length);
                footer.WriteVarUInt((ulong)column.RawLength);
                footer.WriteUInt32(column.Crc);
                TextBounds.Write(footer, column.Bounds);
                ValueCounts.Write(footer, column.Counts);
            }
            var postings = block.Postings!.Value;
            footer.WriteVarUInt((ulong)postings.Offset);
            footer.WriteVarUInt((ulong)postings.Length);
            footer.WriteVarUInt((ulong)postings.RawLength);
            footer.WriteUInt32(postings.Crc);
            var filter = block.Filter!.Value;
            footer.WriteVarUInt((ulong)filter.Offset);
            footer.WriteVarUInt((ulong)filter.Length);
            footer.WriteUInt32(filter.Crc);
            MinuteRows.Write(footer, block.MinuteRows);
        }
        footer.WriteVarUInt((ulong)dictionary.Offset);
        footer.WriteVarUInt((ulong)dictionary.Length);
        footer.WriteVarUInt((ulong)dictionary.RawLength);
        footer.WriteUInt32(dictionary.Crc);
        return footer;
    }

    public void Dispose()
    {
        _compressor.Dispose();
        if (!_completed)
        {
            _handle.Dispose();
            File.Delete(_tempPath);
        }
    }

    /// <param name="scope">The token's scope in the term dictionary: 0 for the message, field id + 1 for a field.</param>
    private struct HashSink(PostingsBuilder tokens, TermDictionaryBuilder terms, string? field, int scope, bool keepRows) : ITokenSink
    {
        private int _row;
        private int _position;

        /// <summary>Whether the tokens of the text given next take positions (true unless set otherwise for it).</summary>
        public bool Positional { get; set; } = true;

        /// <summary>The row whose text is tokenized next; base-token positions count from 0 in each.</summary>
        public int Row
        {
            readonly get => _row;
            set
            {
                _row = value;
                _position = 0;
            }
        }

        // Message tokens are indexed alone, field tokens scoped to their field. Tokens come in text order, so the
        // base tokens (no '.' or '_' inside) are numbered as phrases count them.
        public void Token(ReadOnlySpan<char> token)
        {
            var position = !Positional || token.ContainsAny('.', '_') ? -1 : _position++;
            var hash = field is null ? TokenHash.Of(token) : TokenHash.Of(field, token);
            // The dictionary is offered each token once per block, not once per occurrence.
            if (tokens.Add(hash, _row, position, keepRows))
            {
                terms.Add(hash, scope, token);
            }
        }
    }
}
