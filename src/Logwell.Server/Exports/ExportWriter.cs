using System.Globalization;
using System.Text;
using System.Text.Json;
using Logwell.Core.Events;
using Logwell.Server.Api;

namespace Logwell.Server.Exports;

/// <summary>
/// Writes events as CSV (RFC 4180, a header row, UTF-8) or NDJSON (one flat object per line, ready to ingest again).
/// Columns: the requested fields, where <c>t</c> is the time, <c>message</c> the message and <c>id</c> the event's id;
/// without a field list, <c>t</c>, <c>message</c> and every field of the first events, sorted by name (CSV), or every
/// field of each event (NDJSON).
/// </summary>
public sealed class ExportWriter : IDisposable
{
    public static readonly IReadOnlySet<string> Formats = new HashSet<string>(StringComparer.Ordinal) { "csv", "ndjson" };

    private readonly Stream _output;
    private readonly string _format;
    private readonly Utf8JsonWriter _json;
    private readonly StringBuilder _line = new();
    private IReadOnlyList<string>? _columns;

    public ExportWriter(Stream output, string format, IReadOnlyList<string> fields)
    {
        if (!Formats.Contains(format))
        {
            throw new ArgumentException($"unknown export format '{format}': csv or ndjson");
        }
        _output = output;
        _format = format;
        _columns = fields.Count > 0 ? fields : null;
        _json = new Utf8JsonWriter(output, JsonOutput.WriterOptions);
    }

    public static string ContentType(string format) => format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";

    /// <summary>Writes a page; the first page of a CSV export without a field list fixes its columns.</summary>
    public void Write(IReadOnlyList<LogEvent> events)
    {
        if (_format == "csv")
        {
            if (_columns is null)
            {
                var names = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var evt in events)
                {
                    foreach (var field in evt.Fields)
                    {
                        names.Add(field.Name);
                    }
                }
                names.Remove("t");
                names.Remove("message");
                _columns = ["t", "message", .. names];
            }
            if (!HeaderWritten)
            {
                WriteCsvLine(_columns);
                HeaderWritten = true;
            }
            foreach (var evt in events)
            {
                WriteCsvLine(_columns.Select(column => Text(evt, column)));
            }
            return;
        }
        foreach (var evt in events)
        {
            _json.Reset();
            _json.WriteStartObject();
            if (_columns is null)
            {
                _json.WriteString("t", JsonOutput.FormatTime(evt.Timestamp));
                _json.WriteString("message", evt.Message);
                foreach (var field in evt.Fields)
                {
                    _json.WritePropertyName(field.Name);
                    JsonOutput.WriteValue(_json, field.Value);
                }
            }
            else
            {
                foreach (var column in _columns)
                {
                    switch (column)
                    {
                        case "t":
                            _json.WriteString("t", JsonOutput.FormatTime(evt.Timestamp));
                            break;
                        case "id":
                            _json.WriteString("id", JsonOutput.FormatId(evt.Seq));
                            break;
                        case "message" when !evt.TryGetField("message", out _):
                            _json.WriteString("message", evt.Message);
                            break;
                        default:
                            if (evt.TryGetField(column, out var value))
                            {
                                _json.WritePropertyName(column);
                                JsonOutput.WriteValue(_json, value);
                            }
                            break;
                    }
                }
            }
            _json.WriteEndObject();
            _json.Flush();
            _output.WriteByte((byte)'\n');
        }
    }

    /// <summary>Whether the CSV header is out (an export with no match still gets it, through <see cref="Finish"/>).</summary>
    private bool HeaderWritten { get; set; }

    /// <summary>Writes what an empty export still has (the CSV header).</summary>
    public void Finish()
    {
        if (_format == "csv" && !HeaderWritten)
        {
            WriteCsvLine(_columns ?? ["t", "message"]);
            HeaderWritten = true;
        }
        _output.Flush();
    }

    private static string Text(LogEvent evt, string column) => column switch
    {
        "t" => JsonOutput.FormatTime(evt.Timestamp),
        "id" => JsonOutput.FormatId(evt.Seq),
        "message" when !evt.TryGetField("message", out _) => evt.Message,
        _ => evt.TryGetField(column, out var value) ? value.Kind switch
        {
            FieldKind.Null => "",
            FieldKind.Double => value.Double.ToString("R", CultureInfo.InvariantCulture),
            _ => value.SearchText ?? "",
        } : "",
    };

    private void WriteCsvLine(IEnumerable<string> cells)
    {
        _line.Clear();
        var first = true;
        foreach (var cell in cells)
        {
            if (!first)
            {
                _line.Append(',');
            }
            first = false;
            if (cell.AsSpan().IndexOfAny(",\"\r\n") >= 0)
            {
                _line.Append('"').Append(cell.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
            }
            else
            {
                _line.Append(cell);
            }
        }
        _line.Append("\r\n");
        var bytes = Encoding.UTF8.GetBytes(_line.ToString());
        _output.Write(bytes);
    }

    public void Dispose() => _json.Dispose();
}
