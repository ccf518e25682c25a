using System.Numerics;
using System.Runtime.InteropServices;

namespace Logwell.Storage.Querying;

/// <summary>Sets of a block's rows as bitmaps: bit <c>r</c> of word <c>r / 64</c> is row <c>r</c>.</summary>
internal static class RowBits
{
    public static ulong[] None(int rows) => new ulong[(rows + 63) / 64];

    public static ulong[] All(int rows)
    {
        var bits = None(rows);
        Array.Fill(bits, ulong.MaxValue);
        ClearTail(bits, rows);
        return bits;
    }

    /// <summary><paramref name="target"/> &amp;= <paramref name="other"/>; returns whether any row is left.</summary>
    public static bool And(ulong[] target, ulong[] other)
    {
        ulong any = 0;
        for (var i = 0; i < target.Length; i++)
        {
            any |= target[i] &= other[i];
        }
        return any != 0;
    }

    public static void Or(ulong[] target, ulong[] other)
    {
        // A vector of words at a time: a block's 16,384 rows are 256 words.
        var vectors = MemoryMarshal.Cast<ulong, Vector<ulong>>(target.AsSpan());
        var others = MemoryMarshal.Cast<ulong, Vector<ulong>>(other.AsSpan(0, target.Length));
        for (var v = 0; v < vectors.Length; v++)
        {
            vectors[v] |= others[v];
        }
        for (var i = vectors.Length * Vector<ulong>.Count; i < target.Length; i++)
        {
            target[i] |= other[i];
        }
    }

    public static void Not(ulong[] target, int rows)
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] = ~target[i];
        }
        ClearTail(target, rows);
    }

    public static bool Any(ulong[] bits)
    {
        foreach (var word in bits)
        {
            if (word != 0)
            {
                return true;
            }
        }
        return false;
    }

    public static int Count(ulong[] bits)
    {
        var count = 0;
        foreach (var word in bits)
        {
            count += BitOperations.PopCount(word);
        }
        return count;
    }

    public static void Clear(ulong[] bits, int row) => bits[row >> 6] &= ~(1UL << row);

    public static void Set(ulong[] bits, int row) => bits[row >> 6] |= 1UL << row;

    public static bool Contains(ulong[] bits, int row) => (bits[row >> 6] & (1UL << row)) != 0;

    /// <summary>The rows in the set, ascending.</summary>
    public static Enumerator Rows(ulong[] bits) => new(bits);

    private static void ClearTail(ulong[] bits, int rows)
    {
        if (rows % 64 != 0)
        {
            bits[^1] &= (1UL << (rows % 64)) - 1;
        }
    }

    public struct Enumerator(ulong[] bits)
    {
        private int _word = -1;
        private ulong _rest;

        public int Current { get; private set; }

        public readonly Enumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            while (_rest == 0)
            {
                if (++_word >= bits.Length)
                {
                    return false;
                }
                _rest = bits[_word];
            }
            Current = (_word << 6) + BitOperations.TrailingZeroCount(_rest);
            _rest &= _rest - 1;
            return true;
        }
    }
}
