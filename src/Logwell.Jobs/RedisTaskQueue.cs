using System.Globalization;
using StackExchange.Redis;

namespace Logwell.Jobs;

/// <summary>
/// The task queue on a Redis server, for several nodes. Each operation is one Lua script, so it is atomic on the
/// server exactly as a transaction is on the embedded queue, with the same fencing: a task's lease token, the
/// scheduler's lease token. Keys (under the prefix): <c>task:ID</c> (a hash per task), <c>ready:Q</c> (pending task
/// ids scored by run time), <c>running:Q</c> (scored by lease end), <c>done:Q</c> and <c>dead:Q</c> (scored by finish
/// time), <c>retrying:Q</c>, <c>queues</c>, <c>unique</c>, <c>seq</c>, <c>ratelimit</c>, <c>lease:NAME</c>,
/// <c>slot:ENTRY</c>. Scripts name their keys from the prefix, so use one Redis server (or a primary with replicas),
/// not a Redis Cluster. For acknowledged tasks to survive a Redis crash, run Redis with <c>appendonly yes</c> and
/// <c>appendfsync always</c>.
/// </summary>
public sealed class RedisTaskQueue : ITaskQueue
{
    private static readonly TimeSpan RetryBase = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RetryCap = TimeSpan.FromMinutes(10);

    private readonly ConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly string _prefix;
    private readonly TimeProvider _time;
    private readonly TimeSpan _retryBase;
    private readonly Random _random = new();

    private RedisTaskQueue(ConnectionMultiplexer redis, string prefix, TimeProvider time, TimeSpan? retryBase)
    {
        _redis = redis;
        _db = redis.GetDatabase();
        _prefix = prefix;
        _time = time;
        _retryBase = retryBase ?? RetryBase;
    }

    /// <param name="configuration">A StackExchange.Redis configuration string, such as <c>127.0.0.1:6379</c>.</param>
    /// <param name="prefix">Prefix of every key (several clusters, or tests, can share one Redis).</param>
    public static RedisTaskQueue Connect(string configuration, string prefix, TimeProvider time, TimeSpan? retryBase = null)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        return new RedisTaskQueue(ConnectionMultiplexer.Connect(options), prefix, time, retryBase);
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static string Ms(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Helpers every script starts with: key names, padded ids (so equal scores order by id), enqueue, unique-key release.</summary>
    private const string Prelude = """
        local P = ARGV[1]
        local function m(id) return string.format('%019d', id) end
        local function tkey(id) return P .. 'task:' .. tonumber(id) end
        local function unique_release(key, id)
          local ukey = redis.call('HGET', key, 'unique_key')
          if ukey and ukey ~= '' and redis.call('HGET', P .. 'unique', ukey) == tostring(id) then
            redis.call('HDEL', P .. 'unique', ukey)
          end
        end
        local function enqueue(queue, name, args, runAt, maxRetries, soft, hard, ukey, now)
          if ukey ~= '' then
            local existing = redis.call('HGET', P .. 'unique', ukey)
            if existing then
              local state = redis.call('HGET', tkey(existing), 'state')
              if state == 'pending' or state == 'running' then return tonumber(existing) end
            end
          end
          local id = redis.call('INCR', P .. 'seq')
          redis.call('HSET', tkey(id), 'queue', queue, 'name', name, 'args', args, 'state', 'pending', 'run_at', runAt,
            'attempts', 0, 'max_retries', maxRetries, 'soft_ms', soft, 'hard_ms', hard, 'unique_key', ukey,
            'lease_token', 0, 'enqueued_at', now)
          redis.call('ZADD', P .. 'ready:' .. queue, runAt, m(id))
          redis.call('SADD', P .. 'queues', queue)
          if ukey ~= '' then redis.call('HSET', P .. 'unique', ukey, id) end
          return id
        end
        local function reclaim(q, now)
          local expired = redis.call('ZRANGEBYSCORE', P .. 'running:' .. q, '-inf', '(' .. now)
          for _, member in ipairs(expired) do
            local key = tkey(member)
            local t = redis.call('HMGET', key, 'attempts', 'max_retries', 'run_at')
            redis.call('ZREM', P .. 'running:' .. q, member)
            redis.call('HDEL', key, 'lease_owner', 'lease_until')
            if tonumber(t[1]) > tonumber(t[2]) then
              redis.call('HSET', key, 'state', 'dead', 'finished_at', now,
                'last_error', 'its worker stopped renewing the lease ' .. t[1] .. ' times (the worker died or hung)')
              redis.call('ZADD', P .. 'dead:' .. q, now, member)
              redis.call('SREM', P .. 'retrying:' .. q, member)
              unique_release(key, member)
            else
              redis.call('HSET', key, 'state', 'pending', 'last_error', 'its worker stopped renewing the lease (the worker died or hung)')
              redis.call('ZADD', P .. 'ready:' .. q, t[3], member)
              redis.call('SADD', P .. 'retrying:' .. q, member)
            end
          end
          return #expired
        end
        -- A change to a leased task, allowed only while its lease token is current.
        local function leased(id, token)
          local key = tkey(id)
          local t = redis.call('HMGET', key, 'state', 'lease_token', 'queue')
          if t[1] ~= 'running' or t[2] ~= token then return nil end
          return key, t[3]
        end

        """;

    private async Task<RedisResult> RunAsync(string script, params RedisValue[] arguments)
    {
        var values = new RedisValue[arguments.Length + 1];
        values[0] = _prefix;
        arguments.CopyTo(values, 1);
        return await _db.ScriptEvaluateAsync(Prelude + script, [], values).ConfigureAwait(false);
    }

    private static RedisValue[] RequestArguments(TaskRequest request, long now) =>
    [
        request.Queue, request.Name, request.Arguments, Ms(request.RunAt?.ToUnixTimeMilliseconds() ?? now), request.MaxRetries,
        request.SoftTimeLimit is { } soft ? Ms((long)soft.TotalMilliseconds) : "",
        request.HardTimeLimit is { } hard ? Ms((long)hard.TotalMilliseconds) : "",
        request.UniqueKey ?? "",
    ];

    private static void Validate(TaskRequest request)
    {
        ArgumentException.ThrowIfNullOrEmpty(request.Name);
        ArgumentException.ThrowIfNullOrEmpty(request.Queue);
        ArgumentOutOfRangeException.ThrowIfNegative(request.MaxRetries);
    }

    public async Task<long> EnqueueAsync(TaskRequest request, CancellationToken cancellationToken = default)
    {
        Validate(request);
        var now = Now;
        var result = await RunAsync("return enqueue(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])",
            [.. RequestArguments(request, now), Ms(now)]).ConfigureAwait(false);
        return (long)result;
    }

    public async Task<IReadOnlyList<LeasedTask>> LeaseAsync(IReadOnlyList<string> queues, string owner, int max, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (queues.Count == 0)
        {
            return [];
        }
        var now = Now;
        const string script = """
            local owner, max, lease_end, now = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
            local limited = redis.call('HLEN', P .. 'ratelimit') > 0
            local window = limited and (max + 1000) or max
            local candidates = {}
            for i = 6, #ARGV do
              local q = ARGV[i]
              reclaim(q, now)
              local ready = redis.call('ZRANGEBYSCORE', P .. 'ready:' .. q, '-inf', now, 'WITHSCORES', 'LIMIT', 0, window)
              for j = 1, #ready, 2 do
                candidates[#candidates + 1] = { ready[j], tonumber(ready[j + 1]), q }
              end
            end
            table.sort(candidates, function(a, b)
              if a[2] ~= b[2] then return a[2] < b[2] end
              return a[1] < b[1]
            end)
            local second = math.floor(now / 1000)
            local out = {}
            local taken = 0
            for _, c in ipairs(candidates) do
              if taken >= max then break end
              local key = tkey(c[1])
              local name = redis.call('HGET', key, 'name')
              local allowed = true
              if limited then
                local limit = redis.call('HGET', P .. 'ratelimit', name)
                if limit then
                  local used_key = P .. 'rateused:' .. name .. ':' .. second
                  if tonumber(redis.call('GET', used_key) or '0') >= tonumber(limit) then
                    allowed = false
                  else
                    redis.call('INCR', used_key)
                    redis.call('PEXPIRE', used_key, 5000)
                  end
                end
              end
              if allowed then
                local attempts = redis.call('HINCRBY', key, 'attempts', 1)
                local token = redis.call('HINCRBY', key, 'lease_token', 1)
                redis.call('HSET', key, 'state', 'running', 'lease_owner', owner, 'lease_until', lease_end)
                redis.call('ZREM', P .. 'ready:' .. c[3], c[1])
                redis.call('ZADD', P .. 'running:' .. c[3], lease_end, c[1])
                redis.call('SREM', P .. 'retrying:' .. c[3], c[1])
                local t = redis.call('HMGET', key, 'args', 'max_retries', 'soft_ms', 'hard_ms')
                out[#out + 1] = { tonumber(c[1]), c[3], name, t[1], attempts, tonumber(t[2]), token, t[3], t[4] }
                taken = taken + 1
              end
            end
            return out
            """;
        var arguments = new List<RedisValue> { owner, max, Ms(now + (long)lease.TotalMilliseconds), Ms(now) };
        arguments.AddRange(queues.Select(q => (RedisValue)q));
        var result = await RunAsync(script, [.. arguments]).ConfigureAwait(false);
        var leased = new List<LeasedTask>();
        foreach (var item in (RedisResult[])result!)
        {
            var t = (RedisResult[])item!;
            leased.Add(new LeasedTask((long)t[0], (string)t[1]!, (string)t[2]!, (string)t[3]!, (int)t[4], (int)t[5], (long)t[6], Limit(t[7]), Limit(t[8])));
        }
        return [.. leased.OrderBy(t => t.Id)];
    }

    private static TimeSpan? Limit(RedisResult value) =>
        value.IsNull || (string?)value is null or "" ? null : TimeSpan.FromMilliseconds(long.Parse((string)value!, CultureInfo.InvariantCulture));

    public async Task<bool> RenewAsync(LeasedTask task, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        const string script = """
            local key, q = leased(ARGV[2], ARGV[3])
            if not key then return 0 end
            redis.call('HSET', key, 'lease_until', ARGV[4])
            redis.call('ZADD', P .. 'running:' .. q, ARGV[4], m(ARGV[2]))
            return 1
            """;
        return (long)await RunAsync(script, task.Id, task.Token, Ms(Now + (long)lease.TotalMilliseconds)).ConfigureAwait(false) == 1;
    }

    public async Task<bool> CompleteAsync(LeasedTask task, CancellationToken cancellationToken = default)
    {
        const string script = """
            local key, q = leased(ARGV[2], ARGV[3])
            if not key then return 0 end
            redis.call('HSET', key, 'state', 'done', 'finished_at', ARGV[4])
            redis.call('HDEL', key, 'lease_owner', 'lease_until')
            redis.call('ZREM', P .. 'running:' .. q, m(ARGV[2]))
            redis.call('ZADD', P .. 'done:' .. q, ARGV[4], m(ARGV[2]))
            unique_release(key, ARGV[2])
            return 1
            """;
        return (long)await RunAsync(script, task.Id, task.Token, Ms(Now)).ConfigureAwait(false) == 1;
    }

    public async Task<bool> ReleaseAsync(LeasedTask task, CancellationToken cancellationToken = default)
    {
        const string script = """
            local key, q = leased(ARGV[2], ARGV[3])
            if not key then return 0 end
            local attempts = redis.call('HINCRBY', key, 'attempts', -1)
            redis.call('HSET', key, 'state', 'pending')
            redis.call('HDEL', key, 'lease_owner', 'lease_until')
            redis.call('ZREM', P .. 'running:' .. q, m(ARGV[2]))
            redis.call('ZADD', P .. 'ready:' .. q, redis.call('HGET', key, 'run_at'), m(ARGV[2]))
            if attempts > 0 then redis.call('SADD', P .. 'retrying:' .. q, m(ARGV[2])) end
            return 1
            """;
        return (long)await RunAsync(script, task.Id, task.Token).ConfigureAwait(false) == 1;
    }

    public async Task<bool> FailAsync(LeasedTask task, string error, CancellationToken cancellationToken = default)
    {
        const string script = """
            local key, q = leased(ARGV[2], ARGV[3])
            if not key then return 0 end
            local now, err, dead, run_at = ARGV[4], ARGV[5], ARGV[6] == '1', ARGV[7]
            redis.call('HDEL', key, 'lease_owner', 'lease_until')
            redis.call('ZREM', P .. 'running:' .. q, m(ARGV[2]))
            if dead then
              redis.call('HSET', key, 'state', 'dead', 'finished_at', now, 'last_error', err)
              redis.call('ZADD', P .. 'dead:' .. q, now, m(ARGV[2]))
              unique_release(key, ARGV[2])
            else
              redis.call('HSET', key, 'state', 'pending', 'run_at', run_at, 'last_error', err)
              redis.call('ZADD', P .. 'ready:' .. q, run_at, m(ARGV[2]))
              redis.call('SADD', P .. 'retrying:' .. q, m(ARGV[2]))
            end
            return 1
            """;
        var now = Now;
        var dead = task.Attempt > task.MaxRetries;
        var runAt = dead ? now : now + (long)Backoff.Delay(task.Attempt, _retryBase, RetryCap, _random).TotalMilliseconds;
        return (long)await RunAsync(script, task.Id, task.Token, Ms(now), error, dead ? "1" : "0", Ms(runAt)).ConfigureAwait(false) == 1;
    }

    public async Task<IReadOnlyList<QueueStats>> StatsAsync(CancellationToken cancellationToken = default)
    {
        const string script = """
            local now = tonumber(ARGV[2])
            local out = {}
            local queues = redis.call('SMEMBERS', P .. 'queues')
            table.sort(queues)
            for _, q in ipairs(queues) do
              local oldest = redis.call('ZRANGEBYSCORE', P .. 'ready:' .. q, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
              out[#out + 1] = {
                q,
                redis.call('ZCOUNT', P .. 'ready:' .. q, '-inf', now),
                redis.call('ZCOUNT', P .. 'ready:' .. q, '(' .. now, '+inf'),
                redis.call('ZCARD', P .. 'running:' .. q),
                redis.call('SCARD', P .. 'retrying:' .. q),
                redis.call('ZCARD', P .. 'dead:' .. q),
                redis.call('ZCARD', P .. 'done:' .. q),
                oldest[2] or '',
                redis.call('ZCOUNT', P .. 'done:' .. q, now - 60000, '+inf'),
              }
            end
            return out
            """;
        var now = Now;
        var stats = new List<QueueStats>();
        foreach (var item in (RedisResult[])(await RunAsync(script, Ms(now)).ConfigureAwait(false))!)
        {
            var s = (RedisResult[])item!;
            var oldest = (string?)s[7];
            stats.Add(new QueueStats((string)s[0]!, (long)s[1], (long)s[2], (long)s[3], (long)s[4], (long)s[5], (long)s[6],
                string.IsNullOrEmpty(oldest) ? null : TimeSpan.FromMilliseconds(Math.Max(0, now - long.Parse(oldest, CultureInfo.InvariantCulture))),
                (long)s[8]));
        }
        return stats.Where(s => s.Pending + s.Delayed + s.Running + s.Dead + s.Done > 0).ToList();
    }

    public async Task SetRateLimitAsync(string name, int? perSecond, CancellationToken cancellationToken = default)
    {
        if (perSecond is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(perSecond), "a rate limit is at least one task per second");
        }
        if (perSecond is null)
        {
            await _db.HashDeleteAsync(_prefix + "ratelimit", name).ConfigureAwait(false);
        }
        else
        {
            await _db.HashSetAsync(_prefix + "ratelimit", name, perSecond.Value).ConfigureAwait(false);
        }
    }

    public async Task<long> RetryDeadAsync(string queue, CancellationToken cancellationToken = default)
    {
        const string script = """
            local q, now = ARGV[2], ARGV[3]
            local ids = redis.call('ZRANGE', P .. 'dead:' .. q, 0, -1)
            for _, member in ipairs(ids) do
              local key = tkey(member)
              redis.call('HSET', key, 'state', 'pending', 'attempts', 0, 'run_at', now)
              redis.call('HDEL', key, 'finished_at')
              redis.call('ZADD', P .. 'ready:' .. q, now, member)
            end
            redis.call('DEL', P .. 'dead:' .. q)
            return #ids
            """;
        return (long)await RunAsync(script, queue, Ms(Now)).ConfigureAwait(false);
    }

    public async Task<long> PurgeDeadAsync(string queue, CancellationToken cancellationToken = default)
    {
        const string script = """
            local ids = redis.call('ZRANGE', P .. 'dead:' .. ARGV[2], 0, -1)
            for _, member in ipairs(ids) do redis.call('DEL', tkey(member)) end
            redis.call('DEL', P .. 'dead:' .. ARGV[2])
            return #ids
            """;
        return (long)await RunAsync(script, queue).ConfigureAwait(false);
    }

    public async Task<long> RecoverExpiredAsync(CancellationToken cancellationToken = default)
    {
        const string script = """
            local n = 0
            for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do n = n + reclaim(q, tonumber(ARGV[2])) end
            return n
            """;
        return (long)await RunAsync(script, Ms(Now)).ConfigureAwait(false);
    }

    public async Task<long> PurgeDoneAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default)
    {
        // In batches, so no one script holds the server for long.
        const string script = """
            local n = 0
            for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
              local ids = redis.call('ZRANGEBYSCORE', P .. 'done:' .. q, '-inf', '(' .. ARGV[2], 'LIMIT', 0, 5000)
              for _, member in ipairs(ids) do
                redis.call('DEL', tkey(member))
                redis.call('ZREM', P .. 'done:' .. q, member)
              end
              n = n + #ids
            end
            return n
            """;
        long total = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var purged = (long)await RunAsync(script, Ms(finishedBefore.ToUnixTimeMilliseconds())).ConfigureAwait(false);
            total += purged;
            if (purged == 0)
            {
                return total;
            }
        }
    }

    public async Task<long?> HoldLeaseAsync(string name, string holder, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        const string script = """
            local key, holder, now = P .. 'lease:' .. ARGV[2], ARGV[3], tonumber(ARGV[5])
            local h = redis.call('HMGET', key, 'holder', 'token', 'until')
            local token
            if not h[1] then
              token = 1
            elseif h[1] == holder and tonumber(h[3]) >= now then
              token = tonumber(h[2])
            elseif tonumber(h[3]) < now then
              token = tonumber(h[2]) + 1
            else
              return -1
            end
            redis.call('HSET', key, 'holder', holder, 'token', token, 'until', now + tonumber(ARGV[4]))
            return token
            """;
        var token = (long)await RunAsync(script, name, holder, Ms((long)duration.TotalMilliseconds), Ms(Now)).ConfigureAwait(false);
        return token < 0 ? null : token;
    }

    public async Task<bool> ReleaseLeaseAsync(string name, string holder, long token, CancellationToken cancellationToken = default)
    {
        const string script = """
            local key = P .. 'lease:' .. ARGV[2]
            local h = redis.call('HMGET', key, 'holder', 'token')
            if h[1] ~= ARGV[3] or h[2] ~= ARGV[4] then return 0 end
            redis.call('HSET', key, 'until', tonumber(ARGV[5]) - 1)
            return 1
            """;
        return (long)await RunAsync(script, name, holder, token, Ms(Now)).ConfigureAwait(false) == 1;
    }

    public async Task<LeaseHolder?> LeaseHolderAsync(string name, CancellationToken cancellationToken = default)
    {
        var values = await _db.HashGetAsync(_prefix + "lease:" + name, ["holder", "token", "until"]).ConfigureAwait(false);
        if (values[0].IsNull || (long)values[2] < Now)
        {
            return null;
        }
        return new LeaseHolder((string)values[0]!, (long)values[1], DateTimeOffset.FromUnixTimeMilliseconds((long)values[2]));
    }

    public async Task<DateTimeOffset?> LastSlotAsync(string entry, CancellationToken cancellationToken = default)
    {
        var value = await _db.StringGetAsync(_prefix + "slot:" + entry).ConfigureAwait(false);
        return value.IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)value);
    }

    public async Task<bool> IssueSlotAsync(ScheduledSlot slot, TaskRequest? request, CancellationToken cancellationToken = default)
    {
        if (request is not null)
        {
            Validate(request);
        }
        const string script = """
            local h = redis.call('HMGET', P .. 'lease:' .. ARGV[2], 'holder', 'token', 'until')
            local now = tonumber(ARGV[5])
            if h[1] ~= ARGV[3] or h[2] ~= ARGV[4] or tonumber(h[3]) < now then return 0 end
            local last = redis.call('GET', P .. 'slot:' .. ARGV[6])
            if last and tonumber(last) >= tonumber(ARGV[7]) then return 0 end
            redis.call('SET', P .. 'slot:' .. ARGV[6], ARGV[7])
            if ARGV[8] == '1' then
              enqueue(ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[5])
            end
            return 1
            """;
        var now = Now;
        RedisValue[] arguments = [slot.Lease, slot.Holder, slot.Token, Ms(now), slot.Entry, Ms(slot.Slot.ToUnixTimeMilliseconds()), request is null ? "0" : "1"];
        if (request is not null)
        {
            arguments = [.. arguments, .. RequestArguments(request, now)];
        }
        return (long)await RunAsync(script, arguments).ConfigureAwait(false) == 1;
    }

    public async Task<(string State, int Attempts, string? LastError)?> InspectAsync(long id, CancellationToken cancellationToken = default)
    {
        var values = await _db.HashGetAsync(_prefix + "task:" + id.ToString(CultureInfo.InvariantCulture), ["state", "attempts", "last_error"]).ConfigureAwait(false);
        return values[0].IsNull ? null : ((string)values[0]!, (int)values[1], values[2].IsNull ? null : (string?)values[2]);
    }

    public async Task<(string Name, string Arguments)?> DescribeAsync(long id, CancellationToken cancellationToken = default)
    {
        var values = await _db.HashGetAsync(_prefix + "task:" + id.ToString(CultureInfo.InvariantCulture), ["name", "args"]).ConfigureAwait(false);
        return values[0].IsNull ? null : ((string)values[0]!, values[1].IsNull ? "" : (string)values[1]!);
    }

    public async ValueTask DisposeAsync() => await _redis.DisposeAsync().ConfigureAwait(false);
}
