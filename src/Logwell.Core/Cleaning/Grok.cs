using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.Core.Cleaning;

/// <summary>
/// Grok patterns: <c>%{NAME}</c> matches a pattern of the library, <c>%{NAME:field}</c> also captures it as a field,
/// <c>%{NAME:field:int}</c> (or <c>float</c>) converts the capture. Everything else is a regular expression.
/// </summary>
public static partial class Grok
{
    /// <summary>The built-in library: the patterns most log formats are written with.</summary>
    public static readonly IReadOnlyDictionary<string, string> Library = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["WORD"] = @"\b\w+\b",
        ["NOTSPACE"] = @"\S+",
        ["SPACE"] = @"\s*",
        ["DATA"] = @".*?",
        ["GREEDYDATA"] = @".*",
        ["INT"] = @"[+-]?[0-9]+",
        ["POSINT"] = @"\b[1-9][0-9]*\b",
        ["NONNEGINT"] = @"\b[0-9]+\b",
        ["BASE10NUM"] = @"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)",
        ["NUMBER"] = @"%{BASE10NUM}",
        ["BASE16NUM"] = @"(?:0[xX])?[0-9A-Fa-f]+",
        ["QUOTEDSTRING"] = "\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'",
        ["QS"] = @"%{QUOTEDSTRING}",
        ["UUID"] = @"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
        ["USERNAME"] = @"[a-zA-Z0-9._-]+",
        ["USER"] = @"%{USERNAME}",
        ["EMAILADDRESS"] = @"[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*",
        ["IPV4"] = @"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
        ["IPV6"] = @"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[0-9A-Za-z]+)?",
        ["IP"] = @"(?:%{IPV6}|%{IPV4})",
        ["HOSTNAME"] = @"\b(?:[0-9A-Za-z][0-9A-Za-z-]{0,62})(?:\.(?:[0-9A-Za-z][0-9A-Za-z-]{0,62}))*\.?\b",
        ["IPORHOST"] = @"(?:%{IP}|%{HOSTNAME})",
        ["HOSTPORT"] = @"%{IPORHOST}:%{POSINT}",
        ["PATH"] = @"(?:/[^\s?#]*)+",
        ["URIPROTO"] = @"[A-Za-z][A-Za-z0-9+.-]*",
        ["URIPATH"] = @"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_\-]*)+",
        ["URIPARAM"] = @"\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]<>]*",
        ["URIPATHPARAM"] = @"%{URIPATH}(?:%{URIPARAM})?",
        ["URI"] = @"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{IPORHOST})?(?::%{POSINT})?(?:%{URIPATHPARAM})?",
        ["MONTH"] = @"\b(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]un(?:e)?|[Jj]ul(?:y)?|[Aa]ug(?:ust)?|[Ss]ep(?:tember)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)\b",
        ["MONTHNUM"] = @"(?:0?[1-9]|1[0-2])",
        ["MONTHDAY"] = @"(?:0[1-9]|[12][0-9]|3[01]|[1-9])",
        ["DAY"] = @"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)",
        ["YEAR"] = @"[0-9]{4}",
        ["HOUR"] = @"(?:2[0123]|[01]?[0-9])",
        ["MINUTE"] = @"[0-5][0-9]",
        ["SECOND"] = @"(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?",
        ["TIME"] = @"%{HOUR}:%{MINUTE}(?::%{SECOND})?",
        ["ISO8601_TIMEZONE"] = @"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))",
        ["TIMESTAMP_ISO8601"] = @"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
        ["HTTPDATE"] = @"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} [+-][0-9]{4}",
        ["SYSLOGTIMESTAMP"] = @"%{MONTH} +%{MONTHDAY} %{TIME}",
        ["LOGLEVEL"] = @"(?:[Tt]race|TRACE|[Dd]ebug|DEBUG|[Ii]nfo(?:rmation)?|INFO|[Nn]otice|NOTICE|[Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|[Ff]atal|FATAL|[Ss]evere|SEVERE|[Ee]merg(?:ency)?|EMERG(?:ENCY)?|[Aa]lert|ALERT)",
        ["COMMONAPACHELOG"] = "%{IPORHOST:client} %{USER:ident} %{USER:auth} \\[%{HTTPDATE:timestamp}\\] \"(?:%{WORD:method} %{NOTSPACE:request}(?: HTTP/%{NUMBER:http_version})?|%{DATA:raw_request})\" %{NUMBER:status:int} (?:%{NUMBER:bytes:int}|-)",
        ["COMBINEDAPACHELOG"] = "%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
    };

    /// <summary>A capture's declared conversion.</summary>
    public enum Conversion
    {
        None,
        Int,
        Float,
    }

    /// <summary>A field a grok expression captures: its group in the expanded expression and its conversion.</summary>
    public sealed record Capture(string Group, string Field, Conversion Conversion);

    /// <summary>
    /// Expands a grok expression into a regular expression with a named group per captured field (fields named inside
    /// library patterns too, as <c>%{COMBINEDAPACHELOG}</c> captures <c>client</c>, <c>status</c>, ...). Throws
    /// <see cref="ArgumentException"/> naming an unknown pattern, a loop or an unknown conversion.
    /// </summary>
    public static (string Regex, IReadOnlyList<Capture> Captures) Expand(string expression)
    {
        var captures = new Dictionary<string, Capture>(StringComparer.Ordinal);
        var regex = Expand(expression, captures, []);
        return (regex, [.. captures.Values]);
    }

    private static string Expand(string expression, Dictionary<string, Capture> captures, Stack<string> expanding)
    {
        var output = new StringBuilder();
        var at = 0;
        foreach (Match reference in Reference().Matches(expression))
        {
            output.Append(expression, at, reference.Index - at);
            at = reference.Index + reference.Length;
            var name = reference.Groups["pattern"].Value;
            if (!Library.TryGetValue(name, out var body))
            {
                throw new ArgumentException($"unknown grok pattern %{{{name}}} (known: {string.Join(", ", Library.Keys.Order(StringComparer.Ordinal))})");
            }
            if (expanding.Contains(name))
            {
                throw new ArgumentException($"grok pattern %{{{name}}} refers to itself");
            }
            expanding.Push(name);
            var inner = Expand(body, captures, expanding);
            expanding.Pop();
            var field = reference.Groups["field"].Value;
            if (field.Length == 0)
            {
                output.Append("(?:").Append(inner).Append(')');
                continue;
            }
            var conversion = reference.Groups["type"].Value switch
            {
                "int" or "long" => Conversion.Int,
                "float" or "double" => Conversion.Float,
                "" => Conversion.None,
                var other => throw new ArgumentException($"grok conversion '{other}' of %{{{name}:{field}}} is not known: use int or float"),
            };
            // Group names allow letters, digits and '_' only: a field such as http.status gets an alias.
            if (!captures.TryGetValue(field, out var capture))
            {
                capture = new Capture($"g{captures.Count}", field, conversion);
                captures[field] = capture;
            }
            output.Append("(?<").Append(capture.Group).Append('>').Append(inner).Append(')');
        }
        output.Append(expression, at, expression.Length - at);
        return output.ToString();
    }

    [GeneratedRegex(@"%\{(?<pattern>[A-Z0-9_]+)(?::(?<field>[A-Za-z0-9_.@\-]+))?(?::(?<type>[a-z]+))?\}")]
    private static partial Regex Reference();
}
