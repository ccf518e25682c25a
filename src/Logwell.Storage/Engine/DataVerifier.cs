using Logwell.Storage.Segments;

namespace Logwell.Storage.Engine;

/// <summary>What <see cref="DataVerifier"/> found in one index set.</summary>
public sealed record IndexSetVerification(string Name, int Segments, long Events, long Bytes, IReadOnlyList<string> Problems);

/// <summary>
/// Reads every segment an index set's manifest lists and checks each part against its checksum — what a search would
/// find damaged only when it reaches it. Read-only, so it runs beside a serving node too: a segment a merge retires
/// meanwhile is skipped.
/// </summary>
public static class DataVerifier
{
    /// <summary>Every index set under <c>DATA/indexsets/</c> (or those named), in order.</summary>
    public static IEnumerable<IndexSetVerification> Verify(string dataDirectory, IReadOnlyCollection<string>? only, CancellationToken cancellationToken)
    {
        var root = Path.Combine(Path.GetFullPath(dataDirectory), "indexsets");
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"{Path.GetFullPath(dataDirectory)} holds no index sets (no indexsets/ directory): is it a Logwell data directory?");
        }
        var names = Directory.EnumerateDirectories(root).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        if (only is { Count: > 0 } && only.Except(names).ToList() is { Count: > 0 } missing)
        {
            throw new DirectoryNotFoundException($"no index set named {string.Join(", ", missing)} in {root}");
        }
        foreach (var name in names.Where(n => only is not { Count: > 0 } || only.Contains(n)))
        {
            if (!File.Exists(Path.Combine(root, name, IndexSetSettings.FileName)))
            {
                continue; // a creation or deletion cut short: never acknowledged, and the engine deletes it at start
            }
            yield return VerifyIndexSet(Path.Combine(root, name), cancellationToken);
        }
    }

    public static IndexSetVerification VerifyIndexSet(string directory, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(directory);
        var problems = new List<string>();
        Manifest manifest;
        try
        {
            IndexSetSettings.Load(directory);
            manifest = Manifest.Load(directory);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException)
        {
            return new IndexSetVerification(name, 0, 0, 0, [$"its settings or manifest cannot be read: {e.Message}"]);
        }
        var segments = 0;
        long events = 0, bytes = 0;
        foreach (var info in manifest.Segments)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var path = Path.Combine(directory, "segments", info.File);
            Segment segment;
            try
            {
                segment = Segment.Open(path);
            }
            catch (FileNotFoundException) when (!Manifest.Load(directory).Segments.Any(s => s.File == info.File))
            {
                continue; // merged or expired since the manifest was read
            }
            catch (FileNotFoundException)
            {
                problems.Add($"segment {info.File}: listed in the manifest, missing on disk");
                continue;
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                problems.Add($"segment {info.File}: {(e is SegmentDamagedException damaged ? damaged.Detail : e.Message)}");
                continue;
            }
            try
            {
                segments++;
                events += segment.Info.Events;
                bytes += segment.Info.Bytes;
                if (segment.Verify(cancellationToken) is { } damage)
                {
                    problems.Add($"segment {info.File}: {damage}");
                }
            }
            catch (IOException e)
            {
                // The disk cannot read it at all (a bad sector): as damaged as a checksum mismatch.
                problems.Add($"segment {info.File}: cannot be read ({e.Message})");
            }
            finally
            {
                segment.Retire(deleteFile: false);
            }
        }
        return new IndexSetVerification(name, segments, events, bytes, problems);
    }
}
