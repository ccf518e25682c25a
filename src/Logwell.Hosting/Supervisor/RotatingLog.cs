namespace Logwell.Hosting.Supervisor;

/// <summary>
/// A process's output file, rotated as supervisord rotates it: when a write would take it past <c>maxbytes</c>, the file
/// is filled up to the limit (to the last line break that fits, when there is one) and becomes <c>.1</c>, <c>.1</c>
/// becomes <c>.2</c> and so on, keeping <c>backups</c> of them (0: none, the file starts over). No file grows past
/// <c>maxbytes</c>; 0 means it grows without limit.
/// </summary>
internal sealed class RotatingLog : IDisposable
{
    private readonly LogTarget _target;
    private readonly Lock _lock = new();
    private FileStream? _file;

    public RotatingLog(LogTarget target)
    {
        _target = target;
        if (target.Path is not null)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target.Path)!);
            _file = Open();
        }
    }

    public string? Path => _target.Path;

    private FileStream Open() => new(_target.Path!, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);

    public void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            if (_file is null)
            {
                return;
            }
            while (_target.MaxBytes > 0 && _file.Length + bytes.Length > _target.MaxBytes)
            {
                // Fill the file up to the limit, ending at a line break when the chunk has one, then rotate.
                var room = (int)Math.Max(0, _target.MaxBytes - _file.Length);
                var cut = room == 0 ? 0 : bytes[..room].LastIndexOf((byte)'\n') + 1;
                if (cut == 0 && _file.Length == 0)
                {
                    cut = room;
                }
                _file.Write(bytes[..cut]);
                bytes = bytes[cut..];
                Rotate();
            }
            _file.Write(bytes);
            _file.Flush();
        }
    }

    private void Rotate()
    {
        _file!.Dispose();
        var path = _target.Path!;
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
            File.Move(path, $"{path}.1");
        }
        else
        {
            File.Delete(path);
        }
        _file = Open();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _file?.Dispose();
            _file = null;
        }
    }
}
