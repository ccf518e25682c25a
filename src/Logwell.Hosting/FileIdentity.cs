using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Hosting;

/// <summary>
/// What a file is, whatever its name: its device and inode. A log file renamed by rotation keeps both; a new file at the
/// old name has others. .NET has no API for them, so they come from Linux's <c>statx(2)</c>.
/// </summary>
public readonly record struct FileIdentity(ulong Device, ulong Inode)
{
    public override string ToString() => $"{Device}:{Inode}";
}

/// <summary>
/// A file's identity, size, link count (0: deleted while open) and birth: when it was created, in nanoseconds since
/// 1970 by the file system's clock (its modification time where the file system keeps no birth time).
/// </summary>
public readonly record struct FileStatus(FileIdentity Identity, long Size, uint Links, long Born);

public static partial class FileStatuses
{
    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;
    private const uint StatxBirthTime = 0x800;

    /// <summary>The file a path names, following symbolic links; null when there is none (or it cannot be reached).</summary>
    public static FileStatus? Of(string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        return Statx(AtFdCwd, path, 0, StatxBasicStats | StatxBirthTime, ref MemoryMarshal.GetReference(buffer)) == 0 ? Parse(buffer) : null;
    }

    /// <summary>The file an open handle reads, even once renamed or deleted.</summary>
    /// <exception cref="IOException">The handle cannot be examined.</exception>
    public static FileStatus Of(SafeFileHandle handle)
    {
        Span<byte> buffer = stackalloc byte[256];
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (Statx((int)handle.DangerousGetHandle(), "", AtEmptyPath, StatxBasicStats | StatxBirthTime, ref MemoryMarshal.GetReference(buffer)) != 0)
            {
                throw new IOException($"statx failed on an open file: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
        return Parse(buffer);
    }

    // struct statx (the same layout on every Linux architecture, in native byte order): stx_mask at 0, stx_nlink at 16,
    // stx_ino at 32, stx_size at 40, stx_btime at 80 and stx_mtime at 112 (seconds, then nanoseconds 8 bytes on),
    // stx_dev_major and stx_dev_minor at 136 and 140.
    private static FileStatus Parse(ReadOnlySpan<byte> statx)
    {
        var device = ((ulong)MemoryMarshal.Read<uint>(statx[136..]) << 32) | MemoryMarshal.Read<uint>(statx[140..]);
        var time = (MemoryMarshal.Read<uint>(statx) & StatxBirthTime) != 0 ? 80 : 112;
        var born = (MemoryMarshal.Read<long>(statx[time..]) * 1_000_000_000) + MemoryMarshal.Read<uint>(statx[(time + 8)..]);
        return new FileStatus(new FileIdentity(device, MemoryMarshal.Read<ulong>(statx[32..])),
            (long)MemoryMarshal.Read<ulong>(statx[40..]), MemoryMarshal.Read<uint>(statx[16..]), born);
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, ref byte buffer);
}
