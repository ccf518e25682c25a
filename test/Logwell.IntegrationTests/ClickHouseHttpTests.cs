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
        var body = Encoding.UTF8.GetBytes("{\"t\":\"2026-12-06T10:00:00Z\",\"n\":1,\"message\":\"first 'quoted'\"}\n{\"t\":\"2026-12-06T10:00:01Z\",\"n\":2,\"message\":\"second\",\"extra\":true}\n");
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
