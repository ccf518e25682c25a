using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Logwell.Server.Hosting;

namespace Logwell.Server.Agent;

/// <summary>
/// A collection config: which files agents collect and how (<see cref="Input"/>, the keys of one of agent.yaml's
/// inputs, as JSON), and which agents: those named in <see cref="Hosts"/> and those with one of <see cref="Tags"/>;
/// every agent when both are empty.
/// </summary>
public sealed record CollectionConfig(string Name, string Input, IReadOnlyList<string> Hosts, IReadOnlyList<string> Tags, DateTimeOffset UpdatedAt)
{
    public bool Targets(string agent, IEnumerable<string> tags) =>
        (Hosts.Count == 0 && Tags.Count == 0) || Hosts.Contains(agent, StringComparer.Ordinal) || Tags.Intersect(tags, StringComparer.Ordinal).Any();
}

/// <summary>What an agent last reported: who it is, when it was seen, and its health (files, lag, buffer, last error), as JSON.</summary>
public sealed record AgentReport(string Name, string Id, string Version, IReadOnlyList<string> Tags, string Address, DateTimeOffset FirstSeen, DateTimeOffset LastSeen,
    string Health, string ConfigVersion);

/// <summary>Collection configs and the agents that report, in the metadata database, so any node serves both.</summary>
public sealed class CollectionConfigStore(MetaDatabase database, TimeProvider time)
{
    public const int MaxNameLength = 128;

    public IReadOnlyList<CollectionConfig> List()
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, input, hosts, tags, updated_at FROM collection_configs ORDER BY name";
        using var reader = command.ExecuteReader();
        var configs = new List<CollectionConfig>();
        while (reader.Read())
        {
            configs.Add(new CollectionConfig(reader.GetString(0), reader.GetString(1), Strings(reader.GetString(2)), Strings(reader.GetString(3)),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4))));
        }
        return configs;
    }

    /// <summary>Creates or replaces a config; true when it is new.</summary>
    public bool Put(string name, string input, IReadOnlyList<string> hosts, IReadOnlyList<string> tags)
    {
        using var connection = database.Connect();
        using var transaction = database.BeginWrite(connection);
        bool existed;
        using (var find = connection.CreateCommand())
        {
            find.Transaction = transaction;
            find.CommandText = "SELECT COUNT(*) FROM collection_configs WHERE name = @name";
            find.Add("@name", name);
            existed = find.ScalarLong() > 0;
        }
        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO collection_configs (name, input, hosts, tags, updated_at) VALUES (@name, @input, @hosts, @tags, @updated) "
                + database.Upsert("name", "input", "hosts", "tags", "updated_at");
            command.Add("@name", name);
            command.Add("@input", input);
            command.Add("@hosts", JsonSerializer.Serialize(hosts));
            command.Add("@tags", JsonSerializer.Serialize(tags));
            command.Add("@updated", time.GetUtcNow().ToUnixTimeMilliseconds());
            command.ExecuteNonQuery();
        }
        transaction.Commit();
        return !existed;
    }

    public bool Delete(string name)
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM collection_configs WHERE name = @name";
        command.Add("@name", name);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>The configs for an agent, and their version: a hash of what they say, which changes when any of them does.</summary>
    public (IReadOnlyList<CollectionConfig> Configs, string Version) For(string agent, IReadOnlyList<string> tags)
    {
        var configs = List().Where(c => c.Targets(agent, tags)).ToList();
        var hash = new XxHash64();
        foreach (var config in configs)
        {
            hash.Append(Encoding.UTF8.GetBytes(config.Name + "\n" + config.Input + "\n"));
        }
        return (configs, hash.GetCurrentHashAsUInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Records an agent's report: registers it the first time, updates it after.</summary>
    public void Report(string name, string id, string version, IReadOnlyList<string> tags, string address, string health, string configVersion)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO agents (name, id, version, tags, address, first_seen, last_seen, health, config_version)
            VALUES (@name, @id, @version, @tags, @address, @now, @now, @health, @config)
            """ + database.Upsert("name", "id", "version", "tags", "address", "last_seen", "health", "config_version");
        command.Add("@name", name);
        command.Add("@id", id);
        command.Add("@version", version);
        command.Add("@tags", JsonSerializer.Serialize(tags));
        command.Add("@address", address);
        command.Add("@now", now);
        command.Add("@health", health);
        command.Add("@config", configVersion);
        command.ExecuteNonQuery();
    }

    public IReadOnlyList<AgentReport> Agents()
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, id, version, tags, address, first_seen, last_seen, health, config_version FROM agents ORDER BY name";
        using var reader = command.ExecuteReader();
        var agents = new List<AgentReport>();
        while (reader.Read())
        {
            agents.Add(new AgentReport(reader.GetString(0), reader.GetString(1), reader.GetString(2), Strings(reader.GetString(3)), reader.GetString(4),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)), reader.GetString(7), reader.GetString(8)));
        }
        return agents;
    }

    /// <summary>Forgets an agent (one retired for good); false when there is none by that name.</summary>
    public bool Forget(string name)
    {
        using var connection = database.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM agents WHERE name = @name";
        command.Add("@name", name);
        return command.ExecuteNonQuery() == 1;
    }

    private static string[] Strings(string json) => JsonSerializer.Deserialize<string[]>(json) ?? [];
}
