using System.Globalization;

namespace Logwell.Tests;

/// <summary>
/// Event times for tests that send events through retention, histograms or time windows: always relative to the
/// moment the test run started, so no test expires with the calendar. Times of day are taken on the day before the
/// run, so every one of them is in the past and well inside the default retention of 7 days.
/// </summary>
internal static class EventTime
{
    /// <summary>Midnight UTC of the day before the run.</summary>
    public static readonly DateTimeOffset Yesterday = new(DateTimeOffset.UtcNow.UtcDateTime.Date.AddDays(-1), TimeSpan.Zero);

    /// <summary>The day before the run as <c>yyyy-MM-dd</c>, for writing <c>$"{Day}T10:00:00Z"</c> in a literal.</summary>
    public static readonly string Day = Yesterday.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The day before the run at a time of day (<c>"10:00:30"</c>).</summary>
    public static DateTimeOffset At(string timeOfDay) => Yesterday + TimeSpan.Parse(timeOfDay, CultureInfo.InvariantCulture);
}
