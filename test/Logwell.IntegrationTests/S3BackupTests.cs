using System.Text;
using Amazon.S3.Model;

namespace Logwell.IntegrationTests;

/// <summary>
/// Backups into an S3-compatible bucket (Debian's Swift with its S3 interface), as an operator runs them: the node
/// and the CLI given the AWS credentials and endpoint in their environment, the node lost, the restore from the bucket.
/// </summary>
public sealed class S3BackupTests
{
    [SkippableFact]
    public async Task BackupsIntoABucketAreIncrementalVerifiedPrunedAndRestoreTheNode()
    {
        Skip.IfNot(SwiftServer.Installed, SwiftServer.Missing);
        await using var swift = await SwiftServer.StartAsync();
        using var s3 = swift.Client();
        await s3.PutBucketAsync(new PutBucketRequest { BucketName = "logwell-backups" });
        const string destination = "s3://logwell-backups/node1";

        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var env = new Dictionary<string, string>(DurabilityTests.SmallMemTables);
        foreach (var (name, value) in swift.Environment)
        {
            env[name] = value;
        }
        var node = await LogwellNode.StartAsync(data, env: env);
        Task<(int ExitCode, string Stdout, string Stderr)> Cli(params string[] args) => CliTests.RunWithAsync(Environment.CurrentDirectory, node, null, swift.Environment, args);
        var next = 0L;
        async Task IngestAsync(int events)
        {
            for (var sent = 0; sent < events; sent += 500)
            {
                var body = string.Concat(Enumerable.Range(0, 500).Select(i => $"{{\"message\":\"kept event {next + i}\",\"n\":{next + i}}}\n"));
                using var content = new StringContent(body, Encoding.UTF8, "application/x-ndjson");
                (await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content)).EnsureSuccessStatusCode();
                next += 500;
            }
        }
        string firstOutput, secondOutput;
        try
        {
            await IngestAsync(10_000);
            var first = await Cli("backup", "--to", destination);
            Assert.True(first.ExitCode == 0, first.Stderr + first.Stdout);
            firstOutput = first.Stdout;

            // A prune in progress (its marker in the bucket) turns a backup away, with the reason.
            await s3.PutObjectAsync(new PutObjectRequest { BucketName = "logwell-backups", Key = "node1/locks/prune-elsewhere", ContentBody = "{}", UseChunkEncoding = false });
            var refused = await Cli("backup", "--to", destination);
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("being pruned", refused.Stderr, StringComparison.Ordinal);
            await s3.DeleteObjectAsync("logwell-backups", "node1/locks/prune-elsewhere");

            await IngestAsync(5_000);
            var second = await Cli("backup", "--to", destination);
            Assert.True(second.ExitCode == 0, second.Stderr + second.Stdout);
            secondOutput = second.Stdout;
            await node.KillAsync();
        }
        finally
        {
            await node.DisposeAsync();
        }
        Directory.Delete(data, recursive: true);

        // The second stored only what the first lacked.
        static (int Files, int New) Counts(string output)
        {
            var match = System.Text.RegularExpressions.Regex.Match(output, @": (\d+) files, .*; (\d+) new");
            Assert.True(match.Success, output);
            return (int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.True(Counts(secondOutput).New < Counts(secondOutput).Files, $"first: {firstOutput} second: {secondOutput}");
        Assert.Contains(destination, secondOutput, StringComparison.Ordinal);

        // Everything lies under the prefix; no lock marker is left behind.
        var keys = new List<string>();
        var listing = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "logwell-backups" });
        keys.AddRange((listing.S3Objects ?? []).Select(o => o.Key));
        Assert.All(keys, key => Assert.StartsWith("node1/", key, StringComparison.Ordinal));
        Assert.Contains(keys, key => key.StartsWith("node1/objects/", StringComparison.Ordinal));
        Assert.DoesNotContain(keys, key => key.StartsWith("node1/locks/", StringComparison.Ordinal));

        var list = await Cli("backup", "list", "--from", destination);
        Assert.True(list.ExitCode == 0, list.Stderr);
        Assert.Equal(2, list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1);
        var verify = await Cli("backup", "verify", "--from", destination);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);

        // Keep the newest: the first goes, with the objects only it listed.
        var prune = await Cli("backup", "prune", "--from", destination, "--keep-last", "1");
        Assert.True(prune.ExitCode == 0, prune.Stderr + prune.Stdout);
        Assert.Contains("1 backups removed, 1 kept", prune.Stdout, StringComparison.Ordinal);

        var restore = await Cli("restore", "--from", destination, "--data", data);
        Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);
        await using (var restored = await LogwellNode.StartAsync(data))
        {
            var found = await DurabilityTests.AllValuesOfN(restored.Http, "kept");
            Assert.Equal(Enumerable.Range(0, 15_000).Select(i => (long)i), found.Order());
        }

        // An object changed in the bucket is found by verify, named, and a restore refuses it.
        var segment = (await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "logwell-backups", Prefix = "node1/objects/" })).S3Objects!.OrderByDescending(o => o.Size).First();
        await s3.PutObjectAsync(new PutObjectRequest { BucketName = "logwell-backups", Key = segment.Key, ContentBody = "not what was stored", UseChunkEncoding = false });
        var damaged = await Cli("backup", "verify", "--from", destination);
        Assert.Equal(2, damaged.ExitCode);
        Assert.Contains(Path.GetFileNameWithoutExtension(segment.Key), damaged.Stdout, StringComparison.Ordinal);
        var refusedRestore = await Cli("restore", "--from", destination, "--data", Path.Combine(dir.Path, "again"));
        Assert.NotEqual(0, refusedRestore.ExitCode);
        Assert.False(File.Exists(Path.Combine(dir.Path, "again", "indexsets", "default", "manifest.json")));

        // A bucket that is not there, and credentials that are wrong, are named as such.
        var missing = await Cli("backup", "list", "--from", "s3://no-such-bucket");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("no-such-bucket does not exist", missing.Stderr, StringComparison.Ordinal);
        var wrong = await CliTests.RunWithAsync(Environment.CurrentDirectory, node, null, new Dictionary<string, string>(swift.Environment) { ["AWS_SECRET_ACCESS_KEY"] = "wrong" }, "backup", "list", "--from", destination);
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Contains("403", wrong.Stderr, StringComparison.Ordinal);
    }
}
