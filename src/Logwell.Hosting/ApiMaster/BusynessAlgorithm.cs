using System.Globalization;

namespace Logwell.Hosting.ApiMaster;

/// <summary>
/// uWSGI's busyness algorithm, one decision per overload window: average busyness over the maximum adds
/// <see cref="ApiMasterOptions.CheaperStep"/> workers (up to <see cref="ApiMasterOptions.Workers"/>); under the minimum
/// for <see cref="ApiMasterOptions.BusynessMultiplier"/> windows in a row removes one (down to
/// <see cref="ApiMasterOptions.Cheaper"/>). It holds only the count of quiet windows, so it is tested without processes.
/// </summary>
internal sealed class BusynessAlgorithm(ApiMasterOptions options)
{
    private int _quietChecks;

    /// <summary>
    /// The worker count wanted after a window in which the workers were busy <paramref name="busyMs"/> of the
    /// <paramref name="reportedMs"/> they reported, with the reason; null to keep <paramref name="target"/>.
    /// </summary>
    public (int Target, string Why)? Check(long busyMs, long reportedMs, int target)
    {
        if (reportedMs == 0)
        {
            return null;
        }
        var busyness = (int)(100 * busyMs / reportedMs);
        if (busyness > options.BusynessMax)
        {
            _quietChecks = 0;
            var grown = Math.Min(options.Workers, target + options.CheaperStep);
            return grown > target
                ? (grown, string.Create(CultureInfo.InvariantCulture, $"busyness {busyness}% over {options.CheaperOverload.TotalSeconds:0} s is above {options.BusynessMax}%"))
                : null;
        }
        if (busyness >= options.BusynessMin)
        {
            _quietChecks = 0;
            return null;
        }
        if (++_quietChecks < options.BusynessMultiplier)
        {
            return null;
        }
        var checks = _quietChecks;
        _quietChecks = 0;
        return target > options.Cheaper
            ? (target - 1, string.Create(CultureInfo.InvariantCulture, $"busyness {busyness}% is below {options.BusynessMin}% for {checks} checks"))
            : null;
    }
}
