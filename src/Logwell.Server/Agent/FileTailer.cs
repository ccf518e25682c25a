using System.IO.Hashing;
using System.Text;
using Logwell.Core.Ingest;
using Logwell.Hosting;
using Microsoft.Extensions.FileSystemGlobbing;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Server.Agent;

/// <summary>An event read from a file: its text, where in the file it starts and ends, and the file it came from.</summary>
internal readonly record struct FileEvent(TrackedFile File, string Text, long Start, long End);

/// <summary>Where reading a file resumes: after <see cref="Offset"/> bytes, whose last bytes hash to <see cref="Marker"/>.</summary>
internal sealed record FilePosition(FileIdentity Identity, string Path, long Offset, ulong Marker, string? Input);

/// <summary>A file the agent follows, by identity: its name may change (rotation) while it is followed.</summary>
internal sealed class TrackedFile(FileIdentity identity, string path, int input, Encoding encoding, MultilineRule multiline)
{
    public FileIdentity Identity { get; } = identity;
    public string Path { get; set; } = path;
    public int Input { get; } = input;

    /// <summary>Bytes read so far (into lines and events, complete or not).</summary>
    public long Position { get; set; }

    /// <summary>The end of the last complete event given out: where a restart resumes.</summary>
    public long Offset { get; set; }

    /// <summary>The last bytes before <see cref="Position"/> (up to <see cref="FileTailer.TailBytes"/>): a file whose bytes there differ was truncated and rewritten.</summary>
    public byte[] Tail { get; set; } = [];

    /// <summary>The marker (<see cref="FileTailer.MarkerAt"/>) a file resumed from a checkpoint must show at its offset when it is opened.</summary>
    public ulong? ResumeMarker { get; set; }

    /// <summary>Opened after a restart with other bytes before its offset than checkpointed (this marker): truncated while the agent was down.</summary>
    public ulong? TruncatedWhileDown { get; set; }

    public SafeFileHandle? Handle { get; set; }

    /// <summary>Found by the last scan under one of its input's globs; otherwise renamed away or deleted.</summary>
    public bool Matched { get; set; } = true;

    /// <summary>Its size at the last scan or read.</summary>
    public long Size { get; set; }

    public DateTimeOffset LastActive { get; set; }
    public DateTimeOffset LastLine { get; set; }

    /// <summary>At the start of a file again after a truncation: NUL bytes a writer left by writing on at its old offset are skipped.</summary>
    public bool SkipNul { get; set; }

    public bool EncodingChecked { get; set; }
    public LineSplitter Splitter { get; set; } = new(encoding);
    public LineAssembler Assembler { get; set; } = new(multiline);
    public long AssembledStart { get; set; } = -1;
}

/// <summary>
/// Finds the files of the agent's inputs and reads what is appended to them, following each by device and inode
/// through rotation: a file renamed away is read to its end (and closed once quiet), a deleted one still written is
/// read while it grows, a truncated one (copytruncate) has its last lines read from the rotated copy when one holds
/// them and then restarts at 0. At most <see cref="AgentOptions.MaxOpenFiles"/> files are open at once: the quiet
/// ones are closed and opened again when they grow.
/// </summary>
internal sealed class FileTailer
{
    public const int TailBytes = 32;

    /// <summary>A renamed-away or deleted file is closed once it has been quiet this long at its end.</summary>
    public static readonly TimeSpan RotateWait = TimeSpan.FromSeconds(5);

    /// <summary>An event being assembled from several lines is given out when no line has come for this long.</summary>
    public static readonly TimeSpan MultilineWait = TimeSpan.FromSeconds(2);

    private const int ChunkBytes = 256 << 10;

    private readonly AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly AgentMetrics _metrics;
    private readonly Dictionary<FileIdentity, TrackedFile> _files = [];
    private readonly Dictionary<FileIdentity, FilePosition> _resume;
    private readonly HashSet<string> _scannedInputs;
    private readonly byte[] _buffer = new byte[ChunkBytes + TailBytes];
    private readonly List<(string Line, int Bytes)> _lines = [];
    private readonly List<(string Event, long Bytes)> _events = [];
    private int _open;

    /// <param name="resume">Where each file known from the checkpoint and the buffer resumes.</param>
    /// <param name="scannedInputs">Inputs scanned before (their keys, <see cref="InputKey"/>): files they find are new files, read from their beginning; an input scanned the first time starts where it says.</param>
    public FileTailer(AgentOptions options, TimeProvider time, AgentMetrics metrics, IEnumerable<FilePosition> resume, IEnumerable<string> scannedInputs)
    {
        _options = options;
        _time = time;
        _metrics = metrics;
        _resume = resume.ToDictionary(p => p.Identity);
        _scannedInputs = [.. scannedInputs];
    }

    public IReadOnlyCollection<string> ScannedInputs => _scannedInputs;

    public IEnumerable<TrackedFile> Files => _files.Values;

    public int OpenFiles => _open;

    /// <summary>What identifies an input across restarts: its globs and index set.</summary>
    public static string InputKey(AgentInput input) => $"{input.IndexSet}\n{string.Join('\n', input.Paths)}";

    /// <summary>Finds the files of every input; new ones are followed from where they should start.</summary>
    public void Scan()
    {
        var now = _time.GetUtcNow();
        var found = new Dictionary<FileIdentity, (string Path, int Input, long Size)>();
        for (var i = 0; i < _options.Inputs.Count; i++)
        {
            var input = _options.Inputs[i];
            foreach (var path in Expand(input))
            {
                if (FileStatuses.Of(path) is { } status && !found.ContainsKey(status.Identity))
                {
                    found[status.Identity] = (path, i, status.Size);
                }
            }
        }
        foreach (var (identity, (path, i, size)) in found)
        {
            if (_files.TryGetValue(identity, out var file))
            {
                file.Path = path;
                file.Matched = true;
                file.Size = size;
                continue;
            }
            var input = _options.Inputs[i];
            file = new TrackedFile(identity, path, i, FileEncodings.ForName(input.Encoding), input.Multiline) { Size = size, LastActive = now, LastLine = now };
            if (_resume.Remove(identity, out var resume))
            {
                file.Position = file.Offset = resume.Offset;
                file.ResumeMarker = resume.Marker;
                file.EncodingChecked = resume.Offset > 0;
            }
            else if (!_scannedInputs.Contains(InputKey(input)) && input.StartAt == StartAt.End)
            {
                // Found by an input's first scan, which starts at the end: only what comes from now on.
                file.Position = file.Offset = size;
                file.EncodingChecked = size > 0;
            }
            _files[identity] = file;
            _metrics.FilesFound.Add(1);
        }
        foreach (var input in _options.Inputs)
        {
            _scannedInputs.Add(InputKey(input));
        }
        foreach (var file in _files.Values)
        {
            if (!found.ContainsKey(file.Identity))
            {
                file.Matched = false;
            }
        }
        // Files the checkpoint knows that no glob finds now: moved (renamed by a rotation while the agent was down) or
        // gone. One still in its old directory under another name is read to its end.
        foreach (var position in _resume.Values.ToList())
        {
            _resume.Remove(position.Identity);
            if (Moved(position.Identity, position.Path) is { } moved)
            {
                var i = Math.Max(0, _options.Inputs.ToList().FindIndex(x => InputKey(x) == position.Input));
                var input = _options.Inputs[i];
                var file = new TrackedFile(position.Identity, moved.Path, i, FileEncodings.ForName(input.Encoding), input.Multiline)
                {
                    Position = position.Offset,
                    Offset = position.Offset,
                    ResumeMarker = position.Marker,
                    EncodingChecked = position.Offset > 0,
                    Matched = false,
                    Size = moved.Size,
                    LastActive = now,
                    LastLine = now,
                };
                _files[position.Identity] = file;
            }
        }
    }

    /// <summary>
    /// Reads what the files have grown by, a chunk per file, and gives out the complete events; true when anything
    /// was read. Files that are done (renamed away or deleted, quiet at their end) are closed and forgotten:
    /// <paramref name="retired"/> gets each with the offset it ended at.
    /// </summary>
    public bool Read(Action<FileEvent> emit, List<(TrackedFile File, long Offset)> retired)
    {
        var now = _time.GetUtcNow();
        var progress = false;
        foreach (var file in _files.Values.ToList())
        {
            if (file.Handle is null)
            {
                // Closed: opened again when a scan saw it grow or shrink (a renamed-away one when it was found renamed at a start).
                if (file.Size == file.Position || !TryOpen(file))
                {
                    if (!file.Matched && now - file.LastActive >= RotateWait)
                    {
                        Retire(file, emit, retired);
                    }
                    continue;
                }
            }
            var status = FileStatuses.Of(file.Handle!);
            file.Size = status.Size;
            if (file.TruncatedWhileDown is { } marker)
            {
                file.TruncatedWhileDown = null;
                Truncated(file, emit, marker);
            }
            else if (status.Size < file.Position || !TailMatches(file))
            {
                Truncated(file, emit, XxHash64.HashToUInt64(file.Tail));
            }
            var read = ReadChunk(file, emit);
            if (read > 0)
            {
                progress = true;
                file.LastActive = now;
                continue;
            }
            if (file.Assembler.PendingBytes > 0 && now - file.LastLine >= MultilineWait)
            {
                FlushAssembler(file, emit);
            }
            if (!file.Matched && now - file.LastActive >= RotateWait)
            {
                Retire(file, emit, retired);
            }
            else if (now - file.LastActive >= _options.CloseInactive)
            {
                Close(file);
            }
        }
        return progress;
    }

    /// <summary>The 8-byte marker of a file's last bytes before <paramref name="offset"/> (0 for offset 0), read from its handle.</summary>
    public static ulong MarkerAt(SafeFileHandle handle, long offset)
    {
        if (offset == 0)
        {
            return 0;
        }
        Span<byte> tail = stackalloc byte[TailBytes];
        var start = Math.Max(0, offset - TailBytes);
        var length = RandomAccess.Read(handle, tail[..(int)(offset - start)], start);
        return XxHash64.HashToUInt64(tail[..length]);
    }

    /// <summary>The marker where <paramref name="file"/> resumes at <paramref name="offset"/>, when it is open; else 0 (not checked).</summary>
    public static ulong MarkerOf(TrackedFile file, long offset)
    {
        try
        {
            return file.Handle is { IsClosed: false } handle ? MarkerAt(handle, offset) : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public void CloseAll()
    {
        foreach (var file in _files.Values)
        {
            Close(file);
        }
    }

    private bool TryOpen(TrackedFile file)
    {
        if (_open >= _options.MaxOpenFiles)
        {
            // The quiet file closed longest ago gives its place.
            var quiet = _files.Values.Where(f => f.Handle is not null && f.Position == f.Size).MinBy(f => f.LastActive);
            if (quiet is null)
            {
                return false;
            }
            Close(quiet);
        }
        // By its name; a file renamed again since (a rotation shifting app.log.1 to app.log.2) is looked for beside it.
        var handle = OpenIfSame(file);
        if (handle is null && Moved(file.Identity, file.Path) is { } moved)
        {
            file.Path = moved.Path;
            handle = OpenIfSame(file);
        }
        if (handle is null)
        {
            file.Matched = false;
            return false;
        }
        file.Handle = handle;
        _open++;
        var length = RandomAccess.GetLength(handle);
        if (file.ResumeMarker is { } expected)
        {
            // A file resumed from a checkpoint: the bytes before its offset must be the ones checkpointed.
            file.ResumeMarker = null;
            if (length < file.Position || MarkerAt(handle, file.Position) != expected)
            {
                // Other content under the same inode (truncated and written again, replaced): its rotated copy may
                // hold the rest of what was read; then from its beginning.
                file.TruncatedWhileDown = expected;
                return true;
            }
        }
        if (file.Tail.Length == 0 && file.Position > 0 && length >= file.Position)
        {
            var start = Math.Max(0, file.Position - TailBytes);
            var tail = new byte[file.Position - start];
            file.Tail = RandomAccess.Read(handle, tail, start) == tail.Length ? tail : [];
        }
        return true;
    }

    /// <summary>The file at <paramref name="file"/>'s name, when it is still that file.</summary>
    private SafeFileHandle? OpenIfSame(TrackedFile file)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _metrics.LastError = $"{file.Path}: {e.Message}";
            return null;
        }
        if (FileStatuses.Of(handle).Identity != file.Identity)
        {
            handle.Dispose();
            return null;
        }
        return handle;
    }

    private void Close(TrackedFile file)
    {
        if (file.Handle is not null)
        {
            file.Handle.Dispose();
            file.Handle = null;
            _open--;
        }
    }

    /// <summary>A file that is done: its last line and event are given out (nothing more will come), and it is forgotten.</summary>
    private void Retire(TrackedFile file, Action<FileEvent> emit, List<(TrackedFile, long)> retired)
    {
        if (file.Splitter.Flush() is { } last)
        {
            AddLine(file, last.Line, last.Bytes, emit);
        }
        FlushAssembler(file, emit);
        Close(file);
        _files.Remove(file.Identity);
        retired.Add((file, file.Offset));
    }

    private bool TailMatches(TrackedFile file)
    {
        if (file.Tail.Length == 0 || file.Position == 0)
        {
            return true;
        }
        Span<byte> now = stackalloc byte[file.Tail.Length];
        var read = RandomAccess.Read(file.Handle!, now, file.Position - file.Tail.Length);
        return read == now.Length && now.SequenceEqual(file.Tail);
    }

    /// <summary>
    /// Truncated (copytruncate) or rewritten: the lines between where reading stood and the truncation are in the
    /// rotated copy when logrotate made one; they are read from it, and the file from its beginning.
    /// </summary>
    /// <param name="marker">The marker (<see cref="MarkerAt"/>) of the bytes before the read position, as they were read.</param>
    private void Truncated(TrackedFile file, Action<FileEvent> emit, ulong marker)
    {
        _metrics.Truncations.Add(1);
        if (file.Position > 0 && RotatedCopy(file, marker) is { } copy)
        {
            using (copy)
            {
                long position = file.Position;
                while (true)
                {
                    var read = RandomAccess.Read(copy, _buffer.AsSpan(0, ChunkBytes), position);
                    if (read <= 0)
                    {
                        break;
                    }
                    Consume(file, _buffer.AsSpan(0, read), position, emit);
                    position += read;
                }
                _metrics.RecoveredFromCopies.Add(1);
            }
        }
        if (file.Splitter.Flush() is { } last)
        {
            AddLine(file, last.Line, last.Bytes, emit);
        }
        FlushAssembler(file, emit);
        file.Position = file.Offset = 0;
        file.Tail = [];
        file.SkipNul = true;
        file.EncodingChecked = false;
    }

    /// <summary>The newest file beside <paramref name="file"/> named after it (<c>app.log.1</c>, <c>app.log-20261207</c>) whose bytes before the read position are the ones read.</summary>
    private static SafeFileHandle? RotatedCopy(TrackedFile file, ulong marker)
    {
        var directory = Path.GetDirectoryName(file.Path)!;
        var name = Path.GetFileName(file.Path);
        IEnumerable<FileInfo> candidates;
        try
        {
            candidates = new DirectoryInfo(directory).EnumerateFiles(name + "*")
                .Where(f => f.Name != name && !f.Name.EndsWith(".gz", StringComparison.Ordinal) && !f.Name.EndsWith(".xz", StringComparison.Ordinal)
                    && !f.Name.EndsWith(".zst", StringComparison.Ordinal) && !f.Name.EndsWith(".bz2", StringComparison.Ordinal))
                .OrderByDescending(f => f.LastWriteTimeUtc).Take(5).ToList();
        }
        catch (IOException)
        {
            return null;
        }
        foreach (var candidate in candidates)
        {
            try
            {
                var handle = File.OpenHandle(candidate.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                var length = RandomAccess.GetLength(handle);
                if (length >= file.Position && MarkerAt(handle, file.Position) == marker)
                {
                    return handle;
                }
                handle.Dispose();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return null;
    }

    /// <summary>A checkpointed file no glob finds: the file with its identity in its old directory, if any.</summary>
    private static (string Path, long Size)? Moved(FileIdentity identity, string lastPath)
    {
        try
        {
            foreach (var path in Directory.EnumerateFiles(Path.GetDirectoryName(lastPath)!))
            {
                if (FileStatuses.Of(path) is { } status && status.Identity == identity)
                {
                    return (path, status.Size);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    private int ReadChunk(TrackedFile file, Action<FileEvent> emit)
    {
        var read = RandomAccess.Read(file.Handle!, _buffer.AsSpan(0, ChunkBytes), file.Position);
        if (read <= 0)
        {
            return 0;
        }
        var bytes = _buffer.AsSpan(0, read);
        var position = file.Position;
        if (!file.EncodingChecked && position == 0)
        {
            file.EncodingChecked = true;
            var (declared, length) = FileEncodings.FromByteOrderMark(bytes);
            if (declared is not null)
            {
                file.Splitter = new LineSplitter(declared);
                file.Offset = length;
                bytes = bytes[length..];
                position += length;
            }
        }
        Consume(file, bytes, position, emit);
        file.Position += read;
        var keep = (int)Math.Min(TailBytes, file.Position);
        file.Tail = keep <= read ? _buffer.AsSpan(read - keep, keep).ToArray()
            : [.. file.Tail.AsSpan(file.Tail.Length - Math.Min(file.Tail.Length, keep - read)), .. _buffer.AsSpan(0, read)];
        _metrics.BytesRead.Add(read);
        return read;
    }

    /// <summary>Bytes of <paramref name="file"/> read at <paramref name="position"/>: lines, then events.</summary>
    private void Consume(TrackedFile file, ReadOnlySpan<byte> bytes, long position, Action<FileEvent> emit)
    {
        if (file.SkipNul && file.Splitter.Pending == 0 && file.Splitter.Encoding is not UnicodeEncoding)
        {
            var skip = bytes.IndexOfAnyExcept((byte)0);
            skip = skip < 0 ? bytes.Length : skip;
            if (skip > 0 && file.Offset == position)
            {
                file.Offset += skip;
            }
            bytes = bytes[skip..];
            if (bytes.Length > 0)
            {
                file.SkipNul = false;
            }
        }
        _lines.Clear();
        file.Splitter.Add(bytes, _lines);
        foreach (var (line, length) in _lines)
        {
            AddLine(file, line, length, emit);
        }
        if (_lines.Count > 0)
        {
            file.LastLine = _time.GetUtcNow();
        }
    }

    private void AddLine(TrackedFile file, string line, int bytes, Action<FileEvent> emit)
    {
        _metrics.LinesRead.Add(1);
        _events.Clear();
        file.Assembler.Add(line, bytes, _events);
        Emit(file, emit);
    }

    private void FlushAssembler(TrackedFile file, Action<FileEvent> emit)
    {
        _events.Clear();
        if (file.Assembler.Flush() is { } done)
        {
            _events.Add(done);
        }
        Emit(file, emit);
    }

    private void Emit(TrackedFile file, Action<FileEvent> emit)
    {
        var filter = _options.Inputs[file.Input].Filter;
        foreach (var (text, length) in _events)
        {
            var start = file.Offset;
            file.Offset += length;
            if (filter.Keeps(text))
            {
                emit(new FileEvent(file, text, start, file.Offset));
            }
            else
            {
                _metrics.EventsFiltered.Add(1);
            }
        }
    }

    /// <summary>The files an input's globs find now, less its excludes.</summary>
    private static IEnumerable<string> Expand(AgentInput input)
    {
        foreach (var glob in input.Paths)
        {
            // The directory before the first wildcard is the root the rest is matched under.
            var wildcard = glob.IndexOfAny(['*', '?', '[']);
            if (wildcard < 0)
            {
                if (File.Exists(glob) && !Excluded(input, glob))
                {
                    yield return glob;
                }
                continue;
            }
            var root = glob[..(glob.LastIndexOf('/', wildcard) + 1)];
            if (!Directory.Exists(root))
            {
                continue;
            }
            var matcher = new Matcher(StringComparison.Ordinal);
            matcher.AddInclude(glob[root.Length..]);
            foreach (var path in matcher.GetResultsInFullPath(root))
            {
                if (!Excluded(input, path))
                {
                    yield return path;
                }
            }
        }
    }

    /// <summary>An exclude with a '/' is matched against the whole path, one without against the file's name.</summary>
    private static bool Excluded(AgentInput input, string path)
    {
        foreach (var exclude in input.Exclude)
        {
            var matcher = new Matcher(StringComparison.Ordinal);
            if (exclude.Contains('/', StringComparison.Ordinal))
            {
                matcher.AddInclude(exclude.TrimStart('/'));
                if (matcher.Match("/", path).HasMatches)
                {
                    return true;
                }
            }
            else
            {
                matcher.AddInclude(exclude);
                if (matcher.Match(Path.GetFileName(path)).HasMatches)
                {
                    return true;
                }
            }
        }
        return false;
    }
}
