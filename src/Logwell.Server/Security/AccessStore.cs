using System.Security.Cryptography;
using System.Text;
using Logwell.Core.Query;
using Logwell.Server.Hosting;
using Microsoft.AspNetCore.Identity;
using System.Data.Common;

namespace Logwell.Server.Security;

/// <summary>A user as stored: the password only as ASP.NET Core Identity's PBKDF2 hash.</summary>
public sealed record UserRecord(string Name, string PasswordHash, DateTimeOffset CreatedAt, bool Disabled);

/// <summary>An API key as stored: the secret only as its SHA-256, which is enough for a random 256-bit secret.</summary>
public sealed record ApiKeyRecord(string Id, string Name, string? Owner, string SecretHash, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt)
{
    /// <summary>A personal key (<c>logwell login</c>): it may do what its owner may, through the owner's grants, rather than through its own.</summary>
    public bool AsOwner { get; init; }

    /// <summary>Why the key cannot be used at <paramref name="now"/>, or null when it can.</summary>
    public string? Unusable(DateTimeOffset now) =>
        RevokedAt is not null ? "the API key was revoked"
        : ExpiresAt is { } expires && expires <= now ? "the API key has expired"
        : null;
}

/// <summary>A change the access rules refuse: a name taken or unknown, a role that does not exist, a bad filter.</summary>
public sealed class AccessException(string message, int status = 400) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// Users, groups, roles, spaces, API keys and grants in the node's metadata file. Every change is one transaction that
/// also raises the access version, which every process of the node watches to reload what it holds
/// (<see cref="AccessService"/>).
/// </summary>
public sealed class AccessStore(MetaDatabase database, TimeProvider time)
{
    /// <summary>The prefix of every API key Logwell issues.</summary>
    public const string KeyPrefix = "lw_";

    private static readonly PasswordHasher<string> Hasher = new();

    public MetaDatabase Database { get; } = database;

    /// <summary>The version every change raises.</summary>
    public long Version()
    {
        using var connection = Database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version FROM access_version WHERE id = 1";
        return command.ScalarLong();
    }

    public static string HashPassword(string user, string password) => Hasher.HashPassword(user, password);

    /// <summary>True when <paramref name="password"/> is the user's (a hash of an older format counts).</summary>
    public static bool VerifyPassword(UserRecord user, string password) =>
        Hasher.VerifyHashedPassword(user.Name, user.PasswordHash, password) != PasswordVerificationResult.Failed;

    /// <summary>The SHA-256 of an API key's secret, as stored.</summary>
    public static string HashSecret(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>A new random secret: <c>lw_</c> and 43 characters of base64url (256 bits).</summary>
    public static string NewSecret() => KeyPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void CreateUser(string name, string password)
    {
        RequireName(name, "user");
        RequirePassword(password);
        Change(command =>
        {
            command.CommandText = "INSERT INTO users (name, password_hash, created_at) VALUES (@name, @hash, @at) " + Database.InsertOrIgnore("name");
            command.Add("@name", name);
            command.Add("@hash", HashPassword(name, password));
            command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
            if (command.ExecuteNonQuery() == 0)
            {
                throw new AccessException($"user '{name}' exists already", 409);
            }
        });
    }

    public void SetPassword(string name, string password)
    {
        RequirePassword(password);
        Change(command =>
        {
            command.CommandText = "UPDATE users SET password_hash = @hash WHERE name = @name";
            command.Add("@name", name);
            command.Add("@hash", HashPassword(name, password));
            if (command.ExecuteNonQuery() == 0)
            {
                throw new AccessException($"no user '{name}'", 404);
            }
            // A new password signs every browser out.
            command.CommandText = "DELETE FROM sessions WHERE user_name = @name";
            command.ExecuteNonQuery();
        });
    }

    /// <summary>Disables (or enables again) a user: a disabled user's password, sessions and personal keys do nothing, and their sessions end.</summary>
    public void SetDisabled(string name, bool disabled) => Change(command =>
    {
        // Checked apart from the update: MariaDB counts only rows an update changed, and the user may be so already.
        RequireExists(command, "users", name, "user");
        command.CommandText = "UPDATE users SET disabled = @disabled WHERE name = @name";
        command.Add("@name", name);
        command.Add("@disabled", disabled ? 1 : 0);
        command.ExecuteNonQuery();
        command.CommandText = "DELETE FROM sessions WHERE user_name = @name AND @disabled = 1";
        command.ExecuteNonQuery();
    });

    /// <summary>Deletes the user with their grants and group memberships, and revokes the API keys they own.</summary>
    public void DeleteUser(string name) => Change(command =>
    {
        command.CommandText = "DELETE FROM users WHERE name = @name";
        command.Add("@name", name);
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException($"no user '{name}'", 404);
        }
        command.CommandText = """
            DELETE FROM grants WHERE principal_kind = 'user' AND principal = @name;
            DELETE FROM group_members WHERE user_name = @name;
            DELETE FROM sessions WHERE user_name = @name;
            UPDATE api_keys SET revoked_at = @at WHERE owner = @name AND revoked_at IS NULL;
            """;
        command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
    });

    public void CreateGroup(string name)
    {
        RequireName(name, "group");
        Change(command =>
        {
            command.CommandText = "INSERT INTO groups (name, created_at) VALUES (@name, @at) " + Database.InsertOrIgnore("name");
            command.Add("@name", name);
            command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
            if (command.ExecuteNonQuery() == 0)
            {
                throw new AccessException($"group '{name}' exists already", 409);
            }
        });
    }

    public void DeleteGroup(string name) => Change(command =>
    {
        command.CommandText = "DELETE FROM groups WHERE name = @name";
        command.Add("@name", name);
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException($"no group '{name}'", 404);
        }
        command.CommandText = """
            DELETE FROM group_members WHERE group_name = @name;
            DELETE FROM grants WHERE principal_kind = 'group' AND principal = @name;
            """;
        command.ExecuteNonQuery();
    });

    public void AddMember(string group, string user) => Change(command =>
    {
        RequireExists(command, "groups", group, "group");
        RequireExists(command, "users", user, "user");
        command.CommandText = "INSERT INTO group_members (group_name, user_name) VALUES (@group, @user) " + Database.InsertOrIgnore("group_name, user_name");
        command.Add("@group", group);
        command.Add("@user", user);
        command.ExecuteNonQuery();
    });

    public void RemoveMember(string group, string user) => Change(command =>
    {
        command.CommandText = "DELETE FROM group_members WHERE group_name = @group AND user_name = @user";
        command.Add("@group", group);
        command.Add("@user", user);
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException($"user '{user}' is not in group '{group}'", 404);
        }
    });

    /// <summary>A custom role: a name that is not a built-in role's, and known actions.</summary>
    public void CreateRole(string name, IReadOnlyCollection<string> actions)
    {
        RequireName(name, "role");
        if (Role.BuiltInRoles.Any(r => r.Name == name))
        {
            throw new AccessException($"'{name}' is a built-in role", 409);
        }
        if (actions.Count == 0)
        {
            throw new AccessException("a role needs at least one action");
        }
        if (actions.FirstOrDefault(a => !Actions.All.Contains(a)) is { } unknown)
        {
            throw new AccessException($"unknown action '{unknown}'; actions are {string.Join(", ", Actions.All)}");
        }
        Change(command =>
        {
            command.CommandText = "INSERT INTO roles (name, actions, created_at) VALUES (@name, @actions, @at) " + Database.InsertOrIgnore("name");
            command.Add("@name", name);
            command.Add("@actions", string.Join(',', actions.Distinct()));
            command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
            if (command.ExecuteNonQuery() == 0)
            {
                throw new AccessException($"role '{name}' exists already", 409);
            }
        });
    }

    /// <summary>Deletes a custom role that no grant uses.</summary>
    public void DeleteRole(string name) => Change(command =>
    {
        command.CommandText = "SELECT count(*) FROM grants WHERE role = @name";
        command.Add("@name", name);
        if (command.ScalarLong() > 0)
        {
            throw new AccessException($"role '{name}' is used by grants; remove them first", 409);
        }
        command.CommandText = "DELETE FROM roles WHERE name = @name";
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException(Role.BuiltInRoles.Any(r => r.Name == name) ? $"'{name}' is a built-in role" : $"no role '{name}'", Role.BuiltInRoles.Any(r => r.Name == name) ? 409 : 404);
        }
    });

    public void CreateSpace(string name)
    {
        RequireName(name, "space");
        Change(command =>
        {
            command.CommandText = "INSERT INTO spaces (name, created_at) VALUES (@name, @at) " + Database.InsertOrIgnore("name");
            command.Add("@name", name);
            command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
            if (command.ExecuteNonQuery() == 0)
            {
                throw new AccessException($"space '{name}' exists already", 409);
            }
        });
    }

    /// <summary>Deletes an empty space; <c>default</c> stays.</summary>
    public void DeleteSpace(string name) => Change(command =>
    {
        if (name == "default")
        {
            throw new AccessException("the default space cannot be deleted", 409);
        }
        command.CommandText = "SELECT count(*) FROM indexset_spaces WHERE space = @name";
        command.Add("@name", name);
        if (command.ScalarLong() > 0)
        {
            throw new AccessException($"space '{name}' holds index sets; move or delete them first", 409);
        }
        command.CommandText = "DELETE FROM spaces WHERE name = @name";
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException($"no space '{name}'", 404);
        }
        command.CommandText = "DELETE FROM grants WHERE scope_kind = 'space' AND scope_name = @name";
        command.ExecuteNonQuery();
    });

    /// <summary>Puts an index set in a space (index sets not placed are in <c>default</c>).</summary>
    public void PlaceIndexSet(string indexSet, string space) => Change(command =>
    {
        RequireExists(command, "spaces", space, "space");
        command.CommandText = "INSERT INTO indexset_spaces (indexset, space) VALUES (@set, @space) " + Database.Upsert("indexset", "space");
        command.Add("@set", indexSet);
        command.Add("@space", space);
        command.ExecuteNonQuery();
    });

    /// <summary>Forgets a deleted index set's space, the grants on it and its masking rules.</summary>
    public void ForgetIndexSet(string indexSet) => Change(command =>
    {
        command.CommandText = """
            DELETE FROM indexset_spaces WHERE indexset = @set;
            DELETE FROM grants WHERE scope_kind = 'indexset' AND scope_name = @set;
            DELETE FROM masking_rules WHERE indexset = @set;
            """;
        command.Add("@set", indexSet);
        command.ExecuteNonQuery();
    });

    /// <summary>Sets an index set's masking rules (<see cref="ReadMask"/>), read by whoever lacks view_raw on it.</summary>
    public ReadMask SetMasking(string indexSet, string definition)
    {
        var mask = ReadMask.Parse(definition);
        Change(command =>
        {
            command.CommandText = "INSERT INTO masking_rules (indexset, definition, updated_at) VALUES (@set, @definition, @at) "
                + Database.Upsert("indexset", "definition", "updated_at");
            command.Add("@set", indexSet);
            command.Add("@definition", definition);
            command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
            command.ExecuteNonQuery();
        });
        return mask;
    }

    /// <summary>
    /// Gives <paramref name="target"/> the space and masking rules of <paramref name="source"/> (an index set restored
    /// from its archive holds its events: it is read as they were).
    /// </summary>
    public void PlaceLike(string target, string source, string space)
    {
        PlaceIndexSet(target, space);
        string? definition;
        using (var connection = Database.Connect())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT definition FROM masking_rules WHERE indexset = @set";
            command.Add("@set", source);
            definition = command.ExecuteScalar() as string;
        }
        if (definition is not null)
        {
            SetMasking(target, definition);
        }
    }

    /// <summary>An index set's masking rules read from <paramref name="database"/> (null: none).</summary>
    public static ReadMask? MaskOf(MetaDatabase database, string indexSet)
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT definition FROM masking_rules WHERE indexset = @set";
        command.Add("@set", indexSet);
        return command.ExecuteScalar() is string definition ? TryParseMask(definition) ?? ReadMask.Everything : null;
    }

    /// <summary>Removes an index set's masking rules; false when it had none.</summary>
    public bool RemoveMasking(string indexSet)
    {
        var removed = false;
        Change(command =>
        {
            command.CommandText = "DELETE FROM masking_rules WHERE indexset = @set";
            command.Add("@set", indexSet);
            removed = command.ExecuteNonQuery() > 0;
        });
        return removed;
    }

    /// <summary>A new API key and its secret, which is not kept and cannot be shown again.</summary>
    /// <param name="asOwner">A personal key: it acts as its owner (who must be given) instead of having grants of its own.</param>
    public (ApiKeyRecord Key, string Secret) CreateKey(string name, string? owner, DateTimeOffset? expiresAt, bool asOwner = false)
    {
        if (asOwner && owner is null)
        {
            throw new AccessException("a personal key needs an owner");
        }
        RequireName(name, "API key");
        if (expiresAt is { } expires && expires <= time.GetUtcNow())
        {
            throw new AccessException("the expiry is in the past");
        }
        var secret = NewSecret();
        var key = new ApiKeyRecord(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), name, owner, HashSecret(secret), time.GetUtcNow(), expiresAt, null) { AsOwner = asOwner };
        Change(command =>
        {
            if (owner is not null)
            {
                RequireExists(command, "users", owner, "user");
            }
            command.CommandText = """
                INSERT INTO api_keys (id, name, owner, secret_hash, created_at, expires_at, as_owner)
                VALUES (@id, @name, @owner, @hash, @at, @expires, @as_owner)
                """;
            command.Add("@id", key.Id);
            command.Add("@name", name);
            command.Add("@owner", (object?)owner ?? DBNull.Value);
            command.Add("@hash", key.SecretHash);
            command.Add("@at", key.CreatedAt.ToUnixTimeMilliseconds());
            command.Add("@expires", (object?)expiresAt?.ToUnixTimeMilliseconds() ?? DBNull.Value);
            command.Add("@as_owner", asOwner ? 1 : 0);
            command.ExecuteNonQuery();
        });
        return (key, secret);
    }

    public void RevokeKey(string id) => Change(command =>
    {
        command.CommandText = "UPDATE api_keys SET revoked_at = @at WHERE id = @id AND revoked_at IS NULL";
        command.Add("@id", id);
        command.Add("@at", time.GetUtcNow().ToUnixTimeMilliseconds());
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException($"no API key '{id}' that is not revoked already", 404);
        }
    });

    /// <summary>
    /// Grants <paramref name="role"/> within <paramref name="scope"/> to a user, group or key, seeing only the events
    /// <paramref name="filter"/> matches when one is given.
    /// </summary>
    public Grant AddGrant(string principalKind, string principal, string role, Scope scope, string? filter)
    {
        if (principalKind is not ("user" or "group" or "key"))
        {
            throw new AccessException($"a grant is to a user, a group or a key, not '{principalKind}'");
        }
        if (!string.IsNullOrWhiteSpace(filter))
        {
            if (filter.IndexOf('\0', StringComparison.Ordinal) is >= 0 and var nul)
            {
                // PostgreSQL's text holds no NUL: refused on every metadata store alike.
                throw new AccessException($"the grant's filter cannot hold the NUL character (position {nul})");
            }
            if (!PipelineParser.TryParse(filter, false, out var parsed, out var error))
            {
                throw new AccessException($"the grant's filter does not parse: {error!.Message} at position {error.Position}");
            }
            if (parsed.Stages.Count > 0)
            {
                throw new AccessException("a grant's filter is a query without pipes");
            }
        }
        var grant = new Grant(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), principalKind, principal, role, scope,
            string.IsNullOrWhiteSpace(filter) ? null : filter, time.GetUtcNow());
        Change(command =>
        {
            RequireExists(command, principalKind switch { "user" => "users", "group" => "groups", _ => "api_keys" }, principal, principalKind == "key" ? "API key" : principalKind,
                principalKind == "key" ? "id" : "name");
            var actions = RoleActions(command, role) ?? throw new AccessException($"no role '{role}'; roles are {string.Join(", ", Role.BuiltInRoles.Select(r => r.Name))} and the custom ones", 404);
            if (scope.Kind == ScopeKind.Space)
            {
                RequireExists(command, "spaces", scope.Name!, "space");
            }
            if (scope.Kind != ScopeKind.All && actions.FirstOrDefault(Actions.IsNodeWide) is { } nodeWide)
            {
                throw new AccessException($"role '{role}' holds '{nodeWide}', an action on the whole node: grant it on scope '*'");
            }
            command.CommandText = """
                INSERT INTO grants (id, principal_kind, principal, role, scope_kind, scope_name, filter, created_at)
                VALUES (@id, @kind, @principal, @role, @scope_kind, @scope_name, @filter, @at)
                """;
            command.Parameters.Clear();
            command.Add("@id", grant.Id);
            command.Add("@kind", principalKind);
            command.Add("@principal", principal);
            command.Add("@role", role);
            command.Add("@scope_kind", scope.Kind switch { ScopeKind.All => "all", ScopeKind.Space => "space", _ => "indexset" });
            command.Add("@scope_name", (object?)scope.Name ?? DBNull.Value);
            command.Add("@filter", (object?)grant.Filter ?? DBNull.Value);
            command.Add("@at", grant.CreatedAt.ToUnixTimeMilliseconds());
            command.ExecuteNonQuery();
        });
        return grant;
    }

    public void RemoveGrant(string id) => Change(command =>
    {
        command.CommandText = "DELETE FROM grants WHERE id = @id";
        command.Add("@id", id);
        if (command.ExecuteNonQuery() == 0)
        {
            throw new AccessException($"no grant '{id}'", 404);
        }
    });

    /// <summary>Everything, as of one moment: what <see cref="AccessService"/> decides with.</summary>
    public AccessSnapshot Load()
    {
        using var connection = Database.Connect();
        // Deferred: a read transaction, one consistent view without taking the write lock.
        using var transaction = Database.BeginSnapshot(connection);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT version FROM access_version WHERE id = 1";
        var version = command.ScalarLong();

        var users = new Dictionary<string, UserRecord>(StringComparer.Ordinal);
        command.CommandText = "SELECT name, password_hash, created_at, disabled FROM users";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                users[reader.GetString(0)] = new UserRecord(reader.GetString(0), reader.GetString(1), FromMs(reader.GetInt64(2)), reader.GetInt64(3) != 0);
            }
        }
        var groups = new HashSet<string>(StringComparer.Ordinal);
        command.CommandText = "SELECT name FROM groups";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                groups.Add(reader.GetString(0));
            }
        }
        var members = new List<(string Group, string User)>();
        command.CommandText = "SELECT group_name, user_name FROM group_members";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                members.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        var roles = Role.BuiltInRoles.ToDictionary(r => r.Name, StringComparer.Ordinal);
        command.CommandText = "SELECT name, actions FROM roles";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                roles[reader.GetString(0)] = new Role(reader.GetString(0), new HashSet<string>(reader.GetString(1).Split(',', StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal), false);
            }
        }
        var spaces = new HashSet<string>(StringComparer.Ordinal);
        command.CommandText = "SELECT name FROM spaces";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                spaces.Add(reader.GetString(0));
            }
        }
        var placed = new Dictionary<string, string>(StringComparer.Ordinal);
        command.CommandText = "SELECT indexset, space FROM indexset_spaces";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                placed[reader.GetString(0)] = reader.GetString(1);
            }
        }
        var keys = new List<ApiKeyRecord>();
        command.CommandText = "SELECT id, name, owner, secret_hash, created_at, expires_at, revoked_at, as_owner FROM api_keys";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                keys.Add(new ApiKeyRecord(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3),
                    FromMs(reader.GetInt64(4)), reader.IsDBNull(5) ? null : FromMs(reader.GetInt64(5)), reader.IsDBNull(6) ? null : FromMs(reader.GetInt64(6)))
                {
                    AsOwner = reader.GetInt64(7) != 0,
                });
            }
        }
        var grants = new List<Grant>();
        command.CommandText = "SELECT id, principal_kind, principal, role, scope_kind, scope_name, filter, created_at FROM grants ORDER BY created_at, id";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                var kind = reader.GetString(4);
                var scope = kind == "all" ? Scope.Everything : new Scope(kind == "space" ? ScopeKind.Space : ScopeKind.IndexSet, reader.GetString(5));
                grants.Add(new Grant(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), scope,
                    reader.IsDBNull(6) ? null : reader.GetString(6), FromMs(reader.GetInt64(7))));
            }
        }
        var masks = new Dictionary<string, ReadMask>(StringComparer.Ordinal);
        command.CommandText = "SELECT indexset, definition FROM masking_rules";
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                // Rules are read when they are set; a stored one that no longer reads masks every field of the index set.
                masks[reader.GetString(0)] = TryParseMask(reader.GetString(1)) ?? ReadMask.Everything;
            }
        }
        return new AccessSnapshot(version, users, groups, members, roles, spaces, placed, keys, grants) { Masks = masks };
    }

    private static ReadMask? TryParseMask(string definition)
    {
        try
        {
            return ReadMask.Parse(definition);
        }
        catch (AccessException)
        {
            return null;
        }
    }

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static void RequirePassword(string password)
    {
        if (password.Length < 8)
        {
            throw new AccessException("a password needs at least 8 characters");
        }
        if (password.StartsWith(KeyPrefix, StringComparison.Ordinal))
        {
            // Basic auth with such a password is read as an API key.
            throw new AccessException($"a password may not start with '{KeyPrefix}', which marks API keys");
        }
    }

    private static void RequireName(string name, string what)
    {
        if (!Names.IsValid(name))
        {
            throw new AccessException($"'{name}' is not a valid {what} name: {Names.Rule}");
        }
    }

    private static void RequireExists(DbCommand command, string table, string name, string what, string column = "name")
    {
        command.CommandText = $"SELECT count(*) FROM {table} WHERE {column} = @exists";
        command.Parameters.Clear();
        command.Add("@exists", name);
        var found = command.ScalarLong() > 0;
        command.Parameters.Clear();
        if (!found)
        {
            throw new AccessException($"no {what} '{name}'", 404);
        }
    }

    private static HashSet<string>? RoleActions(DbCommand command, string role)
    {
        if (Role.BuiltInRoles.FirstOrDefault(r => r.Name == role) is { } builtIn)
        {
            return [.. builtIn.Actions];
        }
        command.CommandText = "SELECT actions FROM roles WHERE name = @role";
        command.Parameters.Clear();
        command.Add("@role", role);
        var actions = command.ExecuteScalar() as string;
        command.Parameters.Clear();
        return actions is null ? null : [.. actions.Split(',', StringSplitOptions.RemoveEmptyEntries)];
    }

    /// <summary>
    /// Runs one change in a transaction that also raises the access version. The version is raised first: its row lock
    /// makes changes from every node take turns (as SQLite's write lock does), so a check a change makes (the user
    /// exists, the role is unused) still holds when it writes.
    /// </summary>
    private void Change(Action<DbCommand> change)
    {
        using var connection = Database.Connect();
        using var transaction = Database.BeginWrite(connection);
        using (var bump = connection.CreateCommand())
        {
            bump.Transaction = transaction;
            bump.CommandText = "UPDATE access_version SET version = version + 1 WHERE id = 1";
            bump.ExecuteNonQuery();
        }
        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            change(command);
        }
        transaction.Commit();
    }
}
