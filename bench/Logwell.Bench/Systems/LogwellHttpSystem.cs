using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Logwell.Bench.Systems;

/// <summary>
/// A <c>logwell serve</c> process fed over HTTP by two concurrent clients, as shippers would: JSON lines to the native
/// ingest endpoint, or with <c>bulk</c> the same lines as Elasticsearch bulk requests (an action line before each, and
/// the <c>filter_path</c> Filebeat asks for).
/// </summary>
internal sealed class LogwellHttpSystem : IBenchSystem
{
    private static readonly byte[] IndexAction = "{\"index\":{}}\n"u8.ToArray();
    private readonly HttpClient _http;
    private readonly bool _bulk;

    private LogwellHttpSystem(ServerProcess server, HttpClient http, bool bulk)
    {
        Server = server;
        _http = http;
        _bulk = bulk;
    }

    public ServerProcess Server { get; }

    /// <summary>Where the node listens.</summary>
    public Uri BaseAddress => _http.BaseAddress!;

    /// <param name="secured">Make a user and an administrator's key first: every request then carries the key and is
    /// authorized, as on a node that others can reach.</param>
    /// <param name="environment">More settings for the node (its log store, for <c>logwell-cluster</c>).</param>
    public static async Task<LogwellHttpSystem> StartAsync(string dataDirectory, bool bulk, bool secured = false, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = ServerProcess.FreePort();
        var settings = new Dictionary<string, string> { ["LOGWELL_DEFAULTRETENTIONDAYS"] = "3650" };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }
        var server = ServerProcess.Start("dotnet",
            [LogwellDll(), "serve", "--data", dataDirectory, "--urls", $"http://127.0.0.1:{port}", "--environment", "Production"], settings);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(10) };
        await server.WaitForAsync(async () => (await http.GetAsync("healthz")).IsSuccessStatusCode, TimeSpan.FromSeconds(60));
        if (secured)
        {
            // A restart (cold runs) finds the user made before.
            await RunCliAsync(["users", "create", "bench", "--role", "admin", "--generate-password", "--data", dataDirectory], allowExisting: true);
            var created = await RunCliAsync("keys", "create", "bench", "--role", "admin", "--data", dataDirectory);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("lw_", StringComparison.Ordinal)));
            await server.WaitForAsync(async () => (await http.GetAsync("api/v1/indexsets")).IsSuccessStatusCode, TimeSpan.FromSeconds(10));
        }
        if (Environment.GetEnvironmentVariable("LOGWELL_BENCH_PATTERNS") == "off")
        {
            using var off = new StringContent("{\"patterns\":false}", System.Text.Encoding.UTF8, "application/json");
            using var request = new HttpRequestMessage(HttpMethod.Patch, "api/v1/indexsets/default") { Content = off };
            (await http.SendAsync(request)).EnsureSuccessStatusCode();
        }
        return new LogwellHttpSystem(server, http, bulk);
    }

    private static Task<string> RunCliAsync(params string[] arguments) => RunCliAsync(arguments, allowExisting: false);

    private static async Task<string> RunCliAsync(string[] arguments, bool allowExisting)
    {
        var info = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(LogwellDll());
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = System.Diagnostics.Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0 || allowExisting && errors.Contains("exists already", StringComparison.Ordinal) ? output
            : throw new InvalidOperationException($"logwell {string.Join(' ', arguments)}: {errors}");
    }

    /// <summary>The published node (<see cref="Published"/>), or with <c>--no-publish</c> src/Logwell's build output.</summary>
    private static string LogwellDll()
    {
        if (Published.LogwellDll is { } published)
        {
            return published;
        }
        var path = Path.Combine(Published.RepositoryRoot(), "src", "Logwell", "bin", Published.Configuration(), "net10.0", "logwell.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("build src/Logwell first", path);
    }

    public async Task IngestAsync(Corpus corpus)
    {
        using var gate = new SemaphoreSlim(2);
        var tasks = new List<Task>();
        foreach (var (buffer, length, lines) in CorpusReader.Batches(corpus.Path, 4 << 20))
        {
            await gate.WaitAsync();
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    var (body, bodyLength) = _bulk ? AsBulk(buffer, length, lines) : (buffer, length);
                    using var content = new ByteArrayContent(body, 0, bodyLength);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
                    using var response = await _http.PostAsync(_bulk ? "default/_bulk?filter_path=errors,items.*.error,items.*.status" : "api/v1/indexsets/default/ingest", content);
                    var text = await response.Content.ReadAsStringAsync();
                    using var doc = JsonDocument.Parse(text);
                    var stored = !response.IsSuccessStatusCode ? -1
                        : _bulk ? (doc.RootElement.GetProperty("errors").GetBoolean() ? -1 : doc.RootElement.GetProperty("items").GetArrayLength())
                        : doc.RootElement.GetProperty("accepted").GetInt32();
                    if (stored != lines)
                    {
                        throw new InvalidOperationException($"logwell-http ingest failed: {(int)response.StatusCode} {text[..Math.Min(text.Length, 2000)]}");
                    }
                }
                finally
                {
                    gate.Release();
                }
            }));
            tasks.RemoveAll(t => t.IsCompletedSuccessfully);
        }
        await Task.WhenAll(tasks);
    }

    /// <summary>The lines of a batch, each after an index action.</summary>
    private static (byte[] Body, int Length) AsBulk(byte[] buffer, int length, int lines)
    {
        var body = new byte[length + (lines + 1) * (IndexAction.Length + 1)];
        var written = 0;
        var start = 0;
        while (start < length)
        {
            var end = Array.IndexOf(buffer, (byte)'\n', start, length - start);
            end = end < 0 ? length : end;
            IndexAction.CopyTo(body, written);
            written += IndexAction.Length;
            Buffer.BlockCopy(buffer, start, body, written, end - start);
            written += end - start;
            body[written++] = (byte)'\n';
            start = end + 1;
        }
        return (body, written);
    }

    public async Task<long?> QueryAsync(string name, QueryParameters p)
    {
        return name switch
        {
            "needle" => await CountAsync(p.Needle),
            "phrase" => await CountAsync($"\"{p.PhraseText}\""),
            "and_terms" => await CountAsync($"{p.AndTerms[0]} AND {p.AndTerms[1]}"),
            "field_eq" => await CountAsync($"level:{p.Level}"),
            "wildcard" => await CountAsync($"host:{p.HostPrefix}*"),
            "narrow_time" => await CountAsync(p.NarrowTerm, $"&from={Uri.EscapeDataString(p.NarrowFrom.ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(p.NarrowTo.ToString("O", CultureInfo.InvariantCulture))}"),
            // Aggregations are not in the HTTP API yet.
            _ => null,
        };
    }

    private async Task<long> CountAsync(string query, string extra = "")
    {
        using var response = await _http.GetAsync($"api/v1/search?q={Uri.EscapeDataString(query)}&limit=100&track_total_hits=true{extra}");
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"logwell-http search failed: {text}");
        }
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.GetProperty("total").GetInt64();
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await Server.DisposeAsync();
    }
}
