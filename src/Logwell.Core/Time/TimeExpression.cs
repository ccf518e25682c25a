using System.Globalization;

namespace Logwell.Core.Time;

/// <summary>
/// Parses a time bound as users write it: ISO 8601, epoch milliseconds, or Elasticsearch's date math: an anchor
/// (<c>now</c>, or a date followed by <c>||</c>) and then, applied left to right in UTC, any number of
/// <c>+N</c>/<c>-N</c> units and <c>/unit</c> roundings (<c>now-15m</c>, <c>now/d</c>, <c>now/d-1d</c>,
/// <c>2026-01-01||+1M/d</c>). Units: <c>y</c> years, <c>M</c> months, <c>w</c> weeks, <c>d</c> days, <c>h</c>/<c>H</c>
/// hours, <c>m</c> minutes, <c>s</c> seconds. A rounding goes down to the unit's start, or with <c>roundUp</c> to its last
/// tick, as Elasticsearch rounds the bounds of a range (up for <c>gt</c> and <c>lte</c>).
/// </summary>
public static partial class TimeExpression
{
    public static bool TryParse(string? text, DateTimeOffset now, out DateTimeOffset value, out string error) =>
        TryParse(text, now, roundUp: false, out value, out error);

    public static bool TryParse(string? text, DateTimeOffset now, bool roundUp, out DateTimeOffset value, out string error)
    {
        value = default;
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "time is empty";
            return false;
        }
        text = text.Trim();
        if (text.StartsWith("now", StringComparison.OrdinalIgnoreCase))
        {
            return TryApplyMath(text, text.AsSpan(3), now.ToUniversalTime(), roundUp, out value, out error);
        }
        var anchor = text.IndexOf("||", StringComparison.Ordinal);
        if (anchor >= 0)
        {
            return TryParseDate(text[..anchor], out var date, out error)
                && TryApplyMath(text, text.AsSpan(anchor + 2), date, roundUp, out value, out error);
        }
        if (!TryParseDate(text, out value, out error))
        {
            return false;
        }
        if (roundUp)
        {
            value = FillMissingUp(text, value);
        }
        return true;
    }

    /// <summary>
    /// A date written without all its parts, as the bound of a range that rounds up (<c>]</c>, <c>&gt;</c>): the missing
    /// time parts become the last instant they leave open, as Elasticsearch fills them (hour 23, minute 59, second 59,
    /// the fraction .9999999), so <c>[2012-01-01 TO 2012-12-31]</c> holds all of December 31 and <c>&gt;2012-01-01</c>
    /// starts the next day. A missing month or day stays 01, as in Elasticsearch (<c>&lt;=2012-12</c> ends on December 1).
    /// A date with math (<c>2012-01-01||+1d</c>) is not filled: its rounding is the math's.
    /// </summary>
    private static DateTimeOffset FillMissingUp(string text, DateTimeOffset value)
    {
        var parts = DateParts().Match(text);
        if (!parts.Success)
        {
            return value;
        }
        var fill = !parts.Groups["hour"].Success ? new TimeSpan(0, 23, 59, 59).Add(TimeSpan.FromTicks(TimeSpan.TicksPerSecond - 1))
            : !parts.Groups["minute"].Success ? new TimeSpan(0, 0, 59, 59).Add(TimeSpan.FromTicks(TimeSpan.TicksPerSecond - 1))
            : !parts.Groups["second"].Success ? TimeSpan.FromTicks((59 * TimeSpan.TicksPerSecond) + TimeSpan.TicksPerSecond - 1)
            : !parts.Groups["fraction"].Success ? TimeSpan.FromTicks(TimeSpan.TicksPerSecond - 1)
            : TimeSpan.Zero;
        return value + fill;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d{2}(-\d{2}([T ](?<hour>\d{2})(:(?<minute>\d{2})(:(?<second>\d{2})(?<fraction>[.,]\d+)?)?)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex DateParts();

    /// <summary>Whether <paramref name="text"/> reads as a date (date math or ISO 8601 with a year first), not as a number or a word.</summary>
    public static bool LooksLikeDate(string text) =>
        text.StartsWith("now", StringComparison.OrdinalIgnoreCase) || text.Contains("||", StringComparison.Ordinal)
        || (text.Length >= 7 && char.IsAsciiDigit(text[0]) && char.IsAsciiDigit(text[1]) && char.IsAsciiDigit(text[2]) && char.IsAsciiDigit(text[3]) && text[4] == '-');

    private static bool TryParseDate(string text, out DateTimeOffset value, out string error)
    {
        error = "";
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var epochMs))
        {
            try
            {
                value = DateTimeOffset.FromUnixTimeMilliseconds(epochMs);
                return true;
            }
            catch (ArgumentOutOfRangeException)
            {
                value = default;
                error = $"epoch milliseconds {text} are out of range";
                return false;
            }
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value))
        {
            return true;
        }
        // An hour without minutes, which Elasticsearch's dates take too (2012-06-15T10).
        if (DateTimeOffset.TryParseExact(text, ["yyyy-MM-dd'T'HH", "yyyy-MM-dd'T'HHK"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value))
        {
            return true;
        }
        error = $"cannot read time '{text}': use ISO 8601 (2026-11-26T10:00:00Z), epoch milliseconds, or now-15m";
        return false;
    }

    private static bool TryApplyMath(string text, ReadOnlySpan<char> math, DateTimeOffset anchor, bool roundUp, out DateTimeOffset value, out string error)
    {
        value = anchor;
        error = "";
        math = math.Trim();
        try
        {
            while (!math.IsEmpty)
            {
                var op = math[0];
                if (op == '/')
                {
                    if (math.Length < 2 || !IsUnit(math[1]))
                    {
                        error = $"cannot read the rounding in '{text}': use /d, /h, /M... (units y, M, w, d, h, m, s)";
                        return false;
                    }
                    value = Round(value, math[1], roundUp);
                    math = math[2..];
                    continue;
                }
                if (op is not ('+' or '-'))
                {
                    error = $"cannot read relative time '{text}': use now-15m, now-2h, now/d, now-1d/d (units y, M, w, d, h, m, s)";
                    return false;
                }
                var digits = 1;
                while (digits < math.Length && char.IsAsciiDigit(math[digits]))
                {
                    digits++;
                }
                if (digits == 1 || digits >= math.Length || !long.TryParse(math[1..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
                {
                    error = $"cannot read the amount in '{text}': use now-15m, now-2h, now-1d";
                    return false;
                }
                if (!IsUnit(math[digits]))
                {
                    error = $"unknown time unit '{math[digits]}' in '{text}': use y, M, w, d, h, m or s";
                    return false;
                }
                value = Add(value, op == '-' ? -amount : amount, math[digits]);
                math = math[(digits + 1)..];
            }
            return true;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or OverflowException)
        {
            error = $"relative time '{text}' is out of range";
            return false;
        }
    }

    private static bool IsUnit(char unit) => unit is 'y' or 'M' or 'w' or 'd' or 'h' or 'H' or 'm' or 's';

    private static DateTimeOffset Add(DateTimeOffset value, long amount, char unit) => unit switch
    {
        'y' => value.AddYears(checked((int)amount)),
        'M' => value.AddMonths(checked((int)amount)),
        'w' => value.AddDays(checked(amount * 7)),
        'd' => value.AddDays(amount),
        'h' or 'H' => value.AddHours(amount),
        'm' => value.AddMinutes(amount),
        _ => value.AddSeconds(amount),
    };

    /// <summary>The start of the unit <paramref name="value"/> falls in (weeks start on Monday), or its last tick.</summary>
    private static DateTimeOffset Round(DateTimeOffset value, char unit, bool up)
    {
        var t = value.UtcDateTime;
        var start = unit switch
        {
            'y' => new DateTime(t.Year, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            'M' => new DateTime(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc),
            'w' => t.Date.AddDays(-(((int)t.DayOfWeek + 6) % 7)),
            'd' => t.Date,
            'h' or 'H' => new DateTime(t.Year, t.Month, t.Day, t.Hour, 0, 0, DateTimeKind.Utc),
            'm' => new DateTime(t.Year, t.Month, t.Day, t.Hour, t.Minute, 0, DateTimeKind.Utc),
            _ => new DateTime(t.Year, t.Month, t.Day, t.Hour, t.Minute, t.Second, DateTimeKind.Utc),
        };
        if (!up)
        {
            return new DateTimeOffset(start);
        }
        var next = unit switch
        {
            'y' => start.AddYears(1),
            'M' => start.AddMonths(1),
            'w' => start.AddDays(7),
            'd' => start.AddDays(1),
            'h' or 'H' => start.AddHours(1),
            'm' => start.AddMinutes(1),
            _ => start.AddSeconds(1),
        };
        return new DateTimeOffset(next.AddTicks(-1));
    }

    /// <summary>Parses a duration such as <c>15m</c>, <c>1h</c>, <c>2d</c> (used by <c>--since</c>).</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        // One amount and one unit: 15m, 1h, 2d.
        if (text.Length >= 2 && text[^1] is 's' or 'm' or 'h' or 'd' or 'w' && text.AsSpan(0, text.Length - 1).IndexOfAnyExceptInRange('0', '9') < 0
            && TryApplyMath(text, ("-" + text).AsSpan(), DateTimeOffset.UnixEpoch.AddYears(1000), roundUp: false, out var value, out _))
        {
            duration = DateTimeOffset.UnixEpoch.AddYears(1000) - value;
            return true;
        }
        return false;
    }
}
