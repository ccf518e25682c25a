using Logwell.Storage.Encoding;

namespace Logwell.Tests;

public sealed class ZstdTests
{
    /// <summary>Column-like inputs: empty, one byte, repetitive text, random bytes (incompressible), and a large block.</summary>
    public static TheoryData<int, int> Inputs => new() { { 0, 1 }, { 1, 2 }, { 5_000, 3 }, { 70_000, 4 }, { 3_000_000, 5 } };

    private static byte[] Input(int length, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[length];
        if (seed % 2 == 0)
        {
            random.NextBytes(bytes);
            return bytes;
        }
        var text = System.Text.Encoding.UTF8.GetBytes("ts=2026-11-21 level=INFO host=web-3 msg=\"GET /api/orders 200\" trace=");
        for (var i = 0; i < length; i++)
        {
            bytes[i] = i % 97 < text.Length ? text[i % 97] : (byte)random.Next('0', 'z');
        }
        return bytes;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void EitherImplementationReadsWhatTheOtherWrote(int length, int seed)
    {
        // Segments written where libzstd is loaded must open where only the managed port is, and the reverse.
        var input = Input(length, seed);
        foreach (var writeNative in new[] { true, false })
        {
            using var compressor = new Zstd.Compressor(3, writeNative);
            var frame = compressor.Wrap(input);
            foreach (var readNative in new[] { true, false })
            {
                var output = new byte[length];
                Assert.Equal(length, Zstd.Unwrap(frame, output, readNative));
                Assert.True(output.AsSpan().SequenceEqual(input), $"written {(writeNative ? "native" : "managed")}, read {(readNative ? "native" : "managed")}");
            }
        }
    }

    [Fact]
    public void FramesAppendToAWriterAfterWhatItHolds()
    {
        var output = new ByteWriter(4);
        output.WriteBytes("head"u8);
        using var compressor = new Zstd.Compressor(6);
        var first = compressor.WrapInto(Input(10_000, 1), output);
        var second = compressor.WrapInto(Input(20_000, 3), output);
        Assert.Equal(4 + first + second, output.Length);
        Assert.True(output.WrittenSpan[..4].SequenceEqual("head"u8));
        var back = new byte[20_000];
        Assert.Equal(20_000, Zstd.Unwrap(output.WrittenSpan.Slice(4 + first, second), back));
        Assert.True(back.AsSpan().SequenceEqual(Input(20_000, 3)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DamagedFramesAndShortDestinationsAreInvalidData(bool native)
    {
        var input = Input(50_000, 3);
        using var compressor = new Zstd.Compressor(3, native);
        var frame = compressor.Wrap(input);

        var damaged = frame.ToArray();
        damaged[0] ^= 0xFF;
        Assert.Throws<InvalidDataException>(() => Zstd.Unwrap(damaged, new byte[input.Length], native));
        Assert.Throws<InvalidDataException>(() => Zstd.Unwrap(frame.AsSpan(0, frame.Length / 2), new byte[input.Length], native));
        Assert.Throws<InvalidDataException>(() => Zstd.Unwrap(frame, new byte[input.Length - 1], native));
    }

    [Fact]
    public void TheSystemLibraryIsUsedWhereItIsInstalled()
    {
        // Debian installs libzstd1 with dpkg itself; a machine without it runs the managed port (the tests above then
        // compare the port with itself).
        var installed = File.Exists("/usr/lib/x86_64-linux-gnu/libzstd.so.1") || File.Exists("/lib/x86_64-linux-gnu/libzstd.so.1");
        if (OperatingSystem.IsLinux() && installed)
        {
            Assert.True(Zstd.IsNative);
        }
    }
}
