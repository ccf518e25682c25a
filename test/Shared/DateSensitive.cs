namespace Logwell.Tests;

/// <summary>
/// Marks a test class whose events meet retention, histograms or time windows: <c>test.sh</c> runs these classes (and
/// every unit test) a second time with the clock 400 days ahead under <c>faketime</c>, so a fixed event date fails
/// the day it is written rather than the day it expires. Filter: <c>Category=DateSensitive</c>.
/// </summary>
internal static class DateSensitive
{
    public const string Category = "Category";
    public const string Value = "DateSensitive";
}
