using System.Buffers.Binary;
using System.IO.Hashing;
using Logwell.Core.Events;
using Logwell.Storage.Encoding;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Storage.Wal;

/// <summary>
/// One write-ahead log file: an 8-byte header, then records of <c>[u32 length][u32 crc32][payload]</c> where the
/// payload is a batch of events. <see cref="Append"/> writes without syncing; <see cref="Sync"/> makes everything
/// appended so far durable, so one fsync can cover many batches (group commit). Opening replays the records and cuts
/// off a torn or corrupt tail.
/// </summary>
internal sealed class WriteAheadLog : IDisposable
{
    private static ReadOnlySpan<byte> Magic => "LWWAL001"u8;
    private const int RecordHeaderSize = 8;
    private const int MaxRecordBytes = 1 << 30;

    private readonly SafeFileHandle _handle;
    private readonly ByteWriter _buffer = new(1 << 16);
    private long _length;

    private WriteAheadLog(string path, SafeFileHandle handle, long length)
    {
        Path = path;
        _handle = handle;
        _length = length;
    }

    public string Path { get; }

    public long Length => _length;

    /// <summary>Creates a new, empty log file (and makes its directory entry durable).</summary>
    public static WriteAheadLog Create(string path)
    {
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            RandomAccess.Write(handle, Magic, 0);
            RandomAccess.FlushToDisk(handle);
            DurableFile.SyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        }
        catch
        {
            handle.Dispose();
            File.Delete(path);
            throw;
        }
        return new WriteAheadLog(path, handle, Magic.Length);
    }

    /// <summary>
    /// Reads every intact record of an existing log, truncating the file after the last intact one.
    /// Returns the events and how many bytes were cut off.
    /// </summary>
    public static (List<LogEvent> Events, long BytesCut) Replay(string path)
    {
        var events = new List<LogEvent>();
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        var fileLength = RandomAccess.GetLength(handle);
        Span<byte> header = stackalloc byte[RecordHeaderSize];
        long offset;
        if (fileLength < Magic.Length)
        {
            offset = 0;
        }
        else
        {
            var magic = new byte[Magic.Length];
            RandomAccess.Read(handle, magic, 0);
            if (!magic.AsSpan().SequenceEqual(Magic))
            {
                throw new InvalidDataException($"{path} is not a Logwell write-ahead log");
            }
            offset = Magic.Length;
        }
        var payload = Array.Empty<byte>();
        while (offset > 0 && offset + RecordHeaderSize <= fileLength)
        {
            if (RandomAccess.Read(handle, header, offset) < RecordHeaderSize)
            {
                break;
            }
            var length = BinaryPrimitives.ReadInt32LittleEndian(header);
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            if (length <= 0 || length > MaxRecordBytes || offset + RecordHeaderSize + length > fileLength)
            {
                break;
            }
            if (payload.Length < length)
            {
                payload = new byte[length];
            }
            var span = payload.AsSpan(0, length);
            if (RandomAccess.Read(handle, span, offset + RecordHeaderSize) < length || Crc32.HashToUInt32(span) != crc)
            {
                break;
            }
            if (!TryDecode(span, events))
            {
                break;
            }
            offset += RecordHeaderSize + length;
        }
        var validLength = Math.Max(offset, 0);
        var cut = fileLength - validLength;
        if (cut > 0)
        {
            if (validLength == 0)
            {
                RandomAccess.Write(handle, Magic, 0);
                validLength = Magic.Length;
            }
            RandomAccess.SetLength(handle, validLength);
            RandomAccess.FlushToDisk(handle);
        }
        return (events, cut);
    }

    private static bool TryDecode(ReadOnlySpan<byte> payload, List<LogEvent> into)
    {
        var start = into.Count;
        try
        {
            var reader = new ByteReader(payload);
            var count = (int)reader.ReadVarUInt();
            for (var i = 0; i < count; i++)
            {
                into.Add(EventCodec.Read(ref reader));
            }
            return reader.End;
        }
        catch (InvalidDataException)
        {
            into.RemoveRange(start, into.Count - start);
            return false;
        }
    }

    /// <summary>Writes a batch as one record (not yet durable: call <see cref="Sync"/>).</summary>
    public void Append(IReadOnlyList<LogEvent> batch)
    {
        _buffer.Clear();
        _buffer.WriteUInt32(0);
        _buffer.WriteUInt32(0);
        _buffer.WriteVarUInt((ulong)batch.Count);
        foreach (var evt in batch)
        {
            EventCodec.Write(_buffer, evt);
        }
        var record = _buffer.WrittenSpanForUpdate;
        var payloadLength = record.Length - RecordHeaderSize;
        if (payloadLength > MaxRecordBytes)
        {
            throw new InvalidOperationException($"a write-ahead log record may hold at most {MaxRecordBytes} bytes");
        }
        BinaryPrimitives.WriteInt32LittleEndian(record, payloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], Crc32.HashToUInt32(record[RecordHeaderSize..]));
        RandomAccess.Write(_handle, record, _length);
        _length += record.Length;
    }

    public void Sync() => RandomAccess.FlushToDisk(_handle);

    public void Dispose() => _handle.Dispose();
}
