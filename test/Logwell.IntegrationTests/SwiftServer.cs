using System.Diagnostics;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>
/// Debian's OpenStack Swift as an S3-compatible server (its <c>s3api</c> middleware): one proxy, account, container and
/// object server, each a process of the test on a free loopback port, with rings and devices in a temporary directory;
/// no package service is touched. Signs in as <c>test:tester</c>/<c>testing</c> (tempauth), the S3 access and secret key.
/// </summary>
internal sealed class SwiftServer : IAsyncDisposable
{
    public const string Missing = "swift is not installed (test.sh installs Debian's swift, swift-proxy, swift-account, swift-container and swift-object when run as root)";

    public const string AccessKey = "test:tester";

    public const string SecretKey = "testing";

    private readonly List<Process> _processes = [];
    private readonly StringBuilder _output = new();
    private readonly string _directory;

    private SwiftServer(string directory, int port)
    {
        _directory = directory;
        Endpoint = $"http://127.0.0.1:{port}";
    }

    public static bool Installed => File.Exists("/usr/bin/swift-proxy-server") && File.Exists("/usr/bin/swift-object-server")
        && File.Exists("/usr/bin/swift-account-server") && File.Exists("/usr/bin/swift-container-server") && File.Exists("/usr/bin/swift-ring-builder");

    /// <summary>The S3 endpoint, <c>http://127.0.0.1:PORT</c>.</summary>
    public string Endpoint { get; }

    /// <summary>What a process needs to reach the server as the AWS SDK does: credentials and endpoint.</summary>
    public Dictionary<string, string> Environment => new()
    {
        ["AWS_ACCESS_KEY_ID"] = AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
        ["AWS_ENDPOINT_URL_S3"] = Endpoint,
        ["AWS_REGION"] = "us-east-1",
    };

    /// <summary>A client of the test's own, to make buckets and look inside them.</summary>
    public AmazonS3Client Client() => new(new BasicAWSCredentials(AccessKey, SecretKey), new AmazonS3Config
    {
        ServiceURL = Endpoint,
        ForcePathStyle = true,
        AuthenticationRegion = "us-east-1",
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        MaxErrorRetry = 8,
    });

    public static async Task<SwiftServer> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("logwell-swift-").FullName;
        var proxy = ClickHouseServer.FreePort();
        var server = new SwiftServer(directory, proxy);
        try
        {
            await server.StartServersAsync(proxy);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    private async Task StartServersAsync(int proxy)
    {
        var conf = Path.Combine(_directory, "conf");
        Directory.CreateDirectory(conf);
        Directory.CreateDirectory(Path.Combine(_directory, "srv", "d1"));
        await File.WriteAllTextAsync(Path.Combine(conf, "swift.conf"), """
            [swift-hash]
            swift_hash_path_suffix = logwelltest
            swift_hash_path_prefix = logwelltest
            [storage-policy:0]
            name = Policy-0
            default = yes
            """);
        var servers = new List<(string Name, int Port)>();
        foreach (var name in new[] { "account", "container", "object" })
        {
            var port = ClickHouseServer.FreePort();
            servers.Add((name, port));
            var builder = Path.Combine(conf, $"{name}.builder");
            await RunAsync("/usr/bin/swift-ring-builder", builder, "create", "6", "1", "1");
            await RunAsync("/usr/bin/swift-ring-builder", builder, "add", $"r1z1-127.0.0.1:{port}/d1", "1");
            await RunAsync("/usr/bin/swift-ring-builder", builder, "rebalance");
            await File.WriteAllTextAsync(Path.Combine(conf, $"{name}-server.conf"), $"""
                [DEFAULT]
                swift_dir = {conf}
                devices = {_directory}/srv
                mount_check = false
                disable_fallocate = true
                bind_ip = 127.0.0.1
                bind_port = {port}
                workers = 0
                log_name = {name}
                [pipeline:main]
                pipeline = {name}-server
                [app:{name}-server]
                use = egg:swift#{name}
                """);
        }
        // No memcached: the cache filter is pointed at a closed port and works without one. Generous timeouts towards the
        // other servers: on a busy test machine the default half second to connect answers 503 ("reduce your request rate").
        await File.WriteAllTextAsync(Path.Combine(conf, "proxy-server.conf"), $"""
            [DEFAULT]
            swift_dir = {conf}
            bind_ip = 127.0.0.1
            bind_port = {proxy}
            workers = 0
            [pipeline:main]
            pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
            [app:proxy-server]
            use = egg:swift#proxy
            account_autocreate = true
            conn_timeout = 5
            node_timeout = 60
            recoverable_node_timeout = 60
            [filter:gatekeeper]
            use = egg:swift#gatekeeper
            [filter:healthcheck]
            use = egg:swift#healthcheck
            [filter:listing_formats]
            use = egg:swift#listing_formats
            [filter:copy]
            use = egg:swift#copy
            [filter:slo]
            use = egg:swift#slo
            [filter:dlo]
            use = egg:swift#dlo
            [filter:catch_errors]
            use = egg:swift#catch_errors
            [filter:proxy-logging]
            use = egg:swift#proxy_logging
            [filter:cache]
            use = egg:swift#memcache
            memcache_servers = 127.0.0.1:1
            [filter:s3api]
            use = egg:swift#s3api
            location = us-east-1
            [filter:tempauth]
            use = egg:swift#tempauth
            user_test_tester = {SecretKey} .admin
            """);
        foreach (var (name, _) in servers)
        {
            Start($"/usr/bin/swift-{name}-server", Path.Combine(conf, $"{name}-server.conf"));
        }
        Start("/usr/bin/swift-proxy-server", Path.Combine(conf, "proxy-server.conf"));

        // Up when an S3 request is answered (the account is made on the first one).
        using var client = Client();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var answered = false;
        await WorkerProcessTests.WaitForAsync(() =>
        {
            if (_processes.Any(p => p.HasExited))
            {
                return true;
            }
            try
            {
                client.ListBucketsAsync().GetAwaiter().GetResult();
                answered = true;
                return true;
            }
            catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(90), () => Output);
        if (!answered)
        {
            throw new InvalidOperationException("swift exited at start: " + Output);
        }
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Start(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _directory };
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    private static async Task RunAsync(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        // rebalance exits 1 with a warning on a ring of one device; the ring is written all the same.
        if (process.ExitCode > 1)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {await output}{await error}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            await process.WaitForExitAsync();
            process.Dispose();
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
