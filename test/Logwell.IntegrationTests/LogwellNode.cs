using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.IntegrationTests;

/// <summary>A real <c>logwell serve</c> process on a free port with its own data directory.</summary>
internal sealed partial class LogwellNode : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private LogwellNode(Process process, string dataDirectory)
    {
        _process = process;
        DataDirectory = dataDirectory;
    }

    public string DataDirectory { get; }
    public Uri BaseAddress { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The checkout's root directory (the one holding <c>Logwell.slnx</c>).</summary>
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Logwell.slnx")))
            {
                dir = dir.Parent;
            }
            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Logwell.slnx) above " + AppContext.BaseDirectory);
        }
    }

    public static string LogwellDll
    {
        get
        {
            var configuration = typeof(LogwellNode).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .First(a => a.Key == "Configuration").Value;
            var path = Path.Combine(RepositoryRoot, "src", "Logwell", "bin", configuration!, "net10.0", "logwell.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("build src/Logwell first", path);
        }
    }

    /// <param name="arguments">More options for <c>serve</c>, such as <c>--syslog-tcp</c>.</param>
    /// <param name="urls">Where to listen (a free loopback port by default).</param>
    /// <param name="handler">The handler of <see cref="Http"/> (one that trusts a test CA, for a node serving TLS).</param>
    public static async Task<LogwellNode> StartAsync(string dataDirectory, string environment = "Development", IDictionary<string, string>? env = null, IEnumerable<string>? arguments = null,
        string urls = "http://127.0.0.1:0", HttpMessageHandler? handler = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { LogwellDll, "serve", "--urls", urls, "--data", dataDirectory, "--environment", environment }.Concat(arguments ?? []))
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info)!;
        var node = new LogwellNode(process, dataDirectory);
        process.OutputDataReceived += (_, e) => node.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => node.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var started = await Task.WhenAny(node._listening.Task, Task.Delay(TimeSpan.FromSeconds(60)), process.WaitForExitAsync());
        if (started != node._listening.Task)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            throw new InvalidOperationException("logwell serve did not start:\n" + node.Output);
        }
        node.BaseAddress = new Uri(node._listening.Task.Result);
        node.Http = new HttpClient(handler ?? new HttpClientHandler()) { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        return node;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
        var match = ListeningPattern().Match(line);
        if (match.Success)
        {
            _listening.TrySetResult(match.Groups[1].Value);
        }
    }

    /// <summary>SIGKILL: no chance to flush or close anything.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, as a service manager or Ctrl-C would stop it; returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    private bool _disposed;

    /// <summary>Kills the node if it still runs; a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Http?.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    [GeneratedRegex(@"Logwell listening on (https?://[^\s,]+)")]
    private static partial Regex ListeningPattern();
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "logwell-it-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
