using System.Globalization;

namespace Logwell.Core.Time;

/// <summary>
/// Parses a time bound as users write it: ISO 8601, epoch milliseconds, <c>now</c>, or relative (<c>now-15m</c>,
/// <c>now-1d</c>; units s, m, h, d, w).
/// </summary>
public static class TimeExpression
{
    public static bool TryParse(string? text, DateTimeOffset now, out DateTimeOffset value, out string error)
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
            return TryParseRelative(text, now, out value, out error);
        }
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var epochMs))
        {
            try
            {
                value = DateTimeOffset.FromUnixTimeMilliseconds(epochMs);
                return true;
            }
            catch (ArgumentOutOfRangeException)
            {
                error = $"epoch milliseconds {text} are out of range";
                return false;
            }
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value))
        {
            return true;
        }
        error = $"cannot read time '{text}': use ISO 8601 (2026-11-26T10:00:00Z), epoch milliseconds, or now-15m";
        return false;
    }

    private static bool TryParseRelative(string text, DateTimeOffset now, out DateTimeOffset value, out string error)
    {
        value = now;
        error = "";
        var rest = text.AsSpan(3).Trim();
        if (rest.IsEmpty)
        {
            return true;
        }
        var sign = rest[0] switch { '-' => -1, '+' => 1, _ => 0 };
        if (sign == 0 || rest.Length < 3)
        {
            error = $"cannot read relative time '{text}': use now-15m, now-2h, now-1d (units s, m, h, d, w)";
            return false;
        }
        if (!long.TryParse(rest[1..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            error = $"cannot read the amount in '{text}': use now-15m, now-2h, now-1d";
            return false;
        }
        TimeSpan unit;
        switch (rest[^1])
        {
            case 's': unit = TimeSpan.FromSeconds(1); break;
            case 'm': unit = TimeSpan.FromMinutes(1); break;
            case 'h': unit = TimeSpan.FromHours(1); break;
            case 'd': unit = TimeSpan.FromDays(1); break;
            case 'w': unit = TimeSpan.FromDays(7); break;
            default:
                error = $"unknown time unit '{rest[^1]}' in '{text}': use s, m, h, d or w";
                return false;
        }
        try
        {
            value = now + sign * amount * unit;
            return true;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or OverflowException)
        {
            error = $"relative time '{text}' is out of range";
            return false;
        }
    }

    /// <summary>Parses a duration such as <c>15m</c>, <c>1h</c>, <c>2d</c> (used by <c>--since</c>).</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        if (TryParseRelative("now-" + text, DateTimeOffset.UnixEpoch.AddYears(1000), out var value, out _))
        {
            duration = DateTimeOffset.UnixEpoch.AddYears(1000) - value;
            return true;
        }
        return false;
    }
}
