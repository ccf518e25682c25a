using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Logwell.Server.Hosting;
using Microsoft.AspNetCore.Http;

namespace Logwell.Server.Security;

/// <summary>A signed-in browser: its user, when it signed in, when it was last seen and when it must sign in again.</summary>
public sealed class WebSession(string id, string user, DateTimeOffset createdAt, DateTimeOffset seenAt, DateTimeOffset expiresAt)
{
    private long _seenAtMs = seenAt.ToUnixTimeMilliseconds();

    /// <summary>The SHA-256 of the cookie's secret, as stored.</summary>
    public string Id { get; } = id;

    public string User { get; } = user;

    public DateTimeOffset CreatedAt { get; } = createdAt;

    /// <summary>The absolute end, whatever the activity.</summary>
    public DateTimeOffset ExpiresAt { get; } = expiresAt;

    public DateTimeOffset SeenAt => DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _seenAtMs));

    /// <summary>When <see cref="SeenAt"/> was last written to the file.</summary>
    internal long StoredSeenAtMs { get; set; } = seenAt.ToUnixTimeMilliseconds();

    /// <summary>The version of the access rules this process held when it read the session from the file.</summary>
    internal long RulesVersion { get; set; }

    internal void Seen(DateTimeOffset at) => Interlocked.Exchange(ref _seenAtMs, at.ToUnixTimeMilliseconds());
}

/// <summary>
/// The web UI's sessions: a random 256-bit secret in an HttpOnly, SameSite=Strict cookie (Secure under TLS), kept in
/// the metadata file as its SHA-256 beside the user, an idle timeout (<c>SessionIdleMinutes</c>) and an absolute
/// lifetime (<c>SessionLifetimeHours</c>). Each sign-in makes a new secret and ends the session the browser held.
/// <para>
/// Anti-forgery: a state-changing request that authenticates with the cookie must carry
/// <see cref="CsrfHeader"/>, an HMAC of the cookie's secret under a key kept in the metadata (the same on every node of a cluster), which the page reads from
/// <c>GET /api/v1/access/session</c>. A page of another origin can neither read that answer nor set the header
/// without a CORS preflight the node never grants. ASP.NET Core's antiforgery pairs its own cookie with a token bound
/// to a <c>ClaimsPrincipal</c>; here the token is bound to the session itself, so it needs no second cookie and ends
/// with the session.
/// </para>
/// </summary>
public sealed class Sessions
{
    public const string CookieName = "logwell_session";

    /// <summary>The header that carries the anti-forgery token.</summary>
    public const string CsrfHeader = "X-Logwell-Csrf";

    private readonly MetaDatabase _database;
    private readonly TimeProvider _time;
    private readonly byte[] _csrfKey;
    private readonly ConcurrentDictionary<string, WebSession> _cache = new(StringComparer.Ordinal);

    public Sessions(MetaDatabase database, TimeProvider time, string csrfSecret, TimeSpan idleTimeout, TimeSpan lifetime)
    {
        _database = database;
        _time = time;
        IdleTimeout = idleTimeout;
        Lifetime = lifetime;
        _csrfKey = SHA256.HashData(Encoding.UTF8.GetBytes("logwell csrf\0" + csrfSecret));
    }

    public TimeSpan IdleTimeout { get; }

    public TimeSpan Lifetime { get; }

    /// <summary>How stale the last-seen time in the file may be: a write per request would cost more than the check.</summary>
    private TimeSpan TouchInterval => IdleTimeout / 4 < TimeSpan.FromMinutes(1) ? IdleTimeout / 4 : TimeSpan.FromMinutes(1);

    /// <summary>A new session for <paramref name="user"/> and the cookie's secret, which is not kept.</summary>
    public (WebSession Session, string Secret) Create(string user, long rulesVersion)
    {
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = _time.GetUtcNow();
        var session = new WebSession(AccessStore.HashSecret(secret), user, now, now, now + Lifetime) { RulesVersion = rulesVersion };
        using var connection = _database.Connect();
        using var command = connection.CreateCommand();
        // Sessions that ended without a sign-out go with the next sign-in.
        command.CommandText = """
            DELETE FROM sessions WHERE expires_at <= @now OR seen_at <= @idle;
            INSERT INTO sessions (id, user_name, created_at, seen_at, expires_at) VALUES (@id, @user, @now, @now, @expires);
            """;
        command.Add("@now", now.ToUnixTimeMilliseconds());
        command.Add("@idle", (now - IdleTimeout).ToUnixTimeMilliseconds());
        command.Add("@id", session.Id);
        command.Add("@user", user);
        command.Add("@expires", session.ExpiresAt.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
        _cache[session.Id] = session;
        return (session, secret);
    }

    /// <summary>The live session whose cookie holds <paramref name="secret"/>, marked as seen now; null when it ended or never was.</summary>
    /// <param name="rulesVersion">The version of the access rules the request is decided by. A session held since an
    /// older version is read from the file again: a new password, a disabled or deleted user end sessions there, in the
    /// same change that raises the version, so no copy read before that change outlives it.</param>
    public WebSession? Find(string secret, long rulesVersion)
    {
        var id = AccessStore.HashSecret(secret);
        if (!_cache.TryGetValue(id, out var session) || session.RulesVersion != rulesVersion)
        {
            session = Read(id);
            if (session is null)
            {
                _cache.TryRemove(id, out _);
                return null;
            }
            session.RulesVersion = rulesVersion;
            if (_cache.Count > 100_000)
            {
                // Bounded memory: the file holds them all.
                _cache.Clear();
            }
            _cache[id] = session;
        }
        var now = _time.GetUtcNow();
        if (now - session.SeenAt >= IdleTimeout && now < session.ExpiresAt && Read(id) is { } stored && stored.SeenAt > session.SeenAt)
        {
            // Another process (a node of the cluster) saw it since this one did: the copy here was stale, not the session.
            stored.RulesVersion = rulesVersion;
            _cache[id] = session = stored;
        }
        if (now >= session.ExpiresAt || now - session.SeenAt >= IdleTimeout)
        {
            Delete(id);
            return null;
        }
        session.Seen(now);
        if (now.ToUnixTimeMilliseconds() - session.StoredSeenAtMs >= TouchInterval.TotalMilliseconds)
        {
            session.StoredSeenAtMs = now.ToUnixTimeMilliseconds();
            Execute("UPDATE sessions SET seen_at = @at WHERE id = @id", id, now.ToUnixTimeMilliseconds());
        }
        return session;
    }

    /// <summary>
    /// Ends a session (sign-out). The access version is raised with it, so that every process that holds the session
    /// (each node of a cluster, each API worker) reads it again, and finds it gone, within the rules' refresh.
    /// </summary>
    public void End(string secret)
    {
        var id = AccessStore.HashSecret(secret);
        _cache.TryRemove(id, out _);
        using var connection = _database.Connect();
        using var transaction = _database.BeginWrite(connection);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "UPDATE access_version SET version = version + 1 WHERE id = 1";
        command.ExecuteNonQuery();
        command.CommandText = "DELETE FROM sessions WHERE id = @id";
        command.Add("@id", id);
        command.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <summary>The anti-forgery token of the session whose cookie holds <paramref name="secret"/>.</summary>
    public string CsrfToken(string secret) =>
        Convert.ToBase64String(HMACSHA256.HashData(_csrfKey, Encoding.UTF8.GetBytes(secret))).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public bool CsrfMatches(string secret, string? presented) =>
        presented is { Length: > 0 } && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(CsrfToken(secret)), Encoding.ASCII.GetBytes(presented));

    /// <summary>Sets the cookie that carries <paramref name="secret"/>: for this browser session only, sent to this node only.</summary>
    public static void SetCookie(HttpContext context, string secret) =>
        context.Response.Cookies.Append(CookieName, secret, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
            IsEssential = true,
        });

    public static void ClearCookie(HttpContext context) =>
        context.Response.Cookies.Delete(CookieName, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = context.Request.IsHttps, Path = "/" });

    private WebSession? Read(string id)
    {
        using var connection = _database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT user_name, created_at, seen_at, expires_at FROM sessions WHERE id = @id";
        command.Add("@id", id);
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new WebSession(id, reader.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)))
            : null;
    }

    private void Delete(string id)
    {
        _cache.TryRemove(id, out _);
        Execute("DELETE FROM sessions WHERE id = @id", id, 0);
    }

    private void Execute(string sql, string id, long at)
    {
        using var connection = _database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Add("@id", id);
        command.Add("@at", at);
        command.ExecuteNonQuery();
    }
}
