using System.Text;
using Logwell.Storage.ClickHouse;
using Logwell.Tests;

namespace Logwell.IntegrationTests;

/// <summary>One ClickHouse 18.16 for the tests of the HTTP client.</summary>
public sealed class ClickHouseFixture : IAsyncLifetime
{
    internal ClickHouseServer? Server { get; private set; }

    public async Task InitializeAsync()
    {
        if (ClickHouseServer.Installed)
        {
            Server = await ClickHouseServer.StartAsync();
        }
    }

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
    }
}

/// <summary>Logwell's ClickHouse client against Debian's ClickHouse 18.16: literals that cannot inject, rows in and out, errors with their codes.</summary>
public sealed class ClickHouseHttpTests(ClickHouseFixture fixture) : IClassFixture<ClickHouseFixture>
{
    private ClickHouseHttp Client()
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        return new ClickHouseHttp(fixture.Server!.Endpoint);
    }

    [SkippableFact]
    public async Task EveryLiteralReadsBackAsItsValueAndInjectsNothing()
    {
        using var client = Client();
        await client.ExecuteAsync("CREATE TABLE IF NOT EXISTS canary (x UInt8) ENGINE = Memory");
        var values = NastyStrings.All.Concat(NastyStrings.Random(6, 300)).ToList();
        // All in one statement: a literal that broke out of its quotes would break the statement or change its rows.
        var sql = string.Join(" UNION ALL ", values.Select((v, i) => $"SELECT {i} AS i, {ClickHouseSql.Literal(v)} AS s"));
        var rows = new List<(int I, string S)>();
        await foreach (var row in client.QueryAsync($"SELECT i, s FROM ({sql}) ORDER BY i"))
        {
            rows.Add((row.GetProperty("i").GetInt32(), row.GetProperty("s").GetString()!));
        }
        Assert.Equal(values.Count, rows.Count);
        for (var i = 0; i < values.Count; i++)
        {
            Assert.Equal((i, values[i]), rows[i]);
        }
        // Bytes that are not UTF-8 arrive as those bytes.
        var bytes = new byte[] { 0xff, 0xfe, 0x27, 0x00, 0xc3 };
        var hex = (await client.ExecuteAsync($"SELECT hex({ClickHouseSql.Literal(bytes)})")).Trim();
        Assert.Equal(Convert.ToHexString(bytes), hex);
        Assert.Equal("1", (await client.ExecuteAsync("EXISTS TABLE canary")).Trim());
    }

    [SkippableFact]
    public async Task RowsGoInAsJsonEachRowAndComeBackWithTheirTypes()
    {
        using var client = Client();
        await client.ExecuteAsync("DROP TABLE IF EXISTS events_rt");
        await client.ExecuteAsync("CREATE TABLE events_rt (t DateTime, n UInt64, message String) ENGINE = MergeTree PARTITION BY toDate(t) ORDER BY t");
        var at = DateTimeOffset.UtcNow.AddMinutes(-1);
        static string Iso(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH':'mm':'ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var body = Encoding.UTF8.GetBytes($"{{\"t\":\"{Iso(at)}\",\"n\":1,\"message\":\"first 'quoted'\"}}\n{{\"t\":\"{Iso(at.AddSeconds(1))}\",\"n\":2,\"message\":\"second\",\"extra\":true}}\n");
        await client.InsertAsync("events_rt", body, new Dictionary<string, string> { ["date_time_input_format"] = "best_effort", ["input_format_skip_unknown_fields"] = "1" });
        var rows = new List<string>();
        await foreach (var row in client.QueryAsync($"SELECT message, n FROM events_rt WHERE message != {ClickHouseSql.Literal("x")} ORDER BY n"))
        {
            rows.Add($"{row.GetProperty("message").GetString()}:{row.GetProperty("n")}");
        }
        // A UInt64 comes as a number (18.16 and current releases differ in their default).
        Assert.Equal(["first 'quoted':1", "second:2"], rows);
    }

    [SkippableFact]
    public async Task RefusalsCarryTheServersCodeAndTheVersionIsRead()
    {
        using var client = Client();
        var syntax = await Assert.ThrowsAsync<ClickHouseException>(() => client.ExecuteAsync("SELEC 1"));
        Assert.Equal(62, syntax.Code);
        var unknown = await Assert.ThrowsAsync<ClickHouseException>(() => client.ExecuteAsync("SELECT * FROM no_such_table"));
        Assert.Equal(60, unknown.Code);
        var version = await client.ServerVersionAsync();
        Assert.Equal(18, version.Major);
    }
}

/// <summary>Events kept in ClickHouse 18.16 as Logwell writes them, read back exactly.</summary>
public sealed class ClickHouseEventsTests(ClickHouseFixture fixture) : IClassFixture<ClickHouseFixture>
{
    [SkippableFact]
    public async Task EventsWithEveryKindOfFieldComeBackExactlyInTimeOrder()
    {
        Skip.If(fixture.Server is null, ClickHouseServer.Missing);
        using var client = new ClickHouseHttp(fixture.Server!.Endpoint);
        await client.ExecuteAsync($"DROP TABLE IF EXISTS {ClickHouseSql.Identifier(ClickHouseEvents.Table("app-logs"))}");
        await client.ExecuteAsync(ClickHouseEvents.CreateTable("app-logs"));
        // Late in the UTC day: already the next day in the server's zone (UTC+14).
        var now = DateTime.UtcNow.Date.AddHours(23).AddMinutes(30).Ticks;
        var events = new List<Logwell.Core.Events.LogEvent>
        {
            new(now - 3, "first", [new("host", Logwell.Core.Events.FieldValue.FromString("web-1")), new("status", Logwell.Core.Events.FieldValue.FromLong(long.MaxValue)),
                new("latency", Logwell.Core.Events.FieldValue.FromDouble(0.1 + 0.2)), new("ok", Logwell.Core.Events.FieldValue.True)]),
            new(now - 2, "ünïcödé ✓ 😀 'quoted' \\ back\nslash", [new("tags", Logwell.Core.Events.FieldValue.FromJson("[\"a\",1]")), new("gone", Logwell.Core.Events.FieldValue.Null),
                new("no", Logwell.Core.Events.FieldValue.False), new("min", Logwell.Core.Events.FieldValue.FromLong(long.MinValue))]),
            new(now - 1, "", []),
        };
        events.AddRange(NastyStrings.All.Select((s, i) => new Logwell.Core.Events.LogEvent(now - 1000 - i, s, [new(s.Length == 0 ? "empty" : "v" + i, Logwell.Core.Events.FieldValue.FromString(s))])));
        var block = ClickHouseEvents.Block(events);
        await client.InsertAsync(ClickHouseEvents.Table("app-logs"), block);

        var read = new List<Logwell.Core.Events.LogEvent>();
        await foreach (var row in client.QueryAsync($"SELECT {ClickHouseEvents.Columns} FROM {ClickHouseSql.Identifier(ClickHouseEvents.Table("app-logs"))} ORDER BY t, seq"))
        {
            read.Add(ClickHouseEvents.Read(row));
        }
        var expected = events.OrderBy(e => e.Timestamp).ToList();
        Assert.Equal(expected.Count, read.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal((expected[i].Timestamp, expected[i].Seq, expected[i].Message), (read[i].Timestamp, read[i].Seq, read[i].Message));
            Assert.Equal(expected[i].Fields, read[i].Fields);
        }
        // Partitioned by the events' UTC day, whatever the server's time zone.
        var partitions = (await client.ExecuteAsync($"SELECT DISTINCT partition FROM system.parts WHERE table = {ClickHouseSql.Literal(ClickHouseEvents.Table("app-logs"))} AND active")).Trim();
        Assert.Equal(new DateTime(now, DateTimeKind.Utc).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), partitions);
    }
}
