using Logwell.Core.Events;
using Logwell.Storage.Wal;

namespace Logwell.Tests;

public sealed class WriteAheadLogTests
{
    private static List<LogEvent> Batch(long firstSeq, int count) =>
        [.. Enumerable.Range(0, count).Select(i => new LogEvent(1000 + i, $"event {firstSeq + i}", [new Field("n", FieldValue.FromLong(firstSeq + i))]) { Seq = firstSeq + i })];

    [Fact]
    public void ReplayReturnsEveryAppendedBatch()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "wal.log");
        using (var wal = WriteAheadLog.Create(path))
        {
            wal.Append(Batch(1, 3));
            wal.Append(Batch(4, 2));
            wal.Sync();
        }
        var (events, cut) = WriteAheadLog.Replay(path);
        Assert.Equal(0, cut);
        Assert.Equal([1L, 2, 3, 4, 5], events.Select(e => e.Seq));
        Assert.Equal("event 5", events[^1].Message);
        Assert.True(events[^1].TryGetField("n", out var n) && n.Long == 5);
    }

    [Fact]
    public void GarbageAppendedAfterTheLastRecordIsCutOffAndTheRestKept()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "wal.log");
        using (var wal = WriteAheadLog.Create(path))
        {
            wal.Append(Batch(1, 10));
            wal.Sync();
        }
        var goodLength = new FileInfo(path).Length;
        using (var stream = new FileStream(path, FileMode.Append))
        {
            stream.Write(Enumerable.Range(0, 333).Select(i => (byte)(i * 7)).ToArray());
        }
        var (events, cut) = WriteAheadLog.Replay(path);
        Assert.Equal(10, events.Count);
        Assert.Equal(333, cut);
        Assert.Equal(goodLength, new FileInfo(path).Length);
    }

    [Fact]
    public void TruncatedLastRecordIsCutOffAndEarlierRecordsKept()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "wal.log");
        long afterFirst;
        using (var wal = WriteAheadLog.Create(path))
        {
            wal.Append(Batch(1, 5));
            afterFirst = wal.Length;
            wal.Append(Batch(6, 5));
            wal.Sync();
        }
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.SetLength(stream.Length - 7);
        }
        var (events, _) = WriteAheadLog.Replay(path);
        Assert.Equal([1L, 2, 3, 4, 5], events.Select(e => e.Seq));
        Assert.Equal(afterFirst, new FileInfo(path).Length);
    }

    [Fact]
    public void FlippedByteInARecordStopsReplayAtThatRecord()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "wal.log");
        long afterFirst;
        using (var wal = WriteAheadLog.Create(path))
        {
            wal.Append(Batch(1, 5));
            afterFirst = wal.Length;
            wal.Append(Batch(6, 5));
            wal.Sync();
        }
        var bytes = File.ReadAllBytes(path);
        bytes[afterFirst + 20] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        var (events, cut) = WriteAheadLog.Replay(path);
        Assert.Equal(5, events.Count);
        Assert.True(cut > 0);
    }
}
