using Logwell.Core.Events;
using Logwell.Storage.Engine;

namespace Logwell.Server.Hosting;

/// <summary>Node settings, bound from the <c>Logwell</c> configuration section and validated once at start-up.</summary>
public sealed record LogwellOptions
{
    public const string Section = "Logwell";

    public string DataDirectory { get; init; } = "./data";
    public string Urls { get; init; } = "http://127.0.0.1:5080";

    /// <summary>
    /// Host names the node answers to besides IP addresses, localhost, the machine's name and the hosts of
    /// <see cref="Urls"/>, separated by <c>;</c>: <c>logs.example.com;*.internal.example.com</c>, or <c>*</c> for any.
    /// </summary>
    public string AllowedHosts { get; init; } = "";

    /// <summary>Whether ingest into an unknown index set creates it (on in Development, off in Production).</summary>
    public bool AutoCreateIndexSets { get; init; }

    public long MaxBodyBytes { get; init; } = 64L << 20;

    /// <summary>The longest line (an event) that line-based ingest takes; a longer one is rejected and reported.</summary>
    public int MaxLineBytes { get; init; } = 1 << 20;

    /// <summary>Syslog over TCP on this port (0: off).</summary>
    public int SyslogTcpPort { get; init; }

    /// <summary>Syslog over UDP on this port (0: off).</summary>
    public int SyslogUdpPort { get; init; }

    /// <summary>Syslog over TLS (RFC 5425) on this port (0: off; 6514 is the registered port); needs the TLS files.</summary>
    public int SyslogTlsPort { get; init; }

    /// <summary>
    /// The PEM certificate (leaf first, then intermediates) the HTTP listeners and syslog over TLS serve; with it, every
    /// TCP address of <see cref="Urls"/> speaks HTTPS. Empty: no TLS.
    /// </summary>
    public string TlsCertificateFile { get; init; } = "";

    /// <summary>The certificate's PEM private key.</summary>
    public string TlsKeyFile { get; init; } = "";

    public bool Tls => TlsCertificateFile.Length > 0;

    /// <summary>
    /// <see cref="Urls"/> as Kestrel takes them: with TLS, every TCP address is https (a Unix socket stays plain: only
    /// the node's own processes reach it).
    /// </summary>
    public string ListenUrls() => string.Join(';', Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(url => Tls && url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("http://unix:", StringComparison.OrdinalIgnoreCase)
            ? "https://" + url["http://".Length..] : url));

    /// <summary>
    /// Where a process on the node's machine reaches its HTTP API: the first TCP address of <see cref="ListenUrls"/>, a
    /// wildcard host read as loopback; null when the node listens on Unix sockets only.
    /// </summary>
    public string? LocalUrl()
    {
        var url = ListenUrls().Split(';').FirstOrDefault(u => !u.StartsWith("http://unix:", StringComparison.OrdinalIgnoreCase));
        if (url is null)
        {
            return null;
        }
        var host = HostOf(url);
        return host is "*" or "+" or "0.0.0.0" or "::" ? url.Replace(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host, "127.0.0.1", StringComparison.Ordinal) : url;
    }

    /// <summary>The addresses a client on another machine can reach in clear text: HTTP without TLS, syslog over TCP or UDP.</summary>
    public IReadOnlyList<string> ClearTextExposure()
    {
        var exposed = new List<string>();
        if (!Tls)
        {
            foreach (var url in Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!url.StartsWith("http://unix:", StringComparison.OrdinalIgnoreCase) && !IsLoopbackHost(HostOf(url)))
                {
                    exposed.Add(url);
                }
            }
        }
        if ((SyslogTcpPort != 0 || SyslogUdpPort != 0) && !IsLoopbackHost(SyslogAddress))
        {
            exposed.Add($"syslog {SyslogAddress} {(SyslogTcpPort != 0 ? $"tcp {SyslogTcpPort} " : "")}{(SyslogUdpPort != 0 ? $"udp {SyslogUdpPort}" : "")}".TrimEnd());
        }
        return exposed;
    }

    private static string HostOf(string url)
    {
        var rest = url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..];
        if (rest.StartsWith('['))
        {
            return rest[1..rest.IndexOf(']', StringComparison.Ordinal)];
        }
        var end = rest.IndexOfAny([':', '/']);
        return end < 0 ? rest : rest[..end];
    }

    private static bool IsLoopbackHost(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || System.Net.IPAddress.TryParse(host, out var address) && System.Net.IPAddress.IsLoopback(address);

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

    /// <summary>
    /// How an Elasticsearch index name becomes an index set: when this pattern matches, its <c>name</c> group; else the
    /// whole name. The default drops a date suffix: <c>logs-2026.11.26</c> and <c>logs-2026.11</c> go to <c>logs</c>.
    /// </summary>
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

    /// <summary>Requests a second each API key may send on average, in bursts of twice that (0: no limit).</summary>
    public double KeyRequestsPerSecond { get; init; }

    /// <summary>
    /// A secret that opens <c>/metrics</c> alone, sent as <c>Authorization: Bearer TOKEN</c> (Prometheus'
    /// <c>authorization</c> or <c>bearer_token_file</c>), so a scraper needs no user or key. Empty: <c>/metrics</c> needs
    /// <c>view_metrics</c>.
    /// </summary>
    public string MetricsScrapeToken { get; init; } = "";

    /// <summary>Seconds of searches and exports each API key may run a minute, on top of the node's own limits (0: no limit).</summary>
    public double KeyQuerySecondsPerMinute { get; init; }

    /// <summary>Days the audit log (the system index set <c>_audit</c>) keeps its entries.</summary>
    public int AuditRetentionDays { get; init; } = 180;

    /// <summary>Minutes a web UI session lasts without a request (fractions allowed).</summary>
    public double SessionIdleMinutes { get; init; } = 8 * 60;

    /// <summary>Hours a web UI session lasts at most, however active.</summary>
    public double SessionLifetimeHours { get; init; } = 7 * 24;

    /// <summary>
    /// Distinct field names one index set takes (as Elasticsearch's total_fields.limit); an event's fields under further
    /// names are kept together as a JSON object in the field <c>_overflow</c>.
    /// </summary>
    public int MaxFieldsPerIndexSet { get; init; } = Logwell.Core.Events.FieldLimit.DefaultMax;

    /// <summary>Where the task queues, leases and schedule live: <c>sqlite</c> (<c>tasks.db</c> in the data directory) or <c>redis</c>.</summary>
    public string QueueBackend { get; init; } = "sqlite";

    /// <summary>
    /// Where the metadata lives (users, keys, grants, sessions, saved searches, export records, the node registry):
    /// <c>sqlite</c> (<c>meta.db</c> in the data directory) or, for a cluster whose nodes share it, <c>postgresql</c>
    /// or <c>mariadb</c> (MariaDB; tested with 10.11) at <see cref="MetadataConnectionString"/>.
    /// </summary>
    public string MetadataStore { get; init; } = "sqlite";

    /// <summary>
    /// The ADO.NET connection string of the <c>postgresql</c> or <c>mariadb</c> metadata store
    /// (<c>Host=db;Port=5432;Database=logwell;Username=logwell;Password=…</c>, or <c>Server=db;Port=3306;…</c>).
    /// </summary>
    public string MetadataConnectionString { get; init; } = "";

    /// <summary>How long a node starting waits for its metadata database to answer before it gives up with the reason.</summary>
    public int MetadataConnectTimeoutSeconds { get; init; } = 120;

    /// <summary>The engine of <see cref="MetadataStore"/>.</summary>
    public MetaDialect MetadataDialect => MetadataStore switch
    {
        "postgresql" => MetaDialect.PostgreSql,
        "mariadb" => MetaDialect.MariaDb,
        _ => MetaDialect.Sqlite,
    };

    /// <summary>
    /// Where events live: <c>embedded</c> (the engine in this process, under the data directory) or <c>clickhouse</c>
    /// (cluster mode: every node over the same ClickHouse servers).
    /// </summary>
    public string LogStore { get; init; } = "embedded";

    /// <summary>
    /// ClickHouse's HTTP interface for the <c>clickhouse</c> log store, <c>http://host:8123/</c>; the replicas' interfaces
    /// separated by <c>;</c> where the tables are replicated (any of them takes any statement).
    /// </summary>
    public string ClickHouseUrl { get; init; } = "";

    /// <summary>The addresses in <see cref="ClickHouseUrl"/>.</summary>
    public IReadOnlyList<string> ClickHouseUrls => ClickHouseUrl.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public string ClickHouseUser { get; init; } = "default";

    public string ClickHousePassword { get; init; } = "";

    public string ClickHouseDatabase { get; init; } = "default";

    /// <summary>
    /// The ZooKeeper path under which the event tables are <c>ReplicatedMergeTree</c> (the servers' <c>{replica}</c>
    /// macro names each copy), e.g. <c>/clickhouse/tables/logwell</c>; empty for plain MergeTree on one server.
    /// </summary>
    public string ClickHouseReplicationPath { get; init; } = "";

    /// <summary>Replicas that must hold an insert before ingest answers 2xx (<c>insert_quorum</c>; 2 of 3 keeps writing with one lost); 0 or 1 for none.</summary>
    public int ClickHouseInsertQuorum { get; init; }

    /// <summary>How long an insert waits for its quorum before the request fails (and the client retries).</summary>
    public int ClickHouseInsertQuorumTimeoutSeconds { get; init; } = 10;

    /// <summary>The log store's settings for ClickHouse.</summary>
    public Logwell.Storage.ClickHouse.ClickHouseStoreOptions ToClickHouseOptions() => new([.. ClickHouseUrls.Select(url => new Uri(url))])
    {
        User = ClickHouseUser,
        Password = ClickHousePassword,
        Database = ClickHouseDatabase,
        ReplicationPath = ClickHouseReplicationPath.Length > 0 ? ClickHouseReplicationPath : null,
        InsertQuorum = ClickHouseInsertQuorum,
        InsertQuorumTimeout = TimeSpan.FromSeconds(ClickHouseInsertQuorumTimeoutSeconds),
        DefaultRetentionDays = DefaultRetentionDays,
        MaxQueuedEvents = MaxQueuedEvents,
        MaxFieldsPerIndexSet = MaxFieldsPerIndexSet,
    };

    /// <summary>The Redis server of the <c>redis</c> backend, as a StackExchange.Redis configuration string.</summary>
    public string RedisConnection { get; init; } = "127.0.0.1:6379";

    /// <summary>Prefix of every Redis key Logwell writes, so several clusters can share one Redis.</summary>
    public string RedisPrefix { get; init; } = "logwell:";

    /// <summary>The queues <c>serve</c> runs tasks from in its own process (empty: none, leave them to <c>logwell worker</c>).</summary>
    public string ServeWorkerQueues { get; init; } = "default,export,pipeline,schedule";

    /// <summary>How many tasks <c>serve</c> runs at once.</summary>
    public int ServeWorkerConcurrency { get; init; } = 4;

    /// <summary>Whether <c>serve</c> runs a scheduler (it issues only while it holds the scheduler lease).</summary>
    public bool ServeScheduler { get; init; } = true;

    /// <summary>How long a task's lease lasts without renewal; a dead worker's task runs again after this.</summary>
    public int TaskLeaseSeconds { get; init; } = 30;

    /// <summary>The scheduler lease; a standby takes over within about this after the active scheduler dies.</summary>
    public int SchedulerLeaseSeconds { get; init; } = 10;

    /// <summary>Done tasks are deleted after this many days.</summary>
    public int TaskKeepDays { get; init; } = 7;

    /// <summary>Periodic tasks beside the built-in ones, by name.</summary>
    public Dictionary<string, PeriodicTaskOptions> Schedule { get; init; } = new(StringComparer.Ordinal);

    /// <summary>The most events one asynchronous export writes (the newest ones; the export says it was truncated).</summary>
    public int ExportMaxEvents { get; init; } = 2_000_000;

    /// <summary>
    /// Where export files are written and downloaded from (default <c>exports/</c> in the data directory). In a cluster,
    /// one directory every node mounts (NFS, say), so that an export written by one node's worker downloads from any node.
    /// </summary>
    public string ExportDirectory { get; init; } = "";

    /// <summary>The directory of <see cref="ExportDirectory"/>, made absolute.</summary>
    public string ExportPath => Path.GetFullPath(string.IsNullOrEmpty(ExportDirectory) ? Path.Combine(DataDirectory, "exports") : ExportDirectory);

    /// <summary>
    /// Where index sets with <c>archive_after_days</c> move their old days: an absolute directory (a local disk, a
    /// mounted share) or <c>s3://bucket/prefix</c>; it may be the backup destination. Empty: no archive.
    /// </summary>
    public string ArchiveTo { get; init; } = "";

    /// <summary>Exports one user may have queued or running at once.</summary>
    public int ExportsPerUser { get; init; } = 3;

    /// <summary>How long a finished export can be downloaded.</summary>
    public int ExportDownloadHours { get; init; } = 24;

    /// <summary>When an export's file and record are deleted, in days after it finished.</summary>
    public int ExportKeepDays { get; init; } = 2;

    /// <summary>The most events <c>GET /api/v1/export</c> streams at once; more need an asynchronous export.</summary>
    public int SyncExportMaxEvents { get; init; } = 10_000;

    /// <summary>This node's id in the registry (default HOST:PORT).</summary>
    public string NodeId { get; init; } = "";

    /// <summary>The role this process registers with: <c>serve</c>, or <c>store</c> behind an API master.</summary>
    public string NodeRole { get; init; } = "serve";

    /// <summary>
    /// The host name or address other machines reach this node at, registered instead of the listen address (which
    /// for <c>0.0.0.0</c> names no machine); what <c>logwell lb haproxy-config</c> puts in the balancer's server lines.
    /// </summary>
    public string AdvertiseAddress { get; init; } = "";

    /// <summary>Tags this node registers with.</summary>
    public List<string> NodeTags { get; init; } = [];

    /// <summary>
    /// A Consul agent's HTTP address (<c>http://127.0.0.1:8500</c>): when set, the node also registers there as service
    /// <c>logwell</c> with a check on its <c>/readyz</c>, and deregisters when it stops. The metadata store's registry
    /// stays the one <c>logwell nodes</c> reads.
    /// </summary>
    public string ConsulAddress { get; init; } = "";

    /// <summary>The ACL token sent to the Consul agent (<c>X-Consul-Token</c>), where its ACLs ask for one.</summary>
    public string ConsulToken { get; init; } = "";

    /// <summary>The registry's file (default <c>meta.db</c> in the data directory); nodes of one machine may share one.</summary>
    public string RegistryFile { get; init; } = "";

    public int RegistryHeartbeatSeconds { get; init; } = 10;

    /// <summary>A node silent this long is critical.</summary>
    public int RegistryCriticalSeconds { get; init; } = 30;

    /// <summary>A node silent this long is removed from the registry.</summary>
    public int RegistryRemoveSeconds { get; init; } = 90;

    public string RegistryPath => string.IsNullOrEmpty(RegistryFile) ? Path.Combine(Path.GetFullPath(DataDirectory), "meta.db") : Path.GetFullPath(RegistryFile);

    /// <summary>A queue with this many pending tasks makes <c>/healthz</c> fail.</summary>
    public int HealthQueueBacklog { get; init; } = 10_000;

    /// <summary>Less free space than this on the data disk makes <c>/healthz</c> fail.</summary>
    public int HealthMinFreeDiskMegabytes { get; init; } = 500;

    public EngineOptions ToEngineOptions() => new()
    {
        DataDirectory = Path.GetFullPath(DataDirectory),
        BlockRows = BlockRows,
        MemTableMaxEvents = MemTableMaxEvents,
        MemTableMaxBytes = MemTableMaxBytes,
        BlockCacheBytes = BlockCacheBytes,
        MaxQueuedEvents = MaxQueuedEvents,
        DefaultRetentionDays = DefaultRetentionDays,
        MaxFieldsPerIndexSet = MaxFieldsPerIndexSet,
    };

    /// <exception cref="SettingsException">A setting is missing its mark; the message names it.</exception>
    public void Validate()
    {
        try
        {
            ValidateEach();
        }
        catch (ArgumentException e) when (e is not SettingsException)
        {
            throw new SettingsException(e.Message, e);
        }
    }

    private void ValidateEach()
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
        if (TlsCertificateFile.Length > 0 != TlsKeyFile.Length > 0)
        {
            throw new ArgumentException("Logwell:TlsCertificateFile and TlsKeyFile (--tls-cert and --tls-key) go together: give both PEM files, or neither");
        }
        if (SyslogTlsPort is < 0 or > 65535)
        {
            throw new ArgumentException("Logwell:SyslogTlsPort must be a port from 1 to 65535, or 0 for off");
        }
        if (SyslogTlsPort != 0 && !Tls)
        {
            throw new ArgumentException("Logwell:SyslogTlsPort (--syslog-tls) needs the node's TLS certificate: give --tls-cert and --tls-key");
        }
        if (!Tls && Urls.Contains("https://", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"Logwell:Urls has an https address ({Urls}) but no certificate: give --tls-cert and --tls-key (PEM files)");
        }
        if (!System.Net.IPAddress.TryParse(SyslogAddress, out _))
        {
            throw new ArgumentException($"Logwell:SyslogAddress must be an IP address, not '{SyslogAddress}'");
        }
        if (SyslogMaxMessageBytes is < 480 or > 16 << 20)
        {
            throw new ArgumentException("Logwell:SyslogMaxMessageBytes must be between 480 and 16777216");
        }
        if ((SyslogTcpPort != 0 || SyslogUdpPort != 0 || SyslogTlsPort != 0) && !IndexSetName.IsValid(SyslogIndexSet, out var syslogIndexError))
        {
            throw new ArgumentException($"Logwell:SyslogIndexSet: {syslogIndexError}");
        }
        if (MetricsScrapeToken.Length is > 0 and < 16)
        {
            throw new ArgumentException("Logwell:MetricsScrapeToken must be at least 16 characters (a random secret: openssl rand -hex 24)");
        }
        if (!(KeyQuerySecondsPerMinute >= 0) || double.IsInfinity(KeyQuerySecondsPerMinute))
        {
            throw new ArgumentException("Logwell:KeyQuerySecondsPerMinute must be 0 (no limit) or a positive number");
        }
        if (!(KeyRequestsPerSecond >= 0) || double.IsInfinity(KeyRequestsPerSecond))
        {
            throw new ArgumentException("Logwell:KeyRequestsPerSecond must be 0 (no limit) or a positive number");
        }
        if (!(SessionIdleMinutes > 0) || !(SessionLifetimeHours > 0) || SessionIdleMinutes > 525_600 || SessionLifetimeHours > 8_760)
        {
            throw new ArgumentException("Logwell:SessionIdleMinutes and SessionLifetimeHours must be positive, at most a year");
        }
        if (AuditRetentionDays is < 1 or > 36_500)
        {
            throw new ArgumentException("Logwell:AuditRetentionDays must be between 1 and 36500");
        }
        if (DefaultOperator is not ("AND" or "OR"))
        {
            throw new ArgumentException($"Logwell:DefaultOperator must be AND or OR, not '{DefaultOperator}'");
        }
        if (LogStore is not ("embedded" or "clickhouse"))
        {
            throw new ArgumentException($"Logwell:LogStore must be embedded or clickhouse, not '{LogStore}'");
        }
        if (ConsulAddress.Length > 0 && !(Uri.TryCreate(ConsulAddress, UriKind.Absolute, out var consul) && consul.Scheme is "http" or "https"))
        {
            throw new ArgumentException($"Logwell:ConsulAddress must be a Consul agent's HTTP address (http://127.0.0.1:8500), not '{ConsulAddress}'");
        }
        if (LogStore == "clickhouse" && (ClickHouseUrls.Count == 0 || ClickHouseUrls.Any(url => !(Uri.TryCreate(url, UriKind.Absolute, out var clickHouse) && clickHouse.Scheme is "http" or "https"))))
        {
            throw new ArgumentException($"Logwell:ClickHouseUrl must be ClickHouse's HTTP interface (http://host:8123/, several separated by ';') when LogStore is clickhouse, not '{ClickHouseUrl}'");
        }
        if (ClickHouseInsertQuorum > ClickHouseUrls.Count && ClickHouseInsertQuorum > 1)
        {
            throw new ArgumentException($"Logwell:ClickHouseInsertQuorum ({ClickHouseInsertQuorum}) cannot be more than the servers in ClickHouseUrl ({ClickHouseUrls.Count})");
        }
        if (ClickHouseInsertQuorumTimeoutSeconds < 1)
        {
            throw new ArgumentException("Logwell:ClickHouseInsertQuorumTimeoutSeconds must be at least 1");
        }
        if (MetadataStore is not ("sqlite" or "postgresql" or "mariadb"))
        {
            throw new ArgumentException($"Logwell:MetadataStore must be sqlite, postgresql or mariadb, not '{MetadataStore}'");
        }
        if (MetadataStore != "sqlite")
        {
            if (MetadataConnectionString.Length == 0)
            {
                throw new ArgumentException($"Logwell:MetadataConnectionString is needed when MetadataStore is {MetadataStore} (Host=…;Database=…;Username=…;Password=…)");
            }
            try
            {
                _ = MetadataStore == "postgresql" ? MetaDatabase.DescribePostgres(MetadataConnectionString) : MetaDatabase.DescribeMariaDb(MetadataConnectionString);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"Logwell:MetadataConnectionString does not read as a {MetadataStore} connection string: {e.Message}");
            }
        }
        if (MetadataConnectTimeoutSeconds < 0)
        {
            throw new ArgumentException("Logwell:MetadataConnectTimeoutSeconds must be 0 or more");
        }
        if (QueueBackend is not ("sqlite" or "redis"))
        {
            throw new ArgumentException($"Logwell:QueueBackend must be sqlite or redis, not '{QueueBackend}'");
        }
        if (ServeWorkerConcurrency < 1 || TaskLeaseSeconds < 3 || SchedulerLeaseSeconds < 3 || TaskKeepDays < 1)
        {
            throw new ArgumentException("Logwell:ServeWorkerConcurrency must be at least 1, TaskLeaseSeconds and SchedulerLeaseSeconds at least 3, TaskKeepDays at least 1");
        }
        if (RegistryHeartbeatSeconds < 1 || RegistryCriticalSeconds <= RegistryHeartbeatSeconds || RegistryRemoveSeconds < RegistryCriticalSeconds)
        {
            throw new ArgumentException("Logwell:RegistryHeartbeatSeconds must be at least 1, RegistryCriticalSeconds more than it, and RegistryRemoveSeconds at least RegistryCriticalSeconds");
        }
        if (HealthQueueBacklog < 1 || HealthMinFreeDiskMegabytes < 0)
        {
            throw new ArgumentException("Logwell:HealthQueueBacklog must be at least 1 and HealthMinFreeDiskMegabytes at least 0");
        }
        if (ExportMaxEvents < 1 || ExportsPerUser < 1 || ExportDownloadHours < 1 || ExportKeepDays < 1 || SyncExportMaxEvents < 1)
        {
            throw new ArgumentException("Logwell:ExportMaxEvents, ExportsPerUser, ExportDownloadHours, ExportKeepDays and SyncExportMaxEvents must be at least 1");
        }
        if (ArchiveTo.Length > 0)
        {
            try
            {
                Tasks.BuiltinTasks.Destination(ArchiveTo);
            }
            catch (FormatException e)
            {
                throw new ArgumentException($"Logwell:ArchiveTo: {e.Message}", e);
            }
            var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(DataDirectory));
            if (!Storage.Backup.S3BackupStorage.Names(ArchiveTo) && Path.TrimEndingDirectorySeparator(Path.GetFullPath(ArchiveTo)) is var archive
                && (archive == data || archive.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
            {
                throw new ArgumentException($"Logwell:ArchiveTo ({ArchiveTo}) lies inside the data directory: the archive is to leave the hot disk");
            }
        }
        foreach (var (name, entry) in Schedule)
        {
            try
            {
                entry.ToPeriodicTask(name);
                if (entry.Task == Tasks.BuiltinTasks.Backup)
                {
                    Tasks.BuiltinTasks.BackupArguments(entry.Arguments);
                }
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw new ArgumentException($"Logwell:Schedule:{name}: {e.Message}", e);
            }
        }
        ToEngineOptions().Validate();
    }
}

/// <summary>Settings that cannot be used; the message names the setting and what it must be.</summary>
public sealed class SettingsException(string message, Exception inner) : ArgumentException(message, inner);

/// <summary>A periodic task from configuration: every <see cref="Every"/>, or at the times of <see cref="Cron"/> in <see cref="TimeZone"/>.</summary>
public sealed record PeriodicTaskOptions
{
    /// <summary>The task's name (what a worker runs).</summary>
    public string Task { get; init; } = "";

    public string Queue { get; init; } = "default";

    /// <summary>The task's arguments as a JSON object; the scheduler adds <c>slot</c>.</summary>
    public string Arguments { get; init; } = "{}";

    public TimeSpan? Every { get; init; }

    /// <summary>Five fields (minute hour day month weekday), or six with seconds first.</summary>
    public string? Cron { get; init; }

    /// <summary>The zone the cron expression is read in (an IANA name such as Europe/Paris).</summary>
    public string TimeZone { get; init; } = "UTC";

    public int MaxRetries { get; init; } = 3;

    public Logwell.Jobs.PeriodicTask ToPeriodicTask(string name)
    {
        if (string.IsNullOrEmpty(Task))
        {
            throw new FormatException("Task (the task's name) is required");
        }
        try
        {
            if (System.Text.Json.Nodes.JsonNode.Parse(Arguments) is not System.Text.Json.Nodes.JsonObject)
            {
                throw new FormatException("Arguments must be a JSON object");
            }
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new FormatException($"Arguments is not JSON: {e.Message}", e);
        }
        var request = new Logwell.Jobs.TaskRequest(Task, Arguments, Queue) { MaxRetries = MaxRetries };
        return (Every, Cron) switch
        {
            ({ } every, null) => Logwell.Jobs.PeriodicTask.Interval(name, every, request),
            (null, { } cron) => Logwell.Jobs.PeriodicTask.CronSchedule(name, cron, TimeZone, request),
            _ => throw new FormatException("set exactly one of Every (such as 00:05:00) and Cron (such as \"0 3 * * *\")"),
        };
    }
}
