using Microsoft.Extensions.Time.Testing;
using Logwell.Core.Events;
using Logwell.Core.Query;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>
/// An index set's backup point while appends, flushes and merges go on: every file <see cref="IndexSetStore.OpenBackupAsync"/>
/// opens, copied up to its length, makes an index set holding every event acknowledged before the call, once.
/// </summary>
public sealed class BackupPointTests
{
    [Fact]
    public async Task ABackupPointTakenDuringFlushesAndMergesHoldsEveryAcknowledgedEventOnce()
    {
        using var dir = new TempDirectory();
        var day = new DateTime(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc);
        var time = new FakeTimeProvider(new DateTimeOffset(day.AddDays(1)));
        var options = new EngineOptions { DataDirectory = Path.Combine(dir.Path, "live"), BlockRows = 16, MemTableMaxEvents = 150, MergeMinSegments = 2 };
        var copies = new List<(string Directory, long Acknowledged)>();
        await using (var engine = LogEngine.Open(options, time))
        {
            var store = await engine.GetOrCreateAsync("busy");
            long acknowledged = 0;
            using var stop = new CancellationTokenSource();
            var writer = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var first = Interlocked.Read(ref acknowledged);
                    await store.AppendAsync([.. Enumerable.Range(0, 25).Select(i => new LogEvent(day.AddSeconds(first + i).Ticks, $"ev {first + i}", []))]);
                    Interlocked.Add(ref acknowledged, 25);
                }
            });
            var maintenance = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await store.FlushAsync();
                }
            });
            for (var copy = 0; copy < 6; copy++)
            {
                while (Interlocked.Read(ref acknowledged) < (copy + 1) * 600)
                {
                    await Task.Delay(5);
                }
                var before = Interlocked.Read(ref acknowledged);
                var target = Path.Combine(dir.Path, $"copy{copy}");
                using (var files = await store.OpenBackupAsync())
                {
                    foreach (var (path, content, length) in files.Files)
                    {
                        var file = Path.Combine(target, "indexsets", "busy", path);
                        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                        await using var output = File.Create(file);
                        var buffer = new byte[length ?? content.Length];
                        await content.ReadExactlyAsync(buffer);
                        await output.WriteAsync(buffer);
                    }
                }
                copies.Add((target, before));
            }
            await stop.CancelAsync();
            await Task.WhenAll(writer, maintenance);
        }

        foreach (var (directory, acknowledgedBefore) in copies)
        {
            await using var engine = LogEngine.Open(options with { DataDirectory = directory }, time);
            Assert.True(engine.TryGet("busy", out var store));
            var hits = store.Search(new SearchRequest(QueryParser.Parse("ev"), Limit: 100_000)).Hits;
            var numbers = hits.Select(h => long.Parse(h.Message[3..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(numbers.Count, numbers.Distinct().Count());
            var missing = Enumerable.Range(0, (int)acknowledgedBefore).Select(i => (long)i).Except(numbers).Take(5).ToList();
            Assert.True(missing.Count == 0, $"{directory}: acknowledged before the backup point, missing: {string.Join(", ", missing)} of {acknowledgedBefore}");
        }
    }
}
