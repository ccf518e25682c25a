using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// Collects one block's tokens while the block is written: every distinct token's 64-bit hash (for the block's token
/// filter) and, for tokens of columns that keep postings, the rows holding it and where in each row it stands.
/// </summary>
internal sealed class PostingsBuilder
{
    private readonly Dictionary<ulong, int> _ids = [];
    private readonly List<ulong> _hashes = [];
    private readonly List<int> _lastRow = [];
    private readonly List<int> _rowCounts = [];
    private readonly List<int> _occurrenceCounts = [];
    private readonly List<Occurrence> _occurrences = [];

    private readonly record struct Occurrence(int Id, int Row, int Position);

    /// <summary>Every distinct token hash of the block, in no order.</summary>
    public List<ulong> Hashes => _hashes;

    public void Clear()
    {
        _ids.Clear();
        _hashes.Clear();
        _lastRow.Clear();
        _rowCounts.Clear();
        _occurrenceCounts.Clear();
        _occurrences.Clear();
    }

    /// <summary>
    /// Records a token of <paramref name="row"/> at base-token <paramref name="position"/> (-1 for a joined run, which
    /// is not a base token); with <paramref name="keepRows"/> false only its presence. True when the block had not
    /// seen the token before.
    /// </summary>
    public bool Add(ulong hash, int row, int position, bool keepRows)
    {
        ref var id = ref CollectionsMarshal.GetValueRefOrAddDefault(_ids, hash, out var exists);
        if (!exists)
        {
            id = _hashes.Count;
            _hashes.Add(hash);
            _lastRow.Add(-1);
            _rowCounts.Add(0);
            _occurrenceCounts.Add(0);
        }
        if (!keepRows)
        {
            return !exists;
        }
        var lastRows = CollectionsMarshal.AsSpan(_lastRow);
        if (lastRows[id] != row)
        {
            lastRows[id] = row;
            CollectionsMarshal.AsSpan(_rowCounts)[id]++;
        }
        CollectionsMarshal.AsSpan(_occurrenceCounts)[id]++;
        _occurrences.Add(new Occurrence(id, row, position));
        return !exists;
    }

    /// <summary>
    /// Writes the postings of the tokens found in at least <paramref name="minRows"/> rows: their hashes ascending,
    /// each one's row list (identical lists stored once: the words of one message template share theirs), then each
    /// one's positions.
    /// </summary>
    public void Write(ByteWriter output, int rows, int minRows)
    {
        var rowCounts = CollectionsMarshal.AsSpan(_rowCounts);
        var selected = new List<int>();
        for (var id = 0; id < rowCounts.Length; id++)
        {
            if (rowCounts[id] >= minRows)
            {
                selected.Add(id);
            }
        }
        var hashList = _hashes;
        selected.Sort((a, b) => hashList[a].CompareTo(hashList[b]));
        var hashes = CollectionsMarshal.AsSpan(_hashes);

        // Occurrences of each selected token, gathered in one pass: ascending rows, and positions ascending in a row.
        var start = new int[rowCounts.Length];
        var total = 0;
        var occurrenceCounts = CollectionsMarshal.AsSpan(_occurrenceCounts);
        foreach (var id in selected)
        {
            start[id] = total;
            total += occurrenceCounts[id];
        }
        var flatRows = new int[total];
        var flatPositions = new int[total];
        var fill = (int[])start.Clone();
        var isSelected = new bool[rowCounts.Length];
        foreach (var id in selected)
        {
            isSelected[id] = true;
        }
        foreach (var occurrence in CollectionsMarshal.AsSpan(_occurrences))
        {
            if (isSelected[occurrence.Id])
            {
                var at = fill[occurrence.Id]++;
                flatRows[at] = occurrence.Row;
                flatPositions[at] = occurrence.Position;
            }
        }

        var listOf = new int[selected.Count];
        var lists = new List<int[]>();
        var byContent = new Dictionary<ulong, List<int>>();
        for (var i = 0; i < selected.Count; i++)
        {
            var id = selected[i];
            var rowList = DistinctRows(flatRows.AsSpan(start[id], occurrenceCounts[id]), rowCounts[id]);
            var key = XxHash3.HashToUInt64(MemoryMarshal.AsBytes(rowList.AsSpan()));
            ref var sameHash = ref CollectionsMarshal.GetValueRefOrAddDefault(byContent, key, out _);
            sameHash ??= [];
            var found = -1;
            foreach (var candidate in sameHash)
            {
                if (lists[candidate].AsSpan().SequenceEqual(rowList))
                {
                    found = candidate;
                    break;
                }
            }
            if (found < 0)
            {
                found = lists.Count;
                lists.Add(rowList);
                sameHash.Add(found);
            }
            listOf[i] = found;
        }

        output.WriteVarUInt((ulong)selected.Count);
        Span<byte> eight = stackalloc byte[8];
        foreach (var id in selected)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(eight, hashes[id]);
            output.WriteBytes(eight);
        }
        foreach (var list in listOf)
        {
            output.WriteVarUInt((ulong)list);
        }
        output.WriteVarUInt((ulong)lists.Count);
        var words = (rows + 63) / 64;
        foreach (var list in lists)
        {
            WriteRowList(output, list, words);
        }
        var positions = new ByteWriter(256);
        foreach (var id in selected)
        {
            positions.Clear();
            WritePositions(positions, flatRows.AsSpan(start[id], occurrenceCounts[id]), flatPositions.AsSpan(start[id], occurrenceCounts[id]));
            output.WriteVarUInt((ulong)positions.Length);
            output.WriteBytes(positions.WrittenSpan);
        }
    }

    private static int[] DistinctRows(ReadOnlySpan<int> occurrenceRows, int count)
    {
        var rows = new int[count];
        var n = 0;
        foreach (var row in occurrenceRows)
        {
            if (n == 0 || rows[n - 1] != row)
            {
                rows[n++] = row;
            }
        }
        return rows;
    }

    private static void WriteRowList(ByteWriter output, int[] list, int words)
    {
        var deltaBytes = 0;
        var previous = 0;
        foreach (var row in list)
        {
            deltaBytes += ByteWriter.VarUIntSize((ulong)(row - previous));
            previous = row;
        }
        output.WriteVarUInt((ulong)list.Length);
        if (deltaBytes <= words * 8)
        {
            output.WriteByte(BlockPostings.DeltaList);
            previous = 0;
            foreach (var row in list)
            {
                output.WriteVarUInt((ulong)(row - previous));
                previous = row;
            }
            return;
        }
        output.WriteByte(BlockPostings.BitmapList);
        var bits = new ulong[words];
        foreach (var row in list)
        {
            bits[row >> 6] |= 1UL << row;
        }
        Span<byte> eight = stackalloc byte[8];
        foreach (var word in bits)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(eight, word);
            output.WriteBytes(eight);
        }
    }

    /// <summary>
    /// A token's positions in the rows of its list: none (a joined run), one position shared by every row, one
    /// position per row, or for each row a count and its positions.
    /// </summary>
    private static void WritePositions(ByteWriter output, ReadOnlySpan<int> rows, ReadOnlySpan<int> positions)
    {
        var oncePerRow = true;
        var same = true;
        for (var i = 0; i < rows.Length; i++)
        {
            if (positions[i] < 0)
            {
                output.WriteByte(BlockPostings.NoPositions);
                return;
            }
            if (i > 0)
            {
                oncePerRow &= rows[i] != rows[i - 1];
                same &= positions[i] == positions[0];
            }
        }
        if (oncePerRow && same)
        {
            output.WriteByte(BlockPostings.SamePosition);
            output.WriteVarUInt((ulong)positions[0]);
            return;
        }
        if (oncePerRow)
        {
            output.WriteByte(BlockPostings.OnePositionPerRow);
            foreach (var position in positions)
            {
                output.WriteVarUInt((ulong)position);
            }
            return;
        }
        output.WriteByte(BlockPostings.PositionLists);
        var i0 = 0;
        while (i0 < rows.Length)
        {
            var end = i0;
            while (end < rows.Length && rows[end] == rows[i0])
            {
                end++;
            }
            output.WriteVarUInt((ulong)(end - i0));
            for (var i = i0; i < end; i++)
            {
                output.WriteVarUInt((ulong)positions[i]);
            }
            i0 = end;
        }
    }
}

/// <summary>
/// One block's row postings, read: the hashes of its frequent tokens and, for each, the rows holding it and its
/// positions among each row's base tokens. A token that the block's filter admits but that has no postings here is
/// rare in it (or absent); the block is then read to find its rows.
/// </summary>
internal sealed class BlockPostings
{
    public const byte DeltaList = 0;
    public const byte BitmapList = 1;

    public const byte NoPositions = 0;
    public const byte SamePosition = 1;
    public const byte OnePositionPerRow = 2;
    public const byte PositionLists = 3;

    private readonly byte[] _raw;
    private readonly ulong[] _hashes;
    private readonly int[] _listOf;
    private readonly int[] _listOffsets;
    private readonly int[] _positionOffsets;
    private readonly int _rows;
    // Row lists decoded as bitmaps by earlier queries (a block in the cache answers repeated terms from memory).
    private readonly ulong[]?[] _bitmaps;
    private readonly Action<long>? _decoded;

    private BlockPostings(byte[] raw, ulong[] hashes, int[] listOf, int[] listOffsets, int[] positionOffsets, int rows, Action<long>? decoded)
    {
        _raw = raw;
        _hashes = hashes;
        _listOf = listOf;
        _listOffsets = listOffsets;
        _positionOffsets = positionOffsets;
        _rows = rows;
        _bitmaps = new ulong[]?[listOffsets.Length];
        _decoded = decoded;
    }

    public int Tokens => _hashes.Length;

    /// <summary>Reads a block's postings; <paramref name="decoded"/> is told the bytes of each row list later kept decoded.</summary>
    public static BlockPostings Parse(byte[] raw, int rows, Action<long>? decoded = null)
    {
        var reader = new ByteReader(raw);
        var entries = (int)reader.ReadVarUInt();
        var hashes = new ulong[entries];
        for (var i = 0; i < entries; i++)
        {
            hashes[i] = reader.ReadUInt64();
            if (i > 0 && hashes[i] <= hashes[i - 1])
            {
                throw new InvalidDataException("block postings are not in hash order");
            }
        }
        var listOf = new int[entries];
        for (var i = 0; i < entries; i++)
        {
            listOf[i] = (int)reader.ReadVarUInt();
        }
        var listOffsets = new int[(int)reader.ReadVarUInt()];
        var words = (rows + 63) / 64;
        for (var i = 0; i < listOffsets.Length; i++)
        {
            listOffsets[i] = reader.Position;
            var count = (int)reader.ReadVarUInt();
            if (reader.ReadByte() == BitmapList)
            {
                reader.Skip(words * 8);
            }
            else
            {
                reader.SkipVarUInts(count);
            }
        }
        var positionOffsets = new int[entries];
        for (var i = 0; i < entries; i++)
        {
            if (listOf[i] >= listOffsets.Length)
            {
                throw new InvalidDataException("block postings name a row list that is not there");
            }
            var length = reader.ReadLength();
            positionOffsets[i] = reader.Position;
            reader.Skip(length);
        }
        return new BlockPostings(raw, hashes, listOf, listOffsets, positionOffsets, rows, decoded);
    }

    /// <summary>
    /// The rows holding the token, as a bitmap of the caller's own (free to change); null when the token has no
    /// postings in this block.
    /// </summary>
    public ulong[]? Rows(ulong hash)
    {
        var i = Array.BinarySearch(_hashes, hash);
        if (i < 0)
        {
            return null;
        }
        var list = _listOf[i];
        var bits = Volatile.Read(ref _bitmaps[list]);
        if (bits is null)
        {
            bits = DecodeBitmap(list);
            Volatile.Write(ref _bitmaps[list], bits);
            _decoded?.Invoke(bits.Length * 8L);
        }
        return (ulong[])bits.Clone();
    }

    private ulong[] DecodeBitmap(int list)
    {
        var reader = new ByteReader(_raw);
        reader.Skip(_listOffsets[list]);
        var count = (int)reader.ReadVarUInt();
        var bits = new ulong[(_rows + 63) / 64];
        if (reader.ReadByte() == BitmapList)
        {
            for (var w = 0; w < bits.Length; w++)
            {
                bits[w] = reader.ReadUInt64();
            }
            return bits;
        }
        var row = 0;
        for (var j = 0; j < count; j++)
        {
            row += (int)reader.ReadVarUInt();
            if ((uint)row >= (uint)_rows)
            {
                throw new InvalidDataException("block postings name a row past the block's end");
            }
            bits[row >> 6] |= 1UL << row;
        }
        return bits;
    }

    /// <summary>
    /// Whether the token stands once in each of its rows, at the same base-token ordinal in all of them (a word of a
    /// message template, say): then <paramref name="position"/> is that ordinal, read without its rows.
    /// </summary>
    public bool SharedPosition(ulong hash, out int position)
    {
        position = 0;
        var i = Array.BinarySearch(_hashes, hash);
        if (i < 0)
        {
            return false;
        }
        var reader = new ByteReader(_raw);
        reader.Skip(_positionOffsets[i]);
        if (reader.ReadByte() != SamePosition)
        {
            return false;
        }
        position = (int)reader.ReadVarUInt();
        return true;
    }

    /// <summary>
    /// Where the token stands in each of its rows (base-token ordinals); null when it has no postings in this block or
    /// is not a base token (a joined run such as <c>a.b</c>).
    /// </summary>
    public TokenPositions? Positions(ulong hash)
    {
        var i = Array.BinarySearch(_hashes, hash);
        if (i < 0)
        {
            return null;
        }
        var reader = new ByteReader(_raw);
        reader.Skip(_positionOffsets[i]);
        var kind = reader.ReadByte();
        if (kind == NoPositions)
        {
            return null;
        }
        var rows = RowList(_listOf[i]);
        if (kind == SamePosition)
        {
            return new TokenPositions(rows, [], [(int)reader.ReadVarUInt()], Shared: true);
        }
        var starts = new int[rows.Length + 1];
        switch (kind)
        {
            case OnePositionPerRow:
                var values = new int[rows.Length];
                for (var r = 0; r < rows.Length; r++)
                {
                    starts[r] = r;
                    values[r] = (int)reader.ReadVarUInt();
                }
                starts[rows.Length] = rows.Length;
                return new TokenPositions(rows, starts, values);
            case PositionLists:
                var all = new List<int>(rows.Length);
                for (var r = 0; r < rows.Length; r++)
                {
                    starts[r] = all.Count;
                    var count = (int)reader.ReadVarUInt();
                    for (var j = 0; j < count; j++)
                    {
                        all.Add((int)reader.ReadVarUInt());
                    }
                }
                starts[rows.Length] = all.Count;
                return new TokenPositions(rows, starts, [.. all]);
            default:
                throw new InvalidDataException($"unknown positions kind {kind}");
        }
    }

    private int[] RowList(int list)
    {
        var reader = new ByteReader(_raw);
        reader.Skip(_listOffsets[list]);
        var count = (int)reader.ReadVarUInt();
        var rows = new int[count];
        if (reader.ReadByte() == BitmapList)
        {
            var n = 0;
            for (var w = 0; w < (_rows + 63) / 64; w++)
            {
                var word = reader.ReadUInt64();
                while (word != 0 && n < count)
                {
                    rows[n++] = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(word);
                    word &= word - 1;
                }
            }
            if (n != count)
            {
                throw new InvalidDataException("block postings bitmap does not hold its count of rows");
            }
        }
        else
        {
            var row = 0;
            for (var j = 0; j < count; j++)
            {
                row += (int)reader.ReadVarUInt();
                rows[j] = row;
            }
        }
        if (count > 0 && (uint)rows[^1] >= (uint)_rows)
        {
            throw new InvalidDataException("block postings name a row past the block's end");
        }
        return rows;
    }
}

/// <summary>
/// A token's positions: for <c>Rows[k]</c>, the values <c>Values[Starts[k]..Starts[k+1]]</c>, ascending; when
/// <paramref name="Shared"/>, every row has the one value <c>Values[0]</c>.
/// </summary>
internal sealed record TokenPositions(int[] Rows, int[] Starts, int[] Values, bool Shared = false)
{
    public ReadOnlySpan<int> Of(int index) => Shared ? Values : Values.AsSpan(Starts[index], Starts[index + 1] - Starts[index]);
}
