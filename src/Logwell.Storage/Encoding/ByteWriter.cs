using System.Buffers.Binary;
using System.Text;

namespace Logwell.Storage.Encoding;

/// <summary>A growable byte buffer with varint, fixed-width and string writers.</summary>
internal sealed class ByteWriter(int capacity = 256)
{
    private byte[] _buffer = new byte[Math.Max(16, capacity)];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, Length);

    /// <summary>The written bytes, for patching a header after the body is known.</summary>
    public Span<byte> WrittenSpanForUpdate => _buffer.AsSpan(0, Length);

    public void Clear() => Length = 0;

    private Span<byte> Reserve(int count)
    {
        if (Length + count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + count));
        }
        return _buffer.AsSpan(Length, count);
    }

    /// <summary>Room for <paramref name="count"/> more bytes, to be filled and then claimed with <see cref="Advance"/>.</summary>
    public Span<byte> GetSpan(int count) => Reserve(count);

    /// <summary>Claims <paramref name="count"/> bytes written into the last <see cref="GetSpan"/>.</summary>
    public void Advance(int count) => Length += count;

    public void WriteByte(byte value)
    {
        Reserve(1)[0] = value;
        Length++;
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        Length += bytes.Length;
    }

    public void WriteVarUInt(ulong value)
    {
        var span = Reserve(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[i++] = (byte)value;
        Length += i;
    }

    /// <summary>How many bytes <see cref="WriteVarUInt"/> takes for <paramref name="value"/>.</summary>
    public static int VarUIntSize(ulong value) => (70 - System.Numerics.BitOperations.LeadingZeroCount(value | 1)) / 7;

    public void WriteVarInt(long value) => WriteVarUInt((ulong)((value << 1) ^ (value >> 63)));

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), value);
        Length += 4;
    }

    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(Reserve(8), value);
        Length += 8;
    }

    public void WriteDouble(double value)
    {
        BinaryPrimitives.WriteDoubleLittleEndian(Reserve(8), value);
        Length += 8;
    }

    public void WriteString(string value)
    {
        var max = System.Text.Encoding.UTF8.GetMaxByteCount(value.Length);
        var span = Reserve(max + 5);
        var count = System.Text.Encoding.UTF8.GetBytes(value, span[5..]);
        // Write the varint length, then move the bytes next to it.
        var lengthBytes = 0;
        var v = (uint)count;
        Span<byte> prefix = stackalloc byte[5];
        while (v >= 0x80)
        {
            prefix[lengthBytes++] = (byte)(v | 0x80);
            v >>= 7;
        }
        prefix[lengthBytes++] = (byte)v;
        prefix[..lengthBytes].CopyTo(span);
        if (lengthBytes != 5)
        {
            span.Slice(5, count).CopyTo(span[lengthBytes..]);
        }
        Length += lengthBytes + count;
    }
}

/// <summary>Reads what <see cref="ByteWriter"/> wrote; throws <see cref="InvalidDataException"/> on truncated input.</summary>
internal ref struct ByteReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;

    public int Position { get; private set; }

    public readonly bool End => Position >= _data.Length;

    public readonly int Remaining => _data.Length - Position;

    public byte ReadByte()
    {
        if (Position >= _data.Length)
        {
            throw new InvalidDataException("unexpected end of data");
        }
        return _data[Position++];
    }

    public ulong ReadVarUInt()
    {
        ulong result = 0;
        var shift = 0;
        while (true)
        {
            var b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
            shift += 7;
            if (shift > 63)
            {
                throw new InvalidDataException("varint too long");
            }
        }
    }

    /// <summary>
    /// Skips <paramref name="count"/> varints without decoding them: each ends with the first byte below 0x80, so the
    /// ends are counted 16 bytes at a time (opening a block's postings skips every row list to find where each starts).
    /// </summary>
    public void SkipVarUInts(int count)
    {
        var data = _data;
        var position = Position;
        while (count > 0 && position + 16 <= data.Length)
        {
            var ends = (uint)System.Runtime.Intrinsics.Vector128.ExtractMostSignificantBits(~System.Runtime.Intrinsics.Vector128.Create(data.Slice(position, 16)));
            var found = System.Numerics.BitOperations.PopCount(ends);
            if (found < count)
            {
                count -= found;
                position += 16;
                continue;
            }
            // The count-th end lies in these 16 bytes: drop the ends before it.
            for (var i = 1; i < count; i++)
            {
                ends &= ends - 1;
            }
            position += System.Numerics.BitOperations.TrailingZeroCount(ends) + 1;
            count = 0;
        }
        Position = position;
        for (; count > 0; count--)
        {
            ReadVarUInt();
        }
    }

    public long ReadVarInt()
    {
        var raw = ReadVarUInt();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    public int ReadLength()
    {
        var value = ReadVarUInt();
        if (value > (ulong)Remaining)
        {
            throw new InvalidDataException("length beyond end of data");
        }
        return (int)value;
    }

    public uint ReadUInt32()
    {
        var value = BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));
        return value;
    }

    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(ReadBytes(8));

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));

    public void Skip(int count) => ReadBytes(count);

    public double ReadDouble() => BinaryPrimitives.ReadDoubleLittleEndian(ReadBytes(8));

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count > Remaining)
        {
            throw new InvalidDataException("unexpected end of data");
        }
        var span = _data.Slice(Position, count);
        Position += count;
        return span;
    }

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBytes(ReadLength()));
}
