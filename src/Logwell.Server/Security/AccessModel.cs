using System.Text.RegularExpressions;

namespace Logwell.Server.Security;

/// <summary>
/// Everything a caller can be allowed to do, one name per action. Endpoints declare one (<see cref="Permission"/>);
/// roles are sets of them.
/// </summary>
public static class Actions
{
    public const string ViewSpace = "view_space";
    public const string Search = "search";
    public const string ViewRaw = "view_raw";
    public const string Ingest = "ingest";
    public const string Export = "export";
    public const string CreateIndexSet = "create_indexset";
    public const string ManageIndexSet = "manage_indexset";
    public const string ManagePipeline = "manage_pipeline";
    public const string ManageMasking = "manage_masking";
    public const string ManageSavedSearch = "manage_saved_search";
    public const string Operate = "operate";
    public const string ViewMetrics = "view_metrics";
    public const string ViewAudit = "view_audit";
    public const string ManageAccess = "manage_access";

    /// <summary>Every action, in the order the docs list them.</summary>
    public static readonly IReadOnlyList<string> All =
    [
        ViewSpace, Search, ViewRaw, Ingest, Export, CreateIndexSet, ManageIndexSet, ManagePipeline, ManageMasking,
        ManageSavedSearch, Operate, ViewMetrics, ViewAudit, ManageAccess,
    ];

    /// <summary>
    /// Actions on the node as a whole rather than on a space's resources: only a grant on everything (scope
    /// <c>*</c>) gives them.
    /// </summary>
    public static bool IsNodeWide(string action) => action is Operate or ViewMetrics or ViewAudit or ManageAccess;

    /// <summary>Actions a grant on one index set can give: what is done to an index set, not what creates one.</summary>
    public static bool OnIndexSet(string action) => !IsNodeWide(action) && action != CreateIndexSet;
}

/// <summary>A named set of actions. The built-in roles cannot be changed; custom roles are stored with the grants.</summary>
public sealed record Role(string Name, IReadOnlySet<string> Actions, bool BuiltIn)
{
    public const string Admin = "admin";

    /// <summary>admin, space_admin, editor, viewer and ingester.</summary>
    public static readonly IReadOnlyList<Role> BuiltInRoles =
    [
        new(Admin, Set(Security.Actions.All), true),
        new("space_admin", Set(Security.Actions.All.Where(a => !Security.Actions.IsNodeWide(a))), true),
        new("editor", Set([Security.Actions.ViewSpace, Security.Actions.Search, Security.Actions.ViewRaw, Security.Actions.Export,
            Security.Actions.ManageSavedSearch, Security.Actions.ManagePipeline, Security.Actions.ManageMasking]), true),
        new("viewer", Set([Security.Actions.ViewSpace, Security.Actions.Search, Security.Actions.Export]), true),
        new("ingester", Set([Security.Actions.Ingest]), true),
    ];

    private static HashSet<string> Set(IEnumerable<string> actions) => new(actions, StringComparer.Ordinal);
}

public enum ScopeKind
{
    /// <summary>Everything: every space and the node itself.</summary>
    All,

    /// <summary>One space and every index set in it.</summary>
    Space,

    /// <summary>One index set.</summary>
    IndexSet,
}

/// <summary>What a grant reaches: <c>*</c>, <c>space:NAME</c> or <c>indexset:NAME</c>.</summary>
public sealed record Scope(ScopeKind Kind, string? Name)
{
    public static readonly Scope Everything = new(ScopeKind.All, null);

    public override string ToString() => Kind switch
    {
        ScopeKind.All => "*",
        ScopeKind.Space => "space:" + Name,
        _ => "indexset:" + Name,
    };

    /// <summary>Reads <c>*</c>, <c>space:NAME</c> or <c>indexset:NAME</c>; null with the reason otherwise.</summary>
    public static Scope? Parse(string text, out string? error)
    {
        error = null;
        if (text == "*")
        {
            return Everything;
        }
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? "" : text[..colon];
        var name = colon < 0 ? "" : text[(colon + 1)..];
        if (kind is "space" or "indexset" && Names.IsValid(name))
        {
            return new Scope(kind == "space" ? ScopeKind.Space : ScopeKind.IndexSet, name);
        }
        error = $"scope '{text}' is not '*', 'space:NAME' or 'indexset:NAME' (names: lowercase letters, digits, '-' and '_')";
        return null;
    }
}

/// <summary>A grant: a principal holds a role's actions within a scope, seeing only events its filter matches (when it has one).</summary>
public sealed record Grant(string Id, string PrincipalKind, string Principal, string Role, Scope Scope, string? Filter, DateTimeOffset CreatedAt);

/// <summary>The names of users, groups, roles, spaces and keys.</summary>
public static partial class Names
{
    public const int MaxLength = 64;

    /// <summary>Lowercase letters, digits, '-', '_' and '.', starting with a letter or digit; at most 64 characters.</summary>
    public static bool IsValid(string? name) => name is { Length: > 0 and <= MaxLength } && Pattern().IsMatch(name);

    public const string Rule = "1 to 64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
