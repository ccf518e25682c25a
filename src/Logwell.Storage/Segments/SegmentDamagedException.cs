namespace Logwell.Storage.Segments;

/// <summary>
/// A segment's bytes fail their checksum (or cannot be decoded): the disk lost or changed them. The message names the
/// index set, the segment file and the part; what reads other segments is not affected.
/// </summary>
public sealed class SegmentDamagedException(string path, string detail)
    : IOException($"index set {IndexSetOf(path)}: segment {System.IO.Path.GetFileName(path)} is damaged ({detail})")
{
    public string SegmentPath { get; } = path;

    public string Detail { get; } = detail;

    /// <summary>The index set of <c>…/indexsets/NAME/segments/FILE</c>.</summary>
    public string IndexSet => IndexSetOf(SegmentPath);

    private static string IndexSetOf(string path) =>
        System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(System.IO.Path.GetDirectoryName(path)) ?? "") is { Length: > 0 } name ? name : "?";
}
