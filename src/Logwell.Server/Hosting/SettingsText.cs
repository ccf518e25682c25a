using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Logwell.Server.Hosting;

/// <summary>The node's settings as text, secrets hidden: for <c>logwell config show</c> and a backup's copy of them.</summary>
public static partial class SettingsText
{
    /// <summary>What stands for a secret that is set.</summary>
    public const string Hidden = "(hidden)";

    /// <summary>Each setting (in the order <see cref="LogwellOptions"/> declares them) and its value as printed.</summary>
    public static IEnumerable<(string Name, string Value)> Describe(LogwellOptions options)
    {
        foreach (var property in typeof(LogwellOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!property.CanWrite)
            {
                // Derived values (paths made absolute, parsed lists): the settings themselves are printed.
                continue;
            }
            yield return (property.Name, Value(property.Name, property.GetValue(options)));
        }
    }

    private static string Value(string name, object? value) => value switch
    {
        null => "",
        string text when text.Length > 0 && (name.Contains("Password", StringComparison.Ordinal) || name.Contains("Token", StringComparison.Ordinal)) => Hidden,
        string text when name == nameof(LogwellOptions.MetadataConnectionString) => HideConnectionString(text),
        string text => HideInline(text),
        // The keys are the secrets: the index sets they lead to are not.
        Dictionary<string, string> keys when name == nameof(LogwellOptions.SeqApiKeys) =>
            keys.Count == 0 ? "" : $"{keys.Count} keys {Hidden}, to {string.Join(", ", keys.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))}",
        bool flag => flag ? "true" : "false",
        IFormattable number => number.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value),
    };

    /// <summary>
    /// An ADO.NET connection string with the value of every key that names a password (<c>Password</c>, <c>Pwd</c>,
    /// <c>PSW</c>, <c>SslPassword</c>…) hidden, read as the drivers read it (quoted values included); hidden whole when
    /// it does not read.
    /// </summary>
    public static string HideConnectionString(string text)
    {
        if (text.Length == 0)
        {
            return text;
        }
        try
        {
            var builder = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = text };
            foreach (var key in builder.Keys.Cast<string>().ToList())
            {
                if (key.Contains("password", StringComparison.OrdinalIgnoreCase) || key.Contains("pwd", StringComparison.OrdinalIgnoreCase)
                    || key.Contains("psw", StringComparison.OrdinalIgnoreCase))
                {
                    builder[key] = Hidden;
                }
            }
            return builder.ConnectionString;
        }
        catch (ArgumentException)
        {
            return Hidden;
        }
    }

    /// <summary>A password inside a connection string (<c>Password=…</c>, <c>password=…</c>) or a URL's user information.</summary>
    public static string HideInline(string text) =>
        UrlUserInfo().Replace(PasswordPart().Replace(text, m => $"{m.Groups[1].Value}={Hidden}"), m => $"{m.Groups[1].Value}{Hidden}@");

    [GeneratedRegex(@"\b(password|pwd)\s*=\s*[^;,]*", RegexOptions.IgnoreCase)]
    private static partial Regex PasswordPart();

    [GeneratedRegex(@"(\w+://)[^/@\s;]+@")]
    private static partial Regex UrlUserInfo();
}
