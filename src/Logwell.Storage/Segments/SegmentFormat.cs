using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// Segment file layout: <c>"LWSG" u16 version u16 0</c>, then blocks, then a zstd-compressed footer, then a 16-byte
/// trailer <c>[u32 footer length][u32 footer raw length][u32 footer crc32]["LWSF"]</c>. A block holds its
/// zstd-compressed columns (each with its own CRC-32, so one column reads alone) and, from version 3, its row postings
/// (<see cref="BlockPostings"/>, compressed) and its token filter (<see cref="TokenFilter"/>, stored as is). The
/// footer holds the field names and the block directory: offsets, row counts, time bounds, CRCs. From version 4 the
/// blocks are followed by the zstd-compressed term dictionary (<see cref="TermDictionary"/>), whose place and CRC end
/// the footer. From version 5 a field's column may carry its text bounds (<see cref="TextBounds"/>) in the footer.
/// Version 2 had no postings or filters but a segment-wide list of 32-bit token hashes with their blocks at
/// the end of the footer.
/// </summary>
internal static class SegmentFormat
{
    public const ushort Version = 5;

    /// <summary>The oldest version still read; version 2 segments have no row postings.</summary>
    public const ushort MinVersion = 2;
    public const int HeaderSize = 8;
    public const int TrailerSize = 16;

    public static ReadOnlySpan<byte> HeaderMagic => "LWSG"u8;
    public static ReadOnlySpan<byte> TrailerMagic => "LWSF"u8;

    /// <summary>Column ids below this are built-in columns; field i has column id <c>FirstField + i</c>.</summary>
    public const int TimestampColumn = 0;
    public const int SeqColumn = 1;
    public const int MessageColumn = 2;
    public const int FirstField = 3;

    /// <summary>The ids given to a block's postings and token filter (kept apart from its columns in the footer).</summary>
    public const int PostingsColumn = -1;
    public const int FilterColumn = -2;

    /// <summary>A token gets row postings in a block when it is in at least this many of its rows.</summary>
    public static int PostingsMinRows(int rows) => Math.Max(8, rows / 256);

    public const byte PlainStrings = 0;
    public const byte DictionaryStrings = 1;
}

/// <summary>Where a column sits inside its block, the CRC-32 of its compressed bytes, and the bounds of its text if known.</summary>
internal readonly record struct ColumnMeta(int Column, int Offset, int Length, int RawLength, uint Crc, TextBounds? Bounds = null);

/// <summary>
/// The least and the greatest value of a plain field column whose values are all strings (or null), in UTF-16 ordinal
/// order, as UTF-8: a field order skips a block none of whose values can enter its page. Written (in the footer, as
/// <c>varuint low-length + 1</c>, low, <c>varuint high-length</c>, high; 0 for none) when both fit in
/// <see cref="MaxLength"/> bytes.
/// </summary>
internal sealed record TextBounds(byte[] Low, byte[] High)
{
    public const int MaxLength = 64;

    public static void Write(ByteWriter output, TextBounds? bounds)
    {
        if (bounds is null)
        {
            output.WriteVarUInt(0);
            return;
        }
        output.WriteVarUInt((ulong)bounds.Low.Length + 1);
        output.WriteBytes(bounds.Low);
        output.WriteVarUInt((ulong)bounds.High.Length);
        output.WriteBytes(bounds.High);
    }

    public static TextBounds? Read(ref ByteReader reader)
    {
        var low = (int)reader.ReadVarUInt();
        if (low == 0)
        {
            return null;
        }
        var lowBytes = reader.ReadBytes(low - 1).ToArray();
        var high = (int)reader.ReadVarUInt();
        return new TextBounds(lowBytes, reader.ReadBytes(high).ToArray());
    }
}

/// <summary>A block's place in the file, its row count and time bounds; each column carries its own checksum.</summary>
internal sealed record BlockMeta(long Offset, int Length, int Rows, long MinTime, long MaxTime, long MaxSeq, ColumnMeta[] Columns, ColumnMeta? Postings, ColumnMeta? Filter);

/// <summary>What the manifest records about a segment.</summary>
internal sealed record SegmentInfo(string File, string Day, long Events, long MinTime, long MaxTime, long MinSeq, long MaxSeq, long Bytes);
