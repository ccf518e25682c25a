using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.Core.Ingest;

/// <summary>
/// The text encodings a log file may be written in: <c>utf-8</c> (the default), <c>gbk</c>, <c>gb18030</c>,
/// <c>utf-16le</c>, <c>utf-16be</c>, or <c>utf-16</c> (little-endian unless the file starts with a big-endian byte
/// order mark).
/// </summary>
public static class FileEncodings
{
    /// <summary>The encoding named (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No encoding by that name.</exception>
    public static Encoding ForName(string name)
    {
        // GBK and GB18030 come from the code pages the runtime carries but does not register by default.
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        return name.ToLowerInvariant() switch
        {
            "utf-8" or "utf8" => new UTF8Encoding(false, false),
            "gbk" => Encoding.GetEncoding(936),
            "gb18030" => Encoding.GetEncoding(54936),
            "utf-16" or "utf-16le" or "utf16" or "utf16le" => new UnicodeEncoding(bigEndian: false, byteOrderMark: false),
            "utf-16be" or "utf16be" => new UnicodeEncoding(bigEndian: true, byteOrderMark: false),
            _ => throw new ArgumentException($"'{name}' is no encoding Logwell reads: utf-8, gbk, gb18030, utf-16, utf-16le or utf-16be"),
        };
    }

    /// <summary>The encoding a file's first bytes declare by a byte order mark, and the mark's length; none without one.</summary>
    public static (Encoding? Encoding, int Length) FromByteOrderMark(ReadOnlySpan<byte> start) => start switch
    {
        [0xEF, 0xBB, 0xBF, ..] => (new UTF8Encoding(false, false), 3),
        [0xFF, 0xFE, ..] => (new UnicodeEncoding(bigEndian: false, byteOrderMark: false), 2),
        [0xFE, 0xFF, ..] => (new UnicodeEncoding(bigEndian: true, byteOrderMark: false), 2),
        _ => (null, 0),
    };
}

/// <summary>
/// Cuts the bytes read from a file into lines, without decoding first: every line's end is known as a byte offset (what
/// a checkpoint records). The newline is found as the encoding writes it: one <c>\n</c> byte in UTF-8, GBK and GB18030
/// (their multi-byte characters never hold that byte), a <c>\n</c> code unit at an even offset in UTF-16. A line's
/// <c>\r</c> before the newline is dropped. Bytes after the last newline wait for more.
/// </summary>
public sealed class LineSplitter(Encoding encoding)
{
    private readonly bool _utf16 = encoding is UnicodeEncoding;
    private readonly bool _bigEndian = encoding is UnicodeEncoding && encoding.GetBytes("\n")[0] == 0;
    private readonly List<byte> _pending = [];

    public Encoding Encoding { get; } = encoding;

    /// <summary>Bytes received that end no line yet.</summary>
    public int Pending => _pending.Count;

    /// <summary>
    /// Adds the bytes read next; gives each line they complete with the byte count it took (its newline included), in
    /// order. A line over <paramref name="maxLineBytes"/> is given cut at that many bytes (the rest follows as lines of
    /// their own), so that a file without newlines cannot grow memory without bound.
    /// </summary>
    public void Add(ReadOnlySpan<byte> bytes, List<(string Line, int Bytes)> lines, int maxLineBytes = 1 << 20)
    {
        if (_utf16)
        {
            AddEachByte(bytes, lines, maxLineBytes);
            return;
        }
        // One '\n' byte ends a line: whole lines are found by a vectorized search and decoded in place; only a line
        // begun in an earlier read, or one reaching the length limit, goes through the byte-by-byte path.
        while (bytes.Length > 0)
        {
            var newline = bytes.IndexOf((byte)'\n');
            var part = newline < 0 ? bytes : bytes[..(newline + 1)];
            if (_pending.Count + part.Length > maxLineBytes || (newline < 0 && _pending.Count + part.Length == maxLineBytes))
            {
                AddEachByte(part, lines, maxLineBytes);
            }
            else if (newline < 0)
            {
                _pending.AddRange(part);
            }
            else if (_pending.Count == 0)
            {
                lines.Add((Trim(Encoding.GetString(part[..^1])), part.Length));
            }
            else
            {
                _pending.AddRange(part);
                lines.Add((Decode(_pending.Count - 1), _pending.Count));
                _pending.Clear();
            }
            bytes = bytes[part.Length..];
        }
    }

    private void AddEachByte(ReadOnlySpan<byte> bytes, List<(string Line, int Bytes)> lines, int maxLineBytes)
    {
        var unit = _utf16 ? 2 : 1;
        foreach (var b in bytes)
        {
            _pending.Add(b);
            var count = _pending.Count;
            var newline = _utf16
                ? count % 2 == 0 && (_bigEndian ? _pending[count - 2] == 0 && b == (byte)'\n' : _pending[count - 2] == (byte)'\n' && b == 0)
                : b == (byte)'\n';
            if (newline)
            {
                lines.Add((Decode(count - unit), count));
                _pending.Clear();
            }
            else if (count >= maxLineBytes && count % unit == 0)
            {
                lines.Add((Decode(count), count));
                _pending.Clear();
            }
        }
    }

    /// <summary>What waits without a newline, as a line (at the end of a file that will not grow); null when nothing waits.</summary>
    public (string Line, int Bytes)? Flush()
    {
        if (_pending.Count == 0)
        {
            return null;
        }
        var line = (Decode(_pending.Count), _pending.Count);
        _pending.Clear();
        return line;
    }

    private string Decode(int length) => Trim(Encoding.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..length]));

    private static string Trim(string text) => text.EndsWith('\r') ? text[..^1] : text;
}

/// <summary>
/// How lines make events: each line one, or several lines one (a stack trace). <see cref="Start"/>: a line matching it
/// starts an event, the others continue the one before; else with <see cref="IndentContinues"/>, a line that starts
/// with a space or tab continues the one before. An event ends at <see cref="MaxLines"/> lines or
/// <see cref="MaxBytes"/> characters (the rest starts the next).
/// </summary>
public sealed record MultilineRule(Regex? Start, bool IndentContinues, int MaxLines = 500, int MaxBytes = 1 << 20)
{
    public static readonly MultilineRule None = new(null, false);

    /// <summary>Whether the rule joins lines at all.</summary>
    public bool Joins => Start is not null || IndentContinues;

    /// <summary>Whether <paramref name="line"/> continues the event before it.</summary>
    /// <remarks>A line the start pattern cannot decide within its time limit starts an event (it is never lost).</remarks>
    public bool Continues(string line)
    {
        if (Start is null)
        {
            return IndentContinues && line.Length > 0 && line[0] is ' ' or '\t';
        }
        try
        {
            return !Start.IsMatch(line);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }
}

/// <summary>Joins lines into events by a <see cref="MultilineRule"/>; an event is complete when the next one starts, or when flushed (the file went quiet).</summary>
public sealed class LineAssembler(MultilineRule rule)
{
    private readonly StringBuilder _event = new();
    private int _lines;
    private long _bytes;

    /// <summary>Bytes of the file the event being assembled took so far (its lines and their newlines).</summary>
    public long PendingBytes => _bytes;

    /// <summary>
    /// Adds a line (<paramref name="bytes"/> of the file with its newline); gives the events it completes with the bytes
    /// each took, so that a checkpoint stays at an event's end.
    /// </summary>
    public void Add(string line, int bytes, List<(string Event, long Bytes)> events)
    {
        if (!rule.Joins)
        {
            events.Add((line, bytes));
            return;
        }
        if (_lines > 0 && (!rule.Continues(line) || _lines >= rule.MaxLines || _event.Length + 1 + line.Length > rule.MaxBytes))
        {
            events.Add((_event.ToString(), _bytes));
            _event.Clear();
            _lines = 0;
            _bytes = 0;
        }
        if (line.Length > rule.MaxBytes)
        {
            // A line longer than an event may be (the event before it was completed above) is shipped in pieces of
            // that size, each its own event; the file's bytes go with the last piece, so that a checkpoint is never
            // inside the line (a restart sends it again).
            var at = 0;
            while (line.Length - at > rule.MaxBytes)
            {
                var end = at + rule.MaxBytes;
                if (char.IsHighSurrogate(line[end - 1]) && end - 1 > at)
                {
                    end--; // not between the two halves of a surrogate pair
                }
                events.Add((line[at..end], 0));
                at = end;
            }
            line = line[at..];
        }
        if (_lines > 0)
        {
            _event.Append('\n');
        }
        _event.Append(line);
        _lines++;
        _bytes += bytes;
    }

    /// <summary>The event being assembled, complete now; null when there is none.</summary>
    public (string Event, long Bytes)? Flush()
    {
        if (_lines == 0)
        {
            return null;
        }
        var done = (_event.ToString(), _bytes);
        _event.Clear();
        _lines = 0;
        _bytes = 0;
        return done;
    }
}

/// <summary>Which lines (events) are kept: those matching an include pattern (any, when there are none) and no exclude pattern.</summary>
public sealed record LineFilter(IReadOnlyList<Regex> Include, IReadOnlyList<Regex> Exclude)
{
    public static readonly LineFilter All = new([], []);

    /// <remarks>A pattern that cannot decide within its time limit counts as matching an include and not an exclude: the event is kept.</remarks>
    public bool Keeps(string text)
    {
        if (Include.Count == 0 && Exclude.Count == 0)
        {
            return true; // the common case, without a closure per event
        }
        return (Include.Count == 0 || Include.Any(r => Matches(r, text, true))) && !Exclude.Any(r => Matches(r, text, false));
    }

    private static bool Matches(Regex pattern, string text, bool undecided)
    {
        try
        {
            return pattern.IsMatch(text);
        }
        catch (RegexMatchTimeoutException)
        {
            return undecided;
        }
    }
}
