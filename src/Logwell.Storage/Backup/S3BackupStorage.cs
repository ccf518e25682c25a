using System.Net;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Logwell.Storage.Backup;

/// <summary>
/// A backup repository in an S3-compatible bucket, <c>s3://bucket/prefix</c>, through the AWS SDK. Credentials and
/// region come the AWS way (<c>AWS_ACCESS_KEY_ID</c>/<c>AWS_SECRET_ACCESS_KEY</c>, a profile, an instance role;
/// <c>AWS_REGION</c>); <c>AWS_ENDPOINT_URL_S3</c> or <c>AWS_ENDPOINT_URL</c> names another server (MinIO, Ceph, Swift),
/// addressed by path. The bucket is the operator's to make. Uploads are plain (no streaming signature), objects over
/// 64 MiB in parts, and no checksum beyond what the protocol requires: every object's SHA-256 is checked on read by the
/// repository itself, which keeps the client working with any S3-compatible server.
/// </summary>
public sealed class S3BackupStorage : IBackupStorage
{
    public const string Scheme = "s3://";

    /// <summary>A lock marker not renewed for this long (by the storage's clock) belongs to a process that is gone.</summary>
    public static readonly TimeSpan LockStaleAfter = TimeSpan.FromMinutes(10);

    private static readonly TimeSpan LockRenewEvery = TimeSpan.FromMinutes(2);

    private const long PartBytes = 32L << 20;

    private const long SinglePutLimit = 64L << 20;

    private readonly AmazonS3Client _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly TimeProvider _time;
    private string? _scratch;

    private S3BackupStorage(AmazonS3Client client, string bucket, string prefix, TimeProvider time)
    {
        _client = client;
        _bucket = bucket;
        _prefix = prefix;
        _time = time;
        Location = Scheme + bucket + (prefix.Length > 0 ? "/" + prefix : "");
    }

    public string Location { get; }

    /// <summary>Whether <paramref name="destination"/> names a bucket rather than a directory.</summary>
    public static bool Names(string destination) => destination.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase);

    /// <summary>The bucket and prefix <c>s3://bucket[/prefix]</c> names.</summary>
    /// <exception cref="ArgumentException">The destination names no bucket.</exception>
    public static (string Bucket, string Prefix) Parse(string destination)
    {
        var rest = destination[Scheme.Length..].Trim('/');
        var slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (bucket.Length < 3 || bucket.Length > 63 || !bucket.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.')
            || prefix.Split('/').Any(part => part is "." or ".." || (part.Length == 0 && prefix.Length > 0)))
        {
            throw new ArgumentException($"'{destination}' is not s3://bucket or s3://bucket/prefix (a bucket name of 3 to 63 lowercase letters, digits, '-' and '.')");
        }
        return (bucket, prefix);
    }

    /// <summary>The storage at <c>s3://bucket[/prefix]</c>, configured from the process's environment.</summary>
    /// <exception cref="ArgumentException">The destination names no bucket.</exception>
    public static S3BackupStorage Open(string destination, TimeProvider time)
    {
        var (bucket, prefix) = Parse(destination);
        var config = new AmazonS3Config
        {
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            // A busy server answers 503 ("SlowDown"): a backup waits it out (with the SDK's back-off) rather than fail.
            MaxErrorRetry = 6,
        };
        var region = Environment.GetEnvironmentVariable("AWS_REGION") ?? Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION");
        var endpoint = Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL_S3") ?? Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL");
        if (!string.IsNullOrEmpty(endpoint))
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new ArgumentException($"the S3 endpoint '{endpoint}' (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) is no http:// or https:// address");
            }
            config.ServiceURL = endpoint;
            config.ForcePathStyle = true;
            config.AuthenticationRegion = string.IsNullOrEmpty(region) ? "us-east-1" : region;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(string.IsNullOrEmpty(region) ? "us-east-1" : region);
        }
        return new S3BackupStorage(new AmazonS3Client(config), bucket, prefix, time);
    }

    private string KeyOf(string key) => _prefix.Length == 0 ? key : _prefix + "/" + key;

    public string ScratchDirectory() =>
        // Made private (0700) by the runtime: temporaries hold the node's data.
        _scratch ??= Directory.CreateTempSubdirectory("logwell-backup-").FullName;

    public Task<long?> SizeAsync(string key, CancellationToken cancellationToken) => CallAsync(key, async () =>
    {
        try
        {
            var response = await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = KeyOf(key) }, cancellationToken).ConfigureAwait(false);
            return (long?)response.ContentLength;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket")
        {
            return null;
        }
    });

    public Task PutAsync(string key, string file, CancellationToken cancellationToken) => CallAsync(key, async () =>
    {
        var length = new FileInfo(file).Length;
        if (length <= SinglePutLimit)
        {
            await _client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = KeyOf(key), FilePath = file, UseChunkEncoding = false }, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await PutInPartsAsync(KeyOf(key), file, length, cancellationToken).ConfigureAwait(false);
        }
        File.Delete(file);
        return true;
    });

    private async Task PutInPartsAsync(string key, string file, long length, CancellationToken cancellationToken)
    {
        var upload = await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = key }, cancellationToken).ConfigureAwait(false);
        try
        {
            var parts = new List<PartETag>();
            for (long position = 0; position < length; position += PartBytes)
            {
                var part = await _client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _bucket,
                    Key = key,
                    UploadId = upload.UploadId,
                    PartNumber = parts.Count + 1,
                    FilePath = file,
                    FilePosition = position,
                    PartSize = Math.Min(PartBytes, length - position),
                    UseChunkEncoding = false,
                }, cancellationToken).ConfigureAwait(false);
                parts.Add(new PartETag(parts.Count + 1, part.ETag));
            }
            await _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = upload.UploadId, PartETags = parts }, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The parts uploaded so far would be kept (and billed) until the upload is ended.
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = upload.UploadId }, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken) => CallAsync(key, async () =>
    {
        GetObjectResponse response;
        try
        {
            response = await _client.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = KeyOf(key) }, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket")
        {
            throw new FileNotFoundException($"{Location}/{key} is missing", key, e);
        }
        return (Stream)new ResponseStream(response);
    });

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var strip = _prefix.Length == 0 ? 0 : _prefix.Length + 1;
        string? token = null;
        string? after = null;
        while (true)
        {
            var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = KeyOf(prefix), ContinuationToken = token, StartAfter = token is null ? after : null };
            var page = await CallAsync(prefix, () => _client.ListObjectsV2Async(request, cancellationToken)).ConfigureAwait(false);
            string? last = null;
            foreach (var item in page.S3Objects ?? [])
            {
                last = item.Key;
                yield return new StoredObject(item.Key[strip..], item.Size ?? 0, item.LastModified is { } modified ? new DateTimeOffset(modified.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue);
            }
            if (page.IsTruncated != true)
            {
                break;
            }
            // A listing cut short must go on, never end early: a prune deletes what it does not see listed. Servers that
            // give no continuation token go on after the last key.
            token = string.IsNullOrEmpty(page.NextContinuationToken) ? null : page.NextContinuationToken;
            after = token is not null ? null : last ?? throw new IOException($"{Location}: the server said its listing of {prefix} goes on, but gave neither a key nor a continuation token");
        }
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken) => CallAsync(key, async () =>
    {
        // One at a time: a multi-object delete needs a Content-MD5 that not every S3-compatible server accepts in its newer form.
        await _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = _bucket, Key = KeyOf(key) }, cancellationToken).ConfigureAwait(false);
        return true;
    });

    /// <summary>
    /// A bucket has no lock: each holder puts a marker, <c>locks/KIND-ID</c>, lists the others and withdraws (busy) when
    /// one of the other kind is there. Two holders that arrive together may both withdraw, never both stay. A marker is
    /// renewed every two minutes while held; one older than <see cref="LockStaleAfter"/> than the holder's own, by the
    /// storage's clock alone, belongs to a process that ended without removing it: it is passed over, and a prune deletes it.
    /// </summary>
    public async Task<IAsyncDisposable> LockAsync(BackupLockKind kind, CancellationToken cancellationToken)
    {
        var exclusive = kind == BackupLockKind.Prune;
        var marker = $"locks/{(exclusive ? "prune" : "backup")}-{Guid.NewGuid():N}";
        var body = $"{{\"kind\":\"{kind.ToString().ToLowerInvariant()}\",\"host\":\"{Environment.MachineName}\",\"pid\":{Environment.ProcessId}}}";
        try
        {
            await PutTextAsync(marker, body, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (kind == BackupLockKind.Read && e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.Forbidden })
        {
            return NoLock.Instance; // read-only credentials: no prune can run with them either
        }
        var held = new Marker(this, marker, body);
        try
        {
            var markers = new List<StoredObject>();
            await foreach (var item in ListAsync("locks/", cancellationToken).ConfigureAwait(false))
            {
                markers.Add(item);
            }
            var own = markers.FirstOrDefault(m => m.Key == marker) ?? throw new IOException($"{Location}: the lock marker {marker} just written is not listed");
            var other = markers.FirstOrDefault(m => m.Key != marker && m.Modified >= own.Modified - LockStaleAfter
                && (exclusive || m.Key.StartsWith("locks/prune-", StringComparison.Ordinal)));
            if (other is not null)
            {
                throw new BackupBusyException(other.Key.StartsWith("locks/prune-", StringComparison.Ordinal)
                    ? $"{Location} is being pruned; back up when the prune is done"
                    : $"a backup is being written to or read from {Location}; prune it when that is done", new IOException(other.Key));
            }
            if (exclusive)
            {
                foreach (var stale in markers.Where(m => m.Modified < own.Modified - LockStaleAfter))
                {
                    await DeleteAsync(stale.Key, cancellationToken).ConfigureAwait(false);
                }
            }
            held.Start(_time);
            return held;
        }
        catch
        {
            await held.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private Task PutTextAsync(string key, string body, CancellationToken cancellationToken) => CallAsync(key, async () =>
    {
        await _client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = KeyOf(key), ContentBody = body, UseChunkEncoding = false }, cancellationToken).ConfigureAwait(false);
        return true;
    });

    /// <summary>Runs a call to the server, its failures as <see cref="IOException"/>s that name the object and the cause.</summary>
    private async Task<T> CallAsync<T>(string key, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
        {
            throw new IOException($"the bucket {_bucket} does not exist (make it first: Logwell does not create buckets)", e);
        }
        catch (AmazonServiceException e)
        {
            throw new IOException($"{Location}/{key}: the server answered {(int)e.StatusCode} {e.ErrorCode}: {e.Message}", e);
        }
        catch (AmazonClientException e)
        {
            throw new IOException($"{Location}/{key}: {e.Message} (credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile)", e);
        }
        catch (HttpRequestException e)
        {
            throw new IOException($"{Location}/{key}: the server cannot be reached: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        _client.Dispose();
        if (_scratch is not null && Directory.Exists(_scratch))
        {
            Directory.Delete(_scratch, recursive: true);
        }
    }

    /// <summary>A held lock marker: renewed while held, deleted when let go.</summary>
    private sealed class Marker(S3BackupStorage storage, string key, string body) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task _renewing = Task.CompletedTask;

        public void Start(TimeProvider time) => _renewing = RenewAsync(time);

        private async Task RenewAsync(TimeProvider time)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(LockRenewEvery, time, _stop.Token).ConfigureAwait(false);
                    await storage.PutTextAsync(key, body, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (IOException)
                {
                    // Tried again at the next turn; a marker not renewed for ten minutes is only passed over, never trusted.
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _renewing.ConfigureAwait(false);
            _stop.Dispose();
            try
            {
                await storage.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // Left behind: stale in ten minutes, deleted by the next prune.
            }
        }
    }

    /// <summary>An object's content; disposing it ends the response.</summary>
    private sealed class ResponseStream(GetObjectResponse response) : Stream
    {
        private readonly Stream _inner = response.ResponseStream;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
                response.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
