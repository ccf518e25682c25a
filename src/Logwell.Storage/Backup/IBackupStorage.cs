namespace Logwell.Storage.Backup;

/// <summary>An object a backup storage holds: its key (relative to the repository, with <c>/</c>), size and time by the storage's own clock.</summary>
public sealed record StoredObject(string Key, long Size, DateTimeOffset Modified);

/// <summary>How a repository is held while it is used.</summary>
public enum BackupLockKind
{
    /// <summary>A backup writing: shared with other backups and readers, refused while a prune runs.</summary>
    Write,

    /// <summary>A restore or verify reading: shared; where this process cannot take a lock (read-only access), it reads without one.</summary>
    Read,

    /// <summary>A prune: alone.</summary>
    Prune,
}

/// <summary>
/// Where a <see cref="BackupRepository"/> keeps its objects and lists: a directory (<see cref="DirectoryBackupStorage"/>)
/// or an S3-compatible bucket (<see cref="S3BackupStorage"/>). Keys are relative paths with <c>/</c>. Every write is
/// whole or absent: a reader never sees part of an object.
/// </summary>
public interface IBackupStorage : IDisposable
{
    /// <summary>The destination as the user names it (a directory, or <c>s3://bucket/prefix</c>).</summary>
    string Location { get; }

    /// <summary>A private local directory for temporary files that are then put under a key (on the same file system as the repository where it is one).</summary>
    string ScratchDirectory();

    /// <summary>The size of the object at <paramref name="key"/>, null when there is none.</summary>
    Task<long?> SizeAsync(string key, CancellationToken cancellationToken);

    /// <summary>Stores the local <paramref name="file"/> under <paramref name="key"/>, whole, replacing what is there; the file is consumed.</summary>
    Task PutAsync(string key, string file, CancellationToken cancellationToken);

    /// <summary>Reads the object at <paramref name="key"/>.</summary>
    /// <exception cref="FileNotFoundException">There is none.</exception>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken);

    /// <summary>Every object whose key starts with <paramref name="prefix"/>.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Deletes the object at <paramref name="key"/> (nothing when there is none).</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>Holds the repository as <paramref name="kind"/> says until disposed (a reader that cannot take a lock here holds none).</summary>
    /// <exception cref="BackupBusyException">A holder of the other kind has it now.</exception>
    Task<IAsyncDisposable> LockAsync(BackupLockKind kind, CancellationToken cancellationToken);
}

/// <summary>The lock of a reader that could take none.</summary>
internal sealed class NoLock : IAsyncDisposable
{
    public static readonly NoLock Instance = new();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
