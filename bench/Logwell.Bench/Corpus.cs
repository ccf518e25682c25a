using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Logwell.Bench;

/// <summary>
/// The raw corpus: N seeded, realistic JSON lines with <c>t</c>, <c>host</c>, <c>level</c>, <c>service</c>,
/// <c>trace_id</c> and <c>message</c>. Messages come from Loghub's real templates with parameter values taken from
/// real lines of the same template, or from built-in templates without Loghub.
/// </summary>
internal sealed partial class Corpus
{
    public static readonly DateTime Start = new(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc);
    public static readonly TimeSpan Span = TimeSpan.FromDays(3);
    private const int Seed = 20261126;

    private static readonly string[] Levels = ["INFO", "WARN", "ERROR", "DEBUG"];
    private static readonly int[] LevelWeights = [86, 8, 4, 2];

    /// <summary>Built-in templates: <c>{n}</c> is a number, <c>{ip}</c> an address, <c>{id}</c> an identifier.</summary>
    private static readonly string[] BuiltInTemplates =
    [
        "GET /api/v1/items/{n} 200 in {n} ms",
        "POST /api/v1/orders 201 in {n} ms",
        "user {n} logged in from {ip}",
        "connection reset by peer while reading response from upstream {ip}:8080",
        "job {id} finished in {n} ms with status ok",
        "cache miss for key session:{id}",
        "payment {id} declined: insufficient funds",
        "slow query took {n} ms: SELECT * FROM orders WHERE customer = {n}",
        "retrying request {id} (attempt {n}) after upstream timeout",
        "request {id} failed: timeout waiting for lock on table stock",
        "disk usage at {n} percent on volume data{n}",
        "scheduled compaction started for partition {n}",
    ];

    public required string Path { get; init; }
    public required long Events { get; init; }
    public required long RawBytes { get; init; }
    public required string Source { get; init; }

    /// <summary>The trace id of the event in the middle of the corpus: the needle.</summary>
    public required string NeedleTraceId { get; init; }

    public static Corpus Create(string outDir, long events, string? loghubDir, IReadOnlyList<string>? systems)
    {
        var templates = loghubDir is null ? null : LoghubTemplates.Load(loghubDir, systems);
        var source = templates is null ? "built-in templates" : $"loghub ({string.Join(", ", templates.Systems)})";
        var key = templates is null ? "builtin" : "loghub-" + string.Join("-", templates.Systems).ToLowerInvariant();
        var path = System.IO.Path.Combine(outDir, $"corpus-{events}-{key}.ndjson");
        var needleIndex = events / 2;
        string? needle = null;
        if (!File.Exists(path))
        {
            Console.WriteLine($"writing corpus {path} ({events:N0} events from {source})");
            var temp = path + ".tmp";
            using (var writer = new StreamWriter(temp, false, new UTF8Encoding(false), 1 << 20))
            {
                var random = new Random(Seed);
                var hosts = Enumerable.Range(1, 40).Select(i => $"web-{i}").Concat(Enumerable.Range(1, 10).Select(i => $"db-{i}")).ToArray();
                var services = templates?.Systems.Select(s => s.ToLowerInvariant()).ToArray() ?? ["api", "auth", "billing", "search", "worker", "gateway"];
                var step = Span.Ticks / events;
                var json = new Utf8JsonWriter(writer.BaseStream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                for (long i = 0; i < events; i++)
                {
                    // Mostly in order, with some jitter as shippers deliver.
                    var t = Start.Ticks + i * step + random.NextInt64(0, TimeSpan.TicksPerSecond * 2);
                    var traceId = random.NextInt64().ToString("x16", CultureInfo.InvariantCulture);
                    if (i == needleIndex)
                    {
                        needle = traceId;
                    }
                    var serviceIndex = random.Next(services.Length);
                    var message = templates is null ? BuiltInMessage(random) : templates.Message(random, serviceIndex);
                    json.Reset();
                    json.WriteStartObject();
                    json.WriteString("t", new DateTime(t, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
                    json.WriteString("host", hosts[random.Next(hosts.Length)]);
                    json.WriteString("level", Pick(random, Levels, LevelWeights));
                    json.WriteString("service", services[serviceIndex]);
                    json.WriteString("trace_id", traceId);
                    json.WriteString("message", message);
                    json.WriteEndObject();
                    json.Flush();
                    writer.BaseStream.WriteByte((byte)'\n');
                }
            }
            File.Move(temp, path);
        }
        needle ??= FindNeedle(path, needleIndex);
        // A corpus linked in from another run is measured at its target.
        var file = new FileInfo(path);
        var rawBytes = file.LinkTarget is null ? file.Length : ((FileInfo)file.ResolveLinkTarget(returnFinalTarget: true)!).Length;
        return new Corpus { Path = path, Events = events, RawBytes = rawBytes, Source = source, NeedleTraceId = needle };
    }

    private static string FindNeedle(string path, long index)
    {
        using var reader = new StreamReader(path);
        for (long i = 0; i < index; i++)
        {
            reader.ReadLine();
        }
        using var doc = JsonDocument.Parse(reader.ReadLine()!);
        return doc.RootElement.GetProperty("trace_id").GetString()!;
    }

    private static string Pick(Random random, string[] values, int[] weights)
    {
        var roll = random.Next(weights.Sum());
        for (var i = 0; i < values.Length; i++)
        {
            roll -= weights[i];
            if (roll < 0)
            {
                return values[i];
            }
        }
        return values[^1];
    }

    private static string BuiltInMessage(Random random)
    {
        var template = BuiltInTemplates[random.Next(BuiltInTemplates.Length)];
        return PlaceholderPattern().Replace(template, m => m.Value switch
        {
            "{n}" => random.Next(1, 100_000).ToString(CultureInfo.InvariantCulture),
            "{ip}" => $"10.{random.Next(256)}.{random.Next(256)}.{random.Next(1, 255)}",
            _ => random.Next(1, int.MaxValue).ToString("x8", CultureInfo.InvariantCulture),
        });
    }

    /// <summary>SHA-256 of the corpus file, for caching slow figures (zstd -19) beside it.</summary>
    public string Hash()
    {
        using var stream = File.OpenRead(Path);
        return Convert.ToHexStringLower(SHA256.HashData(stream))[..16];
    }

    [GeneratedRegex(@"\{n\}|\{ip\}|\{id\}")]
    private static partial Regex PlaceholderPattern();
}

/// <summary>Loghub's ground-truth templates with the parameter values of the real lines that match them.</summary>
internal sealed partial class LoghubTemplates
{
    private readonly List<(string[] Parts, List<string[]> Values, int Weight)>[] _bySystem;

    private LoghubTemplates(string[] systems, List<(string[] Parts, List<string[]> Values, int Weight)>[] bySystem)
    {
        Systems = systems;
        _bySystem = bySystem;
    }

    public string[] Systems { get; }

    public static LoghubTemplates Load(string dir, IReadOnlyList<string>? wanted)
    {
        var systems = Directory.GetDirectories(dir).Select(System.IO.Path.GetFileName).OfType<string>()
            .Where(s => wanted is null || wanted.Contains(s, StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).ToArray();
        if (systems.Length == 0)
        {
            throw new ArgumentException($"no Loghub systems found in {dir}");
        }
        var bySystem = new List<(string[] Parts, List<string[]> Values, int Weight)>[systems.Length];
        for (var s = 0; s < systems.Length; s++)
        {
            var csv = System.IO.Path.Combine(dir, systems[s], $"{systems[s]}_2k.log_structured.csv");
            var rows = ReadCsv(csv);
            var header = rows[0];
            var content = Array.IndexOf(header, "Content");
            var template = Array.IndexOf(header, "EventTemplate");
            var groups = new Dictionary<string, List<string[]>>(StringComparer.Ordinal);
            foreach (var row in rows.Skip(1))
            {
                var parts = row[template].Split("<*>");
                var pattern = "^" + string.Join("(.*?)", parts.Select(Regex.Escape)) + "$";
                var match = Regex.Match(row[content], pattern, RegexOptions.Singleline);
                if (!match.Success)
                {
                    continue;
                }
                if (!groups.TryGetValue(row[template], out var list))
                {
                    groups[row[template]] = list = [];
                }
                list.Add([.. match.Groups.Cast<Group>().Skip(1).Select(g => g.Value)]);
            }
            bySystem[s] = [.. groups.Select(g => (g.Key.Split("<*>"), g.Value, g.Value.Count))];
        }
        return new LoghubTemplates(systems, bySystem);
    }

    /// <summary>A template of the system, picked by its real frequency, each parameter from a random real line.</summary>
    public string Message(Random random, int system)
    {
        var templates = _bySystem[system];
        var roll = random.Next(templates.Sum(t => t.Weight));
        var chosen = templates[^1];
        foreach (var t in templates)
        {
            roll -= t.Weight;
            if (roll < 0)
            {
                chosen = t;
                break;
            }
        }
        var sb = new StringBuilder(chosen.Parts[0]);
        for (var i = 1; i < chosen.Parts.Length; i++)
        {
            sb.Append(chosen.Values[random.Next(chosen.Values.Count)][i - 1]).Append(chosen.Parts[i]);
        }
        return sb.ToString();
    }

    internal static List<string[]> ReadCsv(string path)
    {
        var rows = new List<string[]>();
        var text = File.ReadAllText(path);
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    field.Clear();
                    rows.Add([.. fields]);
                    fields.Clear();
                    break;
                default:
                    field.Append(c);
                    break;
            }
        }
        if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            rows.Add([.. fields]);
        }
        return rows;
    }
}
