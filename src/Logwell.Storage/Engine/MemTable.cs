using Logwell.Core.Events;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Engine;

/// <summary>
/// Durable events not yet in a segment, in arrival order, kept encoded: each event's message and fields as bytes in a
/// few large chunks, its time and sequence number in arrays. An event is an object only while it is read (a search, a
/// flush), so the events waiting for their flush are not millions of objects the collector moves from generation to
/// generation, and take about a quarter of the memory. Field names, and the string values of fields whose values
/// repeat (hosts, levels, services), are kept once and referred to by number: a read gives them as the same string
/// instances, as the ingest decoders do.
/// </summary>
/// <remarks>
/// Append-only: a snapshot stays valid while later events are added, because grown arrays are copies and nothing
/// below the snapshot's count is written again. Reference-counted: once written out and retired, and no reader holds
/// it, its chunks go back to <see cref="ChunkPool"/> for the tables that follow.
/// </remarks>
internal sealed class MemTable(string walPath)
{
    /// <summary>String values longer than this are stored as they are.</summary>
    private const int MaxSharedLength = 64;

    /// <summary>A field's values are no longer shared once it has had this many different ones (ids, say).</summary>
    private const int MaxSharedPerField = 4096;

    /// <summary>The kind byte of a string value stored as the number of a shared value.</summary>
    internal const byte SharedString = 0xFF;

    private readonly Lock _lock = new();
    private readonly ByteWriter _encoder = new(1 << 12);
    private readonly FieldNumbers _names = new();
    // By name number, the numbers of the field's shared values; null once it has had too many to share.
    private readonly List<Dictionary<string, int>?> _valueIds = [];
    private string[] _values = new string[64];
    private int _valueCount;
    private byte[][] _chunks = new byte[8][];
    private int _chunkCount;
    private int _chunkUsed;
    private long[] _times = new long[1024];
    private long[] _seqs = new long[1024];
    private long[] _places = new long[1024];
    private int _count;
    private int _references = 1;

    public string WalPath { get; } = walPath;

    /// <summary>The memory the events take here: their encoded bytes and their entries.</summary>
    public long Bytes { get; private set; }
    public long MinTime { get; private set; } = long.MaxValue;
    public long MaxTime { get; private set; } = long.MinValue;
    public long MaxSeq { get; private set; }

    public int Count => Volatile.Read(ref _count);

    public void Add(List<LogEvent> events)
    {
        lock (_lock)
        {
            if (_count + events.Count > _times.Length)
            {
                var length = Math.Max(_times.Length * 2, _count + events.Count);
                _times = Grown(_times, length);
                _seqs = Grown(_seqs, length);
                _places = Grown(_places, length);
            }
            foreach (var evt in events)
            {
                _encoder.Clear();
                Encode(evt);
                var bytes = _encoder.WrittenSpan;
                var place = Reserve(bytes.Length);
                bytes.CopyTo(_chunks[(int)(place >> 32)].AsSpan((int)place));
                _times[_count] = evt.Timestamp;
                _seqs[_count] = evt.Seq;
                _places[_count] = place;
                Volatile.Write(ref _count, _count + 1);
                Bytes += bytes.Length + 3 * sizeof(long);
                MinTime = Math.Min(MinTime, evt.Timestamp);
                MaxTime = Math.Max(MaxTime, evt.Timestamp);
                MaxSeq = Math.Max(MaxSeq, evt.Seq);
            }
        }
    }

    public MemTableSnapshot Snapshot()
    {
        lock (_lock)
        {
            return new MemTableSnapshot(this, _count, MinTime, MaxTime, _times, _seqs, _places, _chunks, _names.Names, _values);
        }
    }

    /// <summary>Takes a reference for a reader of the table's events; only while the table is live (before <see cref="Retire"/>).</summary>
    public void Acquire()
    {
        if (Interlocked.Increment(ref _references) <= 1)
        {
            throw new InvalidOperationException("a retired memory table was read");
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            lock (_lock)
            {
                for (var i = 0; i < _chunkCount; i++)
                {
                    ChunkPool.Return(_chunks[i]);
                    _chunks[i] = null!;
                }
                _chunkCount = 0;
            }
        }
    }

    /// <summary>Drops the table's own reference once its events are in segments: its memory is reused after the last reader.</summary>
    public void Retire() => Release();

    private static T[] Grown<T>(T[] array, int length)
    {
        var grown = new T[length];
        Array.Copy(array, grown, array.Length);
        return grown;
    }

    /// <summary>Room for an event's bytes: its chunk number (high half) and offset (low half).</summary>
    private long Reserve(int length)
    {
        if (_chunkCount == 0 || _chunkUsed + length > _chunks[_chunkCount - 1].Length)
        {
            if (_chunkCount == _chunks.Length)
            {
                _chunks = Grown(_chunks, _chunks.Length * 2);
            }
            _chunks[_chunkCount++] = length <= ChunkPool.ChunkBytes ? ChunkPool.Rent() : GC.AllocateUninitializedArray<byte>(length);
            _chunkUsed = 0;
        }
        var place = ((long)(_chunkCount - 1) << 32) | (uint)_chunkUsed;
        _chunkUsed += length;
        return place;
    }

    // An event: the message, the field count, then each field as its name's number and its value, a value as
    // EventCodec writes it or, for a shared string, SharedString and the value's number.
    private void Encode(LogEvent evt)
    {
        _encoder.WriteString(evt.Message);
        var fields = evt.Fields;
        _encoder.WriteVarUInt((ulong)fields.Length);
        for (var place = 0; place < fields.Length; place++)
        {
            var field = fields[place];
            var id = _names.At(place, field.Name);
            if (id == _valueIds.Count)
            {
                _valueIds.Add(new Dictionary<string, int>(StringComparer.Ordinal));
            }
            _encoder.WriteVarUInt((ulong)id);
            var value = field.Value;
            if (value.Kind == FieldKind.String && value.Text!.Length <= MaxSharedLength && _valueIds[id] is { } shared)
            {
                if (!shared.TryGetValue(value.Text, out var valueId))
                {
                    if (shared.Count >= MaxSharedPerField)
                    {
                        // Too many different values to be worth sharing: this field's values are stored as they are.
                        _valueIds[id] = null;
                        EventCodec.WriteValue(_encoder, value);
                        continue;
                    }
                    valueId = _valueCount;
                    if (_valueCount == _values.Length)
                    {
                        _values = Grown(_values, _values.Length * 2);
                    }
                    _values[_valueCount++] = value.Text;
                    shared[value.Text] = valueId;
                    Bytes += value.Text.Length * 2 + 24;
                }
                _encoder.WriteByte(SharedString);
                _encoder.WriteVarUInt((ulong)valueId);
                continue;
            }
            EventCodec.WriteValue(_encoder, value);
        }
    }
}

/// <summary>
/// The chunks of memory tables written out, kept for the tables that follow: a chunk is on the large object heap,
/// which is collected only with the oldest generation, so making one per megabyte ingested would have the collector
/// run full collections for memory that is reused anyway. Keeps at most <see cref="MaxKept"/> (64 MiB).
/// </summary>
internal static class ChunkPool
{
    public const int ChunkBytes = 1 << 20;
    private const int MaxKept = 64;
    private static readonly System.Collections.Concurrent.ConcurrentBag<byte[]> Kept = [];

    public static byte[] Rent() => Kept.TryTake(out var chunk) ? chunk : GC.AllocateUninitializedArray<byte>(ChunkBytes);

    public static void Return(byte[] chunk)
    {
        if (chunk.Length == ChunkBytes && Kept.Count < MaxKept)
        {
            Kept.Add(chunk);
        }
    }
}

/// <summary>A memory table's events as they stood when it was taken: times and sequence numbers at hand, events decoded on demand.</summary>
internal readonly record struct MemTableSnapshot(MemTable Table, int Count, long MinTime, long MaxTime, long[] Times, long[] Seqs, long[] Places, byte[][] Chunks, string[] Names, string[] Values)
{
    /// <summary>Event <paramref name="index"/>, decoded: a new object on every call.</summary>
    public LogEvent Event(int index)
    {
        var place = Places[index];
        var reader = new ByteReader(Chunks[(int)(place >> 32)].AsSpan((int)place));
        var message = reader.ReadString();
        var count = reader.ReadLength();
        var fields = count == 0 ? [] : new Field[count];
        for (var i = 0; i < count; i++)
        {
            var name = Names[(int)reader.ReadVarUInt()];
            var kind = reader.ReadByte();
            fields[i] = new Field(name, kind == MemTable.SharedString ? FieldValue.FromString(Values[(int)reader.ReadVarUInt()]) : EventCodec.ReadValue(ref reader, kind));
        }
        return new LogEvent(Times[index], message, fields) { Seq = Seqs[index] };
    }
}
