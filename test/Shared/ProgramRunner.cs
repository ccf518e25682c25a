using System.Diagnostics;

namespace Logwell.Tests;

/// <summary>Runs a program to its end, for tests that drive command-line tools (npm, node, logger, python3).</summary>
internal static class ProgramRunner
{
    /// <summary>Runs a program; code -1 when it cannot start or outlives the timeout (then it is killed).</summary>
    /// <param name="environment">Variables set for the program, beside this process's.</param>
    public static async Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> arguments, string directory, TimeSpan timeout, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"{program} did not finish within {timeout.TotalSeconds} s: {await stderr}");
            }
            return (process.ExitCode, await stdout + await stderr);
        }
    }
}
