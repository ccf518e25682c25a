namespace Logwell.Core.Events;

/// <summary>Validates index set names: lowercase letters, digits, '-' and '_', 1 to 64 characters.</summary>
public static class IndexSetName
{
    public const int MaxLength = 64;
    public const string Default = "default";

    /// <summary>The audit log: a system index set, written by the node alone.</summary>
    public const string Audit = "_audit";

    /// <summary>A system index set (its name starts with <c>_</c>): the node writes it, ingest cannot.</summary>
    public static bool IsSystem(string name) => name.Length > 1 && name[0] == '_';

    /// <param name="system">Allow a system name (<c>_audit</c>): for the node's own index sets, never for a client's.</param>
    public static bool IsValid(string? name, out string error, bool system = false)
    {
        if (string.IsNullOrEmpty(name))
        {
            error = "index set name must not be empty";
            return false;
        }
        if (name.Length > MaxLength)
        {
            error = $"index set name must be at most {MaxLength} characters";
            return false;
        }
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var ok = c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_';
            if (!ok)
            {
                error = $"invalid character '{c}' at position {i} in index set name '{name}': use lowercase letters, digits, '-' and '_'";
                return false;
            }
        }
        if (name[0] is '-' || name[0] == '_' && !(system && name.Length > 1 && name[1] != '_' && name[1] != '-'))
        {
            error = $"index set name '{name}' must start with a letter or digit";
            return false;
        }
        error = "";
        return true;
    }
}
