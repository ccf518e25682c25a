using System.Diagnostics;
using System.Net.Sockets;
using Xunit;

namespace Logwell.Tests;

/// <summary>
/// A database server of Debian's started for the tests: PostgreSQL (<c>postgresql</c>) or MariaDB (<c>mariadb-server</c>),
/// each once per test process, in its own temporary directory on a free loopback port, with durability off (tests do
/// not survive power cuts). Each test takes a database of its own (<see cref="CreateDatabase"/>). Where the package is
/// missing, the test is skipped with a message naming it.
/// </summary>
internal sealed class SqlServer
{
    private static readonly Lazy<(SqlServer? Server, string? Missing)> Postgres = new(StartPostgres);
    private static readonly Lazy<(SqlServer? Server, string? Missing)> MariaDb = new(StartMariaDb);

    private readonly Process _process;
    private readonly string _adminConnectionString;
    private readonly Func<string, string> _connectionString;
    private int _databases;

    private SqlServer(string name, Process process, int port, string adminConnectionString, Func<string, string> connectionString)
    {
        Name = name;
        _process = process;
        Port = port;
        _adminConnectionString = adminConnectionString;
        _connectionString = connectionString;
    }

    /// <summary><c>postgresql</c> or <c>mariadb</c>: the <c>MetadataStore</c> setting for this server.</summary>
    public string Name { get; }

    public int Port { get; }

    /// <summary>The PostgreSQL server; skips the calling test when there is none.</summary>
    public static SqlServer PostgreSql => Require(Postgres.Value);

    /// <summary>The MariaDB server; skips the calling test when there is none.</summary>
    public static SqlServer MariaDbServer => Require(MariaDb.Value);

    /// <summary>The server of a <c>MetadataStore</c> value.</summary>
    public static SqlServer Of(string store) => store == "postgresql" ? PostgreSql : MariaDbServer;

    private static SqlServer Require((SqlServer? Server, string? Missing) started)
    {
        Skip.If(started.Server is null, started.Missing);
        return started.Server!;
    }

    /// <summary>A new empty database on the server and the connection string that reaches it.</summary>
    public string CreateDatabase()
    {
        var name = $"lw_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        if (Name == "postgresql")
        {
            using var connection = new Npgsql.NpgsqlConnection(_adminConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = $"CREATE DATABASE {name}";
            command.ExecuteNonQuery();
        }
        else
        {
            using var connection = new MySqlConnector.MySqlConnection(_adminConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = $"CREATE DATABASE {name}";
            command.ExecuteNonQuery();
        }
        return _connectionString(name);
    }

    private static (SqlServer?, string?) StartPostgres()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null)
        {
            return (null, "PostgreSQL is not installed (Debian package postgresql; ./test.sh installs it as root)");
        }
        var directory = Directory.CreateTempSubdirectory("logwell-postgres-").FullName;
        // PostgreSQL refuses to run as root: as root, it runs as the package's postgres user.
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            Run("chown", "postgres", directory);
        }
        var data = Path.Combine(directory, "data");
        var init = Command(asRoot, Path.Combine(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale");
        var (code, output) = RunToEnd(init);
        if (code != 0)
        {
            return (null, $"initdb failed ({code}): {output}");
        }
        var port = ClickHouseServer.FreePort();
        var process = ServerProcess.Launch(Command(asRoot, Path.Combine(bin, "postgres"), "-D", data, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={directory}", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=300"), directory);
        var admin = $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=false";
        var server = new SqlServer("postgresql", process, port, admin, database => $"Host=127.0.0.1;Port={port};Username=postgres;Database={database}");
        return server.WaitReady(() =>
        {
            using var connection = new Npgsql.NpgsqlConnection(admin);
            connection.Open();
        });
    }

    private static (SqlServer?, string?) StartMariaDb()
    {
        var daemon = new[] { "/usr/sbin/mariadbd", "/usr/bin/mariadbd" }.FirstOrDefault(File.Exists);
        if (daemon is null || !File.Exists("/usr/bin/mariadb-install-db"))
        {
            return (null, "MariaDB is not installed (Debian package mariadb-server; ./test.sh installs it as root)");
        }
        var directory = Directory.CreateTempSubdirectory("logwell-mariadb-").FullName;
        var data = Path.Combine(directory, "data");
        var user = Environment.UserName;
        var (code, output) = RunToEnd(Command(false, "/usr/bin/mariadb-install-db", "--no-defaults", $"--datadir={data}", $"--user={user}",
            "--auth-root-authentication-method=normal", "--skip-test-db"));
        if (code != 0)
        {
            return (null, $"mariadb-install-db failed ({code}): {output}");
        }
        var port = ClickHouseServer.FreePort();
        var process = ServerProcess.Launch(Command(false, daemon, "--no-defaults", $"--datadir={data}", $"--socket={Path.Combine(directory, "sock")}",
            $"--port={port}", "--bind-address=127.0.0.1", $"--user={user}", "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=64M", "--max-connections=300"), directory);
        var admin = $"Server=127.0.0.1;Port={port};User ID=root;Pooling=false";
        var server = new SqlServer("mariadb", process, port, admin, database => $"Server=127.0.0.1;Port={port};User ID=root;Database={database}");
        return server.WaitReady(() =>
        {
            using var connection = new MySqlConnector.MySqlConnection(admin);
            connection.Open();
        });
    }

    private (SqlServer?, string?) WaitReady(Action connect)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                return (null, $"{Name} exited with {_process.ExitCode} at start");
            }
            try
            {
                connect();
                return (this, null);
            }
            catch (Exception e) when (e is System.Data.Common.DbException or SocketException or IOException)
            {
                last = e;
            }
            Thread.Sleep(100);
        }
        return (null, $"{Name} did not take connections within 30 s: {last?.Message}");
    }

    private static ProcessStartInfo Command(bool asPostgres, string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program, arguments) { UseShellExecute = false };
        if (asPostgres)
        {
            info.UserName = "postgres";
        }
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        // The servers run on the real clock (test.sh runs some tests under faketime): the times Logwell stores are its own.
        info.Environment.Remove("LD_PRELOAD");
        return info;
    }

    private static (int Code, string Output) RunToEnd(ProcessStartInfo info)
    {
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }

    private static void Run(string program, params string[] arguments)
    {
        var (code, output) = RunToEnd(Command(false, program, arguments));
        if (code != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)}: {output}");
        }
    }
}
