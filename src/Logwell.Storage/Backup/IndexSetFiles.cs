namespace Logwell.Storage.Backup;

/// <summary>
/// Files of one index set opened at a backup point: each with its path inside the index set's directory, a stream,
/// and the length to read (null: all of it). A log still being appended to is read up to its length at the backup
/// point; a record cut there is dropped when the log is replayed, and was not acknowledged before that point.
/// </summary>
public sealed class IndexSetFiles : IDisposable
{
    private readonly List<(string Path, Stream Content, long? Length)> _files = [];

    public IReadOnlyList<(string Path, Stream Content, long? Length)> Files => _files;

    internal void Add(string path, Stream content, long? length) => _files.Add((path, content, length));

    /// <summary>Opens a file so that a later deletion leaves it readable, and notes its length now.</summary>
    internal void Open(string file, string path)
    {
        var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        _files.Add((path, stream, stream.Length));
    }

    private readonly Dictionary<string, Segments.Segment> _segments = new(StringComparer.Ordinal);

    /// <summary>Holds the open segment behind <paramref name="path"/> (a reference taken) for <see cref="VerifySegment"/>.</summary>
    internal void Hold(string path, Segments.Segment segment)
    {
        if (segment.TryAcquire())
        {
            _segments[path] = segment;
        }
    }

    /// <summary>
    /// Reads every part of the segment at <paramref name="path"/> against its checksum: what is damaged, or null (also
    /// for a path that is no segment). A backup checks the segments it stores for the first time, so that it never
    /// keeps damage unnoticed as its only copy.
    /// </summary>
    public string? VerifySegment(string path, CancellationToken cancellationToken) =>
        _segments.TryGetValue(path, out var segment) ? segment.Verify(cancellationToken) : null;

    public void Dispose()
    {
        foreach (var (_, content, _) in _files)
        {
            content.Dispose();
        }
        _files.Clear();
        foreach (var segment in _segments.Values)
        {
            segment.Release();
        }
        _segments.Clear();
    }
}
