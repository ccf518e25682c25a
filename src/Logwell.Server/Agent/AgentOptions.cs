using System.Globalization;
using System.Text.RegularExpressions;
using Logwell.Core.Events;
using Logwell.Core.Ingest;
using Logwell.Core.Text;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Logwell.Server.Agent;

/// <summary>Where a file is read from when the agent sees it the first time at its start: from its beginning or from its end.</summary>
public enum StartAt
{
    Beginning,
    End,
}

/// <summary>How the agent ships: Logwell's native ingest endpoint, or any Elasticsearch bulk endpoint.</summary>
public enum OutputProtocol
{
    Logwell,
    Elasticsearch,
}

/// <summary>One input: the files some globs find, and how their lines become events of an index set.</summary>
public sealed record AgentInput
{
    /// <summary><c>inputs[0]</c> for one of agent.yaml, <c>central:NAME</c> for a collection config from the server.</summary>
    public string Name { get; init; } = "";

    public required IReadOnlyList<string> Paths { get; init; }
    public IReadOnlyList<string> Exclude { get; init; } = [];
    public required string IndexSet { get; init; }
    public IReadOnlyDictionary<string, string> Fields { get; init; } = new Dictionary<string, string>();
    public string Encoding { get; init; } = "utf-8";
    public StartAt StartAt { get; init; } = StartAt.End;
    public MultilineRule Multiline { get; init; } = MultilineRule.None;
    public LineFilter Filter { get; init; } = LineFilter.All;
}

/// <summary>The agent's settings, from <c>agent.yaml</c> (see docs/agent.md); validated once, at load.</summary>
public sealed record AgentOptions
{
    /// <summary>The agent's name, sent with every event as <c>host</c>; the machine's host name unless set.</summary>
    public required string Name { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Where the checkpoint and the on-disk buffer live.</summary>
    public required string DataDir { get; init; }

    /// <summary>The servers, tried in order; the next one when one fails.</summary>
    public required IReadOnlyList<Uri> Urls { get; init; }

    public OutputProtocol Protocol { get; init; } = OutputProtocol.Logwell;
    public string? ApiKey { get; init; }

    /// <summary>A PEM file of certificates a server's certificate may chain to, besides the system's.</summary>
    public string? CaFile { get; init; }

    public long BatchBytes { get; init; } = 1 << 20;
    public TimeSpan BatchWait { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The on-disk buffer's limit; when it is full the agent stops reading until the servers take some.</summary>
    public long BufferMaxBytes { get; init; } = 256L << 20;

    public int MaxOpenFiles { get; init; } = 1024;

    /// <summary>A file that has not grown for this long is closed (and opened again when it grows).</summary>
    public TimeSpan CloseInactive { get; init; } = TimeSpan.FromMinutes(1);

    public TimeSpan ScanInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary><c>host:port</c> where <c>/metrics</c> is served; none when null.</summary>
    public string? MetricsListen { get; init; }

    /// <summary>With central management: how often the agent reports to the server and asks for its collection configs; null without.</summary>
    public TimeSpan? PollInterval { get; init; }

    public required IReadOnlyList<AgentInput> Inputs { get; init; }

    /// <summary>Printable, with the API key hidden.</summary>
    public override string ToString() => $"agent {Name}: {Inputs.Count} inputs to {string.Join(", ", Urls)} ({Protocol}{(ApiKey is null ? "" : ", with an API key")}), data in {DataDir}";

    /// <summary>Reads <c>agent.yaml</c>; relative paths in it are relative to the file's directory.</summary>
    /// <exception cref="AgentConfigException">The file is not valid YAML or not a valid configuration; the message says where.</exception>
    public static AgentOptions Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentConfigException($"{path}: {e.Message}");
        }
        return Parse(text, Path.GetDirectoryName(Path.GetFullPath(path))!, path);
    }

    public static AgentOptions Parse(string yaml, string baseDirectory, string source = "agent.yaml")
    {
        AgentFile file;
        try
        {
            file = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build().Deserialize<AgentFile?>(yaml) ?? new AgentFile();
        }
        catch (YamlException e)
        {
            throw new AgentConfigException($"{source}:{Explain(e)}");
        }
        string Fail(string what) => throw new AgentConfigException($"{source}: {what}");
        string Resolve(string p) => Path.GetFullPath(p, baseDirectory);
        TimeSpan Duration(string? value, TimeSpan fallback, string key) => value is null ? fallback
            : TryDuration(value, out var d) && d > TimeSpan.Zero ? d : throw new AgentConfigException($"{source}: {key} must be a duration such as 500ms, 5s or 1m, not '{value}'");
        long Size(string? value, long fallback, string key) => value is null ? fallback
            : ByteSizes.TryParse(value, out var b) && b > 0 ? b : throw new AgentConfigException($"{source}: {key} must be a size such as 1MiB, not '{value}'");

        var output = file.Output ?? new OutputSection();
        if (output.Urls is not { Count: > 0 })
        {
            Fail("output.urls must name at least one server, such as http://logwell:8080");
        }
        var urls = new List<Uri>();
        foreach (var url in output.Urls!)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                Fail($"output.urls: '{url}' is not an http or https URL");
            }
            urls.Add(uri!);
        }
        var protocol = (output.Protocol ?? "logwell").ToLowerInvariant() switch
        {
            "logwell" => OutputProtocol.Logwell,
            "elasticsearch" => OutputProtocol.Elasticsearch,
            var other => throw new AgentConfigException($"{source}: output.protocol must be logwell or elasticsearch, not '{other}'"),
        };
        file.Inputs ??= [];
        if (file.Inputs.Count == 0 && file.Management is null)
        {
            Fail("inputs must list at least one input (paths and index_set), unless management brings them from the server");
        }
        var inputs = new List<AgentInput>();
        for (var i = 0; i < file.Inputs!.Count; i++)
        {
            inputs.Add(ParseInput(file.Inputs[i], $"inputs[{i}]", source, baseDirectory));
        }
        var maxOpen = file.Files?.MaxOpen ?? 1024;
        if (maxOpen < 1)
        {
            Fail("files.max_open must be at least 1");
        }
        return new AgentOptions
        {
            Name = file.Name ?? Environment.MachineName,
            Tags = file.Tags ?? [],
            DataDir = Resolve(file.DataDir ?? "/var/lib/logwell-agent"),
            Urls = urls,
            Protocol = protocol,
            ApiKey = output.ApiKey,
            CaFile = output.CaFile is null ? null : Resolve(output.CaFile),
            BatchBytes = Size(output.BatchBytes, 1 << 20, "output.batch_bytes"),
            BatchWait = Duration(output.BatchWait, TimeSpan.FromSeconds(1), "output.batch_wait"),
            BufferMaxBytes = Size(file.Buffer?.MaxBytes, 256L << 20, "buffer.max_bytes"),
            MaxOpenFiles = maxOpen,
            CloseInactive = Duration(file.Files?.CloseInactive, TimeSpan.FromMinutes(1), "files.close_inactive"),
            ScanInterval = Duration(file.Files?.ScanInterval, TimeSpan.FromSeconds(1), "files.scan_interval"),
            MetricsListen = file.Metrics?.Listen,
            PollInterval = file.Management is { } management ? Duration(management.PollInterval, TimeSpan.FromSeconds(30), "management.poll_interval") : null,
            Inputs = inputs,
        };

    }

    /// <summary>
    /// One input of a collection config kept on the server: the keys of one of agent.yaml's <c>inputs</c>, in JSON (or
    /// YAML), with absolute paths.
    /// </summary>
    /// <exception cref="AgentConfigException">Not a valid input; the message says why.</exception>
    public static AgentInput ParseCentralInput(string text, string name)
    {
        InputSection? input;
        try
        {
            input = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build().Deserialize<InputSection?>(text);
        }
        catch (YamlException e)
        {
            throw new AgentConfigException($"collection config {name}: {Explain(e)}");
        }
        if (input is null)
        {
            throw new AgentConfigException($"collection config {name}: empty");
        }
        if (input.Paths?.FirstOrDefault(p => !Path.IsPathRooted(p)) is { } relative)
        {
            throw new AgentConfigException($"collection config {name}: paths must be absolute, not '{relative}'");
        }
        try
        {
            return ParseInput(input, "config", $"collection config {name}", "/") with { Name = "central:" + name };
        }
        catch (ArgumentException e)
        {
            // A path the system cannot take (a NUL in it, say).
            throw new AgentConfigException($"collection config {name}: {e.Message}");
        }
    }

    private static string Explain(YamlException e)
    {
        var why = e.InnerException?.Message ?? e.Message;
        if (System.Text.RegularExpressions.Regex.Match(why, "^Property '(.*)' not found on type") is { Success: true } unknown)
        {
            why = $"unknown key '{unknown.Groups[1].Value}' (docs/agent.md lists the keys)";
        }
        return $"{e.Start.Line}:{e.Start.Column}: {why}";
    }

    private static AgentInput ParseInput(InputSection input, string at, string source, string baseDirectory)
    {
        string Fail(string what) => throw new AgentConfigException($"{source}: {what}");
        string Resolve(string p) => Path.GetFullPath(p, baseDirectory);
        if (input.Paths is not { Count: > 0 })
        {
            Fail($"{at}.paths must list at least one glob, such as /var/log/app/*.log");
        }
        if (input.IndexSet is null)
        {
            Fail($"{at}.index_set must name the index set its events go to");
        }
        if (!IndexSetName.IsValid(input.IndexSet, out var nameError))
        {
            Fail($"{at}.index_set: {nameError}");
        }
        try
        {
            FileEncodings.ForName(input.Encoding ?? "utf-8");
        }
        catch (ArgumentException e)
        {
            Fail($"{at}.encoding: {e.Message}");
        }
        var multiline = MultilineRule.None;
        if (input.Multiline is { } m)
        {
            if (m.Start is null && m.Indent != true)
            {
                Fail($"{at}.multiline needs start (a pattern that starts an event) or indent: true");
            }
            var maxBytes = m.MaxBytes is null ? 1 << 20
                : ByteSizes.TryParse(m.MaxBytes, out var b) && b > 0 ? b : throw new AgentConfigException($"{source}: {at}.multiline.max_bytes must be a size such as 1MiB, not '{m.MaxBytes}'");
            multiline = new MultilineRule(m.Start is null ? null : Pattern(m.Start, $"{at}.multiline.start"), m.Indent == true,
                m.MaxLines is { } lines ? (lines > 0 ? lines : throw new AgentConfigException($"{source}: {at}.multiline.max_lines must be at least 1")) : 500,
                (int)Math.Min(int.MaxValue, maxBytes));
        }
        return new AgentInput
        {
            Name = at,
            Paths = [.. input.Paths!.Select(Resolve)],
            Exclude = [.. (input.Exclude ?? []).Select(e => e.Contains('/', StringComparison.Ordinal) ? Resolve(e) : e)],
            IndexSet = input.IndexSet!,
            Fields = input.Fields ?? new Dictionary<string, string>(),
            Encoding = input.Encoding ?? "utf-8",
            StartAt = (input.StartAt ?? "end").ToLowerInvariant() switch
            {
                "end" => StartAt.End,
                "beginning" => StartAt.Beginning,
                var other => throw new AgentConfigException($"{source}: {at}.start_at must be beginning or end, not '{other}'"),
            },
            Multiline = multiline,
            Filter = new LineFilter([.. (input.IncludeLines ?? []).Select(p => Pattern(p, $"{at}.include_lines"))], [.. (input.ExcludeLines ?? []).Select(p => Pattern(p, $"{at}.exclude_lines"))]),
        };

        Regex Pattern(string pattern, string key)
        {
            try
            {
                return new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new AgentConfigException($"{source}: {key}: '{pattern}' is not a valid regular expression: {e.Message}");
            }
        }
    }

    /// <summary><c>250ms</c>, <c>5s</c>, <c>1m</c>, <c>2h</c>.</summary>
    internal static bool TryDuration(string text, out TimeSpan duration)
    {
        duration = default;
        text = text.Trim();
        var (unit, digits) = text.EndsWith("ms", StringComparison.Ordinal) ? (TimeSpan.FromMilliseconds(1), text[..^2])
            : text.Length > 1 && text[^1] is 's' or 'm' or 'h' ? (text[^1] switch { 's' => TimeSpan.FromSeconds(1), 'm' => TimeSpan.FromMinutes(1), _ => TimeSpan.FromHours(1) }, text[..^1])
            : (TimeSpan.Zero, "");
        if (unit == TimeSpan.Zero || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count > 1_000_000_000)
        {
            return false;
        }
        duration = unit * count;
        return true;
    }

    // The file's shape, as YamlDotNet fills it; unknown keys are refused with their position.
    private sealed class AgentFile
    {
        public string? Name { get; set; }
        public List<string>? Tags { get; set; }
        public string? DataDir { get; set; }
        public OutputSection? Output { get; set; }
        public BufferSection? Buffer { get; set; }
        public FilesSection? Files { get; set; }
        public MetricsSection? Metrics { get; set; }
        public ManagementSection? Management { get; set; }
        public List<InputSection>? Inputs { get; set; }
    }

    private sealed class OutputSection
    {
        public List<string>? Urls { get; set; }
        public string? Protocol { get; set; }
        public string? ApiKey { get; set; }
        public string? CaFile { get; set; }
        public string? BatchBytes { get; set; }
        public string? BatchWait { get; set; }
    }

    private sealed class BufferSection
    {
        public string? MaxBytes { get; set; }
    }

    private sealed class FilesSection
    {
        public int? MaxOpen { get; set; }
        public string? CloseInactive { get; set; }
        public string? ScanInterval { get; set; }
    }

    private sealed class ManagementSection
    {
        public string? PollInterval { get; set; }
    }

    private sealed class MetricsSection
    {
        public string? Listen { get; set; }
    }

    private sealed class InputSection
    {
        public List<string>? Paths { get; set; }
        public List<string>? Exclude { get; set; }
        public string? IndexSet { get; set; }
        public Dictionary<string, string>? Fields { get; set; }
        public string? Encoding { get; set; }
        public string? StartAt { get; set; }
        public MultilineSection? Multiline { get; set; }
        public List<string>? IncludeLines { get; set; }
        public List<string>? ExcludeLines { get; set; }
    }

    private sealed class MultilineSection
    {
        public string? Start { get; set; }
        public bool? Indent { get; set; }
        public int? MaxLines { get; set; }
        public string? MaxBytes { get; set; }
    }
}

/// <summary>An agent configuration that cannot be used; the message names the file and the place.</summary>
public sealed class AgentConfigException(string message) : Exception(message);
