using System.Globalization;
using System.Text.Json;

namespace Logwell.Hosting;

/// <summary>
/// The status files the supervisor and the API master of a data directory rewrite in its <c>run/</c> every second
/// (<c>supervisor.status.json</c>, <c>api-master.status.json</c>), for the node's <c>/metrics</c> and
/// <c>/api/v1/supervisor</c>. Each file holds the time it was written by its writer's clock, not the file system's,
/// so reader and writer agree on its age whatever clock they are given.
/// </summary>
public static class RunStatus
{
    /// <summary>Older than this, a file is left by a process that no longer runs.</summary>
    private static readonly TimeSpan Fresh = TimeSpan.FromSeconds(10);

    /// <summary>Replaces the file at once (write beside it, then rename) with <paramref name="statusJson"/> and the time.</summary>
    public static void Write(string path, DateTimeOffset now, string statusJson)
    {
        var text = string.Create(CultureInfo.InvariantCulture, $"{{\"written_ms\":{now.ToUnixTimeMilliseconds()},\"status\":{statusJson}}}");
        try
        {
            File.WriteAllText(path + ".tmp", text);
            File.Move(path + ".tmp", path, overwrite: true);
        }
        catch (IOException)
        {
            // Next second.
        }
    }

    /// <summary>The status written in the 10 seconds before <paramref name="now"/>; null when there is none (that role does not run here).</summary>
    public static JsonDocument? Read(string runDirectory, string fileName, DateTimeOffset now)
    {
        var path = Path.Combine(runDirectory, fileName);
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }
            using var file = JsonDocument.Parse(File.ReadAllText(path));
            var root = file.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("written_ms", out var written) && written.TryGetInt64(out var ms)
                && now - DateTimeOffset.FromUnixTimeMilliseconds(ms) < Fresh
                && root.TryGetProperty("status", out var status)
                ? JsonDocument.Parse(status.GetRawText())
                : null;
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }
}
