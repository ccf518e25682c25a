using System.CommandLine;
using Logwell.Server.Hosting;
using Logwell.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Logwell.Cli;

/// <summary>
/// <c>logwell serve</c>: every role in one process on the embedded stores. <c>logwell store</c>: the same node without
/// its own task worker and scheduler, for a deployment where <c>logwell worker</c> and <c>logwell scheduler</c> run as
/// processes of their own (the supervisor's default).
/// </summary>
internal static class ServeCommand
{
    public static Command Create() => Create("serve", "Run a Logwell node on the embedded default: HTTP API, log engine, task worker and scheduler in one process.", []);

    public static Command Store() => Create("store", "Run the node's log engine and HTTP API without a task worker or scheduler: those run as logwell worker and logwell scheduler processes.",
        new Dictionary<string, string?> { ["Logwell:ServeWorkerQueues"] = "", ["Logwell:ServeScheduler"] = "false", ["Logwell:NodeRole"] = "store" });

    /// <param name="roleDefaults">Settings of this role: they override the settings files; LOGWELL_ variables and flags override them.</param>
    private static Command Create(string verb, string description, Dictionary<string, string?> roleDefaults)
    {
        var data = new Option<string?>("--data") { Description = "data directory (default ./data)" };
        var urls = new Option<string?>("--urls") { Description = "where to listen (default http://127.0.0.1:5080)" };
        var environment = new Option<string?>("--environment") { Description = "Development (default for serve) or Production" };
        var syslogTcp = new Option<int?>("--syslog-tcp") { Description = "receive syslog over TCP on this port (RFC 5424 and 3164, octet-counted or newline-framed)" };
        var syslogUdp = new Option<int?>("--syslog-udp") { Description = "receive syslog over UDP on this port" };
        var syslogIndex = new Option<string?>("--syslog-index") { Description = "index set for syslog messages (default syslog)" };
        var syslogTls = new Option<int?>("--syslog-tls") { Description = "receive syslog over TLS on this port (RFC 5425; 6514 is the registered port); needs --tls-cert and --tls-key" };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "PEM certificate (leaf first, then intermediates): every TCP address of --urls then speaks HTTPS" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "the certificate's PEM private key" };
        var command = new Command(verb, description)
        {
            data, urls, environment, syslogTcp, syslogUdp, syslogTls, syslogIndex, tlsCert, tlsKey,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var env = Settings.EnvironmentName(result.GetValue(environment));
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions
            {
                EnvironmentName = env,
                ContentRootPath = AppContext.BaseDirectory,
            });
            builder.Configuration.AddInMemoryCollection(roleDefaults);
            builder.Configuration.AddInMemoryCollection(Settings.LogwellEnvironment());
            var overrides = new Dictionary<string, string?>();
            if (result.GetValue(data) is { } dataDir)
            {
                overrides["Logwell:DataDirectory"] = dataDir;
            }
            if (result.GetValue(urls) is { } listen)
            {
                overrides["Logwell:Urls"] = listen;
            }
            if (result.GetValue(syslogTcp) is { } tcpPort)
            {
                overrides["Logwell:SyslogTcpPort"] = tcpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (result.GetValue(syslogUdp) is { } udpPort)
            {
                overrides["Logwell:SyslogUdpPort"] = udpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (result.GetValue(syslogTls) is { } tlsPort)
            {
                overrides["Logwell:SyslogTlsPort"] = tlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (result.GetValue(tlsCert) is { } certificateFile)
            {
                overrides["Logwell:TlsCertificateFile"] = Path.GetFullPath(certificateFile);
            }
            if (result.GetValue(tlsKey) is { } keyFile)
            {
                overrides["Logwell:TlsKeyFile"] = Path.GetFullPath(keyFile);
            }
            if (result.GetValue(syslogIndex) is { } syslogIndexSet)
            {
                overrides["Logwell:SyslogIndexSet"] = syslogIndexSet;
            }
            builder.Configuration.AddInMemoryCollection(overrides);
            // Relative data paths are relative to where logwell was started, not to the binary.
            var configured = builder.Configuration["Logwell:DataDirectory"] ?? "./data";
            builder.Configuration["Logwell:DataDirectory"] = Path.GetFullPath(configured, Environment.CurrentDirectory);

            await using var app = LogwellApp.Build(builder, Settings.Time);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            var options = app.Services.GetRequiredService<IOptions<LogwellOptions>>().Value;
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            Console.WriteLine($"Logwell listening on {string.Join(", ", addresses)}");
            if (addresses.FirstOrDefault(a => a.StartsWith("http", StringComparison.OrdinalIgnoreCase) && !a.Contains("unix:", StringComparison.OrdinalIgnoreCase)) is { } web)
            {
                // The root answers shippers with the Elasticsearch banner, and browsers with the UI.
                Console.WriteLine($"Logwell web UI at {web.TrimEnd('/')}/ (open it in a browser)");
            }
            Console.WriteLine($"Logwell data in {options.DataDirectory} (environment {env}, auto-create index sets {(options.AutoCreateIndexSets ? "on" : "off")})");
            if (options.LogStore == "clickhouse")
            {
                Console.WriteLine($"Logwell events in ClickHouse at {string.Join(", ", options.ClickHouseUrls)} (database {options.ClickHouseDatabase}{(options.ClickHouseInsertQuorum > 1 ? $", insert quorum {options.ClickHouseInsertQuorum}" : "")})");
            }
            if (options.MetadataDialect != MetaDialect.Sqlite)
            {
                Console.WriteLine($"Logwell metadata in {app.Services.GetRequiredService<MetaDatabase>().Location}");
            }
            if (options.SyslogTcpPort != 0 || options.SyslogUdpPort != 0 || options.SyslogTlsPort != 0)
            {
                static string Port(int port) => port != 0 ? port.ToString(System.Globalization.CultureInfo.InvariantCulture) : "off";
                Console.WriteLine($"Logwell syslog on {options.SyslogAddress}: tcp {Port(options.SyslogTcpPort)}, tls {Port(options.SyslogTlsPort)}, udp {Port(options.SyslogUdpPort)}, into index set {options.SyslogIndexSet}");
            }
            if (options.Tls)
            {
                Console.WriteLine($"Logwell TLS with {options.TlsCertificateFile} (HSTS on; the files are read again when they change)");
            }
            foreach (var exposed in options.ClearTextExposure())
            {
                Console.Error.WriteLine($"WARNING: {exposed} is reachable from other machines WITHOUT TLS: passwords, API keys and events cross the network in clear text. Give --tls-cert and --tls-key, or put a TLS-ending proxy in front.");
            }
            Console.Out.Flush();
            await app.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.Services.GetRequiredService<ILogStore>().DisposeAsync().ConfigureAwait(false);
            Console.WriteLine("Logwell stopped; all acknowledged events are on disk.");
            return 0;
        });
        return command;
    }
}
