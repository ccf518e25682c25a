using System.Globalization;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;

namespace Logwell.Bench.Systems;

/// <summary>A <c>logwell serve</c> process fed over HTTP by two concurrent clients, as shippers would.</summary>
internal sealed class LogwellHttpSystem : IBenchSystem
{
    private readonly HttpClient _http;

    private LogwellHttpSystem(ServerProcess server, HttpClient http)
    {
        Server = server;
        _http = http;
    }

    public ServerProcess Server { get; }

    public static async Task<LogwellHttpSystem> StartAsync(string dataDirectory)
    {
        var port = ServerProcess.FreePort();
        var server = ServerProcess.Start("dotnet",
            [LogwellDll(), "serve", "--data", dataDirectory, "--urls", $"http://127.0.0.1:{port}", "--environment", "Production"],
            new Dictionary<string, string> { ["LOGWELL_DEFAULTRETENTIONDAYS"] = "3650" });
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(10) };
        await server.WaitForAsync(async () => (await http.GetAsync("healthz")).IsSuccessStatusCode, TimeSpan.FromSeconds(60));
        return new LogwellHttpSystem(server, http);
    }

    private static string LogwellDll()
    {
        var configuration = typeof(LogwellHttpSystem).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "Configuration").Value!;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Logwell.slnx")))
        {
            dir = dir.Parent;
        }
        var path = Path.Combine(dir?.FullName ?? ".", "src", "Logwell", "bin", configuration, "net10.0", "logwell.dll");
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
                    using var content = new ByteArrayContent(buffer, 0, length);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
                    using var response = await _http.PostAsync("api/v1/indexsets/default/ingest", content);
                    var text = await response.Content.ReadAsStringAsync();
                    using var doc = JsonDocument.Parse(text);
                    if (!response.IsSuccessStatusCode || doc.RootElement.GetProperty("accepted").GetInt32() != lines)
                    {
                        throw new InvalidOperationException($"logwell-http ingest failed: {(int)response.StatusCode} {text}");
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
