using System.Security.Cryptography;
using Logwell.Server.Hosting;
using System.Data.Common;

namespace Logwell.Server.SavedSearches;

/// <summary>
/// A search kept under a name: the index set, the query and the time range as the user wrote it (a relative range
/// such as <c>now-1h</c> stays relative). Shared by everyone who may search.
/// </summary>
public sealed record SavedSearch(string Id, string Name, string IndexSet, string Query, string? From, string? To, DateTimeOffset CreatedAt);

/// <summary>Saved searches in the metadata database, so any API worker or node serves them.</summary>
public sealed class SavedSearchStore
{
    public const int MaxNameLength = 200;

    private readonly MetaDatabase _database;
    private readonly TimeProvider _time;

    public SavedSearchStore(MetaDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    /// <summary>The saved searches in the <c>meta.db</c> of <paramref name="dataDirectory"/>.</summary>
    public SavedSearchStore(string dataDirectory, TimeProvider time)
        : this(MetaDatabase.Open(dataDirectory), time)
    {
    }

    private DbConnection Open() => _database.Connect();

    /// <summary>Every saved search, by name.</summary>
    public IReadOnlyList<SavedSearch> List()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, indexset, query, from_text, to_text, created_at FROM saved_searches ORDER BY lower(name), name";
        using var reader = command.ExecuteReader();
        var searches = new List<SavedSearch>();
        while (reader.Read())
        {
            searches.Add(new SavedSearch(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6))));
        }
        return searches;
    }

    /// <summary>Saves a new search; null when one with this name exists already.</summary>
    public SavedSearch? Create(string name, string indexSet, string query, string? from, string? to)
    {
        var search = new SavedSearch(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), name, indexSet, query, from, to, _time.GetUtcNow());
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO saved_searches (id, name, indexset, query, from_text, to_text, created_at)
            VALUES (@id, @name, @indexset, @query, @from, @to, @created)
            """ + _database.InsertOrIgnore("name");
        command.Add("@id", search.Id);
        command.Add("@name", name);
        command.Add("@indexset", indexSet);
        command.Add("@query", query);
        command.Add("@from", (object?)from ?? DBNull.Value);
        command.Add("@to", (object?)to ?? DBNull.Value);
        command.Add("@created", search.CreatedAt.ToUnixTimeMilliseconds());
        return command.ExecuteNonQuery() == 1 ? search : null;
    }

    /// <summary>Removes a saved search; false when there is none with this id.</summary>
    public bool Delete(string id)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM saved_searches WHERE id = @id";
        command.Add("@id", id);
        return command.ExecuteNonQuery() == 1;
    }
}
