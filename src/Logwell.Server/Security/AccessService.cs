using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Security;

/// <summary>What authentication concluded: the caller, or the status and reason of the refusal.</summary>
/// <param name="RetryAfter">With 429: how long the client should wait.</param>
public readonly record struct Authentication(Caller? Caller, int Status, string? Error, TimeSpan? RetryAfter = null);

/// <summary>
/// Who a request comes from. Reads the credentials every client of this field sends (<c>Bearer lw_…</c>,
/// Elasticsearch's <c>ApiKey</c>, HTTP basic with a user's password or with a key as the password, Seq's
/// <c>X-Seq-ApiKey</c>) against the rules in the metadata file, which it reloads when any process of the node changes
/// them (checked at most every <see cref="RefreshInterval"/>, so a revoked key stops working within it everywhere).
/// </summary>
public sealed class AccessService
{
    /// <summary>How stale the rules a process holds may be.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The command that makes the first administrator, named where a request is refused for want of one.</summary>
    public const string FirstAdminCommand = "logwell users create NAME --role admin";

    private readonly AccessStore _store;
    private readonly TimeProvider _time;
    private readonly string _nodeKeyHash;
    private readonly Lock _reload = new();
    // Passwords verified at a version of the rules, by user and SHA-256 of the password: PBKDF2 costs tens of
    // milliseconds by design, and shippers send basic auth with every request. A change of the rules empties it.
    private readonly ConcurrentDictionary<string, long> _verified = new(StringComparer.Ordinal);
    private AccessSnapshot _rules = AccessSnapshot.Empty;
    private long _checkedAt = long.MinValue;

    private readonly IReadOnlyDictionary<string, string> _seqKeys;
    private readonly AbuseLimits _limits;

    /// <param name="seqKeys">The <c>SeqApiKeys</c> setting: Seq API keys and the index set each ingests into. Such a
    /// key may ingest into its index set and do nothing else.</param>
    /// <param name="keyRequestsPerSecond">The <c>KeyRequestsPerSecond</c> setting (0: no limit).</param>
    /// <param name="sessionIdle">How long a web UI session lasts without a request (the <c>SessionIdleMinutes</c> setting).</param>
    /// <param name="sessionLifetime">How long a web UI session lasts at most (the <c>SessionLifetimeHours</c> setting).</param>
    /// <param name="keyQuerySecondsPerMinute">The <c>KeyQuerySecondsPerMinute</c> setting (0: no limit).</param>
    /// <param name="metricsScrapeToken">The <c>MetricsScrapeToken</c> setting: a secret that opens <c>/metrics</c> alone (empty: none).</param>
    public AccessService(AccessStore store, TimeProvider time, string dataDirectory, IReadOnlyDictionary<string, string>? seqKeys = null, double keyRequestsPerSecond = 0,
        TimeSpan? sessionIdle = null, TimeSpan? sessionLifetime = null, double keyQuerySecondsPerMinute = 0, string metricsScrapeToken = "")
    {
        _scrapeTokenHash = metricsScrapeToken.Length > 0 ? AccessStore.HashSecret(metricsScrapeToken) : null;
        _store = store;
        _time = time;
        _limits = new AbuseLimits(time, keyRequestsPerSecond, keyQuerySecondsPerMinute);
        _seqKeys = seqKeys ?? new Dictionary<string, string>();
        var nodeKey = NodeCredential.ReadOrCreate(dataDirectory);
        _nodeKeyHash = AccessStore.HashSecret(nodeKey);
        // The anti-forgery key is the metadata's, not this node's: a page served by one node of a cluster may send its
        // next change to another.
        Sessions = new Sessions(store.Database, time, store.Database.SharedSecret("csrf"), sessionIdle ?? TimeSpan.FromHours(8), sessionLifetime ?? TimeSpan.FromDays(7));
    }

    public AccessStore Store => _store;

    /// <summary>The request rate and query budget of each key, and the sign-in back-off.</summary>
    public AbuseLimits Limits => _limits;

    public TimeProvider Time => _time;

    /// <summary>The web UI's sessions.</summary>
    public Sessions Sessions { get; }

    /// <summary>The rules, reloaded when another process (or this one) changed them.</summary>
    public AccessSnapshot Rules
    {
        get
        {
            var now = _time.GetTimestamp();
            var rules = Volatile.Read(ref _rules);
            if (_time.GetElapsedTime(Volatile.Read(ref _checkedAt), now) < RefreshInterval && _checkedAt != long.MinValue)
            {
                return rules;
            }
            lock (_reload)
            {
                if (_checkedAt != long.MinValue && _time.GetElapsedTime(_checkedAt, now) < RefreshInterval)
                {
                    return _rules;
                }
                if (_store.Version() != _rules.Version)
                {
                    _verified.Clear();
                    Volatile.Write(ref _rules, _store.Load());
                }
                Volatile.Write(ref _checkedAt, now);
                return _rules;
            }
        }
    }

    /// <summary>Reads the rules again at once (after a change this process made).</summary>
    public void Invalidate() => Volatile.Write(ref _checkedAt, long.MinValue);

    /// <summary>The caller of <paramref name="context"/>, or why it is refused: 401 for missing or wrong credentials, 403 for a non-loopback client before the first user exists.</summary>
    /// <param name="again">The request was let in before and is asked about again while it runs (a live tail): its
    /// credentials are checked against the rules as they are now, without drawing on the key's request rate.</param>
    public Authentication Authenticate(HttpContext context, bool again = false)
    {
        var rules = Rules;
        var request = context.Request;
        string? secret = null;
        string? user = null;
        string? password = null;
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.Length > 0)
        {
            var space = authorization.IndexOf(' ', StringComparison.Ordinal);
            var scheme = space < 0 ? authorization : authorization[..space];
            var value = space < 0 ? "" : authorization[(space + 1)..].Trim();
            if (scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            {
                secret = value;
            }
            else if (scheme.Equals("ApiKey", StringComparison.OrdinalIgnoreCase))
            {
                // Elasticsearch clients send base64("id:key"); the key alone is read too.
                secret = value.StartsWith(AccessStore.KeyPrefix, StringComparison.Ordinal) ? value
                    : Decode(value) is { } decoded && decoded.IndexOf(':', StringComparison.Ordinal) is var colon and >= 0 ? decoded[(colon + 1)..] : value;
            }
            else if (scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
            {
                var decoded = Decode(value);
                var colon = decoded?.IndexOf(':', StringComparison.Ordinal) ?? -1;
                if (colon < 0)
                {
                    return new Authentication(null, StatusCodes.Status401Unauthorized, "the basic credentials are not base64 of 'user:password'");
                }
                user = decoded![..colon];
                password = decoded[(colon + 1)..];
                if (password.StartsWith(AccessStore.KeyPrefix, StringComparison.Ordinal))
                {
                    // Shippers that know only basic auth (Loki clients, some Beats setups) carry a key as the password.
                    secret = password;
                    user = password = null;
                }
            }
            else
            {
                return new Authentication(null, StatusCodes.Status401Unauthorized, $"unknown authorization scheme '{scheme}': use Bearer, ApiKey or Basic");
            }
        }
        else if ((request.Headers["X-Seq-ApiKey"].ToString() is { Length: > 0 } header ? header
            : request.Path.StartsWithSegments("/api/events/raw") ? request.Query["apiKey"].ToString() : "") is { Length: > 0 } seqKey)
        {
            if (seqKey.StartsWith(AccessStore.KeyPrefix, StringComparison.Ordinal))
            {
                secret = seqKey;
            }
            else if (_seqKeys.TryGetValue(seqKey, out var seqIndexSet))
            {
                return new Authentication(Caller.SeqKey(seqIndexSet, rules), 200, null);
            }
            // Any other value is the Seq endpoint's to refuse, in Seq's format.
        }

        if (secret is not null)
        {
            var hash = AccessStore.HashSecret(secret);
            if (CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(hash), Encoding.ASCII.GetBytes(_nodeKeyHash)))
            {
                return new Authentication(Caller.Unrestricted("node", "node", rules), 200, null);
            }
            if (rules.KeyBySecretHash(hash) is not { } key)
            {
                return new Authentication(null, StatusCodes.Status401Unauthorized, "unknown API key");
            }
            if (key.Unusable(_time.GetUtcNow()) is { } why)
            {
                return new Authentication(null, StatusCodes.Status401Unauthorized, why);
            }
            if (!again && _limits.TakeKeyRequest(key.Id) is { } wait)
            {
                return new Authentication(null, StatusCodes.Status429TooManyRequests,
                    $"API key '{key.Name}' ({key.Id}) is over its request rate: {_limits.KeyRequestsPerSecond} a second (the KeyRequestsPerSecond setting); retry after {Math.Ceiling(wait.TotalSeconds)} s", wait);
            }
            if (key.AsOwner && (key.Owner is not { } owner || !rules.Users.TryGetValue(owner, out var ownerRecord) || ownerRecord.Disabled))
            {
                return new Authentication(null, StatusCodes.Status401Unauthorized, "the API key's user is disabled or deleted");
            }
            return new Authentication(rules.ForKey(key), 200, null);
        }
        if (user is not null)
        {
            return SignIn(context, user, password!);
        }
        if (rules.Users.Count > 0 && authorization.Length == 0 && request.Cookies[Sessions.CookieName] is { Length: > 0 } cookie)
        {
            if (Sessions.Find(cookie, rules.Version) is not { } session || !rules.Users.TryGetValue(session.User, out var owner) || owner.Disabled)
            {
                return new Authentication(null, StatusCodes.Status401Unauthorized,
                    $"the session has ended (signed out, idle for {Sessions.IdleTimeout.TotalMinutes:0.#} minutes, older than {Sessions.Lifetime.TotalHours:0.#} hours, or the user's password or access changed): sign in again");
            }
            if (!IsSafe(request.Method) && !Sessions.CsrfMatches(cookie, request.Headers[Sessions.CsrfHeader].ToString()))
            {
                return new Authentication(null, StatusCodes.Status403Forbidden,
                    $"a {request.Method} with the session cookie needs the session's anti-forgery token in {Sessions.CsrfHeader} (GET /api/v1/access/session gives it to the page); the request is refused as a possible cross-site request forgery");
            }
            return new Authentication(rules.ForUser(session.User), 200, null);
        }
        if (rules.Users.Count > 0)
        {
            return new Authentication(null, StatusCodes.Status401Unauthorized,
                "credentials are required: an API key ('Authorization: Bearer lw_…'; for the CLI, --api-key or logwell login) or HTTP basic auth; in a browser, sign in");
        }
        if (!IsLoopback(ClientAddress(context)))
        {
            return new Authentication(null, StatusCodes.Status403Forbidden,
                $"no user exists yet, so this node serves loopback clients only: create the first administrator on the node's machine with '{FirstAdminCommand}'");
        }
        return new Authentication(Caller.Unrestricted("local", "loopback", rules), 200, null);
    }

    /// <summary>
    /// Checks a user's password (HTTP basic auth, the web UI's sign-in form), behind the back-off that failed
    /// sign-ins earn the user name and the address.
    /// </summary>
    public Authentication SignIn(HttpContext context, string user, string password)
    {
        var rules = Rules;
        var address = "address:" + (ClientAddress(context)?.ToString() ?? "local");
        if ((_limits.Blocked("user:" + user) ?? _limits.Blocked(address)) is { } wait)
        {
            // Checked before the password, so a guess during the back-off tells nothing.
            return new Authentication(null, StatusCodes.Status429TooManyRequests,
                $"too many failed sign-ins for user '{user}' or from this address ({AbuseLimits.FreeFailures} within {AbuseLimits.Window.TotalMinutes} minutes, then a back-off doubling up to {AbuseLimits.MaxBackOff.TotalMinutes} minutes): retry after {Math.Ceiling(wait.TotalSeconds)} s", wait);
        }
        if (!rules.Users.TryGetValue(user, out var record))
        {
            // As long as a wrong password of a real user, so the answer's time does not tell which names exist.
            AccessStore.VerifyPassword(Unknown.Value, password);
        }
        if (record is null || record.Disabled || !Verified(record, password, rules.Version))
        {
            _limits.Failed("user:" + user);
            _limits.Failed(address);
            return new Authentication(null, StatusCodes.Status401Unauthorized, "wrong user name or password");
        }
        _limits.Succeeded("user:" + user);
        _limits.Succeeded(address);
        return new Authentication(rules.ForUser(user), 200, null);
    }

    private static bool IsSafe(string method) => HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);

    // Made at the first unknown name, not at start: a PBKDF2 hash costs about 0.1 s.
    private static readonly Lazy<UserRecord> Unknown = new(() => new("unknown", AccessStore.HashPassword("unknown", "not a password of anyone"), DateTimeOffset.UnixEpoch, false));

    private bool Verified(UserRecord user, string password, long version)
    {
        var cacheKey = user.Name + "\0" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(password)));
        if (_verified.TryGetValue(cacheKey, out var at) && at == version)
        {
            return true;
        }
        if (!AccessStore.VerifyPassword(user, password))
        {
            return false;
        }
        if (_verified.Count > 10_000)
        {
            _verified.Clear();
        }
        _verified[cacheKey] = version;
        return true;
    }

    private static string? Decode(string base64)
    {
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private readonly string? _scrapeTokenHash;

    /// <summary>Whether the request carries the metrics scrape token (<c>Authorization: Bearer TOKEN</c>).</summary>
    public bool IsScrape(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        return _scrapeTokenHash is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(AccessStore.HashSecret(authorization[7..].Trim())), Encoding.ASCII.GetBytes(_scrapeTokenHash));
    }

    /// <summary>The header an API master's worker proves itself with to the store (the node credential).</summary>
    public const string NodeKeyHeader = "X-Logwell-Node-Key";

    /// <summary>Whether <paramref name="secret"/> is the node's own credential.</summary>
    public bool IsNodeKey(string secret) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(AccessStore.HashSecret(secret)), Encoding.ASCII.GetBytes(_nodeKeyHash));

    /// <summary>
    /// The client's address. The last <c>X-Forwarded-For</c> value names it when the request came from the node's
    /// own API master: through the store's Unix socket (no address; an in-process host too), or with the node
    /// credential in <see cref="NodeKeyHeader"/> over TCP. Anyone else's <c>X-Forwarded-For</c> is not believed.
    /// </summary>
    public static IPAddress? ClientAddress(HttpContext context)
    {
        var address = context.Connection.RemoteIpAddress;
        if (address is not null && !(context.Request.Headers[NodeKeyHeader].ToString() is { Length: > 0 } proof
            && context.RequestServices.GetService<AccessService>()?.IsNodeKey(proof) == true))
        {
            return address;
        }
        var forwarded = context.Request.Headers["X-Forwarded-For"];
        if (forwarded.Count == 0)
        {
            return null;
        }
        if (forwarded.Count == 0)
        {
            return address;
        }
        var last = forwarded[^1]!.Split(',')[^1].Trim();
        return IPAddress.TryParse(last, out var parsed) ? parsed : IPAddress.None;
    }

    private static bool IsLoopback(IPAddress? address) => address is null || IPAddress.IsLoopback(address);
}

/// <summary>
/// The node's own credential (<c>run/node.key</c> in the data directory, readable by the node's account only): its
/// worker and scheduler processes authenticate with it, not with a user's key. Made at first start.
/// </summary>
public static class NodeCredential
{
    public static string PathOf(string dataDirectory) => Path.Combine(Path.GetFullPath(dataDirectory), "run", "node.key");

    public static string ReadOrCreate(string dataDirectory)
    {
        var path = PathOf(dataDirectory);
        if (File.Exists(path))
        {
            return File.ReadAllText(path).Trim();
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + "." + Environment.ProcessId + ".tmp";
        Logwell.Hosting.FileModes.WriteSecretFile(temporary, Encoding.ASCII.GetBytes(AccessStore.NewSecret() + "\n"));
        try
        {
            // Of two processes starting at once, the first to place its key wins and both use it.
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
        }
        return File.ReadAllText(path).Trim();
    }
}
