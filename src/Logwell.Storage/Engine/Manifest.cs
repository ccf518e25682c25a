using System.Text.Json;
using System.Text.Json.Serialization;
using Logwell.Storage.Encoding;
using Logwell.Storage.Segments;

namespace Logwell.Storage.Engine;

/// <summary>
/// Which segments of an index set are live, and how far the write-ahead log has been flushed into them. Replaced
/// atomically (temp file, fsync, rename, fsync directory) on every change.
/// </summary>
internal sealed record Manifest
{
    public const string FileName = "manifest.json";

    public int Version { get; init; } = 1;
    /// <summary>Every event with a sequence number up to this one is in a live segment (or expired).</summary>
    public long FlushedSeq { get; init; }
    public long NextSegmentId { get; init; } = 1;
    public IReadOnlyList<SegmentInfo> Segments { get; init; } = [];

    public static Manifest Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return new Manifest();
        }
        return JsonSerializer.Deserialize(File.ReadAllBytes(path), ManifestJson.Default.Manifest)
            ?? throw new InvalidDataException($"{path} is empty");
    }

    public void Save(string directory) =>
        DurableFile.WriteAtomically(Path.Combine(directory, FileName), JsonSerializer.SerializeToUtf8Bytes(this, ManifestJson.Default.Manifest));
}

/// <summary>An index set's own settings, kept beside its data.</summary>
internal sealed record IndexSetSettings(string Name, int RetentionDays, DateTimeOffset Created)
{
    public const string FileName = "indexset.json";

    /// <summary>Whole days older than this many days move to the archive (null: never).</summary>
    public int? ArchiveAfterDays { get; init; }

    /// <summary>For an index set restored from the archive: what it holds and when it goes (null for others).</summary>
    public RestoredRange? Restored { get; init; }

    /// <summary>Whether events get a pattern id as they are stored; null (written before the setting existed) is on.</summary>
    public bool? Patterns { get; init; }

    public static IndexSetSettings Load(string directory) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(directory, FileName)), ManifestJson.Default.IndexSetSettings)
            ?? throw new InvalidDataException($"{directory}/{FileName} is empty");

    public void Save(string directory) =>
        DurableFile.WriteAtomically(Path.Combine(directory, FileName), JsonSerializer.SerializeToUtf8Bytes(this, ManifestJson.Default.IndexSetSettings));
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(SegmentInfo))]
[JsonSerializable(typeof(IndexSetSettings))]
internal sealed partial class ManifestJson : JsonSerializerContext;
