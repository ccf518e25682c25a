using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Logwell.Core.Events;
using Logwell.Core.Ingest;

namespace Logwell.Core.Cleaning;

/// <summary>
/// An index set's cleaning pipeline: one way to parse the message into fields, then steps over the fields. It never
/// loses an event: when parsing fails the event keeps its raw message, and any failure is named in the field
/// <see cref="ErrorField"/>.
/// </summary>
/// <remarks>
/// The definition is JSON, for example:
/// <code>
/// {"parse": {"type": "grok", "pattern": "%{IP:client} %{WORD:method} %{URIPATHPARAM:path} %{NUMBER:status:int}"},
///  "steps": [{"type": "time", "field": "ts", "format": "yyyy-MM-dd HH:mm:ss", "timezone": "UTC"},
///            {"type": "mask", "field": "card", "keep_first": 4, "keep_last": 4}]}
/// </code>
/// Parse types: <c>raw</c> (the default), <c>json</c>, <c>delimiter</c> (<c>delimiter</c>, <c>fields</c>, optional
/// <c>quote</c>), <c>regex</c> (named groups become fields), <c>grok</c>. Steps: <c>time</c>, <c>convert</c>
/// (<c>to</c>: int, float, bool, time), <c>rename</c>, <c>drop</c>, <c>keep</c>, <c>add</c>, <c>mask</c>.
/// </remarks>
public sealed class CleaningPipeline
{
    public const string ErrorField = "pipeline_error";

    /// <summary>The field that stands for the event's message in <c>parse.field</c>, <c>mask</c> and <c>rename</c>.</summary>
    public const string MessageField = "message";

    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;

    /// <summary>
    /// The time one regular expression may take on one value. The engine is linear-time, so this only bounds the
    /// largest lines; it must not be short, since the first values a large pattern (grok's IP and URI patterns) meets
    /// build its matcher's states, and on a busy machine a few hundred milliseconds of that turned good lines into
    /// "did not match".
    /// </summary>
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    private readonly Func<LogEvent, LogEvent?>? _parse;
    private readonly string _parseName;
    private readonly List<(string Name, Func<Draft, string?> Apply)> _steps = [];

    /// <summary>The event the steps change in place; it becomes a <see cref="LogEvent"/> once, at the end.</summary>
    private sealed class Draft(LogEvent evt)
    {
        public long Timestamp { get; set; } = evt.Timestamp;
        public string Message { get; set; } = evt.Message;
        public List<Field> Fields { get; set; } = [.. evt.Fields];
    }

    private CleaningPipeline(string definition, Func<LogEvent, LogEvent?>? parse, string parseName)
    {
        Definition = definition;
        _parse = parse;
        _parseName = parseName;
    }

    /// <summary>The definition as JSON, as it was read.</summary>
    public string Definition { get; }

    /// <summary>Reads a definition; <see cref="PipelineDefinitionException"/> says what is wrong and where.</summary>
    public static CleaningPipeline Parse(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            // ArgumentException: text that is not valid UTF-16 (a lone surrogate).
            throw new PipelineDefinitionException($"the pipeline is not valid JSON: {e.Message}");
        }
        using (document)
        {
            try
            {
                return Parse(json, document.RootElement);
            }
            catch (InvalidOperationException e)
            {
                // Valid JSON syntax that is not valid text, such as a lone UTF-16 surrogate escape.
                throw new PipelineDefinitionException($"the pipeline holds an invalid JSON value: {e.Message}");
            }
        }
    }

    private static CleaningPipeline Parse(string json, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new PipelineDefinitionException("a pipeline is an object: {\"parse\": {...}, \"steps\": [...]}");
        }
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name is not ("parse" or "steps"))
            {
                throw new PipelineDefinitionException($"unknown key '{property.Name}': a pipeline has 'parse' and 'steps'");
            }
        }
        var (parse, parseName) = root.TryGetProperty("parse", out var parseElement) ? ReadParse(parseElement) : (null, "raw");
        var pipeline = new CleaningPipeline(root.GetRawText(), parse, parseName);
        if (root.TryGetProperty("steps", out var steps))
        {
            if (steps.ValueKind != JsonValueKind.Array)
            {
                throw new PipelineDefinitionException("'steps' must be an array");
            }
            var i = 0;
            foreach (var step in steps.EnumerateArray())
            {
                pipeline._steps.Add(ReadStep(step, $"steps[{i++}]"));
            }
        }
        return pipeline;
    }

    /// <summary>Cleans each event of a batch in place (what every store does before it writes).</summary>
    public void ApplyAll(List<LogEvent> events)
    {
        for (var i = 0; i < events.Count; i++)
        {
            events[i] = Apply(events[i]);
        }
    }

    /// <summary>Cleans one event. Never throws for the event's content, and never drops it.</summary>
    public LogEvent Apply(LogEvent evt)
    {
        var current = evt;
        if (_parse is not null)
        {
            LogEvent? parsed;
            try
            {
                parsed = _parse(evt);
            }
            catch (RegexMatchTimeoutException)
            {
                parsed = null;
            }
            if (parsed is null)
            {
                return WithError(evt, $"parse ({_parseName}) did not match the message");
            }
            current = parsed;
        }
        if (_steps.Count == 0)
        {
            return current;
        }
        var draft = new Draft(current);
        string? firstError = null;
        foreach (var (name, apply) in _steps)
        {
            if (apply(draft) is { } error)
            {
                firstError ??= $"{name}: {error}";
            }
        }
        var cleaned = LogEvent.Received(draft.Timestamp, draft.Message, CollectionsMarshal.AsSpan(draft.Fields));
        cleaned.Seq = evt.Seq;
        return firstError is null ? cleaned : WithError(cleaned, firstError);
    }

    private static LogEvent WithError(LogEvent evt, string error) =>
        With(evt, [.. evt.Fields.Where(f => f.Name != ErrorField), new Field(ErrorField, FieldValue.FromString(error))]);

    private static LogEvent With(LogEvent evt, List<Field> fields, string? message = null, long? timestamp = null)
    {
        var changed = LogEvent.Received(timestamp ?? evt.Timestamp, message ?? evt.Message, CollectionsMarshal.AsSpan(fields));
        changed.Seq = evt.Seq;
        return changed;
    }

    private static string Text(LogEvent evt, string field) =>
        field == MessageField && !evt.TryGetField(field, out _) ? evt.Message
        : evt.TryGetField(field, out var value) ? value.SearchText ?? "" : "";

    /// <summary>Fields replace those of the same name; the rest stay in their order.</summary>
    private static List<Field> Merge(IEnumerable<Field> existing, List<Field> added)
    {
        var names = new HashSet<string>(added.Select(f => f.Name), StringComparer.Ordinal);
        return [.. existing.Where(f => !names.Contains(f.Name)), .. added];
    }

    private static (Func<LogEvent, LogEvent?>? Parse, string Name) ReadParse(JsonElement element)
    {
        const string at = "parse";
        var type = RequiredString(element, "type", at);
        var source = OptionalString(element, "field", at) ?? MessageField;
        switch (type)
        {
            case "raw":
                return (null, type);
            case "json":
                {
                    var decoder = new ThreadLocal<EventDecoder.DocumentDecoder>(() => new EventDecoder.DocumentDecoder());
                    return (evt =>
                    {
                        var text = Text(evt, source).Trim();
                        if (!text.StartsWith('{') || !decoder.Value!.TryDecode(Encoding.UTF8.GetBytes(text), new DateTimeOffset(evt.Timestamp, TimeSpan.Zero), out var parsed, out _))
                        {
                            return null;
                        }
                        return With(evt, Merge(evt.Fields, [.. parsed!.Fields]), parsed.Message.Length > 0 ? parsed.Message : evt.Message, parsed.Timestamp);
                    }, type);
                }
            case "delimiter":
                {
                    var delimiter = RequiredString(element, "delimiter", at);
                    if (delimiter.Length == 0)
                    {
                        throw new PipelineDefinitionException("parse.delimiter must not be empty");
                    }
                    var names = StringList(element, "fields", at);
                    var quote = OptionalString(element, "quote", at);
                    if (quote is { Length: not 1 })
                    {
                        throw new PipelineDefinitionException("parse.quote must be one character, such as \"");
                    }
                    return (evt =>
                    {
                        var values = Split(Text(evt, source), delimiter, quote?[0]);
                        if (values is null || values.Count != names.Count)
                        {
                            return null;
                        }
                        return With(evt, Merge(evt.Fields, [.. names.Select((n, i) => new Field(n, FieldValue.FromString(values[i])))]));
                    }, type);
                }
            case "regex":
            case "grok":
                {
                    var pattern = RequiredString(element, "pattern", at);
                    IReadOnlyList<Grok.Capture> captures;
                    string expression;
                    try
                    {
                        (expression, captures) = type == "grok" ? Grok.Expand(pattern) : (pattern, []);
                    }
                    catch (ArgumentException e)
                    {
                        throw new PipelineDefinitionException($"parse.pattern: {e.Message}");
                    }
                    Regex regex;
                    try
                    {
                        regex = new Regex(expression, Options, MatchTimeout);
                    }
                    catch (ArgumentException e)
                    {
                        throw new PipelineDefinitionException($"parse.pattern is not a usable regular expression: {e.Message}");
                    }
                    catch (NotSupportedException e)
                    {
                        throw new PipelineDefinitionException($"parse.pattern uses what the linear-time engine cannot run (backreferences, lookarounds): {e.Message}");
                    }
                    var groups = type == "grok"
                        ? captures.Select(c => (c.Group, c.Field, c.Conversion)).ToList()
                        : [.. regex.GetGroupNames().Where(g => !int.TryParse(g, out _)).Select(g => (g, g, Grok.Conversion.None))];
                    if (groups.Count == 0)
                    {
                        throw new PipelineDefinitionException($"parse.pattern captures no field: name them, as {(type == "grok" ? "%{IP:client}" : "(?<client>\\S+)")}");
                    }
                    return (evt =>
                    {
                        var match = regex.Match(Text(evt, source));
                        if (!match.Success)
                        {
                            return null;
                        }
                        var fields = new List<Field>();
                        foreach (var (group, field, conversion) in groups)
                        {
                            var capture = match.Groups[group];
                            if (!capture.Success)
                            {
                                continue;
                            }
                            fields.Add(new Field(field, conversion switch
                            {
                                Grok.Conversion.Int when long.TryParse(capture.ValueSpan, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => FieldValue.FromLong(l),
                                Grok.Conversion.Float when double.TryParse(capture.ValueSpan, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => FieldValue.FromDouble(d),
                                _ => FieldValue.FromString(capture.Value),
                            }));
                        }
                        return With(evt, Merge(evt.Fields, fields));
                    }, type);
                }
            default:
                throw new PipelineDefinitionException($"parse.type '{type}' is not known: use raw, json, delimiter, regex or grok");
        }
    }

    /// <summary>Splits on a delimiter; a value wrapped in the quote character may hold the delimiter and doubled quotes.</summary>
    private static List<string>? Split(string text, string delimiter, char? quote)
    {
        var values = new List<string>();
        var at = 0;
        while (true)
        {
            if (quote is { } q && at < text.Length && text[at] == q)
            {
                var value = new StringBuilder();
                at++;
                while (true)
                {
                    if (at >= text.Length)
                    {
                        return null;
                    }
                    if (text[at] == q)
                    {
                        if (at + 1 < text.Length && text[at + 1] == q)
                        {
                            value.Append(q);
                            at += 2;
                            continue;
                        }
                        at++;
                        break;
                    }
                    value.Append(text[at++]);
                }
                values.Add(value.ToString());
                if (at == text.Length)
                {
                    return values;
                }
                if (!text.AsSpan(at).StartsWith(delimiter, StringComparison.Ordinal))
                {
                    return null;
                }
                at += delimiter.Length;
                continue;
            }
            var next = text.IndexOf(delimiter, at, StringComparison.Ordinal);
            if (next < 0)
            {
                values.Add(text[at..]);
                return values;
            }
            values.Add(text[at..next]);
            at = next + delimiter.Length;
        }
    }

    private static (string, Func<Draft, string?>) ReadStep(JsonElement step, string at)
    {
        if (step.ValueKind != JsonValueKind.Object)
        {
            throw new PipelineDefinitionException($"{at} must be an object with a 'type'");
        }
        var type = RequiredString(step, "type", at);
        var name = $"{at} ({type})";
        switch (type)
        {
            case "time":
                {
                    var field = RequiredString(step, "field", at);
                    var format = OptionalString(step, "format", at) ?? "iso8601";
                    var zone = Zone(OptionalString(step, "timezone", at) ?? "UTC", at);
                    var remove = !step.TryGetProperty("remove", out var removeElement) || removeElement.ValueKind != JsonValueKind.False;
                    return (name, draft =>
                    {
                        var fields = draft.Fields;
                        var index = fields.FindIndex(f => f.Name == field);
                        if (index < 0)
                        {
                            return $"no field '{field}'";
                        }
                        if (!TryReadTime(fields[index].Value, format, zone, out var ticks))
                        {
                            return $"cannot read '{fields[index].Value.SearchText}' as a time in the format {format}";
                        }
                        if (remove)
                        {
                            fields.RemoveAt(index);
                        }
                        draft.Timestamp = ticks;
                        return null;
                    }
                    );
                }
            case "convert":
                {
                    var field = RequiredString(step, "field", at);
                    var to = RequiredString(step, "to", at);
                    if (to is not ("int" or "float" or "bool" or "time"))
                    {
                        throw new PipelineDefinitionException($"{at}.to '{to}' is not known: use int, float, bool or time");
                    }
                    return (name, draft =>
                    {
                        var fields = draft.Fields;
                        var index = fields.FindIndex(f => f.Name == field);
                        if (index < 0)
                        {
                            return null;
                        }
                        var text = fields[index].Value.SearchText ?? "";
                        FieldValue? converted = to switch
                        {
                            "int" when long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => FieldValue.FromLong(l),
                            "int" when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == Math.Truncate(d) && Math.Abs(d) < 9e18 => FieldValue.FromLong((long)d),
                            "float" when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) => FieldValue.FromDouble(d),
                            "bool" when text.ToLowerInvariant() is "true" or "yes" or "on" or "1" => FieldValue.True,
                            "bool" when text.ToLowerInvariant() is "false" or "no" or "off" or "0" => FieldValue.False,
                            "time" when EventDecoder.TryReadTimestamp(fields[index].Value, out var ticks) => FieldValue.FromString(new DateTime(ticks, DateTimeKind.Utc).ToString("O", CultureInfo.InvariantCulture)),
                            _ => null,
                        };
                        if (converted is null)
                        {
                            return $"'{field}' = '{text}' is not a {to}; kept as it was";
                        }
                        fields[index] = new Field(field, converted.Value);
                        return null;
                    }
                    );
                }
            case "rename":
                {
                    var field = RequiredString(step, "field", at);
                    var to = RequiredString(step, "to", at);
                    return (name, draft =>
                    {
                        var fields = draft.Fields;
                        var index = fields.FindIndex(f => f.Name == field);
                        if (index < 0)
                        {
                            return null;
                        }
                        var value = fields[index].Value;
                        fields.RemoveAt(index);
                        fields.RemoveAll(f => f.Name == to);
                        fields.Add(new Field(to, value));
                        return null;
                    }
                    );
                }
            case "drop":
            case "keep":
                {
                    var names = new HashSet<string>(StringList(step, "fields", at), StringComparer.Ordinal);
                    var keep = type == "keep";
                    return (name, draft =>
                    {
                        var fields = draft.Fields;
                        // The pipeline's own error field always stays.
                        fields.RemoveAll(f => f.Name != ErrorField && names.Contains(f.Name) != keep);
                        return null;
                    }
                    );
                }
            case "add":
                {
                    if (!step.TryGetProperty("fields", out var added) || added.ValueKind != JsonValueKind.Object)
                    {
                        throw new PipelineDefinitionException($"{at}.fields must be an object of names and values, such as {{\"env\": \"prod\"}}");
                    }
                    var values = new List<Field>();
                    foreach (var property in added.EnumerateObject())
                    {
                        values.Add(new Field(property.Name, property.Value.ValueKind switch
                        {
                            JsonValueKind.String => FieldValue.FromString(property.Value.GetString()!),
                            JsonValueKind.Number => EventDecoder.NumberValue(property.Value),
                            JsonValueKind.True => FieldValue.True,
                            JsonValueKind.False => FieldValue.False,
                            _ => throw new PipelineDefinitionException($"{at}.fields.{property.Name} must be a string, number or boolean"),
                        }));
                    }
                    return (name, draft =>
                    {
                        draft.Fields = Merge(draft.Fields, values);
                        return null;
                    }
                    );
                }
            case "mask":
                {
                    var field = RequiredString(step, "field", at);
                    var pattern = OptionalString(step, "pattern", at);
                    Func<string, string> mask;
                    if (pattern is not null)
                    {
                        Regex regex;
                        try
                        {
                            regex = new Regex(pattern, Options, MatchTimeout);
                        }
                        catch (Exception e) when (e is ArgumentException or NotSupportedException)
                        {
                            throw new PipelineDefinitionException($"{at}.pattern is not a usable regular expression: {e.Message}");
                        }
                        var replacement = OptionalString(step, "replacement", at) ?? "****";
                        var literal = replacement.Replace("$", "$$", StringComparison.Ordinal);
                        // The first match builds the matcher's first states: done here, not against an event's time limit.
                        _ = regex.IsMatch("");
                        mask = text =>
                        {
                            try
                            {
                                return regex.Replace(text, literal);
                            }
                            catch (RegexMatchTimeoutException)
                            {
                                // Fails closed: a value that could not be searched within the time limit is masked whole.
                                return replacement;
                            }
                        };
                    }
                    else
                    {
                        var first = OptionalInt(step, "keep_first", at);
                        var last = OptionalInt(step, "keep_last", at);
                        var with = OptionalString(step, "with", at) ?? "*";
                        if (with.Length != 1)
                        {
                            throw new PipelineDefinitionException($"{at}.with must be one character");
                        }
                        mask = text =>
                        {
                            // Too short to hide anything while keeping both ends: hide it all.
                            if (first + last >= text.Length)
                            {
                                return new string(with[0], text.Length);
                            }
                            return string.Concat(text.AsSpan(0, first), new string(with[0], text.Length - first - last), text.AsSpan(text.Length - last));
                        };
                    }
                    return (name, draft =>
                    {
                        var fields = draft.Fields;
                        var index = fields.FindIndex(f => f.Name == field);
                        if (index < 0)
                        {
                            if (field == MessageField)
                            {
                                draft.Message = mask(draft.Message);
                            }
                            return null;
                        }
                        if (fields[index].Value.SearchText is not { } text)
                        {
                            return null;
                        }
                        fields[index] = new Field(field, FieldValue.FromString(mask(text)));
                        return null;
                    }
                    );
                }
            default:
                throw new PipelineDefinitionException($"{at}.type '{type}' is not known: use time, convert, rename, drop, keep, add or mask");
        }
    }

    /// <summary>
    /// <c>iso8601</c>, <c>epoch</c> (seconds to nanoseconds, told apart by size) or a .NET custom format such as
    /// <c>yyyy-MM-dd HH:mm:ss,fff</c>; a time without an offset is in <paramref name="zone"/>.
    /// </summary>
    private static bool TryReadTime(FieldValue value, string format, TimeZoneInfo zone, out long ticks)
    {
        ticks = 0;
        if (format == "epoch")
        {
            return value.Kind is FieldKind.Long or FieldKind.Double ? EventDecoder.TryReadTimestamp(value, out ticks)
                : long.TryParse(value.SearchText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole) ? EventDecoder.TryReadTimestamp(FieldValue.FromLong(whole), out ticks)
                : double.TryParse(value.SearchText, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && EventDecoder.TryReadTimestamp(FieldValue.FromDouble(number), out ticks);
        }
        var text = value.SearchText;
        if (text is null)
        {
            return false;
        }
        DateTime parsed;
        if (format == "iso8601")
        {
            // Round-trip parsing tells a time with an offset (or Z) from one without.
            if (!DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out parsed))
            {
                return false;
            }
            if (parsed.Kind != DateTimeKind.Unspecified)
            {
                ticks = parsed.ToUniversalTime().Ticks;
                return true;
            }
        }
        else if (DateTimeOffset.TryParseExact(text, format, CultureInfo.InvariantCulture, DateTimeStyles.None, out var exact))
        {
            if (format.Contains('z', StringComparison.Ordinal) || format.Contains('K', StringComparison.Ordinal))
            {
                ticks = exact.UtcTicks;
                return true;
            }
            parsed = exact.DateTime;
        }
        else
        {
            return false;
        }
        var unspecified = DateTime.SpecifyKind(parsed, DateTimeKind.Unspecified);
        ticks = new DateTimeOffset(unspecified, zone.GetUtcOffset(unspecified)).UtcTicks;
        return true;
    }

    private static TimeZoneInfo Zone(string id, string at)
    {
        try
        {
            return id is "UTC" or "Z" ? TimeZoneInfo.Utc : TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (TimeZoneNotFoundException)
        {
            throw new PipelineDefinitionException($"{at}.timezone '{id}' is not a known time zone (use an IANA name such as Europe/Paris)");
        }
    }

    private static string RequiredString(JsonElement element, string name, string at) =>
        OptionalString(element, name, at) ?? throw new PipelineDefinitionException($"{at}.{name} is required");

    private static string? OptionalString(JsonElement element, string name, string at)
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw new PipelineDefinitionException($"{at}.{name} must be a string");
    }

    private static int OptionalInt(JsonElement element, string name, string at)
    {
        if (!element.TryGetProperty(name, out var value))
        {
            return 0;
        }
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) && n >= 0 ? n : throw new PipelineDefinitionException($"{at}.{name} must be a whole number from 0");
    }

    private static List<string> StringList(JsonElement element, string name, string at)
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.Array || value.GetArrayLength() == 0
            || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String || v.GetString()!.Length == 0))
        {
            throw new PipelineDefinitionException($"{at}.{name} must be a non-empty array of field names");
        }
        return [.. value.EnumerateArray().Select(v => v.GetString()!)];
    }
}

/// <summary>A pipeline definition that cannot be used; the message names the place.</summary>
public sealed class PipelineDefinitionException(string message) : Exception(message);
