using System.Runtime.InteropServices;

namespace Logwell.Hosting;

/// <summary>
/// The process's file-creation mask. Logwell's files hold logs, so its processes create them for their owner alone
/// (0600 files, 0700 directories), as PostgreSQL does for its data directory; the supervisor sets the mask its
/// configuration names for the programs it starts.
/// </summary>
public static partial class FileModes
{
    /// <summary>Group and others get no access to files and directories created from now on.</summary>
    public const uint OwnerOnly = 0b000_111_111; // 077

    /// <summary>
    /// Writes a new file readable and writable by its owner alone (0600 whatever the mask), on disk when this
    /// returns: for secrets, written under a temporary name and then moved into place by the caller.
    /// </summary>
    public static void WriteSecretFile(string path, ReadOnlySpan<byte> content)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using var file = new FileStream(path, options);
        file.Write(content);
        file.Flush(flushToDisk: true);
    }

    /// <summary>Sets the mask (on Unix; elsewhere nothing) and returns the previous one.</summary>
    public static uint SetMask(uint mask) => OperatingSystem.IsWindows() ? 0 : Umask(mask);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);
}
