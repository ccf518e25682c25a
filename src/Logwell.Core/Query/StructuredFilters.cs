using System.Text;
using System.Text.Json;

namespace Logwell.Core.Query;

/// <summary>
/// The search box's structured filters, as the reference system sends them next to the query:
/// <c>[{"field": "level", "op": "is", "value": "ERROR"}, ...]</c>, each one a clause that every result must satisfy.
/// Operators: <c>is</c>/<c>is_not</c> (the whole value equals: numbers as numbers, text exactly, booleans),
/// <c>contains</c>/<c>not_contains</c> (the text holds the value, ignoring case), <c>exists</c>/<c>not_exists</c>,
/// <c>gt</c>, <c>gte</c>, <c>lt</c>, <c>lte</c> and <c>between</c> (<c>"value": [low, high]</c>, both included).
/// </summary>
public static class StructuredFilters
{
    public const string Operators = "is, is_not, contains, not_contains, exists, not_exists, gt, gte, lt, lte, between";

    /// <summary>The filters as clauses to AND with the query; an empty list for none. False with the reason when malformed.</summary>
    public static bool TryParse(string? json, out List<QueryNode> clauses, out string? error)
    {
        clauses = [];
        error = null;
        if (string.IsNullOrWhiteSpace(json))
        {
            return true;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            // ArgumentException: text that is not valid UTF-16 (a lone surrogate).
            error = $"'filters' is not JSON: {e.Message}";
            return false;
        }
        using (document)
        {
            try
            {
                return TryRead(document.RootElement, clauses, out error);
            }
            catch (InvalidOperationException e)
            {
                // Valid JSON syntax that is not valid text, such as a lone UTF-16 surrogate escape.
                error = $"'filters' holds an invalid JSON value: {e.Message}";
                return false;
            }
        }
    }

    private static bool TryRead(JsonElement root, List<QueryNode> clauses, out string? error)
    {
        error = null;
        if (root.ValueKind != JsonValueKind.Array)
        {
            error = "'filters' must be a JSON array of {\"field\", \"op\", \"value\"} objects";
            return false;
        }
        var index = 0;
        foreach (var filter in root.EnumerateArray())
        {
            var clause = Clause(filter, out var reason);
            if (clause is null)
            {
                error = $"filters[{index}]: {reason}";
                return false;
            }
            clauses.Add(clause);
            index++;
        }
        return true;
    }

    private static QueryNode? Clause(JsonElement filter, out string reason)
    {
        reason = "";
        if (filter.ValueKind != JsonValueKind.Object)
        {
            reason = "must be an object with \"field\", \"op\" and \"value\"";
            return null;
        }
        if (!filter.TryGetProperty("field", out var fieldElement) || fieldElement.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(fieldElement.GetString()))
        {
            reason = "\"field\" must be a field name";
            return null;
        }
        var field = fieldElement.GetString()!;
        var op = filter.TryGetProperty("op", out var opElement) && opElement.ValueKind == JsonValueKind.String ? opElement.GetString()! : "";
        filter.TryGetProperty("value", out var value);
        switch (op)
        {
            case "exists":
                return new ExistsNode(field);
            case "not_exists":
                return new NotNode(new ExistsNode(field));
            case "is" or "is_not":
                var equals = Equals(field, value, out reason);
                return equals is null ? null : op == "is" ? equals : new NotNode(equals);
            case "contains" or "not_contains":
                if (Scalar(value) is not { Length: > 0 } text)
                {
                    reason = $"'{op}' needs a non-empty \"value\"";
                    return null;
                }
                var contains = new WildcardNode(field, "*" + EscapeWildcards(text.ToLowerInvariant()) + "*");
                if (TokenPattern.Error(contains) is { } error)
                {
                    reason = $"'{op}' value too complex to search for: {error}";
                    return null;
                }
                return op == "contains" ? contains : new NotNode(contains);
            case "gt" or "gte" or "lt" or "lte":
                if (Bound(field, value, op, out reason) is not { } bound)
                {
                    return null;
                }
                return op switch
                {
                    "gt" => new RangeNode(field, bound, null, false, false),
                    "gte" => new RangeNode(field, bound, null, true, false),
                    "lt" => new RangeNode(field, null, bound, false, false),
                    _ => new RangeNode(field, null, bound, false, true),
                };
            case "between":
                if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 2)
                {
                    reason = "'between' needs \"value\": [low, high]";
                    return null;
                }
                var low = Bound(field, value[0], op, out reason);
                var high = low is null ? null : Bound(field, value[1], op, out reason);
                return low is null || high is null ? null : new RangeNode(field, low, high, true, true);
            default:
                reason = $"'op' must be one of {Operators}";
                return null;
        }
    }

    private static QueryNode? Equals(string field, JsonElement value, out string reason)
    {
        reason = "";
        switch (value.ValueKind)
        {
            case JsonValueKind.True or JsonValueKind.False:
                return new TermNode(field, value.ValueKind == JsonValueKind.True ? "true" : "false");
            case JsonValueKind.String or JsonValueKind.Number:
                var text = Scalar(value)!;
                if (RangeMatcher.TimestampFields.Contains(field) && !RangeMatcher.IsTimeBound(text, out var timeError))
                {
                    reason = $"'{text}' is not a time: {timeError}";
                    return null;
                }
                return new RangeNode(field, text, text, true, true);
            default:
                reason = "'is' needs a string, number or boolean \"value\"";
                return null;
        }
    }

    private static string? Bound(string field, JsonElement value, string op, out string reason)
    {
        reason = "";
        var text = value.ValueKind is JsonValueKind.String or JsonValueKind.Number ? Scalar(value) : null;
        if (string.IsNullOrEmpty(text))
        {
            reason = $"'{op}' needs a number, a time or a string";
            return null;
        }
        if (RangeMatcher.TimestampFields.Contains(field) && !RangeMatcher.IsTimeBound(text, out var timeError))
        {
            reason = $"'{text}' is not a time: {timeError}";
            return null;
        }
        return text;
    }

    private static string? Scalar(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => null,
    };

    private static string EscapeWildcards(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '*' or '?' or '\\')
            {
                sb.Append('\\');
            }
            sb.Append(c);
        }
        return sb.ToString();
    }
}
