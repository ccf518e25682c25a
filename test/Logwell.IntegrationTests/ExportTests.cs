using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using static Logwell.IntegrationTests.HttpApiTests;

namespace Logwell.IntegrationTests;

/// <summary>Exports of a known set of events: asynchronous (a task writes a gzip file) and streamed at once.</summary>
[Trait(Logwell.Tests.DateSensitive.Category, Logwell.Tests.DateSensitive.Value)]
public sealed class ExportTests
{
    private sealed record Source(DateTime Time, int N, string Level, string Host, string Message);

    private static readonly DateTime Start = Logwell.Tests.EventTime.At("08:00:00").UtcDateTime;

    /// <summary>Events with distinct times, awkward messages (commas, quotes, line breaks, non-ASCII) and a level every third.</summary>
    private static List<Source> MakeEvents(int count) =>
        [.. Enumerable.Range(0, count).Select(i => new Source(
            Start.AddMilliseconds(i * 997L),
            i,
            i % 3 == 0 ? "ERROR" : "INFO",
            $"web-{i % 7}",
            (i % 5) switch
            {
                0 => $"request {i} failed, code \"E{i}\"",
                1 => $"multi\nline {i}\r\nend",
                2 => $"ünïcödé {i} — ok",
                _ => $"plain {i}",
            }))];

    private static async Task IngestAsync(HttpClient http, string index, IEnumerable<Source> events)
    {
        foreach (var chunk in events.Chunk(2_000))
        {
            var body = new StringBuilder();
            foreach (var e in chunk)
            {
                body.Append(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["t"] = e.Time.ToString("O", CultureInfo.InvariantCulture),
                    ["message"] = e.Message,
                    ["n"] = e.N,
                    ["level"] = e.Level,
                    ["host"] = e.Host,
                })).Append('\n');
            }
            var result = await HttpApiTests.IngestAsync(http, index, body.ToString());
            Assert.Equal(chunk.Length, result.GetProperty("accepted").GetInt32());
        }
    }

    private static string Time(DateTime time) => time.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>RFC 4180: quoted cells may hold commas, doubled quotes and line breaks; rows end with CRLF.</summary>
    internal static List<string[]> ParseCsv(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var cell = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '"')
            {
                i++;
                while (true)
                {
                    if (text[i] == '"' && i + 1 < text.Length && text[i + 1] == '"')
                    {
                        cell.Append('"');
                        i += 2;
                    }
                    else if (text[i] == '"')
                    {
                        i++;
                        break;
                    }
                    else
                    {
                        cell.Append(text[i++]);
                    }
                }
            }
            else if (text[i] == ',')
            {
                row.Add(cell.ToString());
                cell.Clear();
                i++;
            }
            else if (text[i] == '\r' && text[i + 1] == '\n')
            {
                row.Add(cell.ToString());
                cell.Clear();
                rows.Add([.. row]);
                row.Clear();
                i += 2;
            }
            else
            {
                cell.Append(text[i++]);
            }
        }
        Assert.Empty(row);
        return rows;
    }

    internal static string Gunzip(byte[] bytes)
    {
        using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static async Task<JsonElement> CreateAsync(HttpClient http, object request, HttpStatusCode expected = HttpStatusCode.Accepted)
    {
        var (status, body) = await SendAsync(http, HttpMethod.Post, "/api/v1/exports", new StringContent(JsonSerializer.Serialize(request), Encoding.UTF8, "application/json"));
        Assert.True(status == expected, $"{status}: {body}");
        return body;
    }

    internal static async Task<JsonElement> WaitDoneAsync(HttpClient http, string id, Func<string>? explain = null)
    {
        var states = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (true)
        {
            var (status, record) = await SendAsync(http, HttpMethod.Get, $"/api/v1/exports/{id}");
            Assert.Equal(HttpStatusCode.OK, status);
            var state = record.GetProperty("state").GetString()!;
            if (states.Count == 0 || states[^1] != state)
            {
                states.Add(state);
            }
            Assert.True(state is "queued" or "running" or "packaging" or "done", $"{record}");
            if (state == "done")
            {
                return record;
            }
            Assert.True(DateTime.UtcNow < deadline, $"export {id} still {state}: {string.Join(" → ", states)}\n{explain?.Invoke()}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task AnAsynchronousExportHoldsExactlyTheMatchingEventsNewestFirstInEitherFormat()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path);
        var events = MakeEvents(12_000);
        await IngestAsync(node.Http, "app", events);
        var from = Start.AddHours(1);
        var to = Start.AddHours(3);
        var expected = events.Where(e => e.Level == "ERROR" && e.Host != "web-2" && e.Time >= from && e.Time <= to).OrderByDescending(e => e.Time).ToList();
        Assert.True(expected.Count > 1_000);

        var csv = await CreateAsync(node.Http, new { indexset = "app", q = "level:ERROR AND NOT host:web-2", from = Time(from), to = Time(to), fields = new[] { "t", "n", "host", "message" }, format = "csv" });
        Assert.Equal("queued", csv.GetProperty("state").GetString());
        var done = await WaitDoneAsync(node.Http, csv.GetProperty("id").GetString()!);
        Assert.Equal(expected.Count, done.GetProperty("events_written").GetInt32());
        Assert.Equal(expected.Count, done.GetProperty("events_total").GetInt32());
        Assert.Equal(100, done.GetProperty("percent").GetDouble());
        Assert.False(done.GetProperty("truncated").GetBoolean());
        using (var response = await node.Http.GetAsync(done.GetProperty("download").GetString()))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("application/gzip", response.Content.Headers.ContentType!.MediaType);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal(done.GetProperty("file_bytes").GetInt64(), bytes.Length);
            var rows = ParseCsv(Gunzip(bytes));
            Assert.Equal(["t", "n", "host", "message"], rows[0]);
            Assert.Equal(
                expected.Select(e => new[] { Time(e.Time), e.N.ToString(CultureInfo.InvariantCulture), e.Host, e.Message }),
                rows.Skip(1));
        }

        var ndjson = await CreateAsync(node.Http, new { indexset = "app", q = "level:ERROR AND NOT host:web-2", from = Time(from), to = Time(to), format = "ndjson" });
        var ndjsonDone = await WaitDoneAsync(node.Http, ndjson.GetProperty("id").GetString()!);
        var lines = Gunzip(await node.Http.GetByteArrayAsync(ndjsonDone.GetProperty("download").GetString())).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
            expected.Select(e => (Time(e.Time), e.Message, e.N, e.Level, e.Host)),
            lines.Select(line =>
            {
                var o = JsonDocument.Parse(line).RootElement;
                return (o.GetProperty("t").GetString()!, o.GetProperty("message").GetString()!, o.GetProperty("n").GetInt32(), o.GetProperty("level").GetString()!, o.GetProperty("host").GetString()!);
            }));

        // The CLI starts one, follows it and downloads it.
        var file = Path.Combine(dir.Path, "errors.csv.gz");
        var (code, _, stderr) = await CliTests.RunAsync(node, null, "export", "--index", "app", "level:ERROR", "--fields", "n", "--wait", "-o", file);
        Assert.True(code == 0, stderr);
        Assert.Contains("done", stderr, StringComparison.Ordinal);
        var cliRows = ParseCsv(Gunzip(await File.ReadAllBytesAsync(file)));
        Assert.Equal(events.Where(e => e.Level == "ERROR").OrderByDescending(e => e.Time).Select(e => e.N.ToString(CultureInfo.InvariantCulture)), cliRows.Skip(1).Select(r => r.Single()));

        var (listed, list) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/exports");
        Assert.Equal(HttpStatusCode.OK, listed);
        Assert.Equal(3, list.GetProperty("exports").GetArrayLength());

        // Logs stay with the account Logwell runs as: segments, logs, queues, exports and the CLI's download alike.
        static UnixFileMode Mode(string path) => OperatingSystem.IsWindows() ? 0 : File.GetUnixFileMode(path);
        const UnixFileMode GroupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        var entries = Directory.EnumerateFileSystemEntries(dir.Path, "*", SearchOption.AllDirectories).ToList();
        Assert.Contains(entries, e => e.EndsWith(".gz", StringComparison.Ordinal) && e.Contains("export", StringComparison.Ordinal));
        Assert.All(entries, e => Assert.True((Mode(e) & GroupOrOthers) == 0, $"{e} is {Mode(e)}"));
    }

    [SkippableTheory]
    [MemberData(nameof(QueueBackend.All), MemberType = typeof(QueueBackend))]
    public async Task ExportsAreLimitedPerUserCappedInSizeAndRunByAWorkerProcessThroughTheApi(string backend)
    {
        using var dir = new TempDirectory();
        await using var queues = QueueBackend.Open(backend, dir.Path);
        // The node runs no export tasks itself, and an export holds at most 1,000 events.
        await using var node = await LogwellNode.StartAsync(dir.Path, env: queues.With(("LOGWELL_ServeWorkerQueues", "default"), ("LOGWELL_ExportMaxEvents", "1000")));
        var events = MakeEvents(3_000);
        await IngestAsync(node.Http, "app", events);

        var all = await CreateAsync(node.Http, new { indexset = "app", format = "csv", fields = "n" });
        var errors = await CreateAsync(node.Http, new { indexset = "app", q = "level:ERROR", format = "ndjson", fields = "n,level" });
        var none = await CreateAsync(node.Http, new { indexset = "app", q = "level:NOTHING", format = "csv", fields = "t,n" });
        var refused = await CreateAsync(node.Http, new { indexset = "app" }, HttpStatusCode.TooManyRequests);
        Assert.Contains("3 exports in progress", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        var (early, earlyBody) = await SendAsync(node.Http, HttpMethod.Get, $"/api/v1/exports/{all.GetProperty("id").GetString()}/download");
        Assert.Equal(HttpStatusCode.Conflict, early);
        Assert.Contains("queued", earlyBody.GetProperty("error").GetString(), StringComparison.Ordinal);

        await using var worker = RoleProcess.Start(["worker", "-Q", "export", "-c", "2", "--data", dir.Path, "--server", node.BaseAddress.ToString()], queues.Settings);
        var allDone = await WaitDoneAsync(node.Http, all.GetProperty("id").GetString()!, () => worker.Output);
        Assert.True(allDone.GetProperty("truncated").GetBoolean());
        Assert.Equal(1000, allDone.GetProperty("events_written").GetInt32());
        var rows = ParseCsv(Gunzip(await node.Http.GetByteArrayAsync(allDone.GetProperty("download").GetString())));
        Assert.Equal(events.OrderByDescending(e => e.Time).Take(1000).Select(e => e.N.ToString(CultureInfo.InvariantCulture)), rows.Skip(1).Select(r => r.Single()));

        var errorsDone = await WaitDoneAsync(node.Http, errors.GetProperty("id").GetString()!, () => worker.Output);
        // Exactly as many matches as the cap: all written, nothing cut.
        Assert.False(errorsDone.GetProperty("truncated").GetBoolean());
        var lines = Gunzip(await node.Http.GetByteArrayAsync(errorsDone.GetProperty("download").GetString())).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(events.Where(e => e.Level == "ERROR").OrderByDescending(e => e.Time).Take(1000).Select(e => $$"""{"n":{{e.N}},"level":"ERROR"}"""), lines);

        var noneDone = await WaitDoneAsync(node.Http, none.GetProperty("id").GetString()!, () => worker.Output);
        Assert.Equal(0, noneDone.GetProperty("events_written").GetInt32());
        Assert.Equal("t,n\r\n", Gunzip(await node.Http.GetByteArrayAsync(noneDone.GetProperty("download").GetString())));

        // Finished exports no longer count against the limit.
        await CreateAsync(node.Http, new { indexset = "app", q = "n:1" });
    }

    [Fact]
    public async Task ASmallResultStreamsAtOnceAndBadExportRequestsAreRefusedClearly()
    {
        using var dir = new TempDirectory();
        await using var node = await LogwellNode.StartAsync(dir.Path, env: new Dictionary<string, string> { ["LOGWELL_SyncExportMaxEvents"] = "1500" });
        var events = MakeEvents(3_000);
        await IngestAsync(node.Http, "app", events);

        using (var response = await node.Http.GetAsync("/api/v1/export?indexset=app&q=level:ERROR&fields=t,message&format=csv"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/csv", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal("attachment", response.Content.Headers.ContentDisposition!.DispositionType);
            var rows = ParseCsv(await response.Content.ReadAsStringAsync());
            Assert.Equal(events.Where(e => e.Level == "ERROR").OrderByDescending(e => e.Time).Select(e => new[] { Time(e.Time), e.Message }), rows.Skip(1));
        }
        var (tooMany, tooManyBody) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/export?indexset=app");
        Assert.Equal(HttpStatusCode.BadRequest, tooMany);
        Assert.Contains("POST /api/v1/exports", tooManyBody.GetProperty("error").GetString(), StringComparison.Ordinal);

        var (status, body) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/export?indexset=app&q=level:(ERROR");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(12, body.GetProperty("position").GetInt32());
        (status, _) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/export?indexset=nope");
        Assert.Equal(HttpStatusCode.NotFound, status);
        (status, body) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/export?indexset=app&q=n:1&format=xlsx");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("csv or ndjson", body.GetProperty("error").GetString(), StringComparison.Ordinal);

        body = await CreateAsync(node.Http, new { indexset = "app", query = "x" }, HttpStatusCode.BadRequest);
        Assert.Contains("unknown property 'query'", body.GetProperty("error").GetString(), StringComparison.Ordinal);
        body = await CreateAsync(node.Http, new { indexset = "app", q = "* | stats count()" }, HttpStatusCode.BadRequest);
        Assert.Contains("pipes", body.GetProperty("error").GetString(), StringComparison.Ordinal);
        body = await CreateAsync(node.Http, new { indexset = "app", fields = 3 }, HttpStatusCode.BadRequest);
        Assert.Contains("'fields'", body.GetProperty("error").GetString(), StringComparison.Ordinal);
        (status, _) = await SendAsync(node.Http, HttpMethod.Get, "/api/v1/exports/0123456789");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }
}
