using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using Logwell.Core.Events;

namespace Logwell.Core.Ingest;

/// <summary>
/// Reads one syslog message, RFC 5424 (<c>&lt;PRI&gt;1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG</c>) or RFC 3164
/// (<c>&lt;PRI&gt;Mmm dd hh:mm:ss HOST TAG[PID]: MSG</c>), into an event: <c>facility</c>, <c>level</c> (the severity's
/// keyword), <c>host</c>, <c>app</c>, <c>procid</c>, <c>msgid</c>, structured data as <c>sd.ID.PARAM</c>. It never
/// fails: what cannot be read is kept whole as the message, with <c>syslog_error</c> saying why.
/// </summary>
public static class SyslogParser
{
    private static readonly string[] Facilities =
    [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
        "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ];

    private static readonly string[] Severities = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

    private static readonly string[] Months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

    /// <param name="localZone">The zone of RFC 3164 timestamps, which carry none (the node's own zone).</param>
    public static LogEvent Parse(string text, DateTimeOffset received, TimeZoneInfo localZone)
    {
        text = text.TrimEnd('\r', '\n', '\0');
        var fields = new List<Field>();
        var at = 0;
        if (!TryReadPriority(text, ref at, out var priority))
        {
            return Raw(text, received, "no <PRI> at the start");
        }
        fields.Add(new Field("facility", FieldValue.FromString(priority >> 3 < Facilities.Length ? Facilities[priority >> 3] : (priority >> 3).ToString(CultureInfo.InvariantCulture))));
        fields.Add(new Field("level", FieldValue.FromString(Severities[priority & 7])));
        if (at + 1 < text.Length && text[at] == '1' && text[at + 1] == ' ')
        {
            return Rfc5424(text, at + 2, received, fields);
        }
        return Rfc3164(text, at, received, localZone, fields);
    }

    private static bool TryReadPriority(string text, ref int at, out int priority)
    {
        priority = 0;
        if (text.Length < 3 || text[0] != '<')
        {
            return false;
        }
        var close = text.IndexOf('>', 1);
        if (close is < 2 or > 4 || !int.TryParse(text.AsSpan(1, close - 1), NumberStyles.None, CultureInfo.InvariantCulture, out priority) || priority > 191)
        {
            return false;
        }
        at = close + 1;
        return true;
    }

    private static LogEvent Rfc5424(string text, int at, DateTimeOffset received, List<Field> fields)
    {
        string? Next()
        {
            if (at > text.Length)
            {
                return null;
            }
            var space = text.IndexOf(' ', at);
            var word = space < 0 ? text[at..] : text[at..space];
            at = space < 0 ? text.Length + 1 : space + 1;
            return word;
        }
        var timestamp = Next();
        var host = Next();
        var app = Next();
        var procid = Next();
        var msgid = Next();
        if (msgid is null)
        {
            return Raw(text, received, "an RFC 5424 header needs TIMESTAMP HOSTNAME APP-NAME PROCID MSGID");
        }
        var ticks = received.UtcTicks;
        if (timestamp != "-")
        {
            if (!DateTimeOffset.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
            {
                return Raw(text, received, $"cannot read the timestamp '{timestamp}'");
            }
            ticks = time.UtcTicks;
        }
        AddUnlessNil(fields, "host", host);
        AddUnlessNil(fields, "app", app);
        AddUnlessNil(fields, "procid", procid);
        AddUnlessNil(fields, "msgid", msgid);
        if (at < text.Length && text[at] == '[')
        {
            if (!TryReadStructuredData(text, ref at, fields, out var error))
            {
                return Raw(text, received, error);
            }
        }
        else if (at < text.Length && text[at] == '-')
        {
            at++;
        }
        var message = at < text.Length ? text[at..].TrimStart(' ') : "";
        // A UTF-8 byte order mark may open the message.
        return LogEvent.Received(ticks, message.TrimStart('\uFEFF'), CollectionsMarshal.AsSpan(fields));
    }

    /// <summary>Reads <c>[id param="value" ...][id2 ...]</c>; values unescape <c>\"</c>, <c>\\</c> and <c>\]</c>.</summary>
    private static bool TryReadStructuredData(string text, ref int at, List<Field> fields, out string error)
    {
        error = "";
        while (at < text.Length && text[at] == '[')
        {
            at++;
            var idEnd = text.IndexOfAny([' ', ']'], at);
            if (idEnd < 0)
            {
                error = "unclosed structured data element";
                return false;
            }
            var id = text[at..idEnd];
            at = idEnd;
            while (at < text.Length && text[at] == ' ')
            {
                at++;
                var equals = text.IndexOf('=', at);
                if (equals < 0 || equals + 1 >= text.Length || text[equals + 1] != '"')
                {
                    error = $"structured data element [{id}] has a parameter without =\"value\"";
                    return false;
                }
                var name = text[at..equals];
                at = equals + 2;
                var value = new StringBuilder();
                while (at < text.Length && text[at] != '"')
                {
                    if (text[at] == '\\' && at + 1 < text.Length && text[at + 1] is '"' or '\\' or ']')
                    {
                        at++;
                    }
                    value.Append(text[at]);
                    at++;
                }
                if (at >= text.Length)
                {
                    error = $"structured data element [{id}] has an unclosed value";
                    return false;
                }
                at++;
                fields.Add(new Field($"sd.{id}.{name}", FieldValue.FromString(value.ToString())));
            }
            if (at >= text.Length || text[at] != ']')
            {
                error = $"structured data element [{id}] is not closed by ']'";
                return false;
            }
            at++;
        }
        return true;
    }

    private static LogEvent Rfc3164(string text, int at, DateTimeOffset received, TimeZoneInfo localZone, List<Field> fields)
    {
        var ticks = received.UtcTicks;
        // "Mmm dd hh:mm:ss " (the day padded with a space).
        if (text.Length >= at + 16 && Array.IndexOf(Months, text.Substring(at, 3)) is var month and >= 0
            && int.TryParse(text.AsSpan(at + 4, 2).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var day)
            && TimeSpan.TryParseExact(text.AsSpan(at + 7, 8), @"hh\:mm\:ss", CultureInfo.InvariantCulture, out var timeOfDay)
            && text[at + 15] == ' ' && day is >= 1 and <= 31)
        {
            var now = TimeZoneInfo.ConvertTime(received, localZone);
            // No year: the most recent such date, allowing a day of clock skew into the future.
            var year = now.Year;
            if (day > DateTime.DaysInMonth(year, month + 1))
            {
                return Raw(text, received, $"day {day} does not exist in {Months[month]}");
            }
            var local = new DateTime(year, month + 1, day, 0, 0, 0, DateTimeKind.Unspecified) + timeOfDay;
            if (local > now.DateTime.AddDays(1))
            {
                local = local.AddYears(-1);
            }
            ticks = new DateTimeOffset(local, localZone.GetUtcOffset(local)).UtcTicks;
            at += 16;
            var hostEnd = text.IndexOf(' ', at);
            if (hostEnd > at)
            {
                fields.Add(new Field("host", FieldValue.FromString(text[at..hostEnd])));
                at = hostEnd + 1;
            }
        }
        // TAG[PID]: MSG, where a tag is up to 32 characters without spaces.
        var colon = text.IndexOf(": ", at, StringComparison.Ordinal);
        if (colon > at && colon - at <= 48 && text.AsSpan(at, colon - at).IndexOf(' ') < 0)
        {
            var tag = text[at..colon];
            var bracket = tag.IndexOf('[');
            if (bracket > 0 && tag.EndsWith(']'))
            {
                fields.Add(new Field("app", FieldValue.FromString(tag[..bracket])));
                fields.Add(new Field("procid", FieldValue.FromString(tag[(bracket + 1)..^1])));
            }
            else
            {
                fields.Add(new Field("app", FieldValue.FromString(tag)));
            }
            at = colon + 2;
        }
        return LogEvent.Received(ticks, at < text.Length ? text[at..] : "", CollectionsMarshal.AsSpan(fields));
    }

    private static void AddUnlessNil(List<Field> fields, string name, string? value)
    {
        if (value is { Length: > 0 } and not "-")
        {
            fields.Add(new Field(name, FieldValue.FromString(value)));
        }
    }

    private static LogEvent Raw(string text, DateTimeOffset received, string error) =>
        new(received.UtcTicks, text, [new Field("syslog_error", FieldValue.FromString(error))]);
}
