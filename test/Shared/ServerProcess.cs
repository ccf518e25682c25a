using System.Diagnostics;

namespace Logwell.Tests;

/// <summary>Starts a server a test run shares (Redis, PostgreSQL, MariaDB, chdb) and ends it with the test host.</summary>
internal static class ServerProcess
{
    /// <summary>
    /// Starts <paramref name="info"/> with its output read and thrown away, and kills it (SIGKILL to it alone: killing a
    /// tree stops every process first, and a host ending in between would leave a stopped server) and deletes
    /// <paramref name="directory"/> when this process exits. A host that ends without its exit handlers leaves the
    /// server to <c>test.sh</c>, which stops whatever the run left.
    /// </summary>
    public static Process Launch(ProcessStartInfo info, string directory)
    {
        info.UseShellExecute = false;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                process.Kill();
                process.WaitForExit(5000);
                Directory.Delete(directory, recursive: true);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
            {
            }
        };
        return process;
    }
}
