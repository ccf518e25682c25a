using System.Diagnostics;
using System.Globalization;

namespace Logwell.Bench;

/// <summary>CPU time and peak memory of a process, as Linux reports them.</summary>
internal static class ProcessStats
{
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks / 100.0;
    }

    /// <summary>Peak resident set size (VmHWM) in bytes.</summary>
    public static long PeakRssBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }

    /// <summary>Empties the page cache so the next read comes from disk; false when not allowed (not root).</summary>
    public static bool DropCaches()
    {
        try
        {
            Process.Start("sync")!.WaitForExit();
            File.WriteAllText("/proc/sys/vm/drop_caches", "3");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    public static long DirectoryBytes(string path) =>
        Directory.Exists(path) ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;

    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToArray();
        var rank = p / 100.0 * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
    }
}

/// <summary>Warm runs measure a system in its steady state.</summary>
internal static class WarmUp
{
    /// <summary>
    /// Repeats a query untimed until 30 runs or 3 seconds have gone by, so that the .NET systems' tiered JIT has
    /// optimized the hot loops and every system's caches hold what the query reads.
    /// </summary>
    public static async Task RunAsync(Func<Task> query)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 30 && watch.Elapsed < TimeSpan.FromSeconds(3); i++)
        {
            await query();
        }
    }
}
