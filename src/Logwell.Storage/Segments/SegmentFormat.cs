namespace Logwell.Storage.Segments;

/// <summary>
/// Segment file layout: <c>"LWSG" u16 version u16 0</c>, then blocks, then a zstd-compressed footer, then a 16-byte
/// trailer <c>[u32 footer length][u32 footer raw length][u32 footer crc32]["LWSF"]</c>. A block holds its
/// zstd-compressed columns (each with its own CRC-32, so one column reads alone) and, from version 3, its row postings
/// (<see cref="BlockPostings"/>, compressed) and its token filter (<see cref="TokenFilter"/>, stored as is). The
/// footer holds the field names and the block directory: offsets, row counts, time bounds, CRCs. From version 4 the
/// blocks are followed by the zstd-compressed term dictionary (<see cref="TermDictionary"/>), whose place and CRC end
/// the footer. Version 2 had no postings or filters but a segment-wide list of 32-bit token hashes with their blocks at
/// the end of the footer.
/// </summary>
internal static class SegmentFormat
{
    public const ushort Version = 4;

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

/// <summary>Where a column sits inside its block, and the CRC-32 of its compressed bytes.</summary>
internal readonly record struct ColumnMeta(int Column, int Offset, int Length, int RawLength, uint Crc);

/// <summary>A block's place in the file, its row count and time bounds; each column carries its own checksum.</summary>
internal sealed record BlockMeta(long Offset, int Length, int Rows, long MinTime, long MaxTime, long MaxSeq, ColumnMeta[] Columns, ColumnMeta? Postings, ColumnMeta? Filter);

/// <summary>What the manifest records about a segment.</summary>
internal sealed record SegmentInfo(string File, string Day, long Events, long MinTime, long MaxTime, long MinSeq, long MaxSeq, long Bytes);
