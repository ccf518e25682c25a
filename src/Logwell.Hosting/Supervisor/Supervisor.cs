using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Logwell.Hosting.Supervisor;

/// <summary>
/// <c>logwell supervise</c>: runs the processes of a supervisord configuration, keeps them in supervisord's states, and
/// answers <c>logwell ctl</c> on a Unix socket in the data directory (<c>run/supervisor.sock</c>, in a directory only
/// its owner can enter).
/// </summary>
public sealed class Supervisor
{
    private readonly string _configPath;
    private readonly string _dataDirectory;
    private readonly TextWriter _output;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _shutdown = new();
    private SupervisorConfig _config;
    private SupervisorConfig? _reread;
    private List<SupervisedProcess> _processes;
    private bool _stopping;

    public Supervisor(string configPath, string dataDirectory, TextWriter output, TimeProvider time)
    {
        _time = time;
        _configPath = configPath;
        _dataDirectory = Path.GetFullPath(dataDirectory);
        _output = output;
        _config = SupervisorConfig.Load(configPath, _dataDirectory);
        _processes = [.. _config.Processes.Select(NewProcess)];
    }

    public static string SocketPath(string dataDirectory) => Path.Combine(Path.GetFullPath(dataDirectory), "run", "supervisor.sock");

    private SupervisedProcess NewProcess(ProcessConfig config) => new(config, Log, () => _wake.Release(), _time);

    private void Log(string line)
    {
        // A line starts with its level (INFO, WARN...): those under [supervisord] loglevel are left out.
        if (_config is { } config && LevelOf(line) < config.LogLevel)
        {
            return;
        }
        var text = $"{_time.GetLocalNow().ToString("yyyy-MM-dd HH:mm:ss,fff", CultureInfo.InvariantCulture)} {line}";
        lock (_output)
        {
            _output.WriteLine(text);
            _output.Flush();
            if (_config?.LogFile is { } file)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                File.AppendAllText(file, text + "\n");
            }
        }
    }

    private static int LevelOf(string line) => line.Length < 4 ? int.MaxValue : line[..4] switch
    {
        "CRIT" => 50,
        "ERRO" => 40,
        "WARN" => 30,
        "INFO" => 20,
        "DEBG" => 10,
        "TRAC" => 5,
        "BLAT" => 3,
        _ => int.MaxValue,
    };

    /// <summary>Runs until <paramref name="stop"/> or <c>logwell ctl shutdown</c>, then stops every process (highest priority number first).</summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, _shutdown.Token);
        // The programs inherit the configured mask, as under supervisord (whose default is 022).
        FileModes.SetMask(_config.Umask);
        var socketPath = SocketPath(_dataDirectory);
        var runDirectory = Path.GetDirectoryName(socketPath)!;
        Directory.CreateDirectory(runDirectory);
        if (!OperatingSystem.IsWindows())
        {
            // Only the owner may enter the directory, so only the owner can reach the socket.
            File.SetUnixFileMode(runDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (File.Exists(socketPath))
        {
            if (await IsAnsweringAsync(socketPath).ConfigureAwait(false))
            {
                throw new InvalidOperationException($"another supervisor already runs on {_dataDirectory} (its socket {socketPath} answers)");
            }
            File.Delete(socketPath);
        }
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        listener.Listen(16);
        if (_config.PidFile is { } pidFile)
        {
            await File.WriteAllTextAsync(pidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n", CancellationToken.None).ConfigureAwait(false);
        }
        foreach (var note in _config.Notes)
        {
            Log(note);
        }
        foreach (var section in _config.Ignored)
        {
            Log($"INFO [{section}] is ignored: logwell ctl talks to this supervisor over {socketPath}");
        }
        Log($"INFO supervisor {_config.Identifier} started with pid {Environment.ProcessId}, {_processes.Count} processes from {_configPath}; control socket {socketPath}");
        var accepting = AcceptAsync(listener, linked.Token);
        try
        {
            while (!linked.IsCancellationRequested)
            {
                Tick();
                await WaitAsync(linked.Token).ConfigureAwait(false);
            }
            // Shut down: stop everything, in reverse priority order, and wait for the last to go.
            lock (_lock)
            {
                _stopping = true;
            }
            Log("INFO shutting down: stopping every process");
            foreach (var process in Ordered(reverse: true))
            {
                lock (_lock)
                {
                    process.Stop();
                }
                while (true)
                {
                    lock (_lock)
                    {
                        process.Transition(_time.GetUtcNow(), stopping: true);
                        if (process.State is not (ProcessState.Stopping or ProcessState.Starting or ProcessState.Running))
                        {
                            break;
                        }
                    }
                    await WaitAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            foreach (var process in _processes)
            {
                process.CloseLogs();
            }
            Log("INFO supervisor stopped");
            return 0;
        }
        finally
        {
            listener.Close();
            File.Delete(socketPath);
            if (_config.PidFile is { } pid)
            {
                File.Delete(pid);
            }
            try
            {
                await accepting.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    private async Task WaitAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _wake.WaitAsync(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private DateTimeOffset _statusWritten;

    private void Tick()
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            foreach (var process in _processes.OrderBy(p => p.Config.Priority))
            {
                process.Transition(now, _stopping);
            }
            if (now - _statusWritten >= TimeSpan.FromSeconds(1))
            {
                _statusWritten = now;
                WriteStatus();
            }
        }
    }

    /// <summary>
    /// <c>run/supervisor.status.json</c>: each process's state, how many times it was started, its pid and
    /// supervisorctl's description, rewritten every second for the node's <c>/metrics</c> and
    /// <c>/api/v1/supervisor</c> to read.
    /// </summary>
    private void WriteStatus()
    {
        var path = Path.Combine(_dataDirectory, "run", StatusFileName);
        var now = _time.GetUtcNow();
        var status = Ordered(reverse: false).Select(p => new { name = p.Config.FullName, state = p.State.ToString().ToUpperInvariant(), spawns = p.Spawns, pid = p.State == ProcessState.Running ? p.Pid : null, description = p.Describe(now) }).ToList();
        RunStatus.Write(path, now, JsonSerializer.Serialize(status));
    }

    public const string StatusFileName = "supervisor.status.json";

    private List<SupervisedProcess> Ordered(bool reverse)
    {
        lock (_lock)
        {
            var ordered = _processes.OrderBy(p => p.Config.Priority).ThenBy(p => p.Config.FullName, StringComparer.Ordinal);
            return reverse ? [.. ordered.Reverse()] : [.. ordered];
        }
    }

    private static async Task<bool> IsAnsweringAsync(string socketPath)
    {
        try
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(socketPath)).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private async Task AcceptAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            _ = Task.Run(() => ServeAsync(client, cancellationToken), CancellationToken.None);
        }
    }

    /// <summary>One <c>logwell ctl</c> call: a JSON array of words in, text out, then a NUL and the exit code.</summary>
    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using var _ = client;
        await using var stream = new NetworkStream(client, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { AutoFlush = true, NewLine = "\n" };
        try
        {
            var line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            var words = line is null ? null : JsonSerializer.Deserialize<string[]>(line);
            var code = words is { Length: > 0 } ? await RunCommandAsync(words, writer, cancellationToken).ConfigureAwait(false) : Usage(writer);
            await writer.WriteAsync($"\0{code}\n").ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or JsonException or OperationCanceledException or SocketException)
        {
            // The client went away or sent nonsense.
        }
    }

    private static int Usage(TextWriter writer)
    {
        writer.WriteLine("commands: status [NAME...], start|stop|restart NAME...|GROUP:*|all, signal SIG NAME...|GROUP:*|all, tail [-f] NAME [stdout|stderr], reread, update, shutdown, pid");
        return 2;
    }

    private async Task<int> RunCommandAsync(string[] words, StreamWriter writer, CancellationToken cancellationToken)
    {
        var names = words.Skip(1).ToList();
        switch (words[0])
        {
            case "status":
                return Status(names, writer);
            case "pid":
                await writer.WriteLineAsync(Environment.ProcessId.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
                return 0;
            case "start":
                return await StartAsync(names, writer, cancellationToken).ConfigureAwait(false);
            case "stop":
                return await StopAsync(names, writer, cancellationToken).ConfigureAwait(false);
            case "restart":
                var stopped = await StopAsync(names, writer, cancellationToken).ConfigureAwait(false);
                return Math.Max(stopped, await StartAsync(names, writer, cancellationToken).ConfigureAwait(false));
            case "signal":
                return Signal(names, writer);
            case "tail":
                return await TailAsync(names, writer, cancellationToken).ConfigureAwait(false);
            case "reread":
                return Reread(writer);
            case "update":
                return await UpdateAsync(writer, cancellationToken).ConfigureAwait(false);
            case "shutdown":
                await writer.WriteLineAsync("Shut down").ConfigureAwait(false);
                await _shutdown.CancelAsync().ConfigureAwait(false);
                return 0;
            default:
                await writer.WriteLineAsync($"*** Unknown syntax: {string.Join(' ', words)}").ConfigureAwait(false);
                return Usage(writer);
        }
    }

    /// <summary>
    /// The processes a list of names means: <c>all</c>, <c>group:*</c>, <c>group:name</c> or a name, in start order.
    /// <paramref name="wildcard"/> says whether any came from <c>all</c> or <c>group:*</c>: as in supervisorctl, those
    /// skip processes already in the state asked for instead of reporting each.
    /// </summary>
    private List<SupervisedProcess>? Select(List<string> names, TextWriter writer) => Select(names, writer, out _);

    private List<SupervisedProcess>? Select(List<string> names, TextWriter writer, out bool wildcard)
    {
        wildcard = names.Count == 0 || names.Contains("all") || names.Any(n => n.EndsWith(":*", StringComparison.Ordinal));
        lock (_lock)
        {
            if (names.Count == 0 || names.Contains("all"))
            {
                return [.. _processes.OrderBy(p => p.Config.Priority).ThenBy(p => p.Config.FullName, StringComparer.Ordinal)];
            }
            var chosen = new List<SupervisedProcess>();
            foreach (var name in names)
            {
                var matches = name.EndsWith(":*", StringComparison.Ordinal)
                    ? _processes.Where(p => p.Config.Group == name[..^2]).ToList()
                    : _processes.Where(p => p.Config.FullName == name || (p.Config.Group == p.Config.Program && p.Config.Name == name && !name.Contains(':', StringComparison.Ordinal))).ToList();
                if (matches.Count == 0)
                {
                    writer.WriteLine($"{name}: ERROR (no such process)");
                    return null;
                }
                chosen.AddRange(matches.Where(m => !chosen.Contains(m)));
            }
            return chosen;
        }
    }

    private int Status(List<string> names, TextWriter writer)
    {
        var processes = Select(names, writer);
        if (processes is null)
        {
            return 4;
        }
        var now = _time.GetUtcNow();
        var allRunning = true;
        // As supervisorctl: the name column fits the longest name shown (at least 30) and three spaces.
        var width = processes.Select(p => p.Config.FullName.Length).Append(30).Max() + 3;
        lock (_lock)
        {
            // Listed by group, then name, as supervisorctl lists them.
            foreach (var process in processes.OrderBy(p => p.Config.Group, StringComparer.Ordinal).ThenBy(p => p.Config.Name, StringComparer.Ordinal))
            {
                writer.WriteLine($"{process.Config.FullName.PadRight(width)}{process.State.ToString().ToUpperInvariant(),-10}{process.Describe(now)}".TrimEnd());
                allRunning &= process.State == ProcessState.Running;
            }
        }
        // As supervisorctl: 3 when a process is not running.
        return allRunning ? 0 : 3;
    }

    /// <summary>
    /// As supervisorctl: named processes start one after another, each waited for until RUNNING (it stayed up
    /// <c>startsecs</c>) or given up; <c>all</c> and <c>group:*</c> start theirs together and then wait for them all.
    /// Starting a running process says so and is not an error (exit 0); an unknown name exits 1, a failed start 7.
    /// </summary>
    private async Task<int> StartAsync(List<string> names, TextWriter writer, CancellationToken cancellationToken)
    {
        if (names.Count == 0)
        {
            await writer.WriteLineAsync("Error: start requires a process name").ConfigureAwait(false);
            return 2;
        }
        var processes = Select(names, writer, out var wildcard);
        if (processes is null)
        {
            return 1;
        }
        var code = 0;
        var waiting = new List<SupervisedProcess>();
        foreach (var process in processes)
        {
            bool started;
            lock (_lock)
            {
                started = process.Start();
            }
            if (!started)
            {
                if (!wildcard)
                {
                    await writer.WriteLineAsync($"{process.Config.FullName}: ERROR (already started)").ConfigureAwait(false);
                }
                continue;
            }
            waiting.Add(process);
            if (!wildcard)
            {
                code = Math.Max(code, await WaitStartedAsync(process, writer, cancellationToken).ConfigureAwait(false));
            }
        }
        if (wildcard)
        {
            foreach (var process in waiting)
            {
                code = Math.Max(code, await WaitStartedAsync(process, writer, cancellationToken).ConfigureAwait(false));
            }
        }
        return code;
    }

    private async Task<int> WaitStartedAsync(SupervisedProcess process, TextWriter writer, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            ProcessState state;
            lock (_lock)
            {
                state = process.State;
            }
            if (state == ProcessState.Running)
            {
                await writer.WriteLineAsync($"{process.Config.FullName}: started").ConfigureAwait(false);
                return 0;
            }
            if (state is ProcessState.Fatal or ProcessState.Exited or ProcessState.Stopped)
            {
                await writer.WriteLineAsync($"{process.Config.FullName}: ERROR ({(state == ProcessState.Fatal ? "spawn error" : "abnormal termination")})").ConfigureAwait(false);
                return 7;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken).ConfigureAwait(false);
        }
        return 1;
    }

    /// <summary>
    /// As supervisorctl: named processes stop one after another; <c>all</c> and <c>group:*</c> are signalled together
    /// (in reverse start order) and then waited for. Stopping a process that is not running says so and is not an
    /// error (exit 0); an unknown name exits 1.
    /// </summary>
    private async Task<int> StopAsync(List<string> names, TextWriter writer, CancellationToken cancellationToken)
    {
        if (names.Count == 0)
        {
            await writer.WriteLineAsync("Error: stop requires a process name").ConfigureAwait(false);
            return 1;
        }
        var processes = Select(names, writer, out var wildcard);
        if (processes is null)
        {
            return 1;
        }
        var waiting = new List<SupervisedProcess>();
        foreach (var process in processes.AsEnumerable().Reverse())
        {
            bool stopping;
            lock (_lock)
            {
                stopping = process.Stop();
            }
            if (!stopping)
            {
                if (!wildcard)
                {
                    await writer.WriteLineAsync($"{process.Config.FullName}: ERROR (not running)").ConfigureAwait(false);
                }
                continue;
            }
            waiting.Add(process);
            if (!wildcard)
            {
                await WaitStoppedAsync(process, writer, cancellationToken).ConfigureAwait(false);
            }
        }
        if (wildcard)
        {
            foreach (var process in waiting)
            {
                await WaitStoppedAsync(process, writer, cancellationToken).ConfigureAwait(false);
            }
        }
        return 0;
    }

    private async Task WaitStoppedAsync(SupervisedProcess process, TextWriter writer, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            lock (_lock)
            {
                if (process.State != ProcessState.Stopping)
                {
                    break;
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken).ConfigureAwait(false);
        }
        await writer.WriteLineAsync($"{process.Config.FullName}: stopped").ConfigureAwait(false);
    }

    private int Signal(List<string> words, TextWriter writer)
    {
        if (words.Count < 2 || !Signals.TryParse(words[0], out var signal))
        {
            writer.WriteLine("Error: signal requires a signal name (HUP, TERM, USR1...) and a process name");
            return 2;
        }
        var processes = Select(words.Skip(1).ToList(), writer);
        if (processes is null)
        {
            return 4;
        }
        var code = 0;
        lock (_lock)
        {
            foreach (var process in processes)
            {
                if (process.Signal(signal))
                {
                    writer.WriteLine($"{process.Config.FullName}: signalled");
                }
                else
                {
                    writer.WriteLine($"{process.Config.FullName}: ERROR (not running)");
                    code = 1;
                }
            }
        }
        return code;
    }

    private async Task<int> TailAsync(List<string> words, StreamWriter writer, CancellationToken cancellationToken)
    {
        var follow = words.Remove("-f");
        var stream = words.Count > 1 && words[^1] is "stdout" or "stderr" ? words[^1] : "stdout";
        if (words.Count > 1 && words[^1] is "stdout" or "stderr")
        {
            words.RemoveAt(words.Count - 1);
        }
        if (words.Count != 1)
        {
            await writer.WriteLineAsync("Error: tail requires one process name").ConfigureAwait(false);
            return 2;
        }
        SupervisedProcess? process;
        lock (_lock)
        {
            process = _processes.FirstOrDefault(p => p.Config.FullName == words[0] || (p.Config.Group == p.Config.Program && p.Config.Name == words[0]));
        }
        if (process is null)
        {
            await writer.WriteLineAsync($"{words[0]}: ERROR (no such process name)").ConfigureAwait(false);
            return 1;
        }
        // Under redirect_stderr there is no standard error log: it is in the standard output's.
        var path = stream == "stderr" && process.Config.RedirectStderr ? null : process.LogPath(stream);
        if (path is null || !File.Exists(path))
        {
            await writer.WriteLineAsync($"{process.Config.FullName}: ERROR (no log file)").ConfigureAwait(false);
            return 1;
        }
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        // The last 1,600 bytes, as supervisorctl shows.
        file.Seek(Math.Max(0, file.Length - 1600), SeekOrigin.Begin);
        var buffer = new byte[16 * 1024];
        var output = writer.BaseStream;
        while (true)
        {
            var read = await file.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (!follow)
            {
                // As supervisorctl: the log, then a line break.
                await output.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                return 0;
            }
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, cancellationToken).ConfigureAwait(false);
            if (file.Length < file.Position)
            {
                // Rotated: the name points at a new file.
                return 0;
            }
        }
    }

    /// <summary>What changed in the configuration file, per group, as supervisorctl's <c>reread</c> says it.</summary>
    private int Reread(TextWriter writer)
    {
        SupervisorConfig next;
        try
        {
            next = SupervisorConfig.Load(_configPath, _dataDirectory);
        }
        catch (ConfigException e)
        {
            writer.WriteLine($"ERROR: CANT_REREAD: {e.Message}");
            return 2;
        }
        var (added, changed, removed) = Compare(_config, next);
        lock (_lock)
        {
            _reread = next;
        }
        foreach (var group in changed)
        {
            writer.WriteLine($"{group}: changed");
        }
        foreach (var group in added)
        {
            writer.WriteLine($"{group}: available");
        }
        foreach (var group in removed)
        {
            writer.WriteLine($"{group}: disappeared");
        }
        if (added.Count + changed.Count + removed.Count == 0)
        {
            writer.WriteLine("No config updates to processes");
        }
        return 0;
    }

    private static (List<string> Added, List<string> Changed, List<string> Removed) Compare(SupervisorConfig current, SupervisorConfig next)
    {
        static Dictionary<string, string> Groups(SupervisorConfig config) => config.Processes.GroupBy(p => p.Group)
            .ToDictionary(g => g.Key, g => string.Join('\u001d', g.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => p.Name + '\u001c' + p.Fingerprint)), StringComparer.Ordinal);
        var before = Groups(current);
        var after = Groups(next);
        return (
            [.. after.Keys.Where(g => !before.ContainsKey(g)).Order(StringComparer.Ordinal)],
            [.. after.Keys.Where(g => before.TryGetValue(g, out var old) && old != after[g]).Order(StringComparer.Ordinal)],
            [.. before.Keys.Where(g => !after.ContainsKey(g)).Order(StringComparer.Ordinal)]);
    }

    /// <summary>Applies the reread configuration (rereading first): removed groups stop and go, changed ones restart with their new settings, new ones start.</summary>
    private async Task<int> UpdateAsync(StreamWriter writer, CancellationToken cancellationToken)
    {
        if (Reread(TextWriter.Null) != 0)
        {
            return Reread(writer);
        }
        SupervisorConfig next;
        lock (_lock)
        {
            next = _reread!;
        }
        var (added, changed, removed) = Compare(_config, next);
        foreach (var group in removed.Concat(changed))
        {
            await StopAsync([group + ":*"], writer, cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                foreach (var process in _processes.Where(p => p.Config.Group == group))
                {
                    process.CloseLogs();
                }
                _processes.RemoveAll(p => p.Config.Group == group);
            }
            if (removed.Contains(group))
            {
                await writer.WriteLineAsync($"{group}: removed process group").ConfigureAwait(false);
            }
        }
        lock (_lock)
        {
            foreach (var group in added.Concat(changed))
            {
                _processes.AddRange(next.Processes.Where(p => p.Group == group).Select(NewProcess));
            }
            _config = next;
            _reread = null;
        }
        foreach (var group in changed)
        {
            await writer.WriteLineAsync($"{group}: updated process group").ConfigureAwait(false);
        }
        foreach (var group in added)
        {
            await writer.WriteLineAsync($"{group}: added process group").ConfigureAwait(false);
        }
        _wake.Release();
        return 0;
    }
}

/// <summary><c>logwell ctl</c>: sends one command to the supervisor of a data directory and prints its answer.</summary>
public static class SupervisorClient
{
    /// <summary>The supervisor's exit code for the command; its text goes to <paramref name="output"/>.</summary>
    public static async Task<int> RunAsync(string dataDirectory, IReadOnlyList<string> words, Stream output, CancellationToken cancellationToken)
    {
        var socketPath = Supervisor.SocketPath(dataDirectory);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new IOException($"no supervisor answers on {socketPath} ({e.Message}); is logwell supervise running with --data {dataDirectory}?", e);
        }
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(words) + "\n"), cancellationToken).ConfigureAwait(false);
        var buffer = new byte[16 * 1024];
        var tail = new List<byte>();
        var inTrailer = false;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            var start = 0;
            if (!inTrailer)
            {
                var nul = Array.IndexOf(buffer, (byte)0, 0, read);
                if (nul < 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                await output.WriteAsync(buffer.AsMemory(0, nul), cancellationToken).ConfigureAwait(false);
                inTrailer = true;
                start = nul + 1;
            }
            tail.AddRange(buffer.AsSpan(start, read - start).ToArray());
        }
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return inTrailer && int.TryParse(Encoding.ASCII.GetString([.. tail]).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var code) ? code : 1;
    }
}
