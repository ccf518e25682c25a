using System.Runtime.InteropServices;

namespace Logwell.Storage.Encoding;

/// <summary>Atomic file replacement and directory fsync, so a rename survives power loss.</summary>
internal static partial class DurableFile
{
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var temp = path + ".tmp";
        using (var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write))
        {
            RandomAccess.Write(handle, content, 0);
            RandomAccess.FlushToDisk(handle);
        }
        File.Move(temp, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsync a directory so entries created, renamed or removed in it are durable.</summary>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }
        var fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }
        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
