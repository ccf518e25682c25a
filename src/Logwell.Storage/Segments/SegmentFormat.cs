using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// Segment file layout: <c>"LWSG" u16 version u16 0</c>, then blocks, then a zstd-compressed footer, then a 16-byte
/// trailer <c>[u32 footer length][u32 footer raw length][u32 footer crc32]["LWSF"]</c>. A block holds its
/// zstd-compressed columns (each with its own CRC-32, so one column reads alone) and, from version 3, its row postings
/// (<see cref="BlockPostings"/>, compressed) and its token filter (<see cref="TokenFilter"/>, stored as is). The
/// footer holds the field names and the block directory: offsets, row counts, time bounds, CRCs. From version 4 the
/// blocks are followed by the zstd-compressed term dictionary (<see cref="TermDictionary"/>), whose place and CRC end
/// the footer. From version 5 a field's column may carry its text bounds (<see cref="TextBounds"/>) in the footer, from
/// version 6 with the fewest characters of a value, also for the message column. From version 7 a dictionary-coded
/// column of few strings carries how many rows hold each (<see cref="ValueCounts"/>), and a block how many of its rows
/// fall in each minute it spans (<see cref="MinuteRows"/>), so counts and histograms need not read them.
/// Version 2 had no postings or filters but a segment-wide list of 32-bit token hashes with their blocks at
/// the end of the footer.
/// </summary>
internal static class SegmentFormat
{
    public const ushort Version = 7;

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

    /// <summary>
    /// Reads one of a block's row counts from its footer and adds it to <paramref name="total"/>; counts that together
    /// pass the block's rows (or int's range) are damage, reported with <paramref name="damage"/>.
    /// </summary>
    public static int ReadRowCount(ref ByteReader reader, ref long total, int blockRows, string damage)
    {
        var count = reader.ReadVarUInt();
        total += (long)Math.Min(count, (ulong)blockRows + 1);
        return total <= blockRows ? (int)count : throw new InvalidDataException(damage);
    }

    public const byte PlainStrings = 0;
    public const byte DictionaryStrings = 1;
}

/// <summary>Where a column sits inside its block, the CRC-32 of its compressed bytes, and the bounds of its text if known.</summary>
internal readonly record struct ColumnMeta(int Column, int Offset, int Length, int RawLength, uint Crc, TextBounds? Bounds = null, ValueCounts? Counts = null);

/// <summary>
/// What a block's footer tells of a dictionary-coded column of at most <see cref="MaxValues"/> strings whose every row
/// is a string or has no value (no null, number or array): each string and the number of rows holding it. A count of
/// <c>level:ERROR</c> or by <c>level</c> over a block whose rows are all in the window adds these up without reading
/// the block. Written in version 7 as <c>varuint values + 1</c> (0: none), then per value its string and
/// <c>varuint rows</c>.
/// </summary>
internal sealed record ValueCounts(string[] Values, int[] Rows)
{
    public const int MaxValues = 64;

    public static void Write(ByteWriter output, ValueCounts? counts)
    {
        if (counts is null)
        {
            output.WriteVarUInt(0);
            return;
        }
        output.WriteVarUInt((ulong)counts.Values.Length + 1);
        for (var i = 0; i < counts.Values.Length; i++)
        {
            output.WriteString(counts.Values[i]);
            output.WriteVarUInt((ulong)counts.Rows[i]);
        }
    }

    /// <param name="strings">The strings read so far from this footer: blocks repeat the same few values, kept once.</param>
    /// <param name="blockRows">The block's rows, which the counts cannot pass.</param>
    public static ValueCounts? Read(ref ByteReader reader, Dictionary<string, string> strings, int blockRows)
    {
        var tag = reader.ReadVarUInt();
        if (tag == 0)
        {
            return null;
        }
        if (tag > MaxValues + 1)
        {
            throw new InvalidDataException("too many value counts");
        }
        var values = new string[(int)tag - 1];
        var rows = new int[values.Length];
        long total = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var value = reader.ReadString();
            values[i] = strings.TryGetValue(value, out var known) ? known : strings[value] = value;
            rows[i] = SegmentFormat.ReadRowCount(ref reader, ref total, blockRows, "a column's value counts pass its block's rows");
        }
        return new ValueCounts(values, rows);
    }
}

/// <summary>
/// What a block's footer tells of a text column without reading it: for a plain column whose values are all strings
/// (or null) and for the message column, its least and greatest value in UTF-16 ordinal order, as UTF-8 cut at a
/// character to at most <see cref="MaxLength"/> bytes (a cut greatest value ends with the byte 0xFF, which no UTF-8
/// text holds, so both stay bounds in byte order: a field order skips a block none of whose values can enter its
/// page); for those and for dictionary-coded string columns, the fewest characters a value has (a regular expression
/// whose matches are shorter cannot match a value whole). Written in version 6 as <c>varuint min-length + 1</c>
/// (0: nothing known), <c>varuint low-length + 1</c> (0: no low and high), low, <c>varuint high-length</c>, high;
/// version 5 wrote the last three alone.
/// </summary>
internal sealed record TextBounds(byte[]? Low, byte[]? High, int MinLength)
{
    public const int MaxLength = 64;

    /// <summary>The bounds of strings whose least is <paramref name="low"/> and greatest <paramref name="high"/>.</summary>
    public static TextBounds Of(string low, string high, int minLength) => new(Cut(low, upper: false), Cut(high, upper: true), minLength);

    private static byte[] Cut(string text, bool upper)
    {
        var bytes = 0;
        var chars = 0;
        while (chars < text.Length)
        {
            var width = char.IsHighSurrogate(text[chars]) && chars + 1 < text.Length && char.IsLowSurrogate(text[chars + 1]) ? 2 : 1;
            var size = System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(chars, width));
            if (bytes + size > MaxLength)
            {
                break;
            }
            bytes += size;
            chars += width;
        }
        if (chars == text.Length)
        {
            return System.Text.Encoding.UTF8.GetBytes(text);
        }
        var cut = new byte[bytes + (upper ? 1 : 0)];
        System.Text.Encoding.UTF8.GetBytes(text.AsSpan(0, chars), cut);
        if (upper)
        {
            cut[^1] = 0xFF;
        }
        return cut;
    }

    public static void Write(ByteWriter output, TextBounds? bounds)
    {
        if (bounds is null)
        {
            output.WriteVarUInt(0);
            return;
        }
        output.WriteVarUInt((ulong)bounds.MinLength + 1);
        if (bounds.Low is null || bounds.High is null)
        {
            output.WriteVarUInt(0);
            return;
        }
        output.WriteVarUInt((ulong)bounds.Low.Length + 1);
        output.WriteBytes(bounds.Low);
        output.WriteVarUInt((ulong)bounds.High.Length);
        output.WriteBytes(bounds.High);
    }

    public static TextBounds? Read(ref ByteReader reader, int version)
    {
        // Version 5 knew no lengths: 0 claims nothing.
        var minLength = 0;
        if (version >= 6)
        {
            var tag = (int)reader.ReadVarUInt();
            if (tag == 0)
            {
                return null;
            }
            minLength = tag - 1;
        }
        var low = (int)reader.ReadVarUInt();
        if (low == 0)
        {
            return version >= 6 ? new TextBounds(null, null, minLength) : null;
        }
        var lowBytes = reader.ReadBytes(low - 1).ToArray();
        var high = (int)reader.ReadVarUInt();
        return new TextBounds(lowBytes, reader.ReadBytes(high).ToArray(), minLength);
    }
}

/// <summary>A block's place in the file, its row count and time bounds; each column carries its own checksum.</summary>
internal sealed record BlockMeta(long Offset, int Length, int Rows, long MinTime, long MaxTime, long MaxSeq, ColumnMeta[] Columns, ColumnMeta? Postings, ColumnMeta? Filter, int[]? MinuteRows = null);

/// <summary>
/// How many rows of a block fall in each UTC minute from the one holding its first row to the one holding its last:
/// a histogram whose buckets are whole minutes counts a block inside its window from these alone. Kept for blocks
/// spanning at most <see cref="MaxMinutes"/> minutes; written in version 7 after the block's filter as
/// <c>varuint minutes + 1</c> (0: none), then each minute's <c>varuint rows</c>.
/// </summary>
internal static class MinuteRows
{
    public const int MaxMinutes = 1440;

    /// <summary>The minute holding <paramref name="ticks"/>, counted from the epoch of ticks (negative-safe).</summary>
    public static long MinuteOf(long ticks) => Math.DivRem(ticks, TimeSpan.TicksPerMinute, out var rest) - (rest < 0 ? 1 : 0);

    /// <summary>The rows per minute of ascending <paramref name="timestamps"/>; null when they span too many minutes.</summary>
    public static int[]? Of(ReadOnlySpan<long> timestamps)
    {
        var first = MinuteOf(timestamps[0]);
        var span = MinuteOf(timestamps[^1]) - first + 1;
        if (span > MaxMinutes)
        {
            return null;
        }
        var rows = new int[span];
        foreach (var t in timestamps)
        {
            rows[MinuteOf(t) - first]++;
        }
        return rows;
    }

    public static void Write(ByteWriter output, int[]? rows)
    {
        if (rows is null)
        {
            output.WriteVarUInt(0);
            return;
        }
        output.WriteVarUInt((ulong)rows.Length + 1);
        foreach (var count in rows)
        {
            output.WriteVarUInt((ulong)count);
        }
    }

    public static int[]? Read(ref ByteReader reader, long minTime, long maxTime, int blockRows)
    {
        var tag = reader.ReadVarUInt();
        if (tag == 0)
        {
            return null;
        }
        if (tag - 1 > MaxMinutes || maxTime < minTime || tag - 1 != (ulong)(MinuteOf(maxTime) - MinuteOf(minTime) + 1))
        {
            throw new InvalidDataException("a block's minute counts do not span its time bounds");
        }
        var rows = new int[(int)tag - 1];
        long total = 0;
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = SegmentFormat.ReadRowCount(ref reader, ref total, blockRows, "a block's minute counts pass its rows");
        }
        return total == blockRows ? rows : throw new InvalidDataException("a block's minute counts do not add up to its rows");
    }
}

/// <summary>What the manifest records about a segment.</summary>
internal sealed record SegmentInfo(string File, string Day, long Events, long MinTime, long MaxTime, long MinSeq, long MaxSeq, long Bytes);
