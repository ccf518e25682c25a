using System.Runtime.InteropServices;

namespace Logwell.Hosting;

/// <summary>POSIX signals by name and number, and sending them to a process or a process group.</summary>
public static partial class Signals
{
    private static readonly Dictionary<string, int> Numbers = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1,
        ["INT"] = 2,
        ["QUIT"] = 3,
        ["KILL"] = 9,
        ["USR1"] = 10,
        ["USR2"] = 12,
        ["TERM"] = 15,
        ["CONT"] = 18,
        ["STOP"] = 19,
        ["TTIN"] = 21,
        ["TTOU"] = 22,
    };

    public const int Kill = 9;

    /// <summary>TERM, SIGTERM or 15.</summary>
    public static bool TryParse(string text, out int signal)
    {
        var name = text.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? text[3..] : text;
        if (Numbers.TryGetValue(name, out signal))
        {
            return true;
        }
        return int.TryParse(text, out signal) && signal is > 0 and < 65;
    }

    public static string Name(int signal) => Numbers.FirstOrDefault(n => n.Value == signal).Key is { } name ? "SIG" + name : signal.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Sends a signal to a process, or with <paramref name="group"/> to its whole process group; false when it is gone.</summary>
    public static bool Send(int pid, int signal, bool group = false) => KillNative(group ? -pid : pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "getuid")]
    public static partial uint UserId();
}
