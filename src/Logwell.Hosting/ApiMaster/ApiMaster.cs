using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Logwell.Hosting.ApiMaster;

/// <summary>The API master's settings, named after gunicorn's and uWSGI's options.</summary>
public sealed record ApiMasterOptions
{
    public required Uri Listen { get; init; }

    /// <summary>The command line of one worker process; the master adds nothing but the listening socket's descriptor in <c>LOGWELL_API_LISTEN_FD</c>.</summary>
    public required IReadOnlyList<string> WorkerCommand { get; init; }

    /// <summary>Where the master writes its counts every second (workers, recycles, deaths, timeouts), for <c>/metrics</c>.</summary>
    public string? StatusFile { get; init; }

    public int Workers { get; init; } = 16;
    public int CheaperInitial { get; init; } = 4;

    /// <summary>A worker serves this many requests (plus up to <see cref="MaxRequestsJitter"/>), then is replaced; 0: never.</summary>
    public int MaxRequests { get; init; } = 1000;

    public int MaxRequestsJitter { get; init; } = 50;

    /// <summary>Stopping workers get this long to finish their requests before SIGKILL.</summary>
    public TimeSpan GracefulTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public int Backlog { get; init; } = 2048;

    /// <summary>uWSGI's cheaper subsystem: at least this many workers.</summary>
    public int Cheaper { get; init; } = 4;

    /// <summary>Workers added at once when the busyness is over its maximum or the backlog builds up.</summary>
    public int CheaperStep { get; init; } = 2;

    /// <summary>How often the average busyness is checked.</summary>
    public TimeSpan CheaperOverload { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Busyness (percent) over which workers are added, under which one idle worker goes.</summary>
    public int BusynessMax { get; init; } = 50;

    public int BusynessMin { get; init; } = 25;

    /// <summary>Checks in a row under the minimum before a worker goes.</summary>
    public int BusynessMultiplier { get; init; } = 10;

    /// <summary>Connections waiting in the listen queue that add workers at once.</summary>
    public int BacklogAlert { get; init; } = 33;

    /// <summary>A request running longer gets its worker killed and replaced (the live tail excepted); zero: no limit.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(65);
}

/// <summary>
/// The API master: it owns the listening socket and runs worker processes that accept on it, as gunicorn and uWSGI do.
/// A worker that served its requests says so (DRAINING), is replaced at once, drains and ends with exit code 3; one that
/// dies is replaced at once. SIGHUP
/// replaces every worker one at a time, each new one ready before the old one drains; SIGTTIN and SIGTTOU add and
/// remove a worker; SIGTERM drains every worker and stops.
/// </summary>
public sealed partial class ApiMaster(ApiMasterOptions options, TextWriter log, TimeProvider time)
{
    /// <summary>A worker's exit code once it served its requests.</summary>
    public const int RecycleExitCode = 3;

    private readonly Lock _lock = new();
    private readonly List<WorkerProcess> _workers = [];
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly Random _random = new();
    private readonly BusynessAlgorithm _busyness = new(options);
    private int _target;
    private long _recycles;
    private long _deaths;
    private long _timeouts;
    private DateTimeOffset _statusWritten;
    private int _generation;
    private bool _reload;
    private Socket? _listener;
    private readonly TaskCompletionSource _firstReady = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once a worker accepts: the API is ready to serve.</summary>
    public Task FirstReady => _firstReady.Task;

    private sealed class WorkerProcess(Process process, int number)
    {
        public Process Process { get; } = process;
        public int Number { get; } = number;
        public TaskCompletionSource Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public bool Retiring { get; set; }

        /// <summary>Reaped: it exited and its process object is disposed.</summary>
        public bool Gone { get; set; }

        /// <summary>Its oldest request in flight, as of its last report: when it started (by the master's clock) and its line.</summary>
        public (DateTimeOffset Started, string Line)? Oldest { get; set; }

        public bool TimedOut { get; set; }

        /// <summary>Busy and reported milliseconds since the last busyness check.</summary>
        public long BusyMs { get; set; }

        public long ReportedMs { get; set; }

        public int Id { get; } = process.Id;
    }

    private void Log(string line)
    {
        lock (log)
        {
            log.WriteLine($"{time.GetLocalNow().ToString("yyyy-MM-dd HH:mm:ss,fff", CultureInfo.InvariantCulture)} [master {Environment.ProcessId}] {line}");
            log.Flush();
        }
    }

    public async Task<int> RunAsync(CancellationToken stop)
    {
        _listener = Bind(options.Listen, options.Backlog);
        Log($"listening on {options.Listen} (socket {_listener.SafeHandle.DangerousGetHandle()}), starting {options.CheaperInitial} workers");
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            _reload = true;
            _wake.Release();
        });
        // SIGTTIN and SIGTTOU: one worker more or less.
        using var ttin = PosixSignalRegistration.Create((PosixSignal)21, context =>
        {
            context.Cancel = true;
            Interlocked.Exchange(ref _target, Math.Min(options.Workers, Volatile.Read(ref _target) + 1));
            _wake.Release();
        });
        using var ttou = PosixSignalRegistration.Create((PosixSignal)22, context =>
        {
            context.Cancel = true;
            Interlocked.Exchange(ref _target, Math.Max(1, Volatile.Read(ref _target) - 1));
            _wake.Release();
        });
        _target = Math.Clamp(options.CheaperInitial, Math.Min(options.Cheaper, options.Workers), options.Workers);
        try
        {
            WriteStatus();
            var lastCheck = time.GetUtcNow();
            var lastBacklog = lastCheck;
            while (!stop.IsCancellationRequested)
            {
                var now = time.GetUtcNow();
                if (now - lastCheck >= options.CheaperOverload)
                {
                    lastCheck = now;
                    Cheaper();
                }
                else if (now - lastBacklog >= TimeSpan.FromSeconds(1))
                {
                    // The listen queue, once a second.
                    lastBacklog = now;
                    if (Backlog() is var waiting && waiting > options.BacklogAlert)
                    {
                        Grow($"{waiting} connections wait in the listen queue (alert at {options.BacklogAlert})");
                    }
                }
                KillTimedOut();
                Reap();
                if (time.GetUtcNow() - _statusWritten >= TimeSpan.FromSeconds(1))
                {
                    WriteStatus();
                }
                await ScaleAsync().ConfigureAwait(false);
                if (_reload)
                {
                    _reload = false;
                    await ReloadAsync(stop).ConfigureAwait(false);
                }
                try
                {
                    await _wake.WaitAsync(TimeSpan.FromMilliseconds(100), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            Log("stopping: draining every worker");
            List<WorkerProcess> all;
            lock (_lock)
            {
                all = [.. _workers];
            }
            await Task.WhenAll(all.Select(RetireAsync)).ConfigureAwait(false);
            Log("stopped");
            return 0;
        }
        finally
        {
            _listener.Dispose();
        }
    }

    /// <summary>Once per overload window: the workers' busyness since the last window decides the worker count (<see cref="BusynessAlgorithm"/>).</summary>
    private void Cheaper()
    {
        long busy = 0;
        long reported = 0;
        lock (_lock)
        {
            foreach (var worker in _workers.Where(w => !w.Retiring))
            {
                busy += worker.BusyMs;
                reported += worker.ReportedMs;
                worker.BusyMs = 0;
                worker.ReportedMs = 0;
            }
        }
        var target = Volatile.Read(ref _target);
        if (_busyness.Check(busy, reported, target) is var (wanted, why))
        {
            Interlocked.Exchange(ref _target, wanted);
            Log($"cheaper: {why}; workers {target} -> {wanted}");
        }
    }

    private void Grow(string why)
    {
        var target = Volatile.Read(ref _target);
        var grown = Math.Min(options.Workers, target + options.CheaperStep);
        if (grown > target)
        {
            Interlocked.Exchange(ref _target, grown);
            Log($"cheaper: {why}; workers {target} -> {grown}");
        }
    }

    /// <summary>Connections waiting to be accepted on the listening socket (Linux: its receive queue in /proc/net/tcp); 0 when unknown.</summary>
    private int Backlog()
    {
        try
        {
            var port = ((IPEndPoint)_listener!.LocalEndPoint!).Port.ToString("X4", CultureInfo.InvariantCulture);
            foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
            {
                if (!File.Exists(file))
                {
                    continue;
                }
                foreach (var line in File.ReadLines(file).Skip(1))
                {
                    // sl local_address rem_address st tx_queue:rx_queue ...; state 0A is LISTEN.
                    var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (fields.Length > 4 && fields[3] == "0A" && fields[1].EndsWith(":" + port, StringComparison.Ordinal))
                    {
                        return int.Parse(fields[4].Split(':')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }

    private void WriteStatus()
    {
        _statusWritten = time.GetUtcNow();
        if (options.StatusFile is not { } path)
        {
            return;
        }
        int workers;
        lock (_lock)
        {
            workers = _workers.Count(w => !w.Retiring);
        }
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{{\"workers\":{workers},\"target\":{Volatile.Read(ref _target)},\"recycles\":{Interlocked.Read(ref _recycles)},\"deaths\":{Interlocked.Read(ref _deaths)},\"timeouts\":{Interlocked.Read(ref _timeouts)}}}");
        RunStatus.Write(path, _statusWritten, text);
    }

    /// <summary>A worker whose oldest request has run past the timeout is killed (and then replaced, as a dead one is).</summary>
    private void KillTimedOut()
    {
        if (options.Timeout <= TimeSpan.Zero)
        {
            return;
        }
        lock (_lock)
        {
            var now = time.GetUtcNow();
            foreach (var worker in _workers.Where(w => !w.Gone && !w.TimedOut && w.Oldest is { } oldest && now - oldest.Started > options.Timeout))
            {
                worker.TimedOut = true;
                Interlocked.Increment(ref _timeouts);
                Log(string.Create(CultureInfo.InvariantCulture,
                    $"worker {worker.Number} (pid {worker.Id}) killed: '{worker.Oldest!.Value.Line}' has run for {(now - worker.Oldest.Value.Started).TotalSeconds:0.0} s (timeout {options.Timeout.TotalSeconds:0} s)"));
                Signals.Send(worker.Id, Signals.Kill);
            }
        }
    }

    /// <summary>Notices workers that ended: a recycled one is replaced by <see cref="ScaleAsync"/>, like a dead one.</summary>
    private void Reap()
    {
        lock (_lock)
        {
            foreach (var worker in _workers.Where(w => w.Process.HasExited).ToList())
            {
                var code = worker.Process.ExitCode;
                if (!worker.Retiring)
                {
                    Interlocked.Increment(ref code == RecycleExitCode ? ref _recycles : ref _deaths);
                    Log(code == RecycleExitCode
                        ? $"worker {worker.Number} (pid {worker.Id}) served its requests; replacing it"
                        : $"worker {worker.Number} (pid {worker.Id}) died ({(code > 128 ? $"signal {code - 128}" : $"exit {code}")}); replacing it");
                }
                else if (code is not (0 or RecycleExitCode))
                {
                    Log($"worker {worker.Number} (pid {worker.Id}) ended with {(code > 128 ? $"signal {code - 128}" : $"exit {code}")} while stopping");
                }
                _workers.Remove(worker);
                worker.Gone = true;
                worker.Process.Dispose();
            }
        }
    }

    /// <summary>Starts workers up to the target and retires the extra ones.</summary>
    private async Task ScaleAsync()
    {
        int running;
        lock (_lock)
        {
            running = _workers.Count(w => !w.Retiring);
        }
        var target = Volatile.Read(ref _target);
        for (; running < target; running++)
        {
            Spawn();
        }
        if (running > target)
        {
            WorkerProcess? extra;
            lock (_lock)
            {
                extra = _workers.LastOrDefault(w => !w.Retiring);
            }
            if (extra is not null)
            {
                Log($"removing worker {extra.Number} (pid {extra.Id}): {target} wanted");
                _ = RetireAsync(extra);
            }
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>
    /// The requests one worker serves before it is replaced: <see cref="ApiMasterOptions.MaxRequests"/> plus a draw of up to
    /// <see cref="ApiMasterOptions.MaxRequestsJitter"/>, so workers started together are not replaced together; 0: never.
    /// </summary>
    internal static int RequestAllowance(ApiMasterOptions options, Random random) =>
        options.MaxRequests == 0 ? 0 : options.MaxRequests + random.Next(options.MaxRequestsJitter + 1);

    private WorkerProcess Spawn()
    {
        var info = new ProcessStartInfo(options.WorkerCommand[0]) { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var argument in options.WorkerCommand.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }
        var number = Interlocked.Increment(ref _generation);
        var maxRequests = RequestAllowance(options, _random);
        info.Environment["LOGWELL_API_LISTEN_FD"] = _listener!.SafeHandle.DangerousGetHandle().ToString(CultureInfo.InvariantCulture);
        info.Environment["LOGWELL_API_MAX_REQUESTS"] = maxRequests.ToString(CultureInfo.InvariantCulture);
        info.Environment["LOGWELL_API_WORKER"] = number.ToString(CultureInfo.InvariantCulture);
        info.Environment["LOGWELL_API_GRACEFUL_TIMEOUT"] = ((int)options.GracefulTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        var process = Process.Start(info)!;
        var worker = new WorkerProcess(process, number);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => _wake.Release();
        _ = Task.Run(async () =>
        {
            // The worker prints READY once it accepts; every other line is its log.
            while (await process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (line == "READY")
                {
                    worker.Ready.TrySetResult();
                    _firstReady.TrySetResult();
                }
                else if (line.StartsWith("STATUS ", StringComparison.Ordinal))
                {
                    // STATUS <in flight> <busy ms in the last second> <age of the oldest in ms> <its request line>
                    var parts = line.Split(' ', 5);
                    if (parts.Length == 5 && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var busyMs)
                        && long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var ageMs))
                    {
                        lock (_lock)
                        {
                            worker.Oldest = parts[1] == "0" ? null : (time.GetUtcNow() - TimeSpan.FromMilliseconds(ageMs), parts[4]);
                            worker.BusyMs += Math.Min(busyMs, 1000);
                            worker.ReportedMs += 1000;
                        }
                    }
                }
                else if (line == "DRAINING")
                {
                    bool recycled;
                    lock (_lock)
                    {
                        recycled = !worker.Retiring;
                        worker.Retiring = true;
                    }
                    if (recycled)
                    {
                        Interlocked.Increment(ref _recycles);
                        Log($"worker {worker.Number} (pid {worker.Id}) served its requests; draining it and starting its replacement");
                    }
                    _wake.Release();
                }
                else
                {
                    lock (log)
                    {
                        log.WriteLine(line);
                    }
                }
            }
            worker.Ready.TrySetResult();
        });
        lock (_lock)
        {
            _workers.Add(worker);
        }
        Log($"worker {number} started (pid {process.Id}, {(maxRequests == 0 ? "no request limit" : $"replaced after {maxRequests} requests")})");
        return worker;
    }

    /// <summary>SIGTERM (the worker stops accepting and finishes its requests), then SIGKILL after the graceful timeout.</summary>
    private async Task RetireAsync(WorkerProcess worker)
    {
        Process process;
        lock (_lock)
        {
            if (worker.Gone)
            {
                return;
            }
            worker.Retiring = true;
            process = worker.Process;
        }
        try
        {
            Signals.Send(worker.Id, 15);
            using var timeout = new CancellationTokenSource(options.GracefulTimeout, time);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Log($"worker {worker.Number} (pid {worker.Id}) still busy after the graceful timeout; killing it");
                Signals.Send(worker.Id, Signals.Kill);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // Reaped meanwhile: it has exited.
        }
        _wake.Release();
    }

    /// <summary>SIGHUP: each worker in turn is replaced by a new one, which accepts before the old one drains.</summary>
    private async Task ReloadAsync(CancellationToken stop)
    {
        // Workers already draining (they served their requests) are being replaced anyway.
        List<WorkerProcess> old;
        lock (_lock)
        {
            old = [.. _workers.Where(w => !w.Retiring)];
        }
        Log($"reloading {old.Count} workers one at a time");
        foreach (var worker in old)
        {
            if (stop.IsCancellationRequested)
            {
                return;
            }
            var fresh = Spawn();
            await Task.WhenAny(fresh.Ready.Task, Task.Delay(TimeSpan.FromSeconds(60), time, stop)).ConfigureAwait(false);
            await RetireAsync(worker).ConfigureAwait(false);
            Reap();
        }
        Log("reload done");
    }

    private static Socket Bind(Uri listen, int backlog)
    {
        var address = listen.Host is "localhost" ? IPAddress.Loopback : listen.Host is "*" or "+" or "0.0.0.0" ? IPAddress.Any : IPAddress.Parse(listen.Host);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(new IPEndPoint(address, listen.Port));
        socket.Listen(backlog);
        // Workers inherit the socket: clear close-on-exec.
        var fd = (int)socket.SafeHandle.DangerousGetHandle();
        if (Fcntl(fd, 2 /* F_SETFD */, 0) != 0)
        {
            throw new IOException($"fcntl(F_SETFD) failed on the listening socket: errno {Marshal.GetLastPInvokeError()}");
        }
        return socket;
    }

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);
}
