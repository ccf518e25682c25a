using Logwell.Hosting.ApiMaster;

namespace Logwell.Tests;

/// <summary>The API master's policies with time in them, without processes: uWSGI's busyness algorithm and recycling jitter.</summary>
public sealed class BusynessAlgorithmTests
{
    private static readonly ApiMasterOptions Options = new()
    {
        Listen = new Uri("http://127.0.0.1:5080"),
        WorkerCommand = ["logwell", "api-worker"],
        Workers = 6,
        Cheaper = 2,
        CheaperStep = 2,
        BusynessMax = 50,
        BusynessMin = 25,
        BusynessMultiplier = 3,
    };

    [Fact]
    public void BusyWindowsAddWorkersByTheStepUpToTheMaximum()
    {
        var algorithm = new BusynessAlgorithm(Options);
        // Two workers, each busy 600 of the 1,000 ms it reported: 60%.
        Assert.Equal((4, "busyness 60% over 5 s is above 50%"), algorithm.Check(1200, 2000, 2));
        Assert.Equal(6, algorithm.Check(1000, 1000, 4)?.Target);
        Assert.Null(algorithm.Check(1000, 1000, 6));
        // Exactly at the maximum is not over it; nothing reported decides nothing.
        Assert.Null(algorithm.Check(500, 1000, 4));
        Assert.Null(algorithm.Check(0, 0, 4));
    }

    [Fact]
    public void AWorkerGoesOnlyAfterTheMultiplierOfQuietWindowsInARow()
    {
        var algorithm = new BusynessAlgorithm(Options);
        Assert.Null(algorithm.Check(100, 1000, 4));
        Assert.Null(algorithm.Check(100, 1000, 4));
        // A window at or above the minimum starts the count again.
        Assert.Null(algorithm.Check(250, 1000, 4));
        Assert.Null(algorithm.Check(100, 1000, 4));
        Assert.Null(algorithm.Check(100, 1000, 4));
        Assert.Equal((3, "busyness 10% is below 25% for 3 checks"), algorithm.Check(100, 1000, 4));
        // And again from zero after a worker went.
        Assert.Null(algorithm.Check(0, 1000, 3));
        Assert.Null(algorithm.Check(0, 1000, 3));
        Assert.Equal(2, algorithm.Check(0, 1000, 3)?.Target);
        // Never below the cheaper minimum.
        Assert.Null(algorithm.Check(0, 1000, 2));
        Assert.Null(algorithm.Check(0, 1000, 2));
        Assert.Null(algorithm.Check(0, 1000, 2));
    }

    [Fact]
    public void EachWorkerServesItsRequestsPlusAJitterSoWorkersStartedTogetherAreNotReplacedTogether()
    {
        var options = Options with { MaxRequests = 1000, MaxRequestsJitter = 50 };
        var random = new Random(7);
        var allowances = Enumerable.Range(0, 500).Select(_ => ApiMaster.RequestAllowance(options, random)).ToList();
        Assert.All(allowances, a => Assert.InRange(a, 1000, 1050));
        Assert.True(allowances.Distinct().Count() > 40, "the jitter spreads the allowances");
        Assert.Contains(1000, allowances);
        Assert.Contains(1050, allowances);
        Assert.Equal(0, ApiMaster.RequestAllowance(options with { MaxRequests = 0 }, random));
    }
}
