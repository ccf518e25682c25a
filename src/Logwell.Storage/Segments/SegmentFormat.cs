namespace Logwell.Storage.Segments;

/// <summary>
/// Segment file layout: <c>"LWSG" u16 version u16 0</c>, then blocks of zstd-compressed columns (each with its CRC-32,
/// so one column reads alone) and, from version 3, each block's row postings (see <see cref="BlockPostings"/>), then a
/// zstd-compressed footer (fields, block directory with time bounds and CRCs, block index: which blocks hold each token,
/// message tokens hashed alone, field tokens hashed with their field name), then a 16-byte trailer
/// <c>[u32 footer length][u32 footer raw length][u32 footer crc32]["LWSF"]</c>.
/// </summary>
internal static class SegmentFormat
{
    public const ushort Version = 3;

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

    /// <summary>The id given to a block's postings (kept apart from its columns in the footer).</summary>
    public const int PostingsColumn = -1;

    /// <summary>A token gets row postings in a block when it is in at least this many of its rows.</summary>
    public static int PostingsMinRows(int rows) => Math.Max(8, rows / 256);

    public const byte PlainStrings = 0;
    public const byte DictionaryStrings = 1;
}

/// <summary>Where a column sits inside its block, and the CRC-32 of its compressed bytes.</summary>
internal readonly record struct ColumnMeta(int Column, int Offset, int Length, int RawLength, uint Crc);

/// <summary>A block's place in the file, its row count and time bounds; each column carries its own checksum.</summary>
internal sealed record BlockMeta(long Offset, int Length, int Rows, long MinTime, long MaxTime, long MaxSeq, ColumnMeta[] Columns, ColumnMeta? Postings);

/// <summary>What the manifest records about a segment.</summary>
internal sealed record SegmentInfo(string File, string Day, long Events, long MinTime, long MaxTime, long MinSeq, long MaxSeq, long Bytes);
