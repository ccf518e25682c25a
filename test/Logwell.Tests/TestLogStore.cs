using Logwell.Storage;
using Logwell.Storage.ClickHouse;
using Logwell.Storage.Engine;

namespace Logwell.Tests;

/// <summary>
/// A log store of either kind for tests that hold every store to the same answers: the embedded engine in a temporary
/// directory, or ClickHouse in a database of the test's own: Debian's 18.16, or a current release through chdb (one server
/// of each for the run).
/// </summary>
internal sealed class TestLogStore : IAsyncDisposable
{
    public const string Embedded = "embedded";
    public const string ClickHouse = "clickhouse";

    /// <summary>A current ClickHouse (26.7, through chdb).</summary>
    public const string Chdb = "chdb";

    private readonly Func<ValueTask> _dispose;

    private TestLogStore(ILogStore store, ILogIndexSet set, IReadOnlyList<(string Name, Func<Task> Reach)> phases, Func<ValueTask> dispose)
    {
        Store = store;
        Set = set;
        Phases = phases;
        _dispose = dispose;
    }

    public ILogStore Store { get; }

    /// <summary>The index set the test was given.</summary>
    public ILogIndexSet Set { get; }

    /// <summary>
    /// The states in which the store's events are read, each reached in turn: for the engine, memory tables and then
    /// segments; for ClickHouse, its parts.
    /// </summary>
    public IReadOnlyList<(string Name, Func<Task> Reach)> Phases { get; }

    public static async Task<TestLogStore> OpenAsync(string kind, string indexSet, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        if (kind == Embedded)
        {
            var directory = new TempDirectory();
            var engine = LogEngine.Open(new EngineOptions { DataDirectory = directory.Path, BlockRows = 16, DefaultRetentionDays = 36_500 }, time);
            var store = await engine.GetOrCreateAsync(indexSet);
            return new TestLogStore(engine, store, [("in memory", () => Task.CompletedTask), ("in segments", store.FlushAsync)], async () =>
            {
                await engine.DisposeAsync();
                directory.Dispose();
            });
        }
        var endpoint = kind == Chdb ? await ChdbServer.EndpointAsync() : (await ClickHouseServer.SharedAsync()).Endpoint;
        var database = "logwell_" + Guid.NewGuid().ToString("N");
        using (var admin = new ClickHouseHttp(endpoint))
        {
            await admin.ExecuteAsync($"CREATE DATABASE {database}");
        }
        var clickHouse = await ClickHouseLogStore.OpenAsync(new ClickHouseStoreOptions(endpoint) { Database = database, DefaultRetentionDays = 36_500 }, time);
        var set = await ((ILogStore)clickHouse).GetOrCreateAsync(indexSet);
        return new TestLogStore(clickHouse, set, [(kind == Chdb ? "in ClickHouse 26.7" : "in ClickHouse 18.16", () => Task.CompletedTask)], async () =>
        {
            await clickHouse.DisposeAsync();
            using var admin = new ClickHouseHttp(endpoint);
            await admin.ExecuteAsync($"DROP DATABASE IF EXISTS {database}");
        });
    }

    public ValueTask DisposeAsync() => _dispose();
}
