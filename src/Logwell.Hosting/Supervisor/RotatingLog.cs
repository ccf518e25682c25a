using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Hosting.Supervisor;

/// <summary>
/// A process's output file, rotated as supervisord rotates it: when a write would take it past <c>maxbytes</c>, the file
/// is filled up to the limit (to the last line break that fits, when there is one) and becomes <c>.1</c>, <c>.1</c>
/// becomes <c>.2</c> and so on, keeping <c>backups</c> of them (0: none, the file starts over). No file grows past
/// <c>maxbytes</c>; 0 means it grows without limit.
/// <para>
/// Programs that name the same file share one instance (<see cref="Open"/>): their writes are serialized and one of
/// them rotates it for all, with the first one's <c>maxbytes</c> and <c>backups</c>. The file is opened with
/// <c>O_APPEND</c>, so every write lands at its end even when another process writes to it too.
/// </para>
/// </summary>
internal sealed partial class RotatingLog : IDisposable
{
    private static readonly Dictionary<string, RotatingLog> Shared = new(StringComparer.Ordinal);

    private readonly LogTarget _target;
    private readonly Lock _lock = new();
    private SafeFileHandle? _file;
    private bool _closed;
    private int _users = 1;

    private RotatingLog(LogTarget target)
    {
        _target = target;
        if (target.Path is not null)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target.Path)!);
            _file = OpenFile(target.Path);
        }
    }

    /// <summary>The log for <paramref name="target"/>: the one already open on its file, or a new one.</summary>
    public static RotatingLog Open(LogTarget target)
    {
        if (target.Path is null)
        {
            return new RotatingLog(target);
        }
        lock (Shared)
        {
            if (Shared.TryGetValue(target.Path, out var open))
            {
                lock (open._lock)
                {
                    open._users++;
                }
                return open;
            }
            var log = new RotatingLog(target);
            Shared[target.Path] = log;
            return log;
        }
    }

    public string? Path => _target.Path;

    private static SafeFileHandle OpenFile(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return File.OpenHandle(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        }
        // .NET's FileMode.Append only seeks to the end once; O_APPEND makes the kernel put each write at the end.
        var fd = OpenAppend(path, OWronly | OCreat | OAppend | OCloexec, 0b110_100_100);
        if (fd < 0)
        {
            throw new IOException($"cannot open {path} for appending (errno {Marshal.GetLastPInvokeError()})");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            if (_target.Path is null || _closed)
            {
                return;
            }
            // Null after a rotation that could not reopen the file: tried again here.
            _file ??= OpenFile(_target.Path);
            var length = RandomAccess.GetLength(_file);
            while (_target.MaxBytes > 0 && length + bytes.Length > _target.MaxBytes)
            {
                // Fill the file up to the limit, ending at a line break when the chunk has one, then rotate.
                var room = (int)Math.Max(0, _target.MaxBytes - length);
                var cut = room == 0 ? 0 : bytes[..room].LastIndexOf((byte)'\n') + 1;
                if (cut == 0 && length == 0)
                {
                    cut = room;
                }
                Append(bytes[..cut], length);
                bytes = bytes[cut..];
                Rotate();
                length = 0;
            }
            Append(bytes, length);
        }
    }

    /// <summary>Appends (the offset only matters where the file is not opened with O_APPEND: off Linux).</summary>
    private void Append(ReadOnlySpan<byte> bytes, long length)
    {
        if (bytes.Length > 0)
        {
            RandomAccess.Write(_file!, bytes, length);
        }
    }

    private void Rotate()
    {
        _file!.Dispose();
        _file = null;
        var path = _target.Path!;
        try
        {
            if (_target.Backups > 0)
            {
                File.Delete($"{path}.{_target.Backups}");
                for (var i = _target.Backups - 1; i >= 1; i--)
                {
                    if (File.Exists($"{path}.{i}"))
                    {
                        File.Move($"{path}.{i}", $"{path}.{i + 1}");
                    }
                }
                if (File.Exists(path))
                {
                    File.Move(path, $"{path}.1");
                }
            }
            else
            {
                File.Delete(path);
            }
        }
        finally
        {
            // Whatever the renames did, writing goes on in a file of this name.
            _file = OpenFile(path);
        }
    }

    /// <summary>Lets go of the file; it closes once no program that names it uses it.</summary>
    public void Dispose()
    {
        if (_target.Path is not null)
        {
            lock (Shared)
            {
                lock (_lock)
                {
                    if (--_users > 0)
                    {
                        return;
                    }
                }
                if (Shared.TryGetValue(_target.Path, out var open) && ReferenceEquals(open, this))
                {
                    Shared.Remove(_target.Path);
                }
            }
        }
        lock (_lock)
        {
            _file?.Dispose();
            _file = null;
            _closed = true;
        }
    }

    // Linux's values (x86-64 and arm64).
    private const int OWronly = 0x1;
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private const int OCloexec = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenAppend(string path, int flags, int mode);
}
