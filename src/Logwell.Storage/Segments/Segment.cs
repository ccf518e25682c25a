using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Encoding;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Storage.Segments;

/// <summary>
/// An open, immutable segment: its block directory and token filters are held in memory; blocks are read, checked and
/// decoded on demand. Reference-counted so a merge or retention can retire it while searches still read it.
/// </summary>
internal sealed class Segment
{
    private static long _nextId;

    private readonly SafeFileHandle _handle;
    private readonly BlockIndex _index;
    private int _references = 1;
    private bool _deleteWhenReleased;

    private Segment(string path, SafeFileHandle handle, int version, SegmentInfo info, string[] fieldNames, BlockMeta[] blocks, BlockIndex index, DictionaryMeta? terms)
    {
        Version = version;
        _termsMeta = terms;
        Path = path;
        _handle = handle;
        Info = info;
        FieldNames = fieldNames;
        Blocks = blocks;
        _index = index;
        Id = Interlocked.Increment(ref _nextId);
    }

    /// <summary>
    /// The format the segment was written in. Before 4, an array's tokens were cut from its JSON text and numbered
    /// across its values, so their positions cannot tell a phrase inside one value.
    /// </summary>
    public int Version { get; }

    /// <summary>Unique within the process, for the block cache.</summary>
    public long Id { get; }
    public string Path { get; }
    public SegmentInfo Info { get; }
    public string[] FieldNames { get; }
    public BlockMeta[] Blocks { get; }

    private Dictionary<string, int>? _fieldIds;

    /// <summary>The position of <paramref name="name"/> in <see cref="FieldNames"/>; -1 when no row has it.</summary>
    public int FieldId(string name)
    {
        if (FieldNames.Length <= 16)
        {
            return Array.IndexOf(FieldNames, name);
        }
        // A segment may hold up to MaxFieldsPerIndexSet names (100,000): looked up by hash, not by scanning.
        var ids = Volatile.Read(ref _fieldIds);
        if (ids is null)
        {
            ids = new Dictionary<string, int>(FieldNames.Length, StringComparer.Ordinal);
            for (var i = 0; i < FieldNames.Length; i++)
            {
                ids.TryAdd(FieldNames[i], i);
            }
            Volatile.Write(ref _fieldIds, ids);
        }
        return ids.TryGetValue(name, out var id) ? id : -1;
    }

    public static Segment Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        try
        {
            return Read(path, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static Segment Read(string path, SafeFileHandle handle)
    {
        var length = RandomAccess.GetLength(handle);
        if (length < SegmentFormat.HeaderSize + SegmentFormat.TrailerSize)
        {
            throw new InvalidDataException($"{path}: too short for a segment");
        }
        Span<byte> header = stackalloc byte[SegmentFormat.HeaderSize];
        RandomAccess.Read(handle, header, 0);
        if (!header[..4].SequenceEqual(SegmentFormat.HeaderMagic))
        {
            throw new InvalidDataException($"{path}: not a Logwell segment");
        }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
        if (version is < SegmentFormat.MinVersion or > SegmentFormat.Version)
        {
            throw new InvalidDataException($"{path}: segment version {version} is not supported");
        }
        Span<byte> trailer = stackalloc byte[SegmentFormat.TrailerSize];
        RandomAccess.Read(handle, trailer, length - SegmentFormat.TrailerSize);
        if (!trailer[12..].SequenceEqual(SegmentFormat.TrailerMagic))
        {
            throw new SegmentDamagedException(path, "segment trailer is missing (incomplete write?)");
        }
        var footerLength = BinaryPrimitives.ReadInt32LittleEndian(trailer);
        var footerRaw = BinaryPrimitives.ReadInt32LittleEndian(trailer[4..]);
        var footerCrc = BinaryPrimitives.ReadUInt32LittleEndian(trailer[8..]);
        if (footerLength <= 0 || footerLength > length - SegmentFormat.TrailerSize - SegmentFormat.HeaderSize)
        {
            throw new SegmentDamagedException(path, "bad footer length");
        }
        var compressed = new byte[footerLength];
        RandomAccess.Read(handle, compressed, length - SegmentFormat.TrailerSize - footerLength);
        if (Crc32.HashToUInt32(compressed) != footerCrc)
        {
            throw new SegmentDamagedException(path, "footer checksum mismatch");
        }
        var footer = new byte[footerRaw];
        try
        {
            if (Zstd.Unwrap(compressed, footer) != footer.Length)
            {
                throw new SegmentDamagedException(path, "footer is shorter than its trailer says");
            }
        }
        catch (InvalidDataException e)
        {
            throw new SegmentDamagedException(path, $"footer: {e.Message}");
        }
        var reader = new ByteReader(footer);
        reader.ReadVarUInt();
        var day = reader.ReadString();
        var events = (long)reader.ReadVarUInt();
        var minTime = reader.ReadInt64();
        var maxTime = reader.ReadInt64();
        var minSeq = reader.ReadInt64();
        var maxSeq = reader.ReadInt64();
        var fieldNames = new string[(int)reader.ReadVarUInt()];
        for (var i = 0; i < fieldNames.Length; i++)
        {
            fieldNames[i] = reader.ReadString();
        }
        var blocks = new BlockMeta[(int)reader.ReadVarUInt()];
        var filters = version >= 3 ? new uint[blocks.Length][] : null;
        var strings = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < blocks.Length; i++)
        {
            var offset = (long)reader.ReadVarUInt();
            var blockLength = (int)reader.ReadVarUInt();
            var rows = (int)reader.ReadVarUInt();
            var blockMin = reader.ReadInt64();
            var blockMax = blockMin + (long)reader.ReadVarUInt();
            var blockMaxSeq = reader.ReadVarInt();
            var columns = new ColumnMeta[(int)reader.ReadVarUInt()];
            for (var c = 0; c < columns.Length; c++)
            {
                columns[c] = new ColumnMeta((int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), reader.ReadUInt32(),
                    version >= 5 ? TextBounds.Read(ref reader, version) : null,
                    version >= 7 ? ValueCounts.Read(ref reader, strings, rows) : null);
            }
            ColumnMeta? blockPostings = version >= 3
                ? new ColumnMeta(SegmentFormat.PostingsColumn, (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), reader.ReadUInt32())
                : null;
            ColumnMeta? filter = null;
            if (filters is not null)
            {
                var filterOffset = (int)reader.ReadVarUInt();
                var filterLength = (int)reader.ReadVarUInt();
                filter = new ColumnMeta(SegmentFormat.FilterColumn, filterOffset, filterLength, filterLength, reader.ReadUInt32());
                filters[i] = ReadFilter(path, handle, offset, i, filter.Value);
            }
            var minuteRows = version >= 7 ? MinuteRows.Read(ref reader, blockMin, blockMax, rows) : null;
            blocks[i] = new BlockMeta(offset, blockLength, rows, blockMin, blockMax, blockMaxSeq, columns, blockPostings, filter, minuteRows);
        }
        var index = filters is not null ? BlockIndex.FromFilters(filters) : BlockIndex.ReadHashList(ref reader);
        DictionaryMeta? terms = version >= 4
            ? new DictionaryMeta((long)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), reader.ReadUInt32())
            : null;
        var info = new SegmentInfo(System.IO.Path.GetFileName(path), day, events, minTime, maxTime, minSeq, maxSeq, length);
        if (terms is { } t && (t.Offset < SegmentFormat.HeaderSize || t.Length <= 0 || t.RawLength < 0 || t.Offset + t.Length > length))
        {
            throw new SegmentDamagedException(path, "bad term dictionary place");
        }
        return new Segment(path, handle, version, info, fieldNames, blocks, index, terms);
    }

    private static uint[] ReadFilter(string path, SafeFileHandle handle, long blockOffset, int block, ColumnMeta meta)
    {
        if (meta.Length <= 0 || meta.Length % 32 != 0)
        {
            throw new SegmentDamagedException(path, $"block {block} has a malformed token filter");
        }
        var words = new uint[meta.Length / 4];
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(words.AsSpan());
        if (RandomAccess.Read(handle, bytes, blockOffset + meta.Offset) != bytes.Length || Crc32.HashToUInt32(bytes) != meta.Crc)
        {
            throw new SegmentDamagedException(path, $"block {block} token filter checksum mismatch");
        }
        return words;
    }

    private readonly record struct DictionaryMeta(long Offset, int Length, int RawLength, uint Crc);

    private readonly DictionaryMeta? _termsMeta;
    private TermDictionary? _terms;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<QueryNode, string[]?> _dictionaryTerms = new();

    /// <summary>Above this many words, a fuzzy term reads the texts once rather than look each word up.</summary>
    private const int MaxFuzzyTerms = 64;

    /// <summary>
    /// The tokens of this segment that match <paramref name="fuzzy"/> in the scopes it names (the message and every
    /// field when it names none), found by walking the term dictionary; null when the dictionary cannot answer (a
    /// segment from before version 4, a dictionary left incomplete, a term that can reach tokens the dictionary leaves
    /// out) or when the words are too many to look up one by one.
    /// </summary>
    public string[]? FuzzyTerms(FuzzyNode fuzzy, CancellationToken cancellationToken = default) =>
        FuzzyTerm.UsesDictionary(fuzzy)
            ? DictionaryTerms(fuzzy, terms =>
            {
                var within = terms.Within(Scopes(terms, fuzzy.Field), fuzzy.Term, fuzzy.MaxEdits, cancellationToken);
                return within.Count > MaxFuzzyTerms ? null : within.Order(StringComparer.Ordinal).ToArray();
            })
            : null;

    /// <summary>The most words a regular expression is looked up by; past them its texts are read.</summary>
    private const int MaxRegexTerms = 256;

    /// <summary>
    /// The tokens of this segment that <paramref name="regex"/> matches whole, in the scopes it names, from the term
    /// dictionary; null when the dictionary cannot answer (none, incomplete, or a pattern whose matches may be longer or
    /// hold more digits than the words it keeps: <see cref="RegexShape"/>) or the words are too many.
    /// </summary>
    public string[]? RegexTerms(RegexNode regex, CancellationToken cancellationToken = default) =>
        RegexShape.For(regex) is { MaxLength: <= FuzzyTerm.DictionaryMaxLength, MaxDigits: <= FuzzyTerm.DictionaryMaxDigits }
            ? DictionaryTerms(regex, terms =>
            {
                var pattern = TokenPattern.For(regex);
                return terms.Matching(Scopes(terms, regex.Field), term => pattern.MatchesWhole(term), MaxRegexTerms, cancellationToken)?.Order(StringComparer.Ordinal).ToArray();
            })
            : null;

    /// <summary>
    /// What <paramref name="find"/> answers from the term dictionary for a clause, kept per clause; null without a
    /// complete dictionary.
    /// </summary>
    private string[]? DictionaryTerms(QueryNode clause, Func<TermDictionary, string[]?> find)
    {
        if (_termsMeta is null)
        {
            return null;
        }
        if (_dictionaryTerms.TryGetValue(clause, out var cached))
        {
            return cached;
        }
        var terms = Terms();
        if (!terms.Complete)
        {
            return null;
        }
        var found = find(terms);
        if (_dictionaryTerms.Count >= 256)
        {
            _dictionaryTerms.Clear();
        }
        _dictionaryTerms[clause] = found;
        return found;
    }

    /// <summary>Scope 0 is the message, field i is scope i + 1; "message" names the message and a field so named.</summary>
    private IEnumerable<int> Scopes(TermDictionary terms, string? name)
    {
        var field = name is null ? -1 : FieldId(name);
        return name switch
        {
            null => terms.Scopes,
            Querying.EventMatcher.MessageField => field >= 0 ? [0, field + 1] : [0],
            _ => field >= 0 ? [field + 1] : [],
        };
    }

    private TermDictionary Terms()
    {
        var terms = Volatile.Read(ref _terms);
        if (terms is not null)
        {
            return terms;
        }
        var raw = ReadTermDictionary();
        terms = new TermDictionary(raw);
        Volatile.Write(ref _terms, terms);
        return terms;
    }

    /// <summary>
    /// The term dictionary, read for a merge without keeping it: null when the segment has none (before version 4),
    /// so a merge re-tokenizes its rows rather than copy its blocks.
    /// </summary>
    internal TermDictionary? ReadTermsOnce() => _termsMeta is null ? null : Volatile.Read(ref _terms) ?? new TermDictionary(ReadTermDictionary());

    /// <summary>
    /// A block's bytes as stored (compressed columns, postings and filter), each part checked against its checksum,
    /// for a merge to copy into its output unchanged. <paramref name="buffer"/> is grown when too small.
    /// </summary>
    internal ReadOnlySpan<byte> ReadStoredBlock(int index, ref byte[] buffer)
    {
        var meta = Blocks[index];
        if (buffer.Length < meta.Length)
        {
            buffer = new byte[Math.Max(meta.Length, buffer.Length * 2)];
        }
        var stored = buffer.AsSpan(0, meta.Length);
        if (RandomAccess.Read(_handle, stored, meta.Offset) != meta.Length)
        {
            throw Damaged($"block {index} is shorter than the footer says");
        }
        foreach (var part in meta.Columns.Append(meta.Postings!.Value).Append(meta.Filter!.Value))
        {
            if (part.Offset < 0 || part.Length < 0 || (long)part.Offset + part.Length > meta.Length)
            {
                throw Damaged($"block {index} column {part.Column} lies outside its block");
            }
            if (part.Column - SegmentFormat.FirstField >= FieldNames.Length)
            {
                throw Damaged($"block {index} has a column of field {part.Column - SegmentFormat.FirstField}, which the segment does not name");
            }
            if (Crc32.HashToUInt32(stored.Slice(part.Offset, part.Length)) != part.Crc)
            {
                throw Damaged($"block {index} column {part.Column} checksum mismatch");
            }
        }
        return stored;
    }

    /// <summary>The term dictionary's bytes, read, checked against its checksum and decompressed.</summary>
    private byte[] ReadTermDictionary()
    {
        var meta = _termsMeta!.Value;
        var compressed = new byte[meta.Length];
        if (RandomAccess.Read(_handle, compressed, meta.Offset) != meta.Length || Crc32.HashToUInt32(compressed) != meta.Crc)
        {
            throw Damaged("term dictionary checksum mismatch");
        }
        var raw = new byte[meta.RawLength];
        if (Unwrap(compressed, raw, "term dictionary") != raw.Length)
        {
            throw Damaged("term dictionary is shorter than its footer says");
        }
        return raw;
    }

    /// <summary>Starts reading a block's row postings into the page cache, for a search about to read them (<see cref="PageCache"/>).</summary>
    public void ReadPostingsAhead(int block)
    {
        var meta = Blocks[block];
        if (meta.Postings is { } postings)
        {
            PageCache.WillRead(_handle, meta.Offset + postings.Offset, postings.Length);
        }
    }

    /// <summary>Whether <paramref name="block"/> may hold the token of <paramref name="hash"/> (false: it does not).</summary>
    public bool MayHaveToken(ulong hash, int block) => _index.MayHave(hash, block);

    /// <summary>The blocks that may hold the token of <paramref name="hash"/>, ascending.</summary>
    public List<int> BlocksWithToken(ulong hash) => _index.BlocksWith(hash, Blocks.Length);

    /// <summary>A block's columns, read, checked and decoded on first use.</summary>
    public BlockRows OpenBlock(int index) => new(this, index);

    /// <summary>The bounds of a field's text in a block, from the footer; null when not known.</summary>
    public TextBounds? Bounds(int block, string field)
    {
        var id = FieldId(field);
        return id < 0 ? null : ColumnBounds(block, SegmentFormat.FirstField + id);
    }

    /// <summary>
    /// The bounds a field order by <paramref name="field"/> reads in a block: the field's column, or for
    /// <c>message</c> in a block without a field so named, the message column; null when not known.
    /// </summary>
    public TextBounds? OrderBounds(int block, string field)
    {
        var id = FieldId(field);
        if (id >= 0 && Column(block, SegmentFormat.FirstField + id) is { } column)
        {
            return column.Bounds;
        }
        return string.Equals(field, Querying.EventMatcher.MessageField, StringComparison.Ordinal) ? ColumnBounds(block, SegmentFormat.MessageColumn) : null;
    }

    /// <summary>The bounds of a column's text in a block (<see cref="SegmentFormat.MessageColumn"/> for the message); null when not known.</summary>
    public TextBounds? ColumnBounds(int block, int columnId) => Column(block, columnId)?.Bounds;

    /// <summary>How many rows of a block hold each value of a field, from the footer (format 7); null when it does not say.</summary>
    public ValueCounts? FieldCounts(int block, string field) =>
        FieldId(field) is var id and >= 0 ? Column(block, SegmentFormat.FirstField + id)?.Counts : null;

    /// <summary>A column of a block, from the footer; null when the block has none of that id.</summary>
    private ColumnMeta? Column(int block, int columnId)
    {
        foreach (var column in Blocks[block].Columns)
        {
            if (column.Column == columnId)
            {
                return column;
            }
        }
        return null;
    }

    /// <summary>Reads one column of a block, checks its CRC and decompresses it into <paramref name="raw"/>, which it fills whole or throws (so <paramref name="raw"/> may start uninitialized).</summary>
    internal void ReadColumn(int index, ColumnMeta column, Span<byte> raw)
    {
        var meta = Blocks[index];
        var compressed = ArrayPool<byte>.Shared.Rent(Math.Max(1, column.Length));
        try
        {
            var span = compressed.AsSpan(0, column.Length);
            var read = RandomAccess.Read(_handle, span, meta.Offset + column.Offset);
            if (read != column.Length || Crc32.HashToUInt32(span) != column.Crc)
            {
                throw Damaged($"block {index} column {column.Column} checksum mismatch");
            }
            if (Unwrap(span, raw[..column.RawLength], $"block {index} column {column.Column}") != column.RawLength)
            {
                throw Damaged($"block {index} column {column.Column} is shorter than its footer says");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    internal static FieldValue[] DecodeFieldColumn(ReadOnlySpan<byte> raw, int rows)
    {
        var reader = new ByteReader(raw);
        return ReadFieldColumn(ref reader, rows);
    }

    /// <summary>Reads, checks and decodes one block into events in ascending (timestamp, seq) order.</summary>
    public LogEvent[] ReadBlock(int index)
    {
        var rows = OpenBlock(index);
        var events = new LogEvent[rows.Count];
        for (var i = 0; i < events.Length; i++)
        {
            events[i] = rows.ToEvent(i);
        }
        return events;
    }

    private static FieldValue[] ReadFieldColumn(ref ByteReader reader, int rows)
    {
        var mode = reader.ReadByte();
        string[]? dictionary = null;
        if (mode == SegmentFormat.DictionaryStrings)
        {
            dictionary = new string[(int)reader.ReadVarUInt()];
            for (var i = 0; i < dictionary.Length; i++)
            {
                dictionary[i] = reader.ReadString();
            }
        }
        var values = new FieldValue[rows];
        for (var i = 0; i < rows; i++)
        {
            var kind = reader.ReadByte();
            if (kind == 0)
            {
                continue;
            }
            if (kind == (byte)FieldKind.String && dictionary is not null)
            {
                values[i] = FieldValue.FromString(dictionary[(int)reader.ReadVarUInt()]);
                continue;
            }
            values[i] = EventCodec.ReadValue(ref reader, kind);
        }
        return values;
    }

    /// <summary>What was found damaged in this segment since it was opened (the first such finding); null while none was.</summary>
    public string? Damage => Volatile.Read(ref _damage);

    private string? _damage;

    /// <summary>Decompresses a part of the file whose checksum matched; a frame that still does not decode is damage.</summary>
    private int Unwrap(ReadOnlySpan<byte> compressed, Span<byte> raw, string part)
    {
        try
        {
            return Zstd.Unwrap(compressed, raw);
        }
        catch (InvalidDataException e)
        {
            throw Damaged($"{part}: {e.Message}");
        }
    }

    /// <summary>Records a damaged part (for health and merges, which leave the segment alone) and gives the exception to throw.</summary>
    private SegmentDamagedException Damaged(string detail)
    {
        Interlocked.CompareExchange(ref _damage, detail, null);
        return new SegmentDamagedException(Path, detail);
    }

    /// <summary>
    /// Reads every part of the segment and checks it against its checksum: each block's columns, postings and filter,
    /// then the term dictionary. The first damaged part, or null when every part is whole.
    /// </summary>
    public string? Verify(CancellationToken cancellationToken = default)
    {
        var raw = new byte[1 << 16];
        try
        {
            for (var b = 0; b < Blocks.Length; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var meta = Blocks[b];
                foreach (var column in meta.Columns.Concat(meta.Postings is { } postings ? [postings] : []))
                {
                    if (raw.Length < column.RawLength)
                    {
                        raw = new byte[column.RawLength];
                    }
                    ReadColumn(b, column, raw);
                }
                if (meta.Filter is { } filter)
                {
                    ReadFilter(Path, _handle, meta.Offset, b, filter);
                }
            }
            if (_termsMeta is not null && Volatile.Read(ref _terms) is null)
            {
                // Checked, not kept: a backup verifies every segment, and most never need their dictionary in memory.
                ReadTermDictionary();
            }
            return null;
        }
        catch (SegmentDamagedException e)
        {
            Interlocked.CompareExchange(ref _damage, e.Detail, null);
            return e.Detail;
        }
        catch (InvalidDataException e)
        {
            Interlocked.CompareExchange(ref _damage, e.Message, null);
            return e.Message;
        }
    }

    /// <summary>Takes a reference for a reader; false when the segment is already retired.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var current = Volatile.Read(ref _references);
            if (current <= 0)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _references, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _handle.Dispose();
            if (_deleteWhenReleased)
            {
                File.Delete(Path);
            }
        }
    }

    /// <summary>Drops the store's own reference; the file is deleted once the last reader releases it.</summary>
    public void Retire(bool deleteFile)
    {
        _deleteWhenReleased = deleteFile;
        Release();
    }
}

/// <summary>
/// Which blocks hold which tokens: from format 3 a <see cref="TokenFilter"/> per block; in format 2 a sorted list of
/// 32-bit token hashes, each with its blocks.
/// </summary>
internal sealed class BlockIndex
{
    private readonly uint[][]? _filters;
    private readonly uint[] _hashes = [];
    private readonly int[] _starts = [];
    private readonly int[] _blocks = [];

    private BlockIndex(uint[][] filters) => _filters = filters;

    private BlockIndex(uint[] hashes, int[] starts, int[] blocks)
    {
        _hashes = hashes;
        _starts = starts;
        _blocks = blocks;
    }

    public static BlockIndex FromFilters(uint[][] filters) => new(filters);

    public static BlockIndex ReadHashList(ref ByteReader reader)
    {
        var hashCount = (int)reader.ReadVarUInt();
        var hashes = new uint[hashCount];
        var starts = new int[hashCount + 1];
        var blocks = new List<int>(hashCount * 2);
        uint previous = 0;
        for (var i = 0; i < hashCount; i++)
        {
            previous += (uint)reader.ReadVarUInt();
            hashes[i] = previous;
            starts[i] = blocks.Count;
            var count = (int)reader.ReadVarUInt();
            var block = 0;
            for (var j = 0; j < count; j++)
            {
                block += (int)reader.ReadVarUInt();
                blocks.Add(block);
            }
        }
        starts[hashCount] = blocks.Count;
        return new BlockIndex(hashes, starts, [.. blocks]);
    }

    /// <summary>The blocks of <paramref name="count"/> that may hold the token of <paramref name="hash"/>, ascending.</summary>
    public List<int> BlocksWith(ulong hash, int count)
    {
        var blocks = new List<int>();
        if (_filters is not null)
        {
            var probe = new TokenFilter.Probe(hash);
            for (var b = 0; b < count; b++)
            {
                if (TokenFilter.MayContain(_filters[b], probe))
                {
                    blocks.Add(b);
                }
            }
            return blocks;
        }
        for (var b = 0; b < count; b++)
        {
            if (MayHave(hash, b))
            {
                blocks.Add(b);
            }
        }
        return blocks;
    }

    public bool MayHave(ulong hash, int block)
    {
        if (_filters is not null)
        {
            return TokenFilter.MayContain(_filters[block], hash);
        }
        // Format 2 indexed the low half of the 64-bit hash.
        var i = Array.BinarySearch(_hashes, (uint)hash);
        return i >= 0 && _blocks.AsSpan(_starts[i], _starts[i + 1] - _starts[i]).BinarySearch(block) >= 0;
    }
}
