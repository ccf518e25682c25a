using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Logwell.Storage.ClickHouse;

/// <summary>A statement ClickHouse refused: its error code (62 syntax, 60 unknown table, 319 "unknown status", ...) and message.</summary>
public sealed class ClickHouseException(int code, string message, int httpStatus) : Exception($"ClickHouse error {code}: {message}")
{
    public int Code { get; } = code;

    public int HttpStatus { get; } = httpStatus;

    /// <summary>The message as the server wrote it.</summary>
    public string ServerMessage { get; } = message;
}

/// <summary>
/// A thin client over ClickHouse's HTTP interface: statements in the request body, settings as URL parameters, rows in
/// and out as JSONEachRow. Written here rather than taken from a driver because the maintained .NET drivers
/// (ClickHouse.Driver 1.5, ClickHouse.Client 7.14) ask servers for <c>RowBinaryWithNamesAndTypes</c> and send settings
/// that ClickHouse 18.16, Debian's package, does not know, and fail against it beyond DDL; plain HTTP with JSONEachRow
/// works on 18.16 and on current releases alike. Values enter statements only through <see cref="ClickHouseSql"/>.
/// </summary>
public sealed partial class ClickHouseHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _database;

    /// <param name="endpoint">The server's HTTP interface, <c>http://host:8123/</c>.</param>
    public ClickHouseHttp(Uri endpoint, string user = "default", string password = "", string database = "default", HttpMessageHandler? handler = null, TimeSpan? timeout = null)
    {
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) })
        {
            BaseAddress = endpoint,
            Timeout = timeout ?? TimeSpan.FromMinutes(5),
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}")));
        _database = database;
    }

    /// <summary>Runs a statement (DDL, INSERT … SELECT, a SELECT in a format it names) and answers the body as text.</summary>
    public async Task<string> ExecuteAsync(string sql, IReadOnlyDictionary<string, string>? settings = null, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(sql, System.Text.Encoding.UTF8);
        using var response = await SendAsync(Url(null, settings), content, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The rows of a SELECT (without a FORMAT clause: JSONEachRow is added), read as they arrive. 64-bit integers come
    /// as JSON numbers on every release (releases differ in whether they quote them by default).
    /// </summary>
    public async IAsyncEnumerable<JsonElement> QueryAsync(string sql, IReadOnlyDictionary<string, string>? settings = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var withNumbers = new Dictionary<string, string>(settings ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        withNumbers.TryAdd("output_format_json_quote_64bit_integers", "0");
        using var content = new StringContent(sql + "\nFORMAT JSONEachRow", System.Text.Encoding.UTF8);
        // Rows are read as they arrive: a reader that stops early does not wait for (or hold) the rest of the answer.
        using var response = await SendAsync(Url(null, withNumbers), content, cancellationToken, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), System.Text.Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }
            using var document = JsonDocument.Parse(line);
            yield return document.RootElement.Clone();
        }
    }

    /// <summary>Inserts rows written as JSONEachRow (one JSON object per line) into <paramref name="table"/>: one block, answered once ClickHouse has it (and its quorum, when the settings ask for one).</summary>
    public async Task InsertAsync(string table, ReadOnlyMemory<byte> jsonEachRow, IReadOnlyDictionary<string, string>? settings = null, CancellationToken cancellationToken = default)
    {
        using var content = new ReadOnlyMemoryContent(jsonEachRow);
        using var response = await SendAsync(Url($"INSERT INTO {ClickHouseSql.Identifier(table)} FORMAT JSONEachRow", settings), content, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the answer of a statement that names its own format (<c>… FORMAT Native</c>) to <paramref name="output"/> as it arrives.</summary>
    public async Task ExportAsync(string sql, Stream output, IReadOnlyDictionary<string, string>? settings = null, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(sql, System.Text.Encoding.UTF8);
        using var response = await SendAsync(Url(null, settings), content, cancellationToken, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        await response.Content.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Inserts rows written in <paramref name="format"/> (Native, JSONEachRow) from <paramref name="body"/> into <paramref name="table"/>.</summary>
    public async Task ImportAsync(string table, string format, Stream body, CancellationToken cancellationToken = default)
    {
        using var content = new StreamContent(body, 1 << 16);
        using var response = await SendAsync(Url($"INSERT INTO {ClickHouseSql.Identifier(table)} FORMAT {format}", null), content, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The server's version (18.16.1, 26.7.…), to choose the features a statement may use.</summary>
    public async Task<Version> ServerVersionAsync(CancellationToken cancellationToken = default)
    {
        var text = (await ExecuteAsync("SELECT version()", cancellationToken: cancellationToken).ConfigureAwait(false)).Trim();
        var parts = text.Split('.');
        return parts.Length >= 2 && parts.Take(Math.Min(4, parts.Length)).All(p => int.TryParse(p, out _))
            ? new Version(string.Join('.', parts.Take(Math.Min(4, parts.Length))))
            : throw new ClickHouseException(0, $"cannot read the server version '{text}'", 200);
    }

    private string Url(string? query, IReadOnlyDictionary<string, string>? settings)
    {
        var url = new StringBuilder("?database=").Append(Uri.EscapeDataString(_database));
        if (query is not null)
        {
            url.Append("&query=").Append(Uri.EscapeDataString(query));
        }
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
        {
            url.Append('&').Append(Uri.EscapeDataString(name)).Append('=').Append(Uri.EscapeDataString(value));
        }
        return url.ToString();
    }

    private async Task<HttpResponseMessage> SendAsync(string url, HttpContent content, CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = content };
        var response = await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var text = (await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)).Trim();
            // "Code: 62, e.displayText() = DB::Exception: …" (18.16) or "Code: 62. DB::Exception: …" (current releases).
            var match = ErrorCode().Match(text);
            throw new ClickHouseException(match.Success ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0, text, (int)response.StatusCode);
        }
    }

    [GeneratedRegex(@"Code: (\d+)")]
    private static partial Regex ErrorCode();

    public void Dispose() => _http.Dispose();
}
