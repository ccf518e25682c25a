using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Segments;

/// <summary>
/// Collects one block's tokens while the block is written: every distinct token's 64-bit hash (for the segment's
/// block-level index) and, for tokens of columns that keep postings, the rows holding it.
/// </summary>
internal sealed class PostingsBuilder
{
    private readonly Dictionary<ulong, int> _ids = [];
    private readonly List<ulong> _hashes = [];
    private readonly List<int> _lastRow = [];
    private readonly List<int> _counts = [];
    private readonly List<long> _occurrences = [];

    /// <summary>Every distinct token hash of the block, in no order.</summary>
    public List<ulong> Hashes => _hashes;

    public void Clear()
    {
        _ids.Clear();
        _hashes.Clear();
        _lastRow.Clear();
        _counts.Clear();
        _occurrences.Clear();
    }

    /// <summary>Records a token of <paramref name="row"/>; with <paramref name="keepRows"/> false only its presence.</summary>
    public void Add(ulong hash, int row, bool keepRows)
    {
        ref var id = ref CollectionsMarshal.GetValueRefOrAddDefault(_ids, hash, out var exists);
        if (!exists)
        {
            id = _hashes.Count;
            _hashes.Add(hash);
            _lastRow.Add(-1);
            _counts.Add(0);
        }
        if (!keepRows)
        {
            return;
        }
        var lastRows = CollectionsMarshal.AsSpan(_lastRow);
        if (lastRows[id] == row)
        {
            return;
        }
        lastRows[id] = row;
        CollectionsMarshal.AsSpan(_counts)[id]++;
        _occurrences.Add(((long)id << 32) | (uint)row);
    }

    /// <summary>
    /// Writes the postings of the tokens found in at least <paramref name="minRows"/> rows: their hashes ascending, then
    /// each one's list, identical row lists stored once (the words of one message template share theirs).
    /// </summary>
    public void Write(ByteWriter output, int rows, int minRows)
    {
        var counts = CollectionsMarshal.AsSpan(_counts);
        var selected = new List<int>();
        for (var id = 0; id < counts.Length; id++)
        {
            if (counts[id] >= minRows)
            {
                selected.Add(id);
            }
        }
        var hashList = _hashes;
        selected.Sort((a, b) => hashList[a].CompareTo(hashList[b]));
        var hashes = CollectionsMarshal.AsSpan(_hashes);

        // Rows of each selected token, gathered in one pass (occurrences are in ascending row order per token).
        var start = new int[counts.Length];
        var total = 0;
        foreach (var id in selected)
        {
            start[id] = total;
            total += counts[id];
        }
        var flat = new int[total];
        var fill = (int[])start.Clone();
        var isSelected = new bool[counts.Length];
        foreach (var id in selected)
        {
            isSelected[id] = true;
        }
        foreach (var occurrence in CollectionsMarshal.AsSpan(_occurrences))
        {
            var id = (int)(occurrence >> 32);
            if (isSelected[id])
            {
                flat[fill[id]++] = (int)(uint)occurrence;
            }
        }

        var listOf = new int[selected.Count];
        var lists = new List<(int Start, int Count)>();
        var byContent = new Dictionary<ulong, List<int>>();
        for (var i = 0; i < selected.Count; i++)
        {
            var id = selected[i];
            var span = flat.AsSpan(start[id], counts[id]);
            var key = XxHash3.HashToUInt64(MemoryMarshal.AsBytes(span));
            ref var sameHash = ref CollectionsMarshal.GetValueRefOrAddDefault(byContent, key, out _);
            sameHash ??= [];
            var found = -1;
            foreach (var candidate in sameHash)
            {
                if (flat.AsSpan(lists[candidate].Start, lists[candidate].Count).SequenceEqual(span))
                {
                    found = candidate;
                    break;
                }
            }
            if (found < 0)
            {
                found = lists.Count;
                lists.Add((start[id], counts[id]));
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
        foreach (var (listStart, count) in lists)
        {
            var span = flat.AsSpan(listStart, count);
            var deltaBytes = 0;
            var previous = 0;
            foreach (var row in span)
            {
                deltaBytes += ByteWriter.VarUIntSize((ulong)(row - previous));
                previous = row;
            }
            output.WriteVarUInt((ulong)count);
            if (deltaBytes <= words * 8)
            {
                output.WriteByte(BlockPostings.DeltaList);
                previous = 0;
                foreach (var row in span)
                {
                    output.WriteVarUInt((ulong)(row - previous));
                    previous = row;
                }
            }
            else
            {
                output.WriteByte(BlockPostings.BitmapList);
                var bits = new ulong[words];
                foreach (var row in span)
                {
                    bits[row >> 6] |= 1UL << row;
                }
                foreach (var word in bits)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(eight, word);
                    output.WriteBytes(eight);
                }
            }
        }
    }
}

/// <summary>
/// One block's row postings, read: the hashes of its frequent tokens and, for each, the rows holding it. A token that
/// the segment's block index places in the block but that has no postings here is rare in it; the block is then
/// read to find its rows.
/// </summary>
internal sealed class BlockPostings
{
    public const byte DeltaList = 0;
    public const byte BitmapList = 1;

    private readonly byte[] _raw;
    private readonly ulong[] _hashes;
    private readonly int[] _listOf;
    private readonly int[] _listOffsets;
    private readonly int _rows;

    private BlockPostings(byte[] raw, ulong[] hashes, int[] listOf, int[] listOffsets, int rows)
    {
        _raw = raw;
        _hashes = hashes;
        _listOf = listOf;
        _listOffsets = listOffsets;
        _rows = rows;
    }

    public int Tokens => _hashes.Length;

    public static BlockPostings Parse(byte[] raw, int rows)
    {
        var reader = new ByteReader(raw);
        var entries = (int)reader.ReadVarUInt();
        var hashes = new ulong[entries];
        for (var i = 0; i < entries; i++)
        {
            hashes[i] = reader.ReadUInt64();
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
                for (var j = 0; j < count; j++)
                {
                    reader.ReadVarUInt();
                }
            }
        }
        for (var i = 1; i < hashes.Length; i++)
        {
            if (hashes[i] <= hashes[i - 1])
            {
                throw new InvalidDataException("block postings are not in hash order");
            }
        }
        return new BlockPostings(raw, hashes, listOf, listOffsets, rows);
    }

    /// <summary>The rows holding the token, as a bitmap; null when the token has no postings in this block.</summary>
    public ulong[]? Rows(ulong hash)
    {
        var i = Array.BinarySearch(_hashes, hash);
        if (i < 0)
        {
            return null;
        }
        var reader = new ByteReader(_raw);
        reader.Skip(_listOffsets[_listOf[i]]);
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
}
