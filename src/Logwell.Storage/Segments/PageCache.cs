using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Storage.Segments;

/// <summary>
/// Asks the kernel to start reading parts of a file into the page cache without waiting for them
/// (<c>posix_fadvise(POSIX_FADV_WILLNEED)</c>). A search that reads the same part of many blocks one after another,
/// on a cold cache, otherwise waits on one disk read at a time; asked ahead, the disk serves the next blocks' reads
/// while the search decodes the current one. Nothing is read where the pages are already cached, and where the call
/// is not available the search reads as before.
/// </summary>
internal static partial class PageCache
{
    private const int WillNeed = 3;
    private static bool _unavailable;

    public static void WillRead(SafeFileHandle handle, long offset, long length)
    {
        if (_unavailable || length <= 0 || handle.IsClosed)
        {
            return;
        }
        try
        {
            _ = PosixFadvise(handle, offset, length, WillNeed);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
        catch (ObjectDisposedException)
        {
            // The segment was retired meanwhile: nothing to read ahead.
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);
}
