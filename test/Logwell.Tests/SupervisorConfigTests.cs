using Logwell.Hosting.Supervisor;

namespace Logwell.Tests;

/// <summary>supervisord's configuration format as <c>logwell supervise</c> reads it.</summary>
public sealed class SupervisorConfigTests
{
    private static SupervisorConfig Parse(string text) => SupervisorConfig.Parse("/etc/logwell/supervisor.conf", text, "/var/lib/logwell");

    [Fact]
    public void ProgramsGroupsAndExpansionsAreReadAsSupervisordReadsThem()
    {
        var config = Parse("""
            ; a comment
            [supervisord]
            environment = REGION="eu-west",TIER=prod

            [program:api]
            command = /usr/bin/logwell api --port 80%(process_num)02d --name "%(program_name)s node"   ; inline comment
            process_name = %(program_name)s-%(process_num)d
            numprocs = 2
            numprocs_start = 1
            priority = 10
            autorestart = true
            exitcodes = 0,3
            stopsignal = QUIT
            stopwaitsecs = 30
            stopasgroup = true
            environment = ROLE="api",
                PORT_BASE='8000'
            stdout_logfile = %(here)s/logs/%(process_name)s.out
            stdout_logfile_maxbytes = 1MB
            stdout_logfile_backups = 5
            redirect_stderr = true

            [program:worker]
            command = logwell worker -Q default

            [group:backend]
            programs = worker
            priority = 20
            """);
        var api = config.Processes.Where(p => p.Program == "api").ToList();
        // Several processes of one program are shown as program:process, as supervisorctl shows them.
        Assert.Equal(["api:api-1", "api:api-2"], api.Select(p => p.FullName));
        Assert.Equal(["/usr/bin/logwell", "api", "--port", "8001", "--name", "api node"], api[0].Command);
        Assert.Equal(AutoRestart.True, api[0].AutoRestart);
        Assert.Equal([0, 3], api[0].ExitCodes);
        Assert.Equal((3, 30, true, true), (api[0].StopSignal, api[0].StopWaitSecs, api[0].StopAsGroup, api[0].KillAsGroup));
        Assert.Equal(["REGION=eu-west", "TIER=prod", "ROLE=api", "PORT_BASE=8000"], api[0].Environment.Select(e => $"{e.Key}={e.Value}"));
        Assert.Equal(new LogTarget("/etc/logwell/logs/api-2.out", 1 << 20, 5), api[1].Stdout);
        Assert.Null(api[1].Stderr.Path);

        var worker = Assert.Single(config.Processes, p => p.Program == "worker");
        Assert.Equal(("backend:worker", 20), (worker.FullName, worker.Priority));
        // The defaults are supervisord's.
        Assert.Equal((AutoRestart.Unexpected, 1, 3, 15, 10, false), (worker.AutoRestart, worker.StartSecs, worker.StartRetries, worker.StopSignal, worker.StopWaitSecs, worker.KillAsGroup));
        Assert.Equal(new LogTarget("/var/lib/logwell/logs/backend_worker-stdout.log", 50L << 20, 10), worker.Stdout);
    }

    [Theory]
    [InlineData("[program:a]\ncommand = x\ncommnd = y\n", ":3: unknown option 'commnd' in [program:a]")]
    [InlineData("[program:a]\ncommand = x\nautorestart = sometimes\n", ":3: autorestart must be true, false or unexpected, not 'sometimes'")]
    [InlineData("[program:a]\ncommand = x\nstartsecs = -1\n", ":3: startsecs must be a whole number of at least 0, not '-1'")]
    [InlineData("[program:a]\ncommand = x\nexitcodes = 0,300\n", ":3: exitcodes must be whole numbers from 0 to 255, not '300'")]
    [InlineData("[program:a]\ncommand = x\nstopsignal = 15\n", ":3: stopsignal must be a signal name")]
    [InlineData("[program:a]\ncommand = x\nstdout_logfile_maxbytes = lots\n", ":3: stdout_logfile_maxbytes must be a size such as 50MB, not 'lots'")]
    [InlineData("[program:a]\ncommand = x\nnumprocs = 2\n", ":3: [program:a] has numprocs = 2, so process_name must contain %(process_num)s")]
    [InlineData("[program:a]\nautostart = true\n", ":1: [program:a] needs a command")]
    [InlineData("[program:a]\ncommand = x\n[program:a]\ncommand = y\n", ":3: section [program:a] appears twice")]
    [InlineData("[programs:a]\ncommand = x\n", ":1: unknown section [programs:a]")]
    [InlineData("[program:a]\ncommand = x\nenvironment = A=\"1\",B\n", ":3: environment must be KEY=\"value\" pairs")]
    [InlineData("[group:g]\nprograms = nope\n", ":2: [group:g] lists 'nope', which has no [program:nope]")]
    [InlineData("[program:a]\ncommand = run %(nothing)s\n", ":2: '%(nothing)s' names nothing that can be expanded here")]
    [InlineData("command = x\n", ":1: an option before any [section]")]
    public void MistakesNameTheFileAndLine(string text, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(text));
        Assert.StartsWith("/etc/logwell/supervisor.conf:", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSectionsOfSupervisorctlAndTheHttpServerAreReadAndIgnored()
    {
        var config = Parse("[unix_http_server]\nfile = /tmp/supervisor.sock\n[supervisorctl]\nserverurl = unix:///tmp/supervisor.sock\n[program:a]\ncommand = x\n");
        Assert.Equal(["unix_http_server", "supervisorctl"], config.Ignored);
        Assert.Single(config.Processes);
    }

    [Fact]
    public void SectionNamesAreTrimmedAfterTheColonAndTheUmaskIsRead()
    {
        var config = Parse("[supervisord]\numask = 027\n\n[program: celery]\ncommand = /bin/true\n\n[group: workers]\nprograms = celery\n");
        var process = Assert.Single(config.Processes);
        Assert.Equal(("celery", "workers"), (process.Name, process.Group));
        Assert.Equal(0b000_010_111u, config.Umask);
        Assert.Equal(0b000_010_010u, Parse("[program:x]\ncommand = /bin/true\n").Umask);
        Assert.Throws<ConfigException>(() => Parse("[supervisord]\numask = 0999\n"));
    }

    [Theory]
    [InlineData("""sh -c "echo \"hi there\" >&2; sleep 1000" """, new[] { "sh", "-c", "echo \"hi there\" >&2; sleep 1000" })]
    [InlineData("""p 'a\b' 'it'"'"'s' "x\\y" "a\$b" "q\"q" 'e\"e' a\ b ''""", new[] { "p", "a\\b", "it's", "x\\y", "a\\$b", "q\"q", "e\\\"e", "a b", "" })]
    public void CommandsAreSplitAsPythonsShlexSplitsThem(string command, string[] words) =>
        Assert.Equal(words, Parse($"[program:p]\ncommand = {command}\n").Processes[0].Command);

    [Fact]
    public void AnInlineCommentStartsWithASemicolonOrAHashAfterWhitespace() =>
        Assert.Equal(["p", "one", "semi;colon", "hash#tag"], Parse("[program:p]\ncommand = p one semi;colon hash#tag # four\n").Processes[0].Command);

    [Fact]
    public void IncludedFilesAreFoundByGlobRelativeToTheConfigurationInSortedOrder()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(dir.Path, "conf.d"));
        File.WriteAllText(Path.Combine(dir.Path, "conf.d", "b.conf"), "[program:b]\ncommand = /bin/true\n[include]\nfiles = nested.conf\n");
        File.WriteAllText(Path.Combine(dir.Path, "conf.d", "a.conf"), "[program:a]\ncommand = /bin/true\n");
        File.WriteAllText(Path.Combine(dir.Path, "conf.d", "skip.ini"), "[program:skip]\ncommand = /bin/true\n");
        File.WriteAllText(Path.Combine(dir.Path, "other.ini"), "[group:g]\nprograms = a,b\n");
        File.WriteAllText(Path.Combine(dir.Path, "nested.conf"), "[program:nested]\ncommand = /bin/true\n");
        var main = Path.Combine(dir.Path, "supervisord.conf");
        File.WriteAllText(main, "[include]\nfiles = conf.d/*.conf other.ini none/*.conf\n[program:main]\ncommand = /bin/true\n");

        var config = SupervisorConfig.Load(main, dir.Path);

        Assert.Equal(["g:a", "g:b", "main"], config.Processes.Select(p => p.FullName).Order(StringComparer.Ordinal));
        Assert.Equal(
        [
            $"INFO Included extra file \"{dir.Path}/conf.d/a.conf\" during parsing",
            $"INFO Included extra file \"{dir.Path}/conf.d/b.conf\" during parsing",
            $"WARN {dir.Path}/conf.d/b.conf:3: [include] in an included file is not followed",
            $"INFO Included extra file \"{dir.Path}/other.ini\" during parsing",
            $"WARN No file matches via include \"{dir.Path}/none/*.conf\"",
        ], config.Notes);
        File.WriteAllText(Path.Combine(dir.Path, "other.ini"), "[program:main]\ncommand = /bin/false\n");
        Assert.Contains("other.ini:1: section [program:main] appears twice", Assert.Throws<ConfigException>(() => SupervisorConfig.Load(main, dir.Path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSupervisordDirectoryIsWhereProgramsStartAndItsLogLevelIsRead()
    {
        using var dir = new TempDirectory();
        var config = Parse($"[supervisord]\ndirectory = {dir.Path}\nloglevel = warn\n[program:a]\ncommand = /bin/true\n[program:b]\ncommand = /bin/true\ndirectory = /tmp\n");
        Assert.Equal([dir.Path, "/tmp"], config.Processes.Select(p => p.Directory));
        Assert.Equal(30, config.LogLevel);
        Assert.Equal(20, Parse("[program:a]\ncommand = x\n").LogLevel);
        Assert.Contains("bad logging level name 'warning'", Assert.Throws<ConfigException>(() => Parse("[supervisord]\nloglevel = warning\n")).Message, StringComparison.Ordinal);
        Assert.Contains("is not an existing directory", Assert.Throws<ConfigException>(() => Parse($"[supervisord]\ndirectory = {dir.Path}/none\n")).Message, StringComparison.Ordinal);
    }
}
