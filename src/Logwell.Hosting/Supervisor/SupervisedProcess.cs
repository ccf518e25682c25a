using System.Diagnostics;
using System.Globalization;

namespace Logwell.Hosting.Supervisor;

/// <summary>supervisord's process states.</summary>
public enum ProcessState
{
    Stopped,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Fatal,
}

/// <summary>
/// One supervised process and supervisord's state machine for it. <see cref="Transition"/> runs on the supervisor's
/// tick and after every event; all members are used under the supervisor's lock.
/// <list type="bullet">
/// <item>STARTING becomes RUNNING once the process has stayed up <c>startsecs</c>; exiting sooner (or failing to spawn)
/// is BACKOFF, retried after 1 s, then 2 s, 3 s... and FATAL after <c>startretries</c> retries.</item>
/// <item>A RUNNING process that exits is EXITED, and started again at once as <c>autorestart</c> says: always, never, or
/// when its exit code is not one of <c>exitcodes</c>.</item>
/// <item>Stopping sends <c>stopsignal</c> (to the process group with <c>stopasgroup</c>) and, after
/// <c>stopwaitsecs</c>, SIGKILL (to the group with <c>killasgroup</c>).</item>
/// </list>
/// Processes start through <c>setsid</c>, so each leads its own process group.
/// </summary>
internal sealed class SupervisedProcess(ProcessConfig config, Action<string> log, Action changed, TimeProvider time)
{
    private Process? _process;
    private RotatingLog? _stdout;
    private RotatingLog? _stderr;
    private DateTimeOffset _delay;
    private bool _killing;
    private bool _everStarted;
    private int _spawns;

    public ProcessConfig Config { get; set; } = config;
    public ProcessState State { get; private set; } = ProcessState.Stopped;
    public int? Pid => _process?.Id;
    public DateTimeOffset? StartedAt { get; private set; }
    public DateTimeOffset? StoppedAt { get; private set; }
    public int Backoff { get; private set; }
    public string? SpawnError { get; private set; }
    public int? ExitStatus { get; private set; }

    /// <summary>How many times it was spawned (for tests and <c>status</c>).</summary>
    public int Spawns => _spawns;

    /// <summary>The file <c>tail</c> reads for a stream.</summary>
    public string? LogPath(string stream) => stream == "stderr" && !Config.RedirectStderr ? Config.Stderr.Path : Config.Stdout.Path;

    private void SetState(ProcessState state)
    {
        // A spawn that fails in BACKOFF enters it again: one more retry, waiting one second longer.
        if (state == ProcessState.Backoff)
        {
            Backoff++;
            _delay = time.GetUtcNow() + TimeSpan.FromSeconds(Backoff);
        }
        if (state == State)
        {
            return;
        }
        State = state;
        changed();
    }

    /// <summary>Starts it (from STOPPED, EXITED, FATAL or BACKOFF); false when it is already starting or running.</summary>
    public bool Start()
    {
        if (State is ProcessState.Starting or ProcessState.Running or ProcessState.Stopping)
        {
            return false;
        }
        Backoff = 0;
        Spawn();
        return true;
    }

    private void Spawn()
    {
        SpawnError = null;
        ExitStatus = null;
        _killing = false;
        var executable = Resolve(Config.Command[0], Config.Directory);
        if (executable is null)
        {
            SpawnError = $"can't find command '{Config.Command[0]}'";
            log($"INFO spawnerr: {SpawnError}");
            SetState(ProcessState.Backoff);
            return;
        }
        var start = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Config.Directory ?? Environment.CurrentDirectory,
        };
        if (Config.RedirectStderr)
        {
            // Standard error onto the standard output's pipe, as supervisord does, so that their lines keep their
            // order; the shell execs the program, which keeps its pid.
            start.ArgumentList.Add("/bin/sh");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("exec \"$0\" \"$@\" 2>&1");
        }
        start.ArgumentList.Add(executable);
        foreach (var argument in Config.Command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["SUPERVISOR_ENABLED"] = "1";
        start.Environment["SUPERVISOR_PROCESS_NAME"] = Config.Name;
        start.Environment["SUPERVISOR_GROUP_NAME"] = Config.Group;
        foreach (var (key, value) in Config.Environment)
        {
            start.Environment[key] = value;
        }
        try
        {
            _stdout ??= RotatingLog.Open(Config.Stdout);
            _stderr ??= Config.RedirectStderr ? _stdout : RotatingLog.Open(Config.Stderr);
            var process = new Process { StartInfo = start, EnableRaisingEvents = true };
            process.Exited += (_, _) => changed();
            process.Start();
            process.StandardInput.Close();
            _process = process;
            _ = PumpAsync(process.StandardOutput.BaseStream, _stdout);
            _ = PumpAsync(process.StandardError.BaseStream, _stderr);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            SpawnError = $"spawn failed: {e.Message}";
            log($"INFO spawnerr: {SpawnError}");
            SetState(ProcessState.Backoff);
            return;
        }
        _spawns++;
        _everStarted = true;
        StartedAt = time.GetUtcNow();
        log($"INFO spawned: '{Config.FullName}' with pid {_process.Id}");
        SetState(ProcessState.Starting);
    }

    private static async Task PumpAsync(Stream source, RotatingLog target)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                try
                {
                    target.Write(buffer.AsSpan(0, read));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A log that cannot be written (a full disk) loses the output, but the pipe keeps draining: a
                    // program must never block on its own output.
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The process is gone.
        }
    }

    /// <summary>The executable a command names: a path, or a name found on PATH.</summary>
    private static string? Resolve(string command, string? directory)
    {
        if (command.Contains('/', StringComparison.Ordinal))
        {
            var path = Path.GetFullPath(command, directory ?? Environment.CurrentDirectory);
            return File.Exists(path) ? path : null;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, command);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Asks it to stop: BACKOFF ends at once, STARTING and RUNNING get <c>stopsignal</c>. False when it was not running.</summary>
    public bool Stop()
    {
        if (State == ProcessState.Backoff)
        {
            SetState(ProcessState.Stopped);
            return true;
        }
        if (State is not (ProcessState.Starting or ProcessState.Running))
        {
            return State == ProcessState.Stopping;
        }
        _killing = true;
        _delay = time.GetUtcNow() + TimeSpan.FromSeconds(Config.StopWaitSecs);
        log($"INFO waiting for {Config.FullName} to stop");
        SetState(ProcessState.Stopping);
        Signals.Send(_process!.Id, Config.StopSignal, Config.StopAsGroup);
        return true;
    }

    /// <summary>Sends a signal to a running process; false when it is not running.</summary>
    public bool Signal(int signal)
    {
        if (State is not (ProcessState.Starting or ProcessState.Running or ProcessState.Stopping) || _process is null)
        {
            return false;
        }
        return Signals.Send(_process.Id, signal);
    }

    /// <summary>Moves the state machine on: notices exits, promotes to RUNNING, retries, gives up, escalates stops.</summary>
    public void Transition(DateTimeOffset now, bool stopping)
    {
        if (_process is { HasExited: true } exited)
        {
            Finish(exited, now, stopping);
        }
        switch (State)
        {
            case ProcessState.Stopped when !_everStarted && Config.AutoStart && !stopping:
                Spawn();
                break;
            case ProcessState.Starting when now - StartedAt >= TimeSpan.FromSeconds(Config.StartSecs):
                Backoff = 0;
                log($"INFO success: {Config.FullName} entered RUNNING state, process has stayed up for > than {Config.StartSecs} seconds (startsecs)");
                SetState(ProcessState.Running);
                break;
            case ProcessState.Backoff when !stopping && Backoff > Config.StartRetries:
                log($"INFO gave up: {Config.FullName} entered FATAL state, too many start retries too quickly");
                SetState(ProcessState.Fatal);
                break;
            case ProcessState.Backoff when !stopping && now >= _delay:
                Spawn();
                break;
            case ProcessState.Exited when !stopping && ShouldRestart():
                Spawn();
                break;
            case ProcessState.Stopping when now >= _delay && _process is { HasExited: false } process:
                log($"WARN killing '{Config.FullName}' ({process.Id}) with SIGKILL: not stopped within {Config.StopWaitSecs} s (stopwaitsecs)");
                Signals.Send(process.Id, Signals.Kill, Config.KillAsGroup);
                _delay = now + TimeSpan.FromSeconds(Config.StopWaitSecs);
                break;
        }
    }

    private bool ShouldRestart() => Config.AutoRestart switch
    {
        AutoRestart.True => true,
        AutoRestart.Unexpected => ExitStatus is not { } code || !Config.ExitCodes.Contains(code),
        _ => false,
    };

    private void Finish(Process process, DateTimeOffset now, bool stopping)
    {
        process.WaitForExit();
        var code = process.ExitCode;
        process.Dispose();
        _process = null;
        ExitStatus = code;
        StoppedAt = now;
        var how = code > 128 ? $"terminated by {Signals.Name(code - 128)}" : string.Create(CultureInfo.InvariantCulture, $"exit status {code}");
        if (_killing)
        {
            _killing = false;
            log($"INFO stopped: {Config.FullName} ({how})");
            SetState(ProcessState.Stopped);
            return;
        }
        if (State == ProcessState.Starting && now - StartedAt < TimeSpan.FromSeconds(Config.StartSecs))
        {
            SpawnError = "Exited too quickly (process log may have details)";
            log($"INFO exited: {Config.FullName} ({how}; not expected)");
            SetState(stopping ? ProcessState.Stopped : ProcessState.Backoff);
            return;
        }
        Backoff = 0;
        var expected = Config.ExitCodes.Contains(code);
        SpawnError = expected ? null : $"Bad exit code {code}";
        log($"INFO exited: {Config.FullName} ({how}; {(expected ? "expected" : "not expected")})");
        SetState(ProcessState.Exited);
    }

    /// <summary>What <c>status</c> prints after the state.</summary>
    public string Describe(DateTimeOffset now)
    {
        switch (State)
        {
            case ProcessState.Running:
                var up = now - StartedAt!.Value;
                var clock = string.Create(CultureInfo.InvariantCulture, $"{up.Hours}:{up.Minutes:00}:{up.Seconds:00}");
                var uptime = up.Days switch
                {
                    0 => clock,
                    1 => $"1 day, {clock}",
                    var days => string.Create(CultureInfo.InvariantCulture, $"{days} days, {clock}"),
                };
                return $"pid {Pid}, uptime {uptime}";
            case ProcessState.Backoff or ProcessState.Fatal:
                return SpawnError ?? "unknown error (try \"tail\")";
            case ProcessState.Stopped or ProcessState.Exited:
                return StoppedAt is { } at ? TimeZoneInfo.ConvertTime(at, time.LocalTimeZone).ToString("MMM dd hh:mm tt", CultureInfo.InvariantCulture) : "Not started";
            default:
                return "";
        }
    }

    public void CloseLogs()
    {
        _stdout?.Dispose();
        // Opened on its own unless redirected (it may be the same shared log, counted twice).
        if (!Config.RedirectStderr)
        {
            _stderr?.Dispose();
        }
        _stdout = null;
        _stderr = null;
    }
}
