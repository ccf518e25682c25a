using System.IO.Hashing;
using System.Text;
using Logwell.Core.Ingest;
using Logwell.Hosting;
using Microsoft.Extensions.FileSystemGlobbing;
using Microsoft.Win32.SafeHandles;

namespace Logwell.Server.Agent;

/// <summary>An event read from a file: its text, where in the file it starts and ends, and the file it came from.</summary>
/// <remarks><see cref="Marker"/>: the marker of the bytes before <see cref="End"/> (<see cref="FileTailer.MarkerAt"/>), taken from the
/// bytes as they were read; null when they were not at hand.</remarks>
internal readonly record struct FileEvent(TrackedFile File, string Text, long Start, long End, ulong? Marker = null);

/// <summary>
/// Where reading a file resumes: after <see cref="Offset"/> bytes, whose last bytes hash to <see cref="Marker"/>.
/// Rotated copies beside it born after <see cref="CopiesBefore"/> hold lines of it not read yet.
/// </summary>
internal sealed record FilePosition(FileIdentity Identity, string Path, long Offset, ulong Marker, string? Input, long CopiesBefore = 0);

/// <summary>A file the agent follows, by identity: its name may change (rotation) while it is followed.</summary>
internal sealed class TrackedFile(FileIdentity identity, string path, int input, Encoding encoding, MultilineRule multiline)
{
    public FileIdentity Identity { get; } = identity;
    public string Path { get; set; } = path;
    /// <summary>Its input's place in the agent's inputs (which central management may change).</summary>
    public int Input { get; set; } = input;

    /// <summary>Bytes read so far (into lines and events, complete or not).</summary>
    public long Position { get; set; }

    /// <summary>The end of the last complete event given out: where a restart resumes.</summary>
    public long Offset { get; set; }

    /// <summary>The last bytes before <see cref="Position"/> (up to <see cref="FileTailer.TailBytes"/>): a file whose bytes there differ was truncated and rewritten.</summary>
    public byte[] Tail { get; set; } = [];

    /// <summary>The marker (<see cref="FileTailer.MarkerAt"/>) a file resumed from a checkpoint must show at its offset when it is opened.</summary>
    public ulong? ResumeMarker { get; set; }

    /// <summary>
    /// The birth (<see cref="FileStatus.Born"/>) of the newest rotated copy beside it when its current content began: a
    /// copy born later (copytruncate) holds lines of this file, read from it when the truncation is noticed.
    /// </summary>
    public long CopiesBefore { get; set; }

    /// <summary>Its birth (<see cref="FileStatus.Born"/>) when known.</summary>
    public long Born { get; set; }

    /// <summary>Whether the copies were looked at since the content began; a file about to be read from 0 looks first.</summary>
    public bool CopiesChecked { get; set; }

    /// <summary>Opened after a restart with other bytes before its offset than checkpointed (this marker): truncated while the agent was down.</summary>
    public ulong? TruncatedWhileDown { get; set; }

    public SafeFileHandle? Handle { get; set; }

    /// <summary>Found by the last scan under one of its input's globs; otherwise renamed away or deleted.</summary>
    public bool Matched { get; set; } = true;

    /// <summary>Its size at the last scan or read.</summary>
    public long Size { get; set; }

    public DateTimeOffset LastActive { get; set; }
    public DateTimeOffset LastLine { get; set; }

    /// <summary>
    /// At the start of a file, or again after a truncation: NUL bytes a writer left by writing on at its old offset (a
    /// hole, in the file and in its copies) are skipped.
    /// </summary>
    public bool SkipNul { get; set; } = true;

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
    // 256 bytes, several lines of most logs: lines that all end alike (the same words after a number) make the same
    // last 32 bytes at every line's end, so a file rewritten after a truncation could pass for the one read.
    public const int TailBytes = 256;

    /// <summary>A renamed-away or deleted file is closed once it has been quiet this long at its end.</summary>
    public static readonly TimeSpan RotateWait = TimeSpan.FromSeconds(5);

    /// <summary>An event being assembled from several lines is given out when no line has come for this long.</summary>
    public static readonly TimeSpan MultilineWait = TimeSpan.FromSeconds(2);

    private const int ChunkBytes = 256 << 10;

    private AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly AgentMetrics _metrics;
    private readonly Dictionary<FileIdentity, TrackedFile> _files = [];
    private readonly Dictionary<FileIdentity, FilePosition> _resume;
    private readonly HashSet<string> _scannedInputs;
    private readonly byte[] _buffer = new byte[ChunkBytes + TailBytes];
    private readonly List<(string Line, int Bytes)> _lines = [];
    private readonly List<(string Event, long Bytes)> _events = [];

    // The bytes being consumed: _buffer[0.._windowLength] at offset _windowStart of the file, after _windowPrefix (the
    // bytes just before it), so that an event's marker is taken from what was read rather than read again later.
    private long _windowStart = -1;
    private int _windowLength;
    private byte[] _windowPrefix = [];
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

    /// <summary>
    /// Other inputs (central management changed them): files of an input that stays, by its globs and index set, go on
    /// where they are (an event being assembled under a changed multiline rule is given out first); files of an input
    /// that went are given their last events and forgotten (<paramref name="retired"/>). An input that is new starts
    /// where it says at its first scan.
    /// </summary>
    public void Reconfigure(AgentOptions next, Action<FileEvent> emit, List<(TrackedFile File, long Offset)> retired)
    {
        var places = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = next.Inputs.Count - 1; i >= 0; i--)
        {
            places[InputKey(next.Inputs[i])] = i;
        }
        foreach (var file in _files.Values.ToList())
        {
            var before = _options.Inputs[file.Input];
            if (!places.TryGetValue(InputKey(before), out var place) && next.Inputs.ToList().FindIndex(x => Finds(x, file.Path)) is var taker and >= 0)
            {
                // Its input changed its globs or index set: the input that finds it now goes on where it stands.
                place = taker;
            }
            else if (!places.ContainsKey(InputKey(before)))
            {
                Retire(file, emit, retired);
                continue;
            }
            var after = next.Inputs[place];
            if (before.Multiline.Start?.ToString() != after.Multiline.Start?.ToString() || before.Multiline with { Start = null } != after.Multiline with { Start = null })
            {
                FlushAssembler(file, emit);
                file.Assembler = new LineAssembler(after.Multiline);
            }
            file.Input = place;
        }
        _options = next;
    }

    /// <summary>Finds the files of every input; new ones are followed from where they should start.</summary>
    public void Scan()
    {
        var now = _time.GetUtcNow();
        var found = new Dictionary<FileIdentity, (string Path, int Input, long Size, long Born)>();
        var discovered = new List<FilePosition>();
        for (var i = 0; i < _options.Inputs.Count; i++)
        {
            var input = _options.Inputs[i];
            foreach (var path in Expand(input))
            {
                if (FileStatuses.Of(path) is { } status && !found.ContainsKey(status.Identity))
                {
                    found[status.Identity] = (path, i, status.Size, status.Born);
                }
            }
        }
        foreach (var (identity, (path, i, size, born)) in found)
        {
            if (_files.TryGetValue(identity, out var file))
            {
                file.Path = path;
                file.Matched = true;
                file.Size = size;
                continue;
            }
            var input = _options.Inputs[i];
            file = new TrackedFile(identity, path, i, FileEncodings.ForName(input.Encoding), input.Multiline) { Size = size, Born = born, LastActive = now, LastLine = now };
            if (_resume.Remove(identity, out var resume))
            {
                file.Position = file.Offset = resume.Offset;
                file.ResumeMarker = resume.Marker;
                file.EncodingChecked = resume.Offset > 0;
                file.CopiesBefore = resume.CopiesBefore;
            }
            else if (Predecessor(identity, path) is { } before)
            {
                // A new file where the agent followed another (a rotation by rename): files rotated away since that one
                // was born, which the agent never saw (it was down across several rotations), are read first.
                file.CopiesBefore = before;
                file.CopiesChecked = false;
            }
            else
            {
                // The copies beside a file seen the first time are its past, not lines of it to read.
                file.CopiesBefore = NewestCopy(file, Copies(file));
                file.CopiesChecked = true;
                if (!_scannedInputs.Contains(InputKey(input)) && input.StartAt == StartAt.End)
                {
                    // Found by an input's first scan, which starts at the end: only what comes from now on.
                    file.Position = file.Offset = size;
                    file.EncodingChecked = size > 0;
                }
            }
            _files[identity] = file;
            _metrics.FilesFound.Add(1);
            if (file.ResumeMarker is null)
            {
                discovered.Add(new FilePosition(identity, path, file.Offset, file.Offset == 0 ? 0 : MarkerOf(path, file.Offset), InputKey(input), file.CopiesBefore));
            }
        }
        if (discovered.Count > 0)
        {
            Found?.Invoke(discovered);
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
            // A file of an input the agent does not run yet (a collection config the server has not sent again since
            // the start) waits for it.
            var i = _options.Inputs.ToList().FindIndex(x => InputKey(x) == position.Input);
            if (i < 0)
            {
                continue;
            }
            _resume.Remove(position.Identity);
            if (Moved(position.Identity, position.Path) is { } moved)
            {
                var input = _options.Inputs[i];
                var file = new TrackedFile(position.Identity, moved.Path, i, FileEncodings.ForName(input.Encoding), input.Multiline)
                {
                    Position = position.Offset,
                    Offset = position.Offset,
                    ResumeMarker = position.Marker,
                    CopiesBefore = position.CopiesBefore,
                    CopiesChecked = true,
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
            else if (file.Matched && file.Position == 0 && status.Size > 0 && !file.CopiesChecked)
            {
                // About to read a file from its beginning that the agent knew before (after a truncation, or at a
                // restart), or the successor of one: copies made meanwhile are contents never read.
                file.CopiesChecked = true;
                AdoptCopies(file, Copies(file), null);
            }
            else if (file.Matched && file.Position > 0 && file.Tail.AsSpan().IndexOfAnyExcept((byte)0) < 0 && status.Size > file.Position
                && Copies(file) is var copies && copies.Any(c => c.Status.Born > file.CopiesBefore && !_files.ContainsKey(c.Status.Identity)))
            {
                // Reading through a hole (a writer that writes on at its old offset after each truncation leaves NUL
                // bytes before its lines): the bytes before the read position are zeros before and after a truncation
                // alike, so a copy born since is what tells of one.
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

    /// <summary>
    /// Told of files found (by a scan, or rotated copies taken up to be read whole) before anything counts them as known:
    /// checkpointed at once, a restart finds them under whatever name they have by then.
    /// </summary>
    public Action<IReadOnlyList<FilePosition>>? Found { get; set; }

    private static ulong MarkerOf(string path, long offset)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return MarkerAt(handle, offset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
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
            if (length < file.Position || MarkerAt(handle, file.Position) != expected)
            {
                // Other content under the same inode (truncated and written again, replaced): its rotated copy may
                // hold the rest of what was read; then from its beginning.
                file.TruncatedWhileDown = expected;
                file.ResumeMarker = null;
                return true;
            }
        }
        file.ResumeMarker = null;
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
        // Copies are looked for beside a file followed under its name; one renamed away (or a copy itself) has none.
        var copies = file.Matched ? Copies(file) : [];
        var matched = file.Position > 0 ? ContinuedIn(file, copies, marker) : null;
        if (matched is { } copy)
        {
            // The copy of what was being read: its rest continues the lines read so far.
            using var handle = OpenCopy(copy.Path);
            var position = handle is null ? long.MaxValue : file.Position;
            var prefix = file.Tail;
            while (handle is not null && RandomAccess.Read(handle, _buffer.AsSpan(0, ChunkBytes), position) is var read and > 0)
            {
                (_windowStart, _windowLength, _windowPrefix) = (position, read, prefix);
                Consume(file, _buffer.AsSpan(0, read), position, emit);
                prefix = _buffer.AsSpan(Math.Max(0, read - TailBytes), Math.Min(read, TailBytes)).ToArray();
                position += read;
            }
            _windowStart = -1;
            _metrics.RecoveredFromCopies.Add(1);
        }
        if (file.Splitter.Flush() is { } last)
        {
            AddLine(file, last.Line, last.Bytes, emit);
        }
        FlushAssembler(file, emit);
        AdoptCopies(file, copies, matched?.Status.Identity);
        file.Position = file.Offset = 0;
        file.Tail = [];
        file.SkipNul = true;
        file.EncodingChecked = false;
        file.CopiesChecked = true;
    }

    /// <summary>
    /// When the agent followed another file at <paramref name="path"/> before this one: the birth after which files
    /// beside it are rotations the agent has not read (that file's own birth, or what its checkpoint says).
    /// </summary>
    private long? Predecessor(FileIdentity identity, string path)
    {
        var tracked = _files.Values.Where(f => f.Identity != identity && f.Path == path).Select(f => (long?)Math.Max(f.Born, f.CopiesBefore));
        var resumed = _resume.Values.Where(p => p.Identity != identity && p.Path == path).Select(p => (long?)p.CopiesBefore);
        return tracked.Concat(resumed).Max();
    }

    /// <summary>A copy opened for reading; null when it went meanwhile (compressed, removed).</summary>
    private SafeFileHandle? OpenCopy(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _metrics.LastError = $"{path}: {e.Message}";
            return null;
        }
    }

    /// <summary>The rotated copies beside a file (<c>app.log.1</c>, <c>app.log-20261207</c>; compressed ones are not read), with their status.</summary>
    private static List<(string Path, FileStatus Status)> Copies(TrackedFile file)
    {
        var directory = Path.GetDirectoryName(file.Path)!;
        var name = Path.GetFileName(file.Path);
        var copies = new List<(string, FileStatus)>();
        try
        {
            foreach (var path in Directory.EnumerateFiles(directory, name + "*"))
            {
                var copyName = Path.GetFileName(path);
                if (copyName != name && !copyName.EndsWith(".gz", StringComparison.Ordinal) && !copyName.EndsWith(".xz", StringComparison.Ordinal)
                    && !copyName.EndsWith(".zst", StringComparison.Ordinal) && !copyName.EndsWith(".bz2", StringComparison.Ordinal)
                    && FileStatuses.Of(path) is { } status && status.Identity != file.Identity)
                {
                    copies.Add((path, status));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return copies;
    }

    /// <summary>The newest birth among the copies and the file itself: copies born later were made from it.</summary>
    private static long NewestCopy(TrackedFile file, List<(string Path, FileStatus Status)> copies) =>
        Math.Max(copies.Count == 0 ? 0 : copies.Max(c => c.Status.Born), FileStatuses.Of(file.Path) is { } own && own.Identity == file.Identity ? own.Born : 0);

    /// <summary>The copy made since the content began whose bytes before the read position are the ones read.</summary>
    private static (string Path, FileStatus Status)? ContinuedIn(TrackedFile file, List<(string Path, FileStatus Status)> copies, ulong marker)
    {
        foreach (var copy in copies.Where(c => c.Status.Born > file.CopiesBefore && c.Status.Size >= file.Position).OrderBy(c => c.Status.Born))
        {
            try
            {
                using var handle = File.OpenHandle(copy.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (MarkerAt(handle, file.Position) == marker)
                {
                    return copy;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return null;
    }

    /// <summary>
    /// Copies made since the file's content began, other than <paramref name="read"/>: contents of it the agent never
    /// read (it was down, or far behind, across several rotations). Each is followed as a rotated-away file, from its
    /// beginning to its end. The file's content begins anew after all of them.
    /// </summary>
    private void AdoptCopies(TrackedFile file, List<(string Path, FileStatus Status)> copies, FileIdentity? read)
    {
        var now = _time.GetUtcNow();
        var input = _options.Inputs[file.Input];
        var adopted = new List<FilePosition>();
        foreach (var (path, status) in copies.Where(c => c.Status.Born > file.CopiesBefore && c.Status.Identity != read && !_files.ContainsKey(c.Status.Identity)).OrderBy(c => c.Status.Born))
        {
            var copy = new TrackedFile(status.Identity, path, file.Input, FileEncodings.ForName(input.Encoding), input.Multiline)
            {
                Matched = false,
                Size = status.Size,
                LastActive = now,
                LastLine = now,
                CopiesChecked = true,
            };
            _files[status.Identity] = copy;
            adopted.Add(new FilePosition(copy.Identity, copy.Path, 0, 0, InputKey(input)));
            _metrics.RecoveredFromCopies.Add(1);
        }
        if (adopted.Count > 0)
        {
            // Checkpointed before the file counts them as read: a restart must not forget them.
            Found?.Invoke(adopted);
        }
        file.CopiesBefore = Math.Max(file.CopiesBefore, NewestCopy(file, copies));
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
        (_windowStart, _windowLength, _windowPrefix) = (file.Position, read, file.Tail);
        Consume(file, bytes, position, emit);
        _windowStart = -1;
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
                emit(new FileEvent(file, text, start, file.Offset, WindowMarker(file.Offset)));
            }
            else
            {
                _metrics.EventsFiltered.Add(1);
            }
        }
    }

    /// <summary>The marker before <paramref name="end"/> from the bytes being consumed; null when they do not hold it.</summary>
    private ulong? WindowMarker(long end)
    {
        if (_windowStart < 0 || end > _windowStart + _windowLength)
        {
            return null;
        }
        var length = (int)Math.Min(TailBytes, end);
        if (end - length < _windowStart - _windowPrefix.Length)
        {
            return null;
        }
        if (length == 0)
        {
            return 0;
        }
        var from = end - length;
        if (from >= _windowStart)
        {
            return XxHash64.HashToUInt64(_buffer.AsSpan((int)(from - _windowStart), length));
        }
        // Partly in the bytes kept from before the window.
        Span<byte> bytes = stackalloc byte[TailBytes];
        var before = (int)(_windowStart - from);
        _windowPrefix.AsSpan(_windowPrefix.Length - before).CopyTo(bytes);
        _buffer.AsSpan(0, length - before).CopyTo(bytes[before..]);
        return XxHash64.HashToUInt64(bytes[..length]);
    }

    /// <summary>The files an input's globs find now, less its excludes.</summary>
    private static IEnumerable<string> Expand(AgentInput input)
    {
        foreach (var glob in input.Paths)
        {
            if (Glob(glob) is not ({ } root, { } matcher))
            {
                if (File.Exists(glob) && !Excluded(input, glob))
                {
                    yield return glob;
                }
                continue;
            }
            if (!Directory.Exists(root))
            {
                continue;
            }
            List<string> paths;
            try
            {
                paths = [.. matcher.GetResultsInFullPath(root)];
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A directory the agent may not read: the files it can reach are followed.
                continue;
            }
            foreach (var path in paths)
            {
                if (!Excluded(input, path))
                {
                    yield return path;
                }
            }
        }
    }

    /// <summary>A glob with wildcards as the directory before its first wildcard and a matcher for the rest under it; null for a plain path.</summary>
    private static (string Root, Matcher Matcher)? Glob(string glob)
    {
        var wildcard = glob.IndexOfAny(['*', '?', '[']);
        if (wildcard < 0)
        {
            return null;
        }
        var root = glob[..(glob.LastIndexOf('/', wildcard) + 1)];
        var matcher = new Matcher(StringComparison.Ordinal);
        matcher.AddInclude(glob[root.Length..]);
        return (root, matcher);
    }

    /// <summary>Whether one of <paramref name="input"/>'s globs finds <paramref name="path"/> (and no exclude leaves it out).</summary>
    private static bool Finds(AgentInput input, string path)
    {
        foreach (var glob in input.Paths)
        {
            if (Glob(glob) is not ({ } root, { } matcher))
            {
                if (glob == path)
                {
                    return !Excluded(input, path);
                }
                continue;
            }
            if (path.StartsWith(root, StringComparison.Ordinal) && matcher.Match(root, path).HasMatches)
            {
                return !Excluded(input, path);
            }
        }
        return false;
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
