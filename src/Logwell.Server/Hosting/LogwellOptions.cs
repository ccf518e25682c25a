using Logwell.Core.Events;
using Logwell.Storage.Engine;

namespace Logwell.Server.Hosting;

/// <summary>Node settings, bound from the <c>Logwell</c> configuration section and validated once at start-up.</summary>
public sealed record LogwellOptions
{
    public const string Section = "Logwell";

    public string DataDirectory { get; init; } = "./data";
    public string Urls { get; init; } = "http://127.0.0.1:5080";

    /// <summary>Whether ingest into an unknown index set creates it (on in Development, off in Production).</summary>
    public bool AutoCreateIndexSets { get; init; }

    public long MaxBodyBytes { get; init; } = 64L << 20;

    /// <summary>The longest line (an event) that line-based ingest takes; a longer one is rejected and reported.</summary>
    public int MaxLineBytes { get; init; } = 1 << 20;

    /// <summary>
    /// How an Elasticsearch index name becomes an index set: when this pattern matches, its <c>name</c> group; else the
    /// whole name. The default drops a date suffix: <c>logs-2026.11.26</c> and <c>logs-2026.11</c> go to <c>logs</c>.
    /// </summary>
    /// <summary>Syslog over TCP on this port (0: off).</summary>
    public int SyslogTcpPort { get; init; }

    /// <summary>Syslog over UDP on this port (0: off).</summary>
    public int SyslogUdpPort { get; init; }

    /// <summary>The address the syslog ports listen on.</summary>
    public string SyslogAddress { get; init; } = "127.0.0.1";

    /// <summary>Where syslog messages go (created when a syslog port is on).</summary>
    public string SyslogIndexSet { get; init; } = "syslog";

    /// <summary>Syslog messages are cut at this size and marked <c>truncated</c>.</summary>
    public int SyslogMaxMessageBytes { get; init; } = 64 * 1024;

    /// <summary>Where lines pushed to <c>/loki/api/v1/push</c> go.</summary>
    public string LokiIndexSet { get; init; } = "default";

    /// <summary>Where OTLP log records sent to <c>/v1/logs</c> go.</summary>
    public string OtlpIndexSet { get; init; } = "default";

    /// <summary>Where CLEF sent to <c>/api/events/raw</c> goes when no API keys are configured.</summary>
    public string SeqIndexSet { get; init; } = "default";

    /// <summary>Seq API keys and the index set each sends to; when any is set, a request needs one of them.</summary>
    public Dictionary<string, string> SeqApiKeys { get; init; } = new(StringComparer.Ordinal);

    public string ElasticsearchIndexPattern { get; init; } = @"^(?<name>.+?)[-_.]\d{4}[-_.]\d{2}(?:[-_.]\d{2})?$";
    public int MaxSearchLimit { get; init; } = 10_000;
    public int DefaultSearchLimit { get; init; } = 100;
    public int SearchTimeoutSeconds { get; init; } = 55;

    /// <summary>The operator between clauses written side by side: AND (every clause must match) or OR (as in Lucene).</summary>
    public string DefaultOperator { get; init; } = "AND";

    /// <summary>The longest <c>timeout</c> a request may ask for, in seconds.</summary>
    public int MaxSearchTimeoutSeconds { get; init; } = 600;

    public int BlockRows { get; init; } = 16_384;
    public int MemTableMaxEvents { get; init; } = 131_072;
    public long MemTableMaxBytes { get; init; } = 64L << 20;
    public long BlockCacheBytes { get; init; } = 256L << 20;
    public long MaxQueuedEvents { get; init; } = 250_000;
    public int DefaultRetentionDays { get; init; } = 7;

    public EngineOptions ToEngineOptions() => new()
    {
        DataDirectory = Path.GetFullPath(DataDirectory),
        BlockRows = BlockRows,
        MemTableMaxEvents = MemTableMaxEvents,
        MemTableMaxBytes = MemTableMaxBytes,
        BlockCacheBytes = BlockCacheBytes,
        MaxQueuedEvents = MaxQueuedEvents,
        DefaultRetentionDays = DefaultRetentionDays,
    };

    public void Validate()
    {
        if (MaxLineBytes < 256)
        {
            throw new ArgumentException("Logwell:MaxLineBytes must be at least 256");
        }
        if (MaxBodyBytes < 1024)
        {
            throw new ArgumentException("Logwell:MaxBodyBytes must be at least 1024");
        }
        if (DefaultSearchLimit < 1 || MaxSearchLimit < DefaultSearchLimit)
        {
            throw new ArgumentException("Logwell:DefaultSearchLimit must be at least 1 and at most MaxSearchLimit");
        }
        if (SearchTimeoutSeconds < 1 || MaxSearchTimeoutSeconds < SearchTimeoutSeconds)
        {
            throw new ArgumentException("Logwell:SearchTimeoutSeconds must be at least one second and at most MaxSearchTimeoutSeconds");
        }
        try
        {
            if (Array.IndexOf(new System.Text.RegularExpressions.Regex(ElasticsearchIndexPattern).GetGroupNames(), "name") < 0)
            {
                throw new ArgumentException($"Logwell:ElasticsearchIndexPattern must have a group named 'name': {ElasticsearchIndexPattern}");
            }
        }
        catch (System.Text.RegularExpressions.RegexParseException e)
        {
            throw new ArgumentException($"Logwell:ElasticsearchIndexPattern is not a regular expression: {e.Message}");
        }
        if (SyslogTcpPort is < 0 or > 65535 || SyslogUdpPort is < 0 or > 65535)
        {
            throw new ArgumentException("Logwell:SyslogTcpPort and SyslogUdpPort must be ports from 1 to 65535, or 0 for off");
        }
        if (!System.Net.IPAddress.TryParse(SyslogAddress, out _))
        {
            throw new ArgumentException($"Logwell:SyslogAddress must be an IP address, not '{SyslogAddress}'");
        }
        if (SyslogMaxMessageBytes is < 480 or > 16 << 20)
        {
            throw new ArgumentException("Logwell:SyslogMaxMessageBytes must be between 480 and 16777216");
        }
        if ((SyslogTcpPort != 0 || SyslogUdpPort != 0) && !IndexSetName.IsValid(SyslogIndexSet, out var syslogIndexError))
        {
            throw new ArgumentException($"Logwell:SyslogIndexSet: {syslogIndexError}");
        }
        if (DefaultOperator is not ("AND" or "OR"))
        {
            throw new ArgumentException($"Logwell:DefaultOperator must be AND or OR, not '{DefaultOperator}'");
        }
        ToEngineOptions().Validate();
    }
}
