using System.Buffers.Binary;
using System.IO.Hashing;
using Logwell.Core.Events;
using Logwell.Storage.Encoding;
using Microsoft.Win32.SafeHandles;
using ZstdSharp;

namespace Logwell.Storage.Segments;

/// <summary>
/// An open, immutable segment: its block directory and token index are held in memory; blocks are read, checked and
/// decoded on demand. Reference-counted so a merge or retention can retire it while searches still read it.
/// </summary>
internal sealed class Segment
{
    private static long _nextId;

    [ThreadStatic]
    private static Decompressor? _decompressor;

    private readonly SafeFileHandle _handle;
    private readonly uint[] _tokenHashes;
    private readonly int[] _postingStarts;
    private readonly int[] _postings;
    private int _references = 1;
    private bool _deleteWhenReleased;

    private Segment(string path, SafeFileHandle handle, SegmentInfo info, string[] fieldNames, BlockMeta[] blocks, uint[] tokenHashes, int[] postingStarts, int[] postings)
    {
        Path = path;
        _handle = handle;
        Info = info;
        FieldNames = fieldNames;
        Blocks = blocks;
        _tokenHashes = tokenHashes;
        _postingStarts = postingStarts;
        _postings = postings;
        Id = Interlocked.Increment(ref _nextId);
    }

    /// <summary>Unique within the process, for the block cache.</summary>
    public long Id { get; }
    public string Path { get; }
    public SegmentInfo Info { get; }
    public string[] FieldNames { get; }
    public BlockMeta[] Blocks { get; }

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
        if (version != SegmentFormat.Version)
        {
            throw new InvalidDataException($"{path}: segment version {version} is not supported");
        }
        Span<byte> trailer = stackalloc byte[SegmentFormat.TrailerSize];
        RandomAccess.Read(handle, trailer, length - SegmentFormat.TrailerSize);
        if (!trailer[12..].SequenceEqual(SegmentFormat.TrailerMagic))
        {
            throw new InvalidDataException($"{path}: segment trailer is missing (incomplete write?)");
        }
        var footerLength = BinaryPrimitives.ReadInt32LittleEndian(trailer);
        var footerRaw = BinaryPrimitives.ReadInt32LittleEndian(trailer[4..]);
        var footerCrc = BinaryPrimitives.ReadUInt32LittleEndian(trailer[8..]);
        if (footerLength <= 0 || footerLength > length - SegmentFormat.TrailerSize - SegmentFormat.HeaderSize)
        {
            throw new InvalidDataException($"{path}: bad footer length");
        }
        var compressed = new byte[footerLength];
        RandomAccess.Read(handle, compressed, length - SegmentFormat.TrailerSize - footerLength);
        if (Crc32.HashToUInt32(compressed) != footerCrc)
        {
            throw new InvalidDataException($"{path}: footer checksum mismatch");
        }
        var footer = new byte[footerRaw];
        using (var decompressor = new Decompressor())
        {
            decompressor.Unwrap(compressed, footer, 0);
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
        for (var i = 0; i < blocks.Length; i++)
        {
            var offset = (long)reader.ReadVarUInt();
            var blockLength = (int)reader.ReadVarUInt();
            var crc = reader.ReadUInt32();
            var rows = (int)reader.ReadVarUInt();
            var blockMin = reader.ReadInt64();
            var blockMax = blockMin + (long)reader.ReadVarUInt();
            var blockMaxSeq = reader.ReadVarInt();
            var columns = new ColumnMeta[(int)reader.ReadVarUInt()];
            for (var c = 0; c < columns.Length; c++)
            {
                columns[c] = new ColumnMeta((int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt(), (int)reader.ReadVarUInt());
            }
            blocks[i] = new BlockMeta(offset, blockLength, crc, rows, blockMin, blockMax, blockMaxSeq, columns);
        }
        var hashCount = (int)reader.ReadVarUInt();
        var hashes = new uint[hashCount];
        var starts = new int[hashCount + 1];
        var postings = new List<int>(hashCount * 2);
        uint previous = 0;
        for (var i = 0; i < hashCount; i++)
        {
            previous += (uint)reader.ReadVarUInt();
            hashes[i] = previous;
            starts[i] = postings.Count;
            var count = (int)reader.ReadVarUInt();
            var block = 0;
            for (var j = 0; j < count; j++)
            {
                block += (int)reader.ReadVarUInt();
                postings.Add(block);
            }
        }
        starts[hashCount] = postings.Count;
        var info = new SegmentInfo(System.IO.Path.GetFileName(path), day, events, minTime, maxTime, minSeq, maxSeq, length);
        return new Segment(path, handle, info, fieldNames, blocks, hashes, starts, [.. postings]);
    }

    /// <summary>The blocks that may hold <paramref name="hash"/>, ascending; empty when none can.</summary>
    public ReadOnlySpan<int> BlocksWithToken(uint hash)
    {
        var i = Array.BinarySearch(_tokenHashes, hash);
        return i < 0 ? [] : _postings.AsSpan(_postingStarts[i], _postingStarts[i + 1] - _postingStarts[i]);
    }

    private byte[] ReadVerifiedBlock(int index)
    {
        var meta = Blocks[index];
        var bytes = new byte[meta.Length];
        var read = RandomAccess.Read(_handle, bytes, meta.Offset);
        if (read != meta.Length || Crc32.HashToUInt32(bytes) != meta.Crc)
        {
            throw new InvalidDataException($"{Path}: block {index} checksum mismatch");
        }
        return bytes;
    }

    /// <summary>A block's columns, checked now and decoded on first use.</summary>
    public BlockRows OpenBlock(int index) => new(this, index, ReadVerifiedBlock(index));

    internal ReadOnlySpan<byte> DecodeColumn(byte[] block, ColumnMeta column, byte[] into)
    {
        (_decompressor ??= new Decompressor()).Unwrap(block.AsSpan(column.Offset, column.Length), into);
        return into;
    }

    internal static FieldValue[] DecodeFieldColumn(ReadOnlySpan<byte> raw, int rows)
    {
        var reader = new ByteReader(raw);
        return ReadFieldColumn(ref reader, rows);
    }

    /// <summary>Decodes only the timestamps of a block.</summary>
    public long[] ReadTimestamps(int index)
    {
        var meta = Blocks[index];
        var bytes = ReadVerifiedBlock(index);
        var column = meta.Columns.First(c => c.Column == SegmentFormat.TimestampColumn);
        var raw = new byte[column.RawLength];
        (_decompressor ??= new Decompressor()).Unwrap(bytes.AsSpan(column.Offset, column.Length), raw);
        var reader = new ByteReader(raw);
        var timestamps = new long[meta.Rows];
        var t = reader.ReadVarInt();
        timestamps[0] = t;
        for (var i = 1; i < timestamps.Length; i++)
        {
            t += (long)reader.ReadVarUInt();
            timestamps[i] = t;
        }
        return timestamps;
    }

    /// <summary>Decodes only one field's column of a block; null when no row of the block has the field.</summary>
    public FieldValue[]? ReadField(int index, string name)
    {
        var fieldId = Array.IndexOf(FieldNames, name);
        if (fieldId < 0)
        {
            return null;
        }
        var meta = Blocks[index];
        var columnId = SegmentFormat.FirstField + fieldId;
        var found = Array.FindIndex(meta.Columns, c => c.Column == columnId);
        if (found < 0)
        {
            return null;
        }
        var column = meta.Columns[found];
        var bytes = ReadVerifiedBlock(index);
        var raw = new byte[column.RawLength];
        (_decompressor ??= new Decompressor()).Unwrap(bytes.AsSpan(column.Offset, column.Length), raw);
        var reader = new ByteReader(raw);
        return ReadFieldColumn(ref reader, meta.Rows);
    }

    /// <summary>Reads, checks and decodes one block into events in ascending (timestamp, seq) order.</summary>
    public LogEvent[] ReadBlock(int index)
    {
        var meta = Blocks[index];
        var bytes = ReadVerifiedBlock(index);
        var decompressor = _decompressor ??= new Decompressor();
        var rows = meta.Rows;
        var timestamps = new long[rows];
        var seqs = new long[rows];
        var messages = new string[rows];
        var fieldCounts = new int[rows];
        var fieldValues = new List<(string Name, FieldValue[] Values)>();
        byte[] raw = [];
        foreach (var column in meta.Columns)
        {
            if (raw.Length < column.RawLength)
            {
                raw = new byte[Math.Max(column.RawLength, raw.Length * 2)];
            }
            var span = raw.AsSpan(0, column.RawLength);
            decompressor.Unwrap(bytes.AsSpan(column.Offset, column.Length), span);
            var reader = new ByteReader(span);
            switch (column.Column)
            {
                case SegmentFormat.TimestampColumn:
                    var t = reader.ReadVarInt();
                    timestamps[0] = t;
                    for (var i = 1; i < rows; i++)
                    {
                        t += (long)reader.ReadVarUInt();
                        timestamps[i] = t;
                    }
                    break;
                case SegmentFormat.SeqColumn:
                    var s = 0L;
                    for (var i = 0; i < rows; i++)
                    {
                        s += reader.ReadVarInt();
                        seqs[i] = s;
                    }
                    break;
                case SegmentFormat.MessageColumn:
                    for (var i = 0; i < rows; i++)
                    {
                        messages[i] = reader.ReadString();
                    }
                    break;
                default:
                    var values = ReadFieldColumn(ref reader, rows);
                    for (var i = 0; i < rows; i++)
                    {
                        if (values[i].Kind != 0)
                        {
                            fieldCounts[i]++;
                        }
                    }
                    fieldValues.Add((FieldNames[column.Column - SegmentFormat.FirstField], values));
                    break;
            }
        }
        var events = new LogEvent[rows];
        for (var i = 0; i < rows; i++)
        {
            var fields = fieldCounts[i] == 0 ? [] : new Field[fieldCounts[i]];
            var f = 0;
            foreach (var (name, values) in fieldValues)
            {
                if (values[i].Kind != 0)
                {
                    fields[f++] = new Field(name, values[i]);
                }
            }
            events[i] = new LogEvent(timestamps[i], messages[i], fields) { Seq = seqs[i] };
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
            values[i] = kind switch
            {
                (byte)FieldKind.Null => FieldValue.Null,
                (byte)FieldKind.True => FieldValue.True,
                (byte)FieldKind.False => FieldValue.False,
                (byte)FieldKind.Long => FieldValue.FromLong(reader.ReadVarInt()),
                (byte)FieldKind.Double => FieldValue.FromDouble(reader.ReadDouble()),
                (byte)FieldKind.String => FieldValue.FromString(reader.ReadString()),
                (byte)FieldKind.Json => FieldValue.FromJson(reader.ReadString()),
                _ => throw new InvalidDataException($"unknown field kind {kind}"),
            };
        }
        return values;
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
