using System.Text.Json;
using System.Text.Json.Nodes;
using Logwell.Core.Cleaning;
using Logwell.Core.Events;

namespace Logwell.Server.Security;

/// <summary>
/// An index set's masking rules at read time: whoever lacks <c>view_raw</c> on it reads the values masked, in every
/// read API, while the stored events keep the originals. A rule is a cleaning pipeline's <c>mask</c> step:
/// <c>{"rules": [{"field": "card", "keep_first": 4, "keep_last": 4}, {"field": "message", "pattern": "card=[0-9]+", "replacement": "card=****"}]}</c>.
/// </summary>
public sealed class ReadMask
{
    private readonly Func<LogEvent, LogEvent> _apply;
    private readonly IReadOnlySet<string>? _fields;

    private ReadMask(string definition, Func<LogEvent, LogEvent> apply, IReadOnlySet<string>? fields)
    {
        Definition = definition;
        _apply = apply;
        _fields = fields;
    }

    /// <summary>Masks the message and every field whole: what stored rules that no longer read stand for (fails closed).</summary>
    public static ReadMask Everything { get; } = new("{\"rules\": \"*\"}",
        evt => new LogEvent(evt.Timestamp, "****", [.. evt.Fields.Select(f => new Field(f.Name, FieldValue.FromString("****")))]) { Seq = evt.Seq }, null);

    /// <summary>The rules as given.</summary>
    public string Definition { get; }

    /// <summary>Whether the rules mask <paramref name="field"/> (<c>message</c> for the message).</summary>
    public bool Masks(string field) => _fields is null || _fields.Contains(field);

    /// <summary>The event as a viewer without <c>view_raw</c> reads it (its id kept).</summary>
    public LogEvent Apply(LogEvent evt) => _apply(evt);

    /// <summary>Reads rules; <see cref="AccessException"/> says what is wrong and where.</summary>
    public static ReadMask Parse(string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new AccessException($"the masking rules are not valid JSON: {e.Message}");
        }
        if (root is not JsonObject rootObject || rootObject.Count != 1 || rootObject["rules"] is not JsonArray rules)
        {
            throw new AccessException("masking rules are {\"rules\": [{\"field\": \"card\", \"keep_first\": 4, \"keep_last\": 4}, {\"field\": \"message\", \"pattern\": \"...\", \"replacement\": \"****\"}]}");
        }
        var steps = new JsonArray();
        var fields = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < rules.Count; i++)
        {
            if (rules[i] is not JsonObject rule || rule.ContainsKey("type"))
            {
                throw new AccessException($"rules[{i}] must be an object with 'field' and either 'keep_first'/'keep_last'/'with' or 'pattern'/'replacement' (no 'type': every rule masks)");
            }
            var step = (JsonObject)rule.DeepClone();
            step.Insert(0, "type", "mask");
            steps.Add(step);
            if (rule["field"] is JsonValue field && field.TryGetValue<string>(out var name))
            {
                fields.Add(name);
            }
        }
        try
        {
            var pipeline = CleaningPipeline.Parse(new JsonObject { ["steps"] = steps }.ToJsonString());
            return new ReadMask(json, pipeline.Apply, fields);
        }
        catch (PipelineDefinitionException e)
        {
            throw new AccessException(e.Message.Replace("steps[", "rules[", StringComparison.Ordinal));
        }
    }
}
