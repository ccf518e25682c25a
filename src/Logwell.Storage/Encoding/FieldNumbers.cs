namespace Logwell.Storage.Encoding;

/// <summary>
/// Numbers field names in the order they are first seen, for encodings that store a name once and refer to it by
/// number (a segment's columns, a memory table's events). Events of a source list their fields in the same order under
/// the same string instances, so <see cref="At"/> finds most names without hashing them.
/// </summary>
internal sealed class FieldNumbers
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private string?[] _lastNames = new string?[16];
    private int[] _lastIds = new int[16];

    /// <summary>The names by number, the first <see cref="Count"/> of them; grown by copy, so an array read earlier stays valid.</summary>
    public string[] Names { get; private set; } = new string[16];

    public int Count { get; private set; }

    /// <summary>The number of <paramref name="name"/>, given it now if it has none.</summary>
    public int Of(string name)
    {
        if (_ids.TryGetValue(name, out var id))
        {
            return id;
        }
        id = Count;
        if (Count == Names.Length)
        {
            var grown = new string[Names.Length * 2];
            Array.Copy(Names, grown, Count);
            Names = grown;
        }
        Names[Count++] = name;
        _ids[name] = id;
        return id;
    }

    /// <summary>The number of <paramref name="name"/>, found at <paramref name="place"/> in an event's fields.</summary>
    public int At(int place, string name)
    {
        if (place >= _lastNames.Length)
        {
            Array.Resize(ref _lastNames, Math.Max(place + 1, _lastNames.Length * 2));
            Array.Resize(ref _lastIds, _lastNames.Length);
        }
        if (ReferenceEquals(name, _lastNames[place]))
        {
            return _lastIds[place];
        }
        var id = Of(name);
        _lastNames[place] = name;
        _lastIds[place] = id;
        return id;
    }
}
