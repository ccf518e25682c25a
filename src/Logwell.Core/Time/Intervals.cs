using System.Globalization;

namespace Logwell.Core.Time;

/// <summary>Bucket widths of histograms and time charts: written as <c>30s</c>, <c>5m</c>, <c>1h</c>, <c>1d</c>, or picked.</summary>
public static class Intervals
{
    private static readonly TimeSpan[] Round =
    [
        TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30),
        TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(1), TimeSpan.FromHours(3), TimeSpan.FromHours(6), TimeSpan.FromHours(12),
        TimeSpan.FromDays(1), TimeSpan.FromDays(7), TimeSpan.FromDays(30),
    ];

    public static bool TryParse(string text, out long ticks)
    {
        ticks = 0;
        if (text.Length < 2 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is <= 0 or > 100_000)
        {
            return false;
        }
        ticks = text[^1] switch
        {
            's' => n * TimeSpan.TicksPerSecond,
            'm' => n * TimeSpan.TicksPerMinute,
            'h' => n * TimeSpan.TicksPerHour,
            'd' => n * TimeSpan.TicksPerDay,
            _ => 0,
        };
        return ticks > 0;
    }

    /// <summary>The smallest round interval that covers <paramref name="windowTicks"/> in at most 60 buckets.</summary>
    public static long Auto(long windowTicks)
    {
        foreach (var interval in Round)
        {
            if (windowTicks / interval.Ticks <= 60)
            {
                return interval.Ticks;
            }
        }
        // Beyond 60 months: whole multiples of 30 days.
        var month = Round[^1].Ticks;
        return ((windowTicks / 60 / month) + 1) * month;
    }

    /// <summary>The start of the bucket of width <paramref name="interval"/> holding <paramref name="ticks"/>.</summary>
    public static long Floor(long ticks, long interval) => ticks - (((ticks % interval) + interval) % interval);
}
