namespace Logwell.Server.Security;

/// <summary>The access rules as of one version of the metadata file, indexed for the questions requests ask.</summary>
public sealed class AccessSnapshot
{
    private readonly Dictionary<string, ApiKeyRecord> _keysByHash;
    private readonly Dictionary<string, List<Grant>> _grantsByPrincipal = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _groupsOfUser = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _placed;

    public AccessSnapshot(long version, Dictionary<string, UserRecord> users, HashSet<string> groups, List<(string Group, string User)> members,
        Dictionary<string, Role> roles, HashSet<string> spaces, Dictionary<string, string> placed, List<ApiKeyRecord> keys, List<Grant> grants)
    {
        Version = version;
        Users = users;
        Groups = groups;
        Roles = roles;
        Spaces = spaces;
        _placed = placed;
        Keys = keys;
        Grants = grants;
        _keysByHash = keys.ToDictionary(k => k.SecretHash, StringComparer.Ordinal);
        foreach (var grant in grants)
        {
            var principal = grant.PrincipalKind + ":" + grant.Principal;
            if (!_grantsByPrincipal.TryGetValue(principal, out var list))
            {
                _grantsByPrincipal[principal] = list = [];
            }
            list.Add(grant);
        }
        foreach (var (group, user) in members)
        {
            if (!_groupsOfUser.TryGetValue(user, out var list))
            {
                _groupsOfUser[user] = list = [];
            }
            list.Add(group);
        }
    }

    /// <summary>The empty rules of a file without users: only loopback is let in (<see cref="AccessService"/>).</summary>
    public static AccessSnapshot Empty { get; } = new(-1, [], [], [], Role.BuiltInRoles.ToDictionary(r => r.Name), ["default"], [], [], []);

    public long Version { get; }

    public IReadOnlyDictionary<string, UserRecord> Users { get; }

    public IReadOnlySet<string> Groups { get; }

    public IReadOnlyDictionary<string, Role> Roles { get; }

    public IReadOnlySet<string> Spaces { get; }

    public IReadOnlyList<ApiKeyRecord> Keys { get; }

    public IReadOnlyList<Grant> Grants { get; }

    /// <summary>Index sets and the space each was placed in; those not listed are in <c>default</c>.</summary>
    public IReadOnlyDictionary<string, string> PlacedIndexSets => _placed;

    /// <summary>The space an index set is in.</summary>
    public string SpaceOf(string indexSet) => _placed.TryGetValue(indexSet, out var space) ? space : "default";

    /// <summary>Each index set's masking rules.</summary>
    public IReadOnlyDictionary<string, ReadMask> Masks { get; init; } = new Dictionary<string, ReadMask>();

    public ApiKeyRecord? KeyBySecretHash(string hash) => _keysByHash.GetValueOrDefault(hash);

    public IReadOnlyList<string> GroupsOf(string user) => _groupsOfUser.TryGetValue(user, out var groups) ? groups : [];

    /// <summary>What a user may do: their grants and their groups'.</summary>
    public Caller ForUser(string name)
    {
        var grants = new List<Grant>(GrantsOf("user", name));
        foreach (var group in GroupsOf(name))
        {
            grants.AddRange(GrantsOf("group", group));
        }
        return new Caller("user", name, this, grants);
    }

    /// <summary>What a key may do: its own grants, or for a personal key its owner's (none once the owner is disabled).</summary>
    public Caller ForKey(ApiKeyRecord key)
    {
        if (!key.AsOwner)
        {
            return new("key", key.Name, this, GrantsOf("key", key.Id)) { KeyId = key.Id };
        }
        var owner = key.Owner is { } name && Users.TryGetValue(name, out var user) && !user.Disabled ? ForUser(name) : null;
        return new("key", key.Name, this, owner?.GrantList ?? []) { KeyId = key.Id, Owner = key.Owner };
    }

    private IReadOnlyList<Grant> GrantsOf(string kind, string principal) =>
        _grantsByPrincipal.TryGetValue(kind + ":" + principal, out var list) ? list : [];
}

/// <summary>
/// Who sent a request and what they may do: a user, an API key, the node itself (its own processes), or, while no user
/// exists, a client on loopback. Deny by default: without a grant that gives an action in a scope, the action is refused.
/// </summary>
public sealed class Caller
{
    private readonly AccessSnapshot _rules;
    private readonly (Grant Grant, Role Role)[] _grants;

    internal Caller(string kind, string name, AccessSnapshot rules, IEnumerable<Grant> grants)
    {
        Kind = kind;
        Name = name;
        _rules = rules;
        _grants = [.. grants.Where(g => rules.Roles.ContainsKey(g.Role)).Select(g => (g, rules.Roles[g.Role]))];
    }

    /// <summary>A caller that may do everything: the node's own processes, and loopback before the first user.</summary>
    internal static Caller Unrestricted(string kind, string name, AccessSnapshot rules) => new(kind, name, rules, []) { IsUnrestricted = true };

    /// <summary>A key of the <c>SeqApiKeys</c> setting: it ingests into its index set.</summary>
    internal static Caller SeqKey(string indexSet, AccessSnapshot rules) =>
        new("key", "seq:" + indexSet, rules, [new Grant("seq", "key", "seq", "ingester", new Scope(ScopeKind.IndexSet, indexSet), null, DateTimeOffset.UnixEpoch)]) { KeyId = "SeqApiKeys" };

    /// <summary><c>user</c>, <c>key</c>, <c>node</c> or <c>local</c> (loopback before the first user).</summary>
    public string Kind { get; }

    public string Name { get; }

    /// <summary>For a key: its id.</summary>
    public string? KeyId { get; init; }

    /// <summary>For a personal key: the user it acts as.</summary>
    public string? Owner { get; init; }

    internal IEnumerable<Grant> GrantList => _grants.Select(g => g.Grant);

    public bool IsUnrestricted { get; private init; }

    /// <summary>The rules this caller was judged by.</summary>
    public AccessSnapshot Rules => _rules;

    /// <summary>How the audit log and errors name the caller: <c>user alice</c>, <c>key ship-1 (id)</c>.</summary>
    public string Description => Kind switch
    {
        "key" => Owner is null ? $"API key '{Name}' ({KeyId})" : $"user '{Owner}' (personal API key '{Name}', {KeyId})",
        "user" => $"user '{Name}'",
        "node" => "the node's own processes",
        _ => "a loopback client (no user exists yet)",
    };

    /// <summary>May do <paramref name="action"/> on the index set.</summary>
    public bool Can(string action, string indexSet)
    {
        if (Logwell.Core.Events.IndexSetName.IsSystem(indexSet))
        {
            // The audit log is read with view_audit and written by the node alone: no one ingests into it, changes
            // its settings or deletes it.
            return action is Actions.Search or Actions.ViewSpace or Actions.Export or Actions.ViewRaw && CanOnNode(Actions.ViewAudit);
        }
        if (IsUnrestricted)
        {
            return true;
        }
        var space = _rules.SpaceOf(indexSet);
        foreach (var (grant, role) in _grants)
        {
            if (role.Actions.Contains(action) && Covers(grant.Scope, action, space, indexSet))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>May do <paramref name="action"/> in a space (create an index set there, list it).</summary>
    public bool CanInSpace(string action, string space)
    {
        if (IsUnrestricted)
        {
            return true;
        }
        foreach (var (grant, role) in _grants)
        {
            if (role.Actions.Contains(action) && (grant.Scope.Kind == ScopeKind.All || grant.Scope.Kind == ScopeKind.Space && grant.Scope.Name == space))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>May do an action on the node as a whole (operate, view_metrics, view_audit, manage_access).</summary>
    public bool CanOnNode(string action)
    {
        if (IsUnrestricted)
        {
            return true;
        }
        foreach (var (grant, role) in _grants)
        {
            if (grant.Scope.Kind == ScopeKind.All && role.Actions.Contains(action))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>May do <paramref name="action"/> somewhere: the first check of an endpoint that finds its index set in the request.</summary>
    public bool CanAnywhere(string action)
    {
        if (IsUnrestricted || action is Actions.Search or Actions.ViewSpace or Actions.Export && CanOnNode(Actions.ViewAudit))
        {
            // view_audit reads the audit log, a system index set.
            return true;
        }
        foreach (var (grant, role) in _grants)
        {
            if (role.Actions.Contains(action) && (grant.Scope.Kind == ScopeKind.All || !Actions.IsNodeWide(action)
                && (grant.Scope.Kind == ScopeKind.Space || Actions.OnIndexSet(action))))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The masking rules the caller reads the index set through: null with view_raw on it, or when it has none.</summary>
    public ReadMask? MaskFor(string indexSet) =>
        _rules.Masks.TryGetValue(indexSet, out var mask) && !CanUnfiltered(Actions.ViewRaw, indexSet) ? mask : null;

    /// <summary>
    /// Holds <paramref name="action"/> on the index set through a grant without a filter. view_raw counts only so: one
    /// from a filtered grant would otherwise unmask the events another, wider grant shows.
    /// </summary>
    private bool CanUnfiltered(string action, string indexSet)
    {
        if (Logwell.Core.Events.IndexSetName.IsSystem(indexSet) || IsUnrestricted)
        {
            return Can(action, indexSet);
        }
        var space = _rules.SpaceOf(indexSet);
        foreach (var (grant, role) in _grants)
        {
            if (grant.Filter is null && role.Actions.Contains(action) && Covers(grant.Scope, action, space, indexSet))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The query filters the grants that allow <paramref name="action"/> on the index set put on it: null when one of
    /// them has none (the caller sees every event), else the filters, any of which lets an event through.
    /// </summary>
    public IReadOnlyList<string>? Filters(string action, string indexSet)
    {
        if (IsUnrestricted || Logwell.Core.Events.IndexSetName.IsSystem(indexSet) && Can(action, indexSet))
        {
            // The audit log is read whole by whoever holds view_audit.
            return null;
        }
        var space = _rules.SpaceOf(indexSet);
        List<string>? filters = null;
        foreach (var (grant, role) in _grants)
        {
            if (role.Actions.Contains(action) && Covers(grant.Scope, action, space, indexSet))
            {
                if (grant.Filter is null)
                {
                    return null;
                }
                (filters ??= []).Add(grant.Filter);
            }
        }
        return filters ?? [];
    }

    private static bool Covers(Scope scope, string action, string space, string indexSet) => scope.Kind switch
    {
        ScopeKind.All => true,
        ScopeKind.Space => !Actions.IsNodeWide(action) && scope.Name == space,
        _ => Actions.OnIndexSet(action) && scope.Name == indexSet,
    };
}
