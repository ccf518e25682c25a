using System.Diagnostics;
using System.Net;
using System.Text;

namespace Logwell.IntegrationTests;

/// <summary>A small tmpfs stands in for a full disk (mounting one needs root; the test is skipped without it).</summary>
public sealed class DiskFullTests
{
    [SkippableFact]
    public async Task FullDiskRefusesIngestWith503AndLosesNoAcknowledgedEvent()
    {
        using var mount = Tmpfs.TryMount(3, out var reason);
        Skip.If(mount is null, reason);
        var data = Path.Combine(mount.Path, "data");
        var acknowledged = new List<long>();
        var refused = 0;

        await using (var node = await LogwellNode.StartAsync(data))
        {
            for (var batch = 0; batch < 400 && refused < 10; batch++)
            {
                var status = await IngestBatchAsync(node.Http, batch, acknowledged);
                Assert.True(status is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"batch {batch} answered {(int)status}");
                refused += status == HttpStatusCode.ServiceUnavailable ? 1 : 0;
            }
            Assert.True(refused > 0, "the disk never filled up");
            Assert.NotEmpty(acknowledged);
            Assert.Superset(acknowledged.ToHashSet(), (await DurabilityTests.AllValuesOfN(node.Http, "fill")).ToHashSet());

            // Space comes back: ingest works again without a restart.
            mount.Resize(64);
            for (var batch = 1000; batch < 1005; batch++)
            {
                Assert.Equal(HttpStatusCode.OK, await IngestBatchAsync(node.Http, batch, acknowledged));
            }
            await node.KillAsync();
        }

        await using var restarted = await LogwellNode.StartAsync(data);
        var found = await DurabilityTests.AllValuesOfN(restarted.Http, "fill");
        Assert.Equal(found.Count, found.Distinct().Count());
        Assert.Superset(acknowledged.ToHashSet(), found.ToHashSet());
    }

    [SkippableFact]
    public async Task ANodeStartsOnAFullDiskServesWhatItRecoveredAndFlushesItOnceSpaceReturns()
    {
        using var mount = Tmpfs.TryMount(3, out var reason);
        Skip.If(mount is null, reason);
        var data = Path.Combine(mount.Path, "data");
        var acknowledged = new List<long>();
        await using (var node = await LogwellNode.StartAsync(data))
        {
            var refused = 0;
            for (var batch = 0; batch < 400 && refused < 3; batch++)
            {
                refused += await IngestBatchAsync(node.Http, batch, acknowledged) == HttpStatusCode.OK ? 0 : 1;
            }
            Assert.True(refused > 0, "the disk never filled up");
            await node.KillAsync();
        }

        // The write-ahead logs cannot be written out as segments: the node starts all the same, from memory.
        await using (var node = await LogwellNode.StartAsync(data))
        {
            await WorkerProcessTests.WaitForAsync(() => node.Output.Contains("the disk is full", StringComparison.Ordinal), TimeSpan.FromSeconds(30), () => node.Output);
            // What a restart freed (cut log tails) may hold a small write: take the last bytes too.
            FillUp(Path.Combine(mount.Path, "ballast"));
            var found = await DurabilityTests.AllValuesOfN(node.Http, "fill");
            Assert.Equal(acknowledged.Count, found.Count);
            Assert.Equal(acknowledged.Order(), found.Order());

            var status = await IngestBatchAsync(node.Http, 2000, acknowledged);
            Assert.True(status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.InsufficientStorage, $"ingest on a full disk answered {(int)status}");
            using (var create = await node.Http.PostAsync("/api/v1/indexsets", new StringContent("""{"name":"more"}""", Encoding.UTF8, "application/json")))
            {
                var body = await create.Content.ReadAsStringAsync();
                Assert.True(create.StatusCode == HttpStatusCode.InsufficientStorage, $"{(int)create.StatusCode} {body}");
                Assert.Contains("disk is full", body, StringComparison.Ordinal);
            }
            using (var health = await node.Http.GetAsync("/healthz"))
            {
                var body = await health.Content.ReadAsStringAsync();
                Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
                Assert.Contains("MiB free", body, StringComparison.Ordinal);
            }
            // A graceful stop on the full disk ends (the events stay in their logs) instead of waiting for space.
            Assert.Equal(0, await node.StopAsync());
        }

        await using (var node = await LogwellNode.StartAsync(data))
        {
            Assert.Equal(acknowledged.Order(), (await DurabilityTests.AllValuesOfN(node.Http, "fill")).Order());

            // Space comes back: ingest and index-set creation work, and the recovered events reach segments.
            File.Delete(Path.Combine(mount.Path, "ballast"));
            mount.Resize(64);
            Assert.Equal(HttpStatusCode.OK, await IngestBatchAsync(node.Http, 3000, acknowledged));
            using (var create = await node.Http.PostAsync("/api/v1/indexsets", new StringContent("""{"name":"more"}""", Encoding.UTF8, "application/json")))
            {
                Assert.Equal(HttpStatusCode.Created, create.StatusCode);
            }
            await WorkerProcessTests.WaitForAsync(() => Directory.GetFiles(Path.Combine(data, "indexsets", "default"), "wal-*.log").Length == 1, TimeSpan.FromSeconds(60), () => string.Join(", ", Directory.GetFiles(Path.Combine(data, "indexsets", "default"))) + node.Output);
            await node.KillAsync();
        }

        await using var restarted = await LogwellNode.StartAsync(data);
        var all = await DurabilityTests.AllValuesOfN(restarted.Http, "fill");
        Assert.Equal(acknowledged.Order(), all.Order());
    }

    /// <summary>Writes <paramref name="path"/> until the disk refuses another page (tmpfs allocates whole pages).</summary>
    private static void FillUp(string path)
    {
        using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.None, bufferSize: 1);
        var page = new byte[4096];
        try
        {
            while (true)
            {
                file.Write(page);
                file.Flush();
            }
        }
        catch (IOException)
        {
            // Full.
        }
    }

    private static async Task<HttpStatusCode> IngestBatchAsync(HttpClient http, int batch, List<long> acknowledged)
    {
        var padding = new string('x', 200);
        var body = string.Concat(Enumerable.Range(0, 100).Select(i => $"{{\"message\":\"fill event {padding}\",\"n\":{batch * 100 + i}}}\n"));
        using var content = new StringContent(body, Encoding.UTF8, "application/x-ndjson");
        using var response = await http.PostAsync("/api/v1/indexsets/default/ingest", content);
        if (response.StatusCode == HttpStatusCode.OK)
        {
            acknowledged.AddRange(Enumerable.Range(0, 100).Select(i => (long)(batch * 100 + i)));
        }
        return response.StatusCode;
    }

    private sealed class Tmpfs : IDisposable
    {
        private Tmpfs(string path) => Path = path;

        public string Path { get; }

        public static Tmpfs? TryMount(int megabytes, out string reason)
        {
            var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "logwell-full-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(path);
            var (code, output) = Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", path);
            if (code != 0)
            {
                Directory.Delete(path);
                reason = $"needs root to mount a tmpfs (mount said: {output.Trim()})";
                return null;
            }
            reason = "";
            return new Tmpfs(path);
        }

        public void Resize(int megabytes)
        {
            var (code, output) = Run("mount", "-o", $"remount,size={megabytes}m", Path);
            Assert.True(code == 0, output);
        }

        public void Dispose()
        {
            Run("umount", "-l", Path);
            Directory.Delete(Path, recursive: true);
        }

        private static (int Code, string Output) Run(string file, params string[] args)
        {
            try
            {
                var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in args)
                {
                    info.ArgumentList.Add(arg);
                }
                using var process = Process.Start(info)!;
                var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
                process.WaitForExit();
                return (process.ExitCode, output);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                return (-1, e.Message);
            }
        }
    }
}
