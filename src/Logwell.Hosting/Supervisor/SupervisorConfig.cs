using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Logwell.Hosting.Supervisor;

/// <summary><c>autorestart</c>: never, always, or when the exit code is not one of <c>exitcodes</c>.</summary>
public enum AutoRestart
{
    False,
    True,
    Unexpected,
}

/// <summary>Where a stream of a process goes: a file with rotation, or nowhere (<c>NONE</c>).</summary>
public sealed record LogTarget(string? Path, long MaxBytes, int Backups);

/// <summary>One process the supervisor runs (a program with <c>numprocs = 3</c> gives three).</summary>
public sealed record ProcessConfig(
    string Name,
    string Group,
    string Program,
    IReadOnlyList<string> Command,
    string? Directory,
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    int Priority,
    bool AutoStart,
    AutoRestart AutoRestart,
    int StartSecs,
    int StartRetries,
    IReadOnlyList<int> ExitCodes,
    int StopSignal,
    int StopWaitSecs,
    bool StopAsGroup,
    bool KillAsGroup,
    bool RedirectStderr,
    LogTarget Stdout,
    LogTarget Stderr)
{
    /// <summary>What <c>status</c> prints: the name alone when a group holds just it under its own name, else <c>group:name</c>.</summary>
    public string FullName => Group == Name ? Name : $"{Group}:{Name}";

    /// <summary>The settings as text, to tell a changed program from an unchanged one on <c>reread</c>.</summary>
    public string Fingerprint => string.Join('\u001f', Command) + '\u001e' + Directory + '\u001e'
        + string.Join('\u001f', Environment.Select(e => e.Key + "=" + e.Value)) + '\u001e'
        + string.Join(',', Priority, AutoStart, AutoRestart, StartSecs, StartRetries, string.Join('/', ExitCodes), StopSignal, StopWaitSecs, StopAsGroup, KillAsGroup, RedirectStderr, Stdout, Stderr);
}

/// <summary>A mistake in the configuration, with the file and line it is on.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// A supervisord configuration: <c>[supervisord]</c>, <c>[program:NAME]</c> and <c>[group:NAME]</c> sections with
/// supervisord's option names and meanings. Unknown options, unknown sections and bad values are errors naming the file
/// and line. The sections supervisorctl and supervisord's HTTP server use are read and ignored: <c>logwell ctl</c>
/// talks to the supervisor over a socket in the data directory.
/// </summary>
public sealed record SupervisorConfig(string Path, string ChildLogDirectory, string? LogFile, string? PidFile, string Identifier, IReadOnlyList<ProcessConfig> Processes)
{
    private static readonly HashSet<string> SupervisordOptions = ["logfile", "logfile_maxbytes", "logfile_backups", "loglevel", "pidfile", "nodaemon", "childlogdir", "environment", "identifier", "directory", "minfds", "minprocs", "umask", "strip_ansi", "silent", "nocleanup"];
    private static readonly HashSet<string> ProgramOptions = ["command", "process_name", "numprocs", "numprocs_start", "priority", "autostart", "autorestart", "startsecs", "startretries", "exitcodes", "stopsignal", "stopwaitsecs", "stopasgroup", "killasgroup", "redirect_stderr", "stdout_logfile", "stdout_logfile_maxbytes", "stdout_logfile_backups", "stderr_logfile", "stderr_logfile_maxbytes", "stderr_logfile_backups", "environment", "directory"];
    private static readonly HashSet<string> IgnoredSections = ["unix_http_server", "inet_http_server", "supervisorctl", "rpcinterface:supervisor"];

    /// <summary>Sections read and ignored, to tell the operator about.</summary>
    public IReadOnlyList<string> Ignored { get; init; } = [];

    /// <summary>The file-creation mask the programs start with: <c>[supervisord] umask</c>, octal, 022 by default.</summary>
    public uint Umask { get; init; } = 0b000_010_010;

    /// <summary><c>[supervisord] loglevel</c> as a number (<see cref="LogLevels"/>): the supervisor logs lines at least this level.</summary>
    public int LogLevel { get; init; } = 20;

    /// <summary>What reading the configuration found to say at start: included files, patterns that matched nothing.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public static SupervisorConfig Load(string path, string dataDirectory) =>
        Parse(System.IO.Path.GetFullPath(path), File.ReadAllText(path), dataDirectory);

    public static SupervisorConfig Parse(string path, string text, string dataDirectory)
    {
        var sections = ReadIni(path, text);
        var here = System.IO.Path.GetDirectoryName(path) ?? ".";
        var notes = new List<string>();
        Include(sections, here, notes);
        string? directory = null;
        var logLevel = LogLevels["info"];
        var childLogDirectory = System.IO.Path.Combine(System.IO.Path.GetFullPath(dataDirectory), "logs");
        string? logFile = null;
        string? pidFile = null;
        var identifier = "supervisor";
        uint umask = 0b000_010_010;
        var globalEnvironment = new List<KeyValuePair<string, string>>();
        var ignored = new List<string>();
        var programs = new List<(Section Section, string Name)>();
        var groups = new List<(Section Section, string Name)>();
        foreach (var section in sections)
        {
            if (section.Name == "supervisord")
            {
                var sectionHere = System.IO.Path.GetDirectoryName(section.Path) ?? here;
                foreach (var (key, value) in section.Values)
                {
                    if (!SupervisordOptions.Contains(key))
                    {
                        throw section.Error(key, $"unknown option '{key}' in [supervisord]");
                    }
                }
                if (section.Get("childlogdir") is { } dir)
                {
                    childLogDirectory = System.IO.Path.GetFullPath(Expand(section, "childlogdir", dir.Value, new() { ["here"] = sectionHere }), sectionHere);
                }
                if (section.Get("logfile") is { } log)
                {
                    logFile = System.IO.Path.GetFullPath(Expand(section, "logfile", log.Value, new() { ["here"] = sectionHere }), sectionHere);
                }
                if (section.Get("pidfile") is { } pid)
                {
                    pidFile = System.IO.Path.GetFullPath(Expand(section, "pidfile", pid.Value, new() { ["here"] = sectionHere }), sectionHere);
                }
                if (section.Get("umask") is { } mask)
                {
                    umask = mask.Value.Length is > 0 and <= 4 && mask.Value.All(c => c is >= '0' and <= '7')
                        ? Convert.ToUInt32(mask.Value, 8)
                        : throw section.Error("umask", $"umask '{mask.Value}' is not an octal mask such as 022");
                }
                if (section.Get("directory") is { } workingDirectory)
                {
                    directory = System.IO.Path.GetFullPath(Expand(section, "directory", workingDirectory.Value, new() { ["here"] = sectionHere }), sectionHere);
                    if (!System.IO.Directory.Exists(directory))
                    {
                        throw section.Error("directory", $"{directory} is not an existing directory");
                    }
                }
                if (section.Get("loglevel") is { } level)
                {
                    logLevel = LogLevels.TryGetValue(level.Value.ToLowerInvariant(), out var number)
                        ? number
                        : throw section.Error("loglevel", $"bad logging level name '{level.Value}' (critical, error, warn, info, debug, trace or blather)");
                }
                if (section.Get("identifier") is { } id)
                {
                    identifier = id.Value;
                }
                if (section.Get("nodaemon") is { } nodaemon && !ParseBool(section, "nodaemon", nodaemon.Value))
                {
                    throw section.Error("nodaemon", "nodaemon = false is not supported: logwell supervise runs in the foreground (start it from systemd or a container)");
                }
                if (section.Get("environment") is { } environment)
                {
                    globalEnvironment.AddRange(ParseEnvironment(section, "environment", environment.Value));
                }
            }
            else if (section.Name.StartsWith("program:", StringComparison.Ordinal))
            {
                programs.Add((section, CheckName(section, section.Name["program:".Length..].Trim())));
            }
            else if (section.Name.StartsWith("group:", StringComparison.Ordinal))
            {
                groups.Add((section, CheckName(section, section.Name["group:".Length..].Trim())));
            }
            else if (IgnoredSections.Contains(section.Name))
            {
                ignored.Add(section.Name);
            }
            else
            {
                throw new ConfigException($"{path}:{section.Line}: unknown section [{section.Name}] (expected [supervisord], [program:NAME] or [group:NAME])");
            }
        }

        // A program listed in a group belongs to it; any other forms a group of its own name.
        var groupOf = new Dictionary<string, (string Group, int Priority)>(StringComparer.Ordinal);
        foreach (var (section, name) in groups)
        {
            foreach (var (key, _) in section.Values)
            {
                if (key is not ("programs" or "priority"))
                {
                    throw section.Error(key, $"unknown option '{key}' in [{section.Name}] (a group takes programs and priority)");
                }
            }
            var members = section.Get("programs")?.Value ?? throw new ConfigException($"{path}:{section.Line}: [{section.Name}] needs programs = a,b");
            var priority = section.Get("priority") is { } p ? ParseInt(section, "priority", p.Value) : 999;
            foreach (var member in members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!programs.Any(program => program.Name == member))
                {
                    throw section.Error("programs", $"[{section.Name}] lists '{member}', which has no [program:{member}]");
                }
                if (!groupOf.TryAdd(member, (name, priority)))
                {
                    throw section.Error("programs", $"program '{member}' is in two groups");
                }
            }
        }

        var processes = new List<ProcessConfig>();
        foreach (var (section, program) in programs)
        {
            // %(here)s is the directory of the file the section is in, an included one's too.
            processes.AddRange(ReadProgram(section, program, System.IO.Path.GetDirectoryName(section.Path) ?? here, directory, childLogDirectory, globalEnvironment, groupOf.TryGetValue(program, out var g) ? g : null));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var process in processes)
        {
            if (!names.Add(process.FullName))
            {
                throw new ConfigException($"{path}: two processes are named '{process.FullName}'");
            }
        }
        return new SupervisorConfig(path, childLogDirectory, logFile, pidFile, identifier, processes) { Ignored = ignored, Umask = umask, LogLevel = logLevel, Notes = notes };
    }

    /// <summary>supervisord's log levels, by name, as numbers: a line is logged when its level is at least the one set.</summary>
    public static readonly IReadOnlyDictionary<string, int> LogLevels = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["critical"] = 50,
        ["error"] = 40,
        ["warn"] = 30,
        ["info"] = 20,
        ["debug"] = 10,
        ["trace"] = 5,
        ["blather"] = 3,
    };

    /// <summary>
    /// Reads the files <c>[include] files</c> names (space-separated, relative to the configuration's directory, with
    /// <c>*</c>, <c>?</c> and <c>[...]</c> in the file name) into the configuration, in sorted order, as supervisord
    /// does: a pattern that matches nothing is a warning, and an <c>[include]</c> in an included file is not followed.
    /// </summary>
    private static void Include(List<Section> sections, string here, List<string> notes)
    {
        if (sections.FirstOrDefault(s => s.Name == "include") is not { } include)
        {
            return;
        }
        sections.Remove(include);
        foreach (var (key, _) in include.Values)
        {
            if (key != "files")
            {
                throw include.Error(key, $"unknown option '{key}' in [include] (it takes files)");
            }
        }
        var files = include.Get("files")?.Value ?? throw include.Error("files", "[include] needs files = PATTERN...");
        foreach (var pattern in files.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var full = System.IO.Path.GetFullPath(Expand(include, "files", pattern, new() { ["here"] = here }), here);
            var directory = System.IO.Path.GetDirectoryName(full)!;
            if (directory.IndexOfAny(['*', '?', '[']) >= 0)
            {
                throw include.Error("files", $"'{pattern}': wildcards are taken in the file name only, not in its directories");
            }
            var fileName = System.IO.Path.GetFileName(full);
            Regex name;
            try
            {
                // As Python's glob: *, ?, [abc] and [!abc]; a name starting with '.' only when the pattern does.
                name = new Regex("^" + Regex.Escape(fileName).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal)
                    .Replace(@"\[!", "[^", StringComparison.Ordinal).Replace(@"\[", "[", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw include.Error("files", $"'{pattern}' is not a valid pattern: {e.Message}");
            }
            var matches = System.IO.Directory.Exists(directory)
                ? System.IO.Directory.EnumerateFiles(directory)
                    .Where(f => System.IO.Path.GetFileName(f) is var candidate && name.IsMatch(candidate) && (!candidate.StartsWith('.') || fileName.StartsWith('.')))
                    .Order(StringComparer.Ordinal).ToList()
                : [];
            if (matches.Count == 0)
            {
                notes.Add($"WARN No file matches via include \"{full}\"");
            }
            foreach (var file in matches)
            {
                notes.Add($"INFO Included extra file \"{file}\" during parsing");
                foreach (var section in ReadIni(file, File.ReadAllText(file)))
                {
                    if (section.Name == "include")
                    {
                        notes.Add($"WARN {file}:{section.Line}: [include] in an included file is not followed");
                    }
                    else if (sections.FirstOrDefault(s => s.Name == section.Name) is { } earlier)
                    {
                        throw new ConfigException($"{file}:{section.Line}: section [{section.Name}] appears twice (also {earlier.Path}:{earlier.Line})");
                    }
                    else
                    {
                        sections.Add(section);
                    }
                }
            }
        }
    }

    private static string CheckName(Section section, string name)
    {
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ConfigException($"{section.Path}:{section.Line}: bad name in [{section.Name}]: use letters, digits, '-', '_' and '.'");
        }
        return name;
    }

    private static IEnumerable<ProcessConfig> ReadProgram(Section section, string program, string here, string? defaultDirectory, string childLogDirectory, List<KeyValuePair<string, string>> globalEnvironment, (string Group, int Priority)? group)
    {
        foreach (var (key, _) in section.Values)
        {
            if (!ProgramOptions.Contains(key))
            {
                throw section.Error(key, $"unknown option '{key}' in [{section.Name}]");
            }
        }
        var commandText = section.Get("command")?.Value ?? throw new ConfigException($"{section.Path}:{section.Line}: [{section.Name}] needs a command");
        var numProcs = section.Get("numprocs") is { } n ? ParseInt(section, "numprocs", n.Value, minimum: 1) : 1;
        var numProcsStart = section.Get("numprocs_start") is { } ns ? ParseInt(section, "numprocs_start", ns.Value) : 0;
        var processNameTemplate = section.Get("process_name")?.Value ?? "%(program_name)s";
        if (numProcs > 1 && !processNameTemplate.Contains("%(process_num)", StringComparison.Ordinal))
        {
            throw section.Error("numprocs", $"[{section.Name}] has numprocs = {numProcs}, so process_name must contain %(process_num)s");
        }
        var priority = section.Get("priority") is { } pr ? ParseInt(section, "priority", pr.Value) : 999;
        var autoStart = section.Get("autostart") is not { } a || ParseBool(section, "autostart", a.Value);
        var autoRestart = section.Get("autorestart")?.Value.ToLowerInvariant() switch
        {
            null or "unexpected" => AutoRestart.Unexpected,
            "true" or "yes" or "on" or "1" => AutoRestart.True,
            "false" or "no" or "off" or "0" => AutoRestart.False,
            var other => throw section.Error("autorestart", $"autorestart must be true, false or unexpected, not '{other}'"),
        };
        var startSecs = section.Get("startsecs") is { } ss ? ParseInt(section, "startsecs", ss.Value) : 1;
        var startRetries = section.Get("startretries") is { } sr ? ParseInt(section, "startretries", sr.Value) : 3;
        IReadOnlyList<int> exitCodes = [0];
        if (section.Get("exitcodes") is { } ec)
        {
            exitCodes = [.. ec.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(code => ParseInt(section, "exitcodes", code, maximum: 255))];
        }
        var stopSignal = 15;
        if (section.Get("stopsignal") is { } sig && (sig.Value.All(char.IsAsciiDigit) || !Signals.TryParse(sig.Value, out stopSignal)))
        {
            throw section.Error("stopsignal", $"stopsignal must be a signal name such as TERM, HUP, INT, QUIT, KILL, USR1 or USR2, not '{sig.Value}'");
        }
        var stopWaitSecs = section.Get("stopwaitsecs") is { } sw ? ParseInt(section, "stopwaitsecs", sw.Value) : 10;
        var stopAsGroup = section.Get("stopasgroup") is { } sag && ParseBool(section, "stopasgroup", sag.Value);
        // As in supervisord, stopping as a group implies killing as a group.
        var killAsGroup = stopAsGroup || (section.Get("killasgroup") is { } kag && ParseBool(section, "killasgroup", kag.Value));
        var redirectStderr = section.Get("redirect_stderr") is { } rs && ParseBool(section, "redirect_stderr", rs.Value);
        var environment = new List<KeyValuePair<string, string>>(globalEnvironment);
        if (section.Get("environment") is { } env)
        {
            environment.AddRange(ParseEnvironment(section, "environment", env.Value));
        }

        var groupName = group?.Group ?? program;
        for (var i = 0; i < numProcs; i++)
        {
            var num = numProcsStart + i;
            var variables = new Dictionary<string, object>(StringComparer.Ordinal)
            {
                ["here"] = here,
                ["program_name"] = program,
                ["group_name"] = groupName,
                ["process_num"] = num,
                ["numprocs"] = numProcs,
                ["host_node_name"] = Environment.MachineName,
            };
            var name = Expand(section, "process_name", processNameTemplate, variables);
            variables["process_name"] = name;
            var command = SplitCommand(section, Expand(section, "command", commandText, variables));
            if (command.Count == 0)
            {
                throw section.Error("command", $"[{section.Name}] has an empty command");
            }
            var directory = section.Get("directory") is { } d ? System.IO.Path.GetFullPath(Expand(section, "directory", d.Value, variables), here) : defaultDirectory;
            LogTarget Log(string stream)
            {
                var maxBytes = section.Get($"{stream}_logfile_maxbytes") is { } mb ? ParseBytes(section, $"{stream}_logfile_maxbytes", mb.Value) : 50L << 20;
                var backups = section.Get($"{stream}_logfile_backups") is { } b ? ParseInt(section, $"{stream}_logfile_backups", b.Value) : 10;
                var file = section.Get($"{stream}_logfile")?.Value ?? "AUTO";
                string? target = file.ToUpperInvariant() switch
                {
                    "AUTO" => System.IO.Path.Combine(childLogDirectory, $"{(groupName == name ? name : groupName + "_" + name)}-{stream}.log"),
                    "NONE" => null,
                    _ => System.IO.Path.GetFullPath(Expand(section, $"{stream}_logfile", file, variables), here),
                };
                return new LogTarget(target, maxBytes, backups);
            }
            yield return new ProcessConfig(name, groupName, program, command, directory, [.. environment.Select(e => new KeyValuePair<string, string>(e.Key, Expand(section, "environment", e.Value, variables)))],
                group?.Priority ?? priority, autoStart, autoRestart, startSecs, startRetries, exitCodes, stopSignal, stopWaitSecs, stopAsGroup, killAsGroup, redirectStderr,
                Log("stdout"), redirectStderr ? new LogTarget(null, 0, 0) : Log("stderr"));
        }
    }

    private static bool ParseBool(Section section, string key, string value) => value.ToLowerInvariant() switch
    {
        "true" or "yes" or "on" or "1" => true,
        "false" or "no" or "off" or "0" => false,
        _ => throw section.Error(key, $"{key} must be true or false, not '{value}'"),
    };

    private static int ParseInt(Section section, string key, string value, int minimum = 0, int maximum = int.MaxValue)
    {
        if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number) || number < minimum || number > maximum)
        {
            throw section.Error(key, maximum == int.MaxValue
                ? $"{key} must be a whole number of at least {minimum}, not '{value}'"
                : $"{key} must be whole numbers from {minimum} to {maximum}, not '{value}'");
        }
        return number;
    }

    /// <summary>50MB, 1KB, 1GB or bytes; 0 means no limit. As in supervisord, the units are powers of 1024.</summary>
    internal static long ParseBytes(Section section, string key, string value) => Core.Text.ByteSizes.TryParse(value, out var bytes)
        ? bytes
        : throw section.Error(key, $"{key} must be a size such as 50MB, not '{value}'");

    /// <summary><c>KEY="value",KEY2='value',KEY3=value</c>, as supervisord reads <c>environment</c>.</summary>
    private static List<KeyValuePair<string, string>> ParseEnvironment(Section section, string key, string text)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (char.IsWhiteSpace(text[i]) || text[i] == ','))
            {
                i++;
            }
            if (i >= text.Length)
            {
                break;
            }
            var start = i;
            while (i < text.Length && text[i] != '=')
            {
                i++;
            }
            var name = text[start..i].Trim();
            if (i >= text.Length || name.Length == 0 || name.Any(char.IsWhiteSpace))
            {
                throw section.Error(key, $"environment must be KEY=\"value\" pairs separated by commas, near '{text[start..]}'");
            }
            i++;
            var value = new StringBuilder();
            if (i < text.Length && text[i] is '"' or '\'')
            {
                var quote = text[i++];
                while (i < text.Length && text[i] != quote)
                {
                    value.Append(text[i++]);
                }
                if (i >= text.Length)
                {
                    throw section.Error(key, $"environment: unclosed {quote} in the value of {name}");
                }
                i++;
            }
            else
            {
                while (i < text.Length && text[i] != ',')
                {
                    value.Append(text[i++]);
                }
            }
            pairs.Add(new(name, value.ToString().Trim()));
        }
        return pairs;
    }

    /// <summary>
    /// Splits a command as supervisord does (Python's <c>shlex.split</c>): whitespace separates words; outside quotes a
    /// backslash takes the next character as it is; single quotes keep everything; inside double quotes a backslash
    /// escapes only <c>"</c> and <c>\</c> and is kept before any other character. No expansions.
    /// </summary>
    private static List<string> SplitCommand(Section section, string text)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
                continue;
            }
            inWord = true;
            if (c == '\\')
            {
                if (++i == text.Length)
                {
                    throw section.Error("command", "the command ends with a backslash that escapes nothing");
                }
                word.Append(text[i]);
            }
            else if (c == '\'')
            {
                var close = text.IndexOf('\'', i + 1);
                if (close < 0)
                {
                    throw section.Error("command", "unclosed ' in the command");
                }
                word.Append(text, i + 1, close - i - 1);
                i = close;
            }
            else if (c == '"')
            {
                for (i++; ; i++)
                {
                    if (i == text.Length)
                    {
                        throw section.Error("command", "unclosed \" in the command");
                    }
                    if (text[i] == '"')
                    {
                        break;
                    }
                    if (text[i] == '\\' && i + 1 < text.Length && text[i + 1] is '"' or '\\')
                    {
                        i++;
                    }
                    word.Append(text[i]);
                }
            }
            else
            {
                word.Append(c);
            }
        }
        if (inWord)
        {
            words.Add(word.ToString());
        }
        return words;
    }

    /// <summary>supervisord's expansions: <c>%(name)s</c>, <c>%(process_num)02d</c>, <c>%(ENV_HOME)s</c>, <c>%%</c>.</summary>
    private static string Expand(Section section, string key, string text, Dictionary<string, object> variables) =>
        Regex.Replace(text, @"%(?:\((?<name>[A-Za-z0-9_]+)\)(?<flags>[-0]?)(?<width>\d*)(?<kind>[sd])|(?<percent>%))", match =>
        {
            if (match.Groups["percent"].Success)
            {
                return "%";
            }
            var name = match.Groups["name"].Value;
            object? value = name.StartsWith("ENV_", StringComparison.Ordinal) ? Environment.GetEnvironmentVariable(name[4..]) : variables.GetValueOrDefault(name);
            if (value is null)
            {
                throw section.Error(key, $"'{match.Value}' names nothing that can be expanded here");
            }
            var width = match.Groups["width"].Value.Length > 0 ? int.Parse(match.Groups["width"].Value, CultureInfo.InvariantCulture) : 0;
            if (match.Groups["kind"].Value == "d")
            {
                if (value is not int number)
                {
                    throw section.Error(key, $"'{match.Value}' needs a number");
                }
                var digits = number.ToString(CultureInfo.InvariantCulture);
                return match.Groups["flags"].Value == "0" ? digits.PadLeft(width, '0') : match.Groups["flags"].Value == "-" ? digits.PadRight(width) : digits.PadLeft(width);
            }
            var textValue = Convert.ToString(value, CultureInfo.InvariantCulture)!;
            return match.Groups["flags"].Value == "-" ? textValue.PadRight(width) : textValue.PadLeft(width);
        });

    /// <summary>An INI section with the line of each option.</summary>
    internal sealed class Section(string path, string name, int line)
    {
        public string Path { get; } = path;
        public string Name { get; } = name;
        public int Line { get; } = line;
        public List<(string Key, (string Value, int Line) Entry)> Values { get; } = [];

        public (string Value, int Line)? Get(string key) => Values.Where(v => v.Key == key).Select(v => ((string, int)?)v.Entry).FirstOrDefault();

        public ConfigException Error(string key, string message) =>
            new($"{Path}:{Get(key)?.Line ?? Line}: {message}");
    }

    /// <summary>INI as supervisord reads it: <c>;</c> and <c>#</c> comments, <c>key = value</c> or <c>key: value</c>, indented continuation lines.</summary>
    private static List<Section> ReadIni(string path, string text)
    {
        var sections = new List<Section>();
        Section? current = null;
        var lines = text.Split('\n');
        for (var n = 0; n < lines.Length; n++)
        {
            var raw = lines[n].TrimEnd('\r');
            var trimmed = raw.Trim();
            if (trimmed.Length == 0 || trimmed[0] is ';' or '#')
            {
                continue;
            }
            if (raw.Length > 0 && char.IsWhiteSpace(raw[0]) && current is { Values.Count: > 0 })
            {
                // A continuation of the previous value.
                var (key, (value, line)) = current.Values[^1];
                current.Values[^1] = (key, (value + "\n" + StripComment(trimmed), line));
                continue;
            }
            if (trimmed[0] == '[')
            {
                if (!trimmed.EndsWith(']'))
                {
                    throw new ConfigException($"{path}:{n + 1}: a section header must end with ']'");
                }
                var name = trimmed[1..^1].Trim();
                if (sections.Any(s => s.Name == name))
                {
                    throw new ConfigException($"{path}:{n + 1}: section [{name}] appears twice");
                }
                current = new Section(path, name, n + 1);
                sections.Add(current);
                continue;
            }
            var separator = trimmed.IndexOfAny(['=', ':']);
            if (separator <= 0)
            {
                throw new ConfigException($"{path}:{n + 1}: expected 'option = value', a [section] or a comment, not '{trimmed}'");
            }
            if (current is null)
            {
                throw new ConfigException($"{path}:{n + 1}: an option before any [section]");
            }
            var optionName = trimmed[..separator].Trim().ToLowerInvariant();
            if (current.Get(optionName) is not null)
            {
                throw new ConfigException($"{path}:{n + 1}: option '{optionName}' appears twice in [{current.Name}]");
            }
            current.Values.Add((optionName, (StripComment(trimmed[(separator + 1)..].Trim()), n + 1)));
        }
        return sections;
    }

    /// <summary>An inline comment starts with <c>;</c> or <c>#</c> after whitespace, as supervisord reads them.</summary>
    private static string StripComment(string value)
    {
        for (var i = 1; i < value.Length; i++)
        {
            if (value[i] is ';' or '#' && char.IsWhiteSpace(value[i - 1]))
            {
                return value[..i].Trim();
            }
        }
        return value.Trim();
    }
}
