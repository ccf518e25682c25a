namespace Logwell.Core.Events;

/// <summary>Validates index set names: lowercase letters, digits, '-' and '_', 1 to 64 characters.</summary>
public static class IndexSetName
{
    public const int MaxLength = 64;
    public const string Default = "default";

    public static bool IsValid(string? name, out string error)
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
        if (name[0] is '-' or '_')
        {
            error = $"index set name '{name}' must start with a letter or digit";
            return false;
        }
        error = "";
        return true;
    }
}
