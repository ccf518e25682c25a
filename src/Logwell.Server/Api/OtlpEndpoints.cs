using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Logwell.Core.Events;
using Logwell.Server.Hosting;
using Logwell.Server.Otlp;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Logwell.Server.Api;

/// <summary>
/// <c>POST /v1/logs</c>: OTLP/HTTP logs, as protobuf (<c>application/x-protobuf</c>) or JSON, into
/// <see cref="LogwellOptions.OtlpIndexSet"/>. A record becomes an event: its time (or observed time), <c>level</c> from
/// the severity text (or number), the body as the message (a structured body also as <c>body.*</c> fields), its
/// attributes, its resource's attributes (<c>service.name</c>, ...), <c>scope.name</c>/<c>scope.version</c>, and
/// <c>trace_id</c>/<c>span_id</c> in hex. Errors are a <c>google.rpc.Status</c> in the request's encoding.
/// </summary>
internal static class OtlpEndpoints
{
    private static readonly JsonParser Json = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
    private static readonly string[] Severities = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

    public static void Map(IEndpointRouteBuilder routes) =>
        routes.MapPost("/v1/logs", ExportAsync).WithMetadata(Permission.InRequest(Actions.Ingest));

    private static async Task ExportAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<LogwellOptions>>().Value;
        var media = IngestPath.MediaType(context);
        var json = media == "application/json";
        if (!json && media != "application/x-protobuf")
        {
            await WriteStatusAsync(context, json, StatusCodes.Status415UnsupportedMediaType, $"Content-Type '{context.Request.ContentType}' is not supported: send application/x-protobuf or application/json").ConfigureAwait(false);
            return;
        }
        // OTLP exporters retry 429 and 503 (after Retry-After).
        var (store, body, length, refused) = await IngestPath.BeginAsync(context, options, options.OtlpIndexSet).ConfigureAwait(false);
        if (refused is not null)
        {
            refused.SetHeaders(context);
            await WriteStatusAsync(context, json, refused.Status, refused.Message).ConfigureAwait(false);
            return;
        }
        ExportLogsServiceRequest request;
        try
        {
            request = json
                ? Json.Parse<ExportLogsServiceRequest>(Encoding.UTF8.GetString(body!, 0, length))
                : ExportLogsServiceRequest.Parser.ParseFrom(body!, 0, length);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            await WriteStatusAsync(context, json, 400, $"cannot read the OTLP {(json ? "JSON" : "protobuf")} body: {e.Message}").ConfigureAwait(false);
            return;
        }
        var events = ToEvents(request, context.RequestServices.GetTime().GetUtcNow(), json);
        // A record over the line limit fails alone, reported as OTLP's partial success.
        var rejected = events.RemoveAll(e => Encoding.UTF8.GetByteCount(e.Message) > options.MaxLineBytes);
        if (await IngestPath.AppendAsync(context, store!, events).ConfigureAwait(false) is { } failed)
        {
            await WriteStatusAsync(context, json, failed.Status, failed.Message).ConfigureAwait(false);
            return;
        }
        var response = new ExportLogsServiceResponse();
        if (rejected > 0)
        {
            response.PartialSuccess = new ExportLogsPartialSuccess
            {
                RejectedLogRecords = rejected,
                ErrorMessage = $"{rejected} records have a body over the limit of {options.MaxLineBytes} bytes (MaxLineBytes)",
            };
        }
        context.Response.StatusCode = 200;
        if (json)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonFormatter.Default.Format(response), context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            context.Response.ContentType = "application/x-protobuf";
            await context.Response.Body.WriteAsync(response.ToByteArray(), context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>The events of an export request, in its order.</summary>
    internal static List<LogEvent> ToEvents(ExportLogsServiceRequest request, DateTimeOffset received, bool fromJson)
    {
        var events = new List<LogEvent>();
        foreach (var resourceLogs in request.ResourceLogs)
        {
            var resource = new List<Field>();
            foreach (var attribute in resourceLogs.Resource?.Attributes ?? [])
            {
                Add(resource, attribute.Key, attribute.Value);
            }
            foreach (var scopeLogs in resourceLogs.ScopeLogs)
            {
                foreach (var record in scopeLogs.LogRecords)
                {
                    var fields = new List<Field>();
                    var severity = record.SeverityText.Length > 0 ? record.SeverityText
                        : record.SeverityNumber is >= 1 and <= 24 ? Severities[(record.SeverityNumber - 1) / 4]
                        : null;
                    if (severity is not null)
                    {
                        fields.Add(new Field("level", FieldValue.FromString(severity)));
                    }
                    if (record.SeverityNumber != 0)
                    {
                        fields.Add(new Field("severity_number", FieldValue.FromLong(record.SeverityNumber)));
                    }
                    foreach (var attribute in record.Attributes)
                    {
                        Add(fields, attribute.Key, attribute.Value);
                    }
                    if (record.EventName.Length > 0)
                    {
                        fields.Add(new Field("event_name", FieldValue.FromString(record.EventName)));
                    }
                    if (record.TraceId.Length > 0)
                    {
                        fields.Add(new Field("trace_id", FieldValue.FromString(Id(record.TraceId, fromJson))));
                    }
                    if (record.SpanId.Length > 0)
                    {
                        fields.Add(new Field("span_id", FieldValue.FromString(Id(record.SpanId, fromJson))));
                    }
                    if (scopeLogs.Scope is { } scope && scope.Name.Length > 0)
                    {
                        fields.Add(new Field("scope.name", FieldValue.FromString(scope.Name)));
                        if (scope.Version.Length > 0)
                        {
                            fields.Add(new Field("scope.version", FieldValue.FromString(scope.Version)));
                        }
                    }
                    var message = "";
                    if (record.Body is { } body)
                    {
                        if (body.ValueCase == AnyValue.ValueOneofCase.KvlistValue)
                        {
                            Add(fields, "body", body);
                        }
                        message = body.ValueCase == AnyValue.ValueOneofCase.StringValue ? body.StringValue : Text(body);
                    }
                    // A record's own attribute wins over its resource's attribute of the same name.
                    foreach (var field in resource)
                    {
                        if (!fields.Exists(f => f.Name == field.Name))
                        {
                            fields.Add(field);
                        }
                    }
                    var nanos = record.TimeUnixNano != 0 ? record.TimeUnixNano : record.ObservedTimeUnixNano;
                    var ticks = nanos != 0 && nanos / 100 <= (ulong)(DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks)
                        ? DateTime.UnixEpoch.Ticks + (long)(nanos / 100)
                        : received.UtcTicks;
                    events.Add(LogEvent.Received(ticks, message, CollectionsMarshal.AsSpan(fields)));
                }
            }
        }
        return events;
    }

    /// <summary>
    /// Trace and span ids as hex. OTLP/JSON writes them as hex text, which the JSON parser read as base64: encoding
    /// those bytes again gives the text back.
    /// </summary>
    private static string Id(ByteString id, bool fromJson) =>
        fromJson ? id.ToBase64().ToLowerInvariant() : Convert.ToHexStringLower(id.Span);

    /// <summary>Adds a value: maps become dotted names, arrays JSON text, bytes base64.</summary>
    private static void Add(List<Field> fields, string name, AnyValue? value)
    {
        switch (value?.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                fields.Add(new Field(name, FieldValue.FromString(value.StringValue)));
                break;
            case AnyValue.ValueOneofCase.BoolValue:
                fields.Add(new Field(name, FieldValue.FromBool(value.BoolValue)));
                break;
            case AnyValue.ValueOneofCase.IntValue:
                fields.Add(new Field(name, FieldValue.FromLong(value.IntValue)));
                break;
            case AnyValue.ValueOneofCase.DoubleValue:
                fields.Add(new Field(name, FieldValue.FromDouble(value.DoubleValue)));
                break;
            case AnyValue.ValueOneofCase.BytesValue:
                fields.Add(new Field(name, FieldValue.FromString(value.BytesValue.ToBase64())));
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                foreach (var entry in value.KvlistValue.Values)
                {
                    Add(fields, name + "." + entry.Key, entry.Value);
                }
                break;
            case AnyValue.ValueOneofCase.ArrayValue:
                fields.Add(new Field(name, FieldValue.FromJson(Text(value))));
                break;
            default:
                fields.Add(new Field(name, FieldValue.Null));
                break;
        }
    }

    /// <summary>A value as JSON text (a string as itself).</summary>
    private static string Text(AnyValue value)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, JsonOutput.WriterOptions))
        {
            Write(writer, value);
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Write(Utf8JsonWriter writer, AnyValue? value)
    {
        switch (value?.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                writer.WriteStringValue(value.StringValue);
                break;
            case AnyValue.ValueOneofCase.BoolValue:
                writer.WriteBooleanValue(value.BoolValue);
                break;
            case AnyValue.ValueOneofCase.IntValue:
                writer.WriteNumberValue(value.IntValue);
                break;
            case AnyValue.ValueOneofCase.DoubleValue when double.IsFinite(value.DoubleValue):
                writer.WriteNumberValue(value.DoubleValue);
                break;
            case AnyValue.ValueOneofCase.BytesValue:
                writer.WriteStringValue(value.BytesValue.ToBase64());
                break;
            case AnyValue.ValueOneofCase.ArrayValue:
                writer.WriteStartArray();
                foreach (var item in value.ArrayValue.Values)
                {
                    Write(writer, item);
                }
                writer.WriteEndArray();
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                writer.WriteStartObject();
                foreach (var entry in value.KvlistValue.Values)
                {
                    writer.WritePropertyName(entry.Key);
                    Write(writer, entry.Value);
                }
                writer.WriteEndObject();
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }

    private static async Task WriteStatusAsync(HttpContext context, bool json, int status, string message)
    {
        // google.rpc.Code: INVALID_ARGUMENT for the client's mistakes, RESOURCE_EXHAUSTED and UNAVAILABLE to retry.
        var code = status switch
        {
            429 => 8,
            503 => 14,
            404 => 5,
            _ => 3,
        };
        // The message may quote the client's input, which may not be valid text.
        var answer = new Status { Code = code, Message = Logwell.Core.Text.ValidText.Of(message) };
        context.Response.StatusCode = status;
        if (json)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonFormatter.Default.Format(answer), context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            context.Response.ContentType = "application/x-protobuf";
            await context.Response.Body.WriteAsync(answer.ToByteArray(), context.RequestAborted).ConfigureAwait(false);
        }
    }
}
