using System.Text.Json;

namespace Logwell.Server.Hosting;

/// <summary>
/// The status files the supervisor and the API master of a data directory rewrite in its <c>run/</c> every second
/// (<c>supervisor.status.json</c>, <c>api-master.status.json</c>).
/// </summary>
internal static class RunStatus
{
    /// <summary>Older than this, a file is left by a process that no longer runs.</summary>
    private static readonly TimeSpan Fresh = TimeSpan.FromSeconds(10);

    /// <summary>The file parsed when it was written in the 10 seconds before <paramref name="now"/>; null when there is none (that role does not run here).</summary>
    public static JsonDocument? Read(string runDirectory, string fileName, DateTimeOffset now)
    {
        var path = Path.Combine(runDirectory, fileName);
        try
        {
            return File.Exists(path) && now - File.GetLastWriteTimeUtc(path) < Fresh
                ? JsonDocument.Parse(File.ReadAllText(path))
                : null;
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }
}
