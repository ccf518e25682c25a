using System.Runtime.CompilerServices;
using Logwell.Storage.Encoding;

namespace Logwell.Storage.Backup;

/// <summary>
/// A backup repository in a directory (a local disk, a mounted share). Files are written to a temporary name beside
/// their place, flushed to disk, and renamed into it; files and directories are its owner's alone (they hold the node's
/// data and credential).
/// </summary>
public sealed class DirectoryBackupStorage(string root) : IBackupStorage
{
    private static readonly UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static readonly UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>The directory, absolute.</summary>
    public string Root { get; } = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));

    public string Location => Root;

    /// <summary>Makes <paramref name="path"/> (and its parents) a directory its owner alone may read.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, PrivateDirectory);
        }
    }

    /// <summary>A new file only its owner may read, open for writing.</summary>
    public static FileStream CreatePrivateFile(string path, FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16, Options = FileOptions.Asynchronous };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateFile;
        }
        return new FileStream(path, options);
    }

    private string PathOf(string key) => Path.Combine(Root, key.Replace('/', Path.DirectorySeparatorChar));

    public string ScratchDirectory()
    {
        CreatePrivateDirectory(Root);
        return Root;
    }

    public Task<long?> SizeAsync(string key, CancellationToken cancellationToken)
    {
        var file = new FileInfo(PathOf(key));
        return Task.FromResult(file.Exists ? file.Length : (long?)null);
    }

    public Task PutAsync(string key, string file, CancellationToken cancellationToken)
    {
        var target = PathOf(key);
        var directory = Path.GetDirectoryName(target)!;
        CreatePrivateDirectory(directory);
        File.Move(file, target, overwrite: true);
        DurableFile.SyncDirectory(directory);
        return Task.CompletedTask;
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        try
        {
            return Task.FromResult<Stream>(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous));
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException($"{path} is missing", path, e);
        }
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        // Every key lies below a directory named by the prefix up to its last '/'.
        var slash = prefix.LastIndexOf('/');
        var directory = slash < 0 ? Root : PathOf(prefix[..slash]);
        if (!Directory.Exists(directory))
        {
            yield break;
        }
        foreach (var path in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = Path.GetRelativePath(Root, path).Replace(Path.DirectorySeparatorChar, '/');
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }
            var file = new FileInfo(path);
            if (file.Exists)
            {
                yield return new StoredObject(key, file.Length, file.LastWriteTimeUtc);
            }
        }
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        if (File.Exists(path))
        {
            File.Delete(path);
            DurableFile.SyncDirectory(Path.GetDirectoryName(path)!);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// An advisory lock (flock) on the file <c>lock</c>: shared for backups and readers, exclusive for a prune. It is let
    /// go when the process ends, however it ends. A reader that cannot write the directory (a read-only share) reads
    /// without it: no prune can run from there either.
    /// </summary>
    public Task<IAsyncDisposable> LockAsync(BackupLockKind kind, CancellationToken cancellationToken)
    {
        if (kind == BackupLockKind.Read)
        {
            if (!Directory.Exists(Root))
            {
                return Task.FromResult<IAsyncDisposable>(NoLock.Instance);
            }
            try
            {
                return Task.FromResult<IAsyncDisposable>(Flock(exclusive: false));
            }
            catch (Exception e) when (e is UnauthorizedAccessException || (e is IOException and not BackupBusyException && Directory.Exists(Root)))
            {
                return Task.FromResult<IAsyncDisposable>(NoLock.Instance);
            }
        }
        return Task.FromResult<IAsyncDisposable>(Flock(exclusive: kind == BackupLockKind.Prune));
    }

    private FileStream Flock(bool exclusive)
    {
        CreatePrivateDirectory(Root);
        var path = Path.Combine(Root, "lock");
        if (!File.Exists(path))
        {
            // Made without taking a lock of its own, so two first lockers do not refuse each other.
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Read, Share = FileShare.ReadWrite };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = PrivateFile;
            }
            using (new FileStream(path, options))
            {
            }
        }
        try
        {
            // FileShare.None takes flock's exclusive lock, reading with others allowed its shared one.
            return exclusive
                ? new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None)
                : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new BackupBusyException(exclusive
                ? $"a backup is being written to {Root}; prune it when the backup is done"
                : $"{Root} is being pruned; back up when the prune is done", e);
        }
    }

    public void Dispose()
    {
    }
}
