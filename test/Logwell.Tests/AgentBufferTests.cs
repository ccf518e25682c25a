using Logwell.Hosting;
using Logwell.Server.Agent;

namespace Logwell.Tests;

/// <summary>The agent's on-disk buffer and checkpoint, reopened as after a kill.</summary>
public sealed class AgentBufferTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private static readonly FileIdentity A = new(1, 10);
    private static readonly FileIdentity B = new(1, 11);

    public void Dispose() => _dir.Dispose();

    private static BatchFile At(FileIdentity file, long offset) => new(file, $"/logs/{file.Inode}.log", offset, (ulong)offset * 31, "app\n/logs/*.log");

    [Fact]
    public async Task AReopenedBufferSendsWhatWasNotAcknowledgedAndResumesFilesAfterIt()
    {
        var buffer = AgentBuffer.Open(_dir.Path, 1 << 20);
        var first = buffer.Append("app", 3, 300, [At(A, 100)], "one"u8);
        buffer.Append("app", 2, 200, [At(A, 180), At(B, 50)], "two"u8);
        buffer.Append("app", 1, 100, [At(B, 90)], "three"u8);
        buffer.Acked(first);
        // A kill: only the disk is left.
        File.WriteAllText(Path.Combine(_dir.Path, "buffer", "00000000000000000009.batch.tmp"), "half");
        File.WriteAllText(Path.Combine(_dir.Path, "buffer", "00000000000000000008.batch"), "not a batch");

        var reopened = AgentBuffer.Open(_dir.Path, 1 << 20);
        Assert.Equal(2, reopened.Batches);
        Assert.Equal(2, reopened.Redelivered);
        var positions = reopened.Positions().ToDictionary(p => p.Identity);
        Assert.Equal(180, positions[A].Offset);
        Assert.Equal(90, positions[B].Offset);
        Assert.Equal(90UL * 31, positions[B].Marker);
        Assert.False(File.Exists(Path.Combine(_dir.Path, "buffer", "00000000000000000009.batch.tmp")));
        Assert.True(File.Exists(Path.Combine(_dir.Path, "buffer", "00000000000000000008.batch.damaged")));
        var next = await reopened.NextAsync(CancellationToken.None);
        Assert.Equal(2, next.Seq);
        Assert.Equal("two"u8.ToArray(), AgentBuffer.ReadBody(next));
        // Numbering goes on after the batches on disk.
        Assert.Equal(4, reopened.Append("app", 1, 10, [At(A, 200)], "four"u8).Seq);
    }

    [Fact]
    public void TheCheckpointMovesOnlyOnAcknowledgementAndABufferedFileIsNotSettledPastIt()
    {
        var buffer = AgentBuffer.Open(_dir.Path, 1 << 20);
        var batch = buffer.Append("app", 3, 300, [At(A, 100)], "one"u8);
        // A file with events waiting in the buffer keeps its acknowledged offset, whatever the reader says.
        buffer.Settled(new FilePosition(A, "/logs/10.log", 400, 0, null));
        buffer.Settled(new FilePosition(B, "/logs/11.log", 70, 7, "app\n/logs/*.log"));
        buffer.SaveCheckpoint();
        var checkpoint = File.ReadAllText(Path.Combine(_dir.Path, "checkpoint.json"));
        Assert.Contains("\"acked_seq\": 0", checkpoint, StringComparison.Ordinal);
        Assert.DoesNotContain("\"ino\": 10", checkpoint, StringComparison.Ordinal);
        Assert.Contains("\"ino\": 11", checkpoint, StringComparison.Ordinal);
        buffer.Acked(batch);
        checkpoint = File.ReadAllText(Path.Combine(_dir.Path, "checkpoint.json"));
        Assert.Contains("\"acked_seq\": 1", checkpoint, StringComparison.Ordinal);
        Assert.Contains("\"offset\": 100", checkpoint, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "buffer")));
        // A file done with is forgotten once acknowledged.
        buffer.Retired(B, 70);
        buffer.SaveCheckpoint();
        Assert.DoesNotContain("\"ino\": 11", File.ReadAllText(Path.Combine(_dir.Path, "checkpoint.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void AFullBufferSaysSoAndABatchChangedOnDiskIsNotSent()
    {
        var buffer = AgentBuffer.Open(_dir.Path, 200);
        var batch = buffer.Append("app", 1, 100, [At(A, 100)], new byte[150]);
        Assert.True(buffer.Full);
        var bytes = File.ReadAllBytes(batch.File);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(batch.File, bytes);
        Assert.Null(AgentBuffer.ReadBody(batch));
        buffer.Acked(batch, damaged: true);
        Assert.False(buffer.Full);
        Assert.True(File.Exists(batch.File + ".damaged"));
    }
}
