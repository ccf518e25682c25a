using System.Text.Json;
using Logwell.Core.Time;
using Logwell.Server.Hosting;
using Logwell.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Logwell.Server.Api;

/// <summary>
/// <c>/api/v1/access/...</c>: users, groups, roles, spaces, grants and API keys over HTTP (<c>manage_access</c> on
/// <c>*</c>), and <c>/api/v1/access/me</c>: what the caller may do. The same changes as the CLI's, in the same store.
/// </summary>
internal static class AccessEndpoints
{
    private static readonly Permission Manage = Permission.OnNode(Actions.ManageAccess);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/access/me", Me).WithMetadata(Permission.Authenticated);
        routes.MapPost("/api/v1/access/login", Login).WithMetadata(Permission.Authenticated);
        routes.MapPost("/api/v1/access/logout", Logout).WithMetadata(Permission.Authenticated);
        // The web UI's sign-in: the form's user name and password, checked here (the endpoint takes no other credentials).
        routes.MapPost("/api/v1/access/session", SignIn).WithMetadata(Permission.Public);
        routes.MapGet("/api/v1/access/session", Session).WithMetadata(Permission.Authenticated);
        routes.MapDelete("/api/v1/access/session", SignOut).WithMetadata(Permission.Authenticated);

        routes.MapGet("/api/v1/access/users", context => Answer(context, 200, rules => rules.Users.Values.OrderBy(u => u.Name, StringComparer.Ordinal).Select(u => new
        {
            name = u.Name,
            created_at = u.CreatedAt,
            disabled = u.Disabled,
            groups = rules.GroupsOf(u.Name),
            grants = GrantsOf(rules, "user", u.Name),
        }))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/users", context => Change(context, 201, (store, body) =>
        {
            var name = Text(body, "name", required: true)!;
            var role = Text(body, "role");
            var scope = ScopeOf(body);
            if (role is not null && !store.Load().Roles.ContainsKey(role))
            {
                throw new AccessException($"no role '{role}'", 404);
            }
            store.CreateUser(name, Text(body, "password", required: true)!);
            if (role is not null)
            {
                try
                {
                    store.AddGrant("user", name, role, scope, Text(body, "filter"));
                }
                catch (AccessException)
                {
                    // The user and their grant are made together or not at all.
                    store.DeleteUser(name);
                    throw;
                }
            }
            return new { name };
        })).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/users/{user}", (HttpContext context, string user) => Change(context, 204, (store, _) => store.DeleteUser(user))).WithMetadata(Manage);
        routes.MapPut("/api/v1/access/users/{user}/disabled", (HttpContext context, string user) => Change(context, 204, (store, body) =>
        {
            if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("disabled", out var value) || value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                throw new AccessException("expected {\"disabled\": true} or {\"disabled\": false}");
            }
            store.SetDisabled(user, value.GetBoolean());
        })).WithMetadata(Manage);
        // A user sets their own password; changing another's needs manage_access.
        routes.MapPut("/api/v1/access/users/{user}/password", (HttpContext context, string user) =>
        {
            var caller = context.Caller();
            if (!(caller.Kind == "user" && caller.Name == user) && !caller.CanOnNode(Actions.ManageAccess))
            {
                return Access.DenyAsync(context, Actions.ManageAccess, "*");
            }
            return Change(context, 204, (store, body) => store.SetPassword(user, Text(body, "password", required: true)!));
        }).WithMetadata(Permission.Authenticated);

        routes.MapGet("/api/v1/access/groups", context => Answer(context, 200, rules => rules.Groups.Order(StringComparer.Ordinal).Select(g => new
        {
            name = g,
            members = rules.Users.Keys.Where(u => rules.GroupsOf(u).Contains(g)).Order(StringComparer.Ordinal),
            grants = GrantsOf(rules, "group", g),
        }))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/groups", context => Change(context, 201, (store, body) => store.CreateGroup(Text(body, "name", required: true)!))).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/groups/{group}", (HttpContext context, string group) => Change(context, 204, (store, _) => store.DeleteGroup(group))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/groups/{group}/members", (HttpContext context, string group) =>
            Change(context, 204, (store, body) => store.AddMember(group, Text(body, "user", required: true)!))).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/groups/{group}/members/{user}", (HttpContext context, string group, string user) =>
            Change(context, 204, (store, _) => store.RemoveMember(group, user))).WithMetadata(Manage);

        routes.MapGet("/api/v1/access/roles", context => Answer(context, 200, rules => rules.Roles.Values.OrderBy(r => !r.BuiltIn).ThenBy(r => r.Name, StringComparer.Ordinal).Select(r => new
        {
            name = r.Name,
            built_in = r.BuiltIn,
            actions = Actions.All.Where(r.Actions.Contains),
        }))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/roles", context => Change(context, 201, (store, body) =>
        {
            if (!body.TryGetProperty("actions", out var actions) || actions.ValueKind != JsonValueKind.Array || actions.EnumerateArray().Any(a => a.ValueKind != JsonValueKind.String))
            {
                throw new AccessException("'actions' must be an array of action names");
            }
            store.CreateRole(Text(body, "name", required: true)!, [.. actions.EnumerateArray().Select(a => a.GetString()!)]);
        })).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/roles/{role}", (HttpContext context, string role) => Change(context, 204, (store, _) => store.DeleteRole(role))).WithMetadata(Manage);

        routes.MapGet("/api/v1/access/spaces", context => Answer(context, 200, rules => rules.Spaces.Order(StringComparer.Ordinal).Select(s => new
        {
            name = s,
            placed_indexsets = rules.PlacedIndexSets.Where(p => p.Value == s).Select(p => p.Key).Order(StringComparer.Ordinal),
        }))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/spaces", context => Change(context, 201, (store, body) => store.CreateSpace(Text(body, "name", required: true)!))).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/spaces/{space}", (HttpContext context, string space) => Change(context, 204, (store, _) => store.DeleteSpace(space))).WithMetadata(Manage);
        routes.MapPut("/api/v1/access/spaces/{space}/indexsets/{indexset}", (HttpContext context, string space, string indexset) =>
            Change(context, 204, (store, _) => store.PlaceIndexSet(indexset, space))).WithMetadata(Manage);

        routes.MapGet("/api/v1/access/grants", context => Answer(context, 200, rules => rules.Grants.Select(Describe))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/grants", context => Change(context, 201, (store, body) =>
        {
            var principals = new[] { "user", "group", "key" }.Where(p => body.TryGetProperty(p, out _)).ToList();
            if (principals.Count != 1)
            {
                throw new AccessException("name exactly one of 'user', 'group' and 'key'");
            }
            return Describe(store.AddGrant(principals[0], Text(body, principals[0], required: true)!, Text(body, "role", required: true)!, ScopeOf(body), Text(body, "filter")));
        })).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/grants/{id}", (HttpContext context, string id) => Change(context, 204, (store, _) => store.RemoveGrant(id))).WithMetadata(Manage);

        routes.MapGet("/api/v1/access/keys", context => Answer(context, 200, rules => rules.Keys.OrderBy(k => k.CreatedAt).Select(k => new
        {
            id = k.Id,
            name = k.Name,
            owner = k.Owner,
            created_at = k.CreatedAt,
            expires_at = k.ExpiresAt,
            revoked_at = k.RevokedAt,
            grants = GrantsOf(rules, "key", k.Id),
        }))).WithMetadata(Manage);
        routes.MapPost("/api/v1/access/keys", context => Change(context, 201, (store, body) =>
        {
            DateTimeOffset? expires = null;
            if (Text(body, "expires_in") is { } text)
            {
                expires = TimeExpression.TryParseDuration(text, out var duration)
                    ? context.RequestServices.GetTime().GetUtcNow() + duration
                    : throw new AccessException($"'expires_in' must be a duration such as 30d or 12h, not '{text}'");
            }
            var role = Text(body, "role");
            var scope = ScopeOf(body);
            if (role is not null && !store.Load().Roles.ContainsKey(role))
            {
                throw new AccessException($"no role '{role}'", 404);
            }
            var (key, secret) = store.CreateKey(Text(body, "name", required: true)!, Text(body, "owner"), expires);
            if (role is not null)
            {
                try
                {
                    store.AddGrant("key", key.Id, role, scope, Text(body, "filter"));
                }
                catch (AccessException)
                {
                    store.RevokeKey(key.Id);
                    throw;
                }
            }
            // The secret is shown here once; only its hash is kept.
            return new { id = key.Id, name = key.Name, owner = key.Owner, expires_at = key.ExpiresAt, secret };
        })).WithMetadata(Manage);
        routes.MapDelete("/api/v1/access/keys/{id}", (HttpContext context, string id) => Change(context, 204, (store, _) => store.RevokeKey(id))).WithMetadata(Manage);
    }

    private static object Describe(Grant grant) => new
    {
        id = grant.Id,
        principal_kind = grant.PrincipalKind,
        principal = grant.Principal,
        role = grant.Role,
        scope = grant.Scope.ToString(),
        filter = grant.Filter,
    };

    private static IEnumerable<object> GrantsOf(AccessSnapshot rules, string kind, string principal) =>
        rules.Grants.Where(g => g.PrincipalKind == kind && g.Principal == principal).Select(Describe);

    /// <summary>
    /// A personal key for the user who signs in with their password (<c>logwell login</c>): it acts as them until it
    /// expires (<c>expires_in</c>, default 90d), they log out, or they are deleted.
    /// </summary>
    private static Task Login(HttpContext context)
    {
        var caller = context.Caller();
        if (caller.Kind != "user")
        {
            return ErrorResponses.WriteAsync(context, StatusCodes.Status403Forbidden, "sign in with a user name and password (HTTP basic auth) to get a personal key");
        }
        return Change(context, 201, (store, body) =>
        {
            var expiresIn = Text(body, "expires_in") ?? "90d";
            if (!TimeExpression.TryParseDuration(expiresIn, out var duration))
            {
                throw new AccessException($"'expires_in' must be a duration such as 90d or 12h, not '{expiresIn}'");
            }
            var (key, secret) = store.CreateKey(Text(body, "name") ?? "login", caller.Name, context.RequestServices.GetTime().GetUtcNow() + duration, asOwner: true);
            return new { id = key.Id, name = key.Name, user = caller.Name, expires_at = key.ExpiresAt, secret };
        });
    }

    /// <summary>Revokes the personal key the request came with.</summary>
    private static Task Logout(HttpContext context)
    {
        var caller = context.Caller();
        if (caller.Kind != "key" || caller.Owner is null)
        {
            return ErrorResponses.WriteAsync(context, 400, "only a personal key (from logwell login) signs out; revoke other keys with DELETE /api/v1/access/keys/{id}");
        }
        return Change(context, 204, (store, _) => store.RevokeKey(caller.KeyId!));
    }

    private static Task Me(HttpContext context) => Write(context, 200, Describe(context.Caller()));

    private static Dictionary<string, object?> Describe(Caller caller)
    {
        var rules = caller.Rules;
        var user = caller.Kind == "user" ? caller.Name : caller.Owner;
        var grants = user is not null
            ? rules.Grants.Where(g => g.PrincipalKind == "user" && g.Principal == user || g.PrincipalKind == "group" && rules.GroupsOf(user).Contains(g.Principal))
            : caller.Kind == "key" ? rules.Grants.Where(g => g.PrincipalKind == "key" && g.Principal == caller.KeyId) : [];
        return new Dictionary<string, object?>
        {
            ["kind"] = caller.Kind,
            ["name"] = caller.Name,
            ["user"] = user,
            ["unrestricted"] = caller.IsUnrestricted,
            ["node_actions"] = Actions.All.Where(a => Actions.IsNodeWide(a) && caller.CanOnNode(a)).ToList(),
            // Actions held on some index set or space: what the pages show controls for (the server checks each use).
            ["actions"] = Actions.All.Where(a => !Actions.IsNodeWide(a) && caller.CanAnywhere(a)).ToList(),
            ["grants"] = grants.Select(Describe).ToList(),
        };
    }

    /// <summary>Signs a browser in: a new session (the one the browser held ends), its cookie and its anti-forgery token.</summary>
    private static async Task SignIn(HttpContext context)
    {
        using var document = await RequestBodies.ReadJsonOrAnswerAsync(context, 16 * 1024).ConfigureAwait(false);
        if (document is null)
        {
            return;
        }
        string user, password;
        try
        {
            user = Text(document.RootElement, "user", required: true)!;
            password = Text(document.RootElement, "password", required: true)!;
        }
        catch (AccessException e)
        {
            await ErrorResponses.WriteAsync(context, e.Status, e.Message).ConfigureAwait(false);
            return;
        }
        context.Items[AuditLog.ClaimedUserKey] = user;
        var access = context.RequestServices.GetRequiredService<AccessService>();
        var result = access.SignIn(context, user, password);
        if (result.Caller is not { } caller)
        {
            if (result.RetryAfter is { } wait)
            {
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            // No WWW-Authenticate: a browser would answer it with its own sign-in prompt.
            await ErrorResponses.WriteAsync(context, result.Status, result.Error!).ConfigureAwait(false);
            return;
        }
        if (context.Request.Cookies[Sessions.CookieName] is { Length: > 0 } previous)
        {
            access.Sessions.End(previous);
        }
        var (session, secret) = access.Sessions.Create(user, access.Rules.Version);
        Sessions.SetCookie(context, secret);
        context.Features.Set(caller);
        context.Response.Headers.CacheControl = "no-store";
        var answer = Describe(caller);
        answer["csrf"] = access.Sessions.CsrfToken(secret);
        answer["expires_at"] = session.ExpiresAt;
        answer["idle_timeout_seconds"] = access.Sessions.IdleTimeout.TotalSeconds;
        await Write(context, 200, answer).ConfigureAwait(false);
    }

    /// <summary>Who the page works for, and with a session cookie its anti-forgery token and when it ends.</summary>
    private static Task Session(HttpContext context)
    {
        var access = context.RequestServices.GetRequiredService<AccessService>();
        var answer = Describe(context.Caller());
        answer["setup"] = access.Rules.Users.Count == 0;
        if (context.Request.Headers.Authorization.ToString().Length == 0 && context.Request.Cookies[Sessions.CookieName] is { Length: > 0 } secret
            && access.Sessions.Find(secret, access.Rules.Version) is { } session)
        {
            answer["csrf"] = access.Sessions.CsrfToken(secret);
            answer["expires_at"] = session.ExpiresAt;
            answer["idle_timeout_seconds"] = access.Sessions.IdleTimeout.TotalSeconds;
        }
        context.Response.Headers.CacheControl = "no-store";
        return Write(context, 200, answer);
    }

    /// <summary>Signs the browser out: the session ends on the node, and the cookie is cleared.</summary>
    private static Task SignOut(HttpContext context)
    {
        if (context.Request.Headers.Authorization.ToString().Length > 0 || context.Request.Cookies[Sessions.CookieName] is not { Length: > 0 } secret)
        {
            return ErrorResponses.WriteAsync(context, 400, "this request has no session to end: sign-out is for the web UI's session cookie (a personal key signs out with POST /api/v1/access/logout)");
        }
        context.RequestServices.GetRequiredService<AccessService>().Sessions.End(secret);
        Sessions.ClearCookie(context);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }

    private static Task Answer(HttpContext context, int status, Func<AccessSnapshot, object> read) =>
        Write(context, status, read(context.RequestServices.GetRequiredService<AccessService>().Rules));

    private static Task Change(HttpContext context, int status, Action<AccessStore, JsonElement> change) =>
        Change(context, status, (store, body) =>
        {
            change(store, body);
            return null;
        });

    /// <summary>Reads the JSON body (when the method has one), makes the change, answers with its result or the refusal.</summary>
    private static async Task Change(HttpContext context, int status, Func<AccessStore, JsonElement, object?> change)
    {
        JsonDocument? document = null;
        if (!HttpMethods.IsDelete(context.Request.Method) && (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0))
        {
            document = await RequestBodies.ReadJsonOrAnswerAsync(context, 64 * 1024).ConfigureAwait(false);
            if (document is null)
            {
                return;
            }
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                await ErrorResponses.WriteAsync(context, 400, "expected a JSON object").ConfigureAwait(false);
                return;
            }
        }
        using (document)
        {
            var access = context.RequestServices.GetRequiredService<AccessService>();
            object? result;
            try
            {
                result = change(access.Store, document?.RootElement ?? default);
            }
            catch (AccessException e)
            {
                await ErrorResponses.WriteAsync(context, e.Status, e.Message).ConfigureAwait(false);
                return;
            }
            access.Invalidate();
            if (status == 204 || result is null)
            {
                context.Response.StatusCode = status == 201 ? 201 : 204;
                return;
            }
            await Write(context, status, result).ConfigureAwait(false);
        }
    }

    private static async Task Write(HttpContext context, int status, object value)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, value.GetType(), Json, context.RequestAborted).ConfigureAwait(false);
    }

    private static string? Text(JsonElement body, string name, bool required = false)
    {
        if (body.ValueKind == JsonValueKind.Object && body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
        {
            return value.ValueKind == JsonValueKind.String ? value.GetString() : throw new AccessException($"'{name}' must be a string");
        }
        return required ? throw new AccessException($"'{name}' is required") : null;
    }

    private static Scope ScopeOf(JsonElement body) =>
        Text(body, "scope") is { } text ? Scope.Parse(text, out var error) ?? throw new AccessException(error!) : Scope.Everything;
}
