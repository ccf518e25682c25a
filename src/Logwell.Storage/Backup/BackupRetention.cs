using System.Globalization;

namespace Logwell.Storage.Backup;

/// <summary>
/// Which backups a prune keeps: the newest always, the newest <see cref="Last"/>, and the newest of each of the last
/// <see cref="Daily"/> days and <see cref="Weekly"/> ISO weeks (UTC) that have one. Days and weeks without a backup do
/// not count, so a node that was down a week still keeps its N daily backups.
/// </summary>
public sealed record BackupRetention(int Last, int Daily, int Weekly)
{
    public bool KeepsAnything => Last > 0 || Daily > 0 || Weekly > 0;

    /// <summary>The ids of <paramref name="backups"/> to keep; every backup is kept when no rule is given.</summary>
    public HashSet<string> Keep(IReadOnlyList<BackupManifest> backups)
    {
        if (Last < 0 || Daily < 0 || Weekly < 0)
        {
            throw new ArgumentException("--keep-last, --keep-daily and --keep-weekly must be 0 or more");
        }
        var newestFirst = backups.OrderByDescending(b => b.Created).ThenByDescending(b => b.Id, StringComparer.Ordinal).ToList();
        if (!KeepsAnything)
        {
            return [.. newestFirst.Select(b => b.Id)];
        }
        var kept = new HashSet<string>(StringComparer.Ordinal);
        if (newestFirst.Count > 0)
        {
            kept.Add(newestFirst[0].Id);
        }
        foreach (var backup in newestFirst.Take(Last))
        {
            kept.Add(backup.Id);
        }
        KeepNewestOfEach(newestFirst, Daily, b => b.Created.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), kept);
        KeepNewestOfEach(newestFirst, Weekly, b => string.Create(CultureInfo.InvariantCulture, $"{ISOWeek.GetYear(b.Created.UtcDateTime)}-W{ISOWeek.GetWeekOfYear(b.Created.UtcDateTime)}"), kept);
        return kept;
    }

    private static void KeepNewestOfEach(List<BackupManifest> newestFirst, int count, Func<BackupManifest, string> period, HashSet<string> kept)
    {
        string? last = null;
        var periods = 0;
        foreach (var backup in newestFirst)
        {
            if (periods >= count)
            {
                return;
            }
            var key = period(backup);
            if (key != last)
            {
                kept.Add(backup.Id);
                last = key;
                periods++;
            }
        }
    }
}

/// <summary>What a prune removed.</summary>
public sealed record PruneResult(IReadOnlyList<string> Removed, int Kept, int RemovedObjects, long FreedBytes)
{
    /// <summary>Why the prune after a backup did not run or stopped (the backup itself was saved); null when it did.</summary>
    public string? Error { get; init; }
}
