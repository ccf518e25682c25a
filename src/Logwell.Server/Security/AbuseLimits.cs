using System.Collections.Concurrent;

namespace Logwell.Server.Security;

/// <summary>
/// Back-off for failed sign-ins and a request rate per API key, on the node's clock. A user name or an address with
/// <see cref="FreeFailures"/> failed sign-ins within <see cref="Window"/> waits 1 s after the next failure, then 2, 4,
/// ... up to <see cref="MaxBackOff"/>; a success clears the user's and the address's record. Each API key may send
/// <c>KeyRequestsPerSecond</c> requests a second on average (0: no limit), in bursts of twice that, and spend
/// <c>KeyQuerySecondsPerMinute</c> seconds a minute running searches and exports (0: no limit): a query is charged what
/// it took once it is answered, and a key whose budget is spent waits until it refills.
/// Kept in memory by the process that authenticates (the store behind an API master): a restart forgets them.
/// </summary>
public sealed class AbuseLimits(TimeProvider time, double keyRequestsPerSecond, double keyQuerySecondsPerMinute = 0)
{
    public const int FreeFailures = 5;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan MaxBackOff = TimeSpan.FromMinutes(5);

    private sealed class Failures
    {
        public int Count;
        public DateTimeOffset First;
        public DateTimeOffset BlockedUntil;
    }

    private sealed class Bucket
    {
        public double Tokens;
        public long At;
    }

    private readonly ConcurrentDictionary<string, Failures> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Bucket> _queryBudgets = new(StringComparer.Ordinal);

    /// <summary>How long <paramref name="subject"/> (<c>user:NAME</c>, <c>address:IP</c>) must wait before trying again; null when it may try now.</summary>
    public TimeSpan? Blocked(string subject)
    {
        if (!_failures.TryGetValue(subject, out var failures))
        {
            return null;
        }
        lock (failures)
        {
            var wait = failures.BlockedUntil - time.GetUtcNow();
            return wait > TimeSpan.Zero ? wait : null;
        }
    }

    public void Failed(string subject)
    {
        if (_failures.Count > 100_000)
        {
            // Bounded memory under a spray of names or addresses: old records go first.
            foreach (var (key, old) in _failures)
            {
                if (old.First + Window < time.GetUtcNow())
                {
                    _failures.TryRemove(key, out _);
                }
            }
        }
        var failures = _failures.GetOrAdd(subject, _ => new Failures { First = time.GetUtcNow() });
        lock (failures)
        {
            var now = time.GetUtcNow();
            if (failures.First + Window < now)
            {
                failures.Count = 0;
                failures.First = now;
            }
            failures.Count++;
            if (failures.Count > FreeFailures)
            {
                var seconds = Math.Min(Math.Pow(2, failures.Count - FreeFailures - 1), MaxBackOff.TotalSeconds);
                failures.BlockedUntil = now + TimeSpan.FromSeconds(seconds);
            }
        }
    }

    public void Succeeded(string subject) => _failures.TryRemove(subject, out _);

    /// <summary>Takes one request from the key's allowance; how long to wait when it has none left, else null.</summary>
    public TimeSpan? TakeKeyRequest(string keyId)
    {
        if (keyRequestsPerSecond <= 0)
        {
            return null;
        }
        var burst = Math.Max(1, keyRequestsPerSecond * 2);
        var bucket = _buckets.GetOrAdd(keyId, _ => new Bucket { Tokens = burst, At = time.GetTimestamp() });
        lock (bucket)
        {
            var now = time.GetTimestamp();
            bucket.Tokens = Math.Min(burst, bucket.Tokens + time.GetElapsedTime(bucket.At, now).TotalSeconds * keyRequestsPerSecond);
            bucket.At = now;
            if (bucket.Tokens >= 1)
            {
                bucket.Tokens--;
                return null;
            }
            return TimeSpan.FromSeconds((1 - bucket.Tokens) / keyRequestsPerSecond);
        }
    }

    /// <summary>The limit a key runs into, for its error.</summary>
    public double KeyRequestsPerSecond => keyRequestsPerSecond;

    public double KeyQuerySecondsPerMinute => keyQuerySecondsPerMinute;

    /// <summary>How long the key must wait for its query budget to refill; null when it may query now (or there is no budget).</summary>
    public TimeSpan? QueryBudgetWait(string keyId)
    {
        if (keyQuerySecondsPerMinute <= 0 || !_queryBudgets.TryGetValue(keyId, out var bucket))
        {
            return null;
        }
        lock (bucket)
        {
            Refill(bucket);
            return bucket.Tokens > 0 ? null : TimeSpan.FromSeconds(-bucket.Tokens / (keyQuerySecondsPerMinute / 60) + 0.001);
        }
    }

    /// <summary>Charges the key for a query that took <paramref name="spent"/>; the budget may go below zero, and the next query waits for it.</summary>
    public void ChargeQuery(string keyId, TimeSpan spent)
    {
        if (keyQuerySecondsPerMinute <= 0)
        {
            return;
        }
        var bucket = _queryBudgets.GetOrAdd(keyId, _ => new Bucket { Tokens = keyQuerySecondsPerMinute, At = time.GetTimestamp() });
        lock (bucket)
        {
            Refill(bucket);
            bucket.Tokens -= spent.TotalSeconds;
        }
    }

    private void Refill(Bucket bucket)
    {
        var now = time.GetTimestamp();
        bucket.Tokens = Math.Min(keyQuerySecondsPerMinute, bucket.Tokens + time.GetElapsedTime(bucket.At, now).TotalSeconds * keyQuerySecondsPerMinute / 60);
        bucket.At = now;
    }
}
