using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;

namespace Logwell.IntegrationTests;

/// <summary>
/// One <c>logwell serve</c> with 1,200 known events in the index set <c>web</c>, and Debian's Chromium driven by
/// Playwright. Events are 2 s apart and end 5 minutes ago; event i is on host web-1, web-2, api-1 by i mod 3 and is an
/// ERROR when i mod 12 is 0 (100 of them), a WARN when it is 1 to 3 (300), else INFO (800).
/// </summary>
public sealed class WebUiFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";
    public const int Events = 1200;
    public static readonly string[] Hosts = ["web-1", "web-2", "api-1"];

    private readonly TempDirectory _data = new();
    private IPlaywright? _playwright;

    internal LogwellNode Node { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    public DateTimeOffset First { get; private set; }

    /// <summary>Where each step's screenshot goes: <c>LOGWELL_UI_SCREENSHOTS</c>, else <c>ui-screenshots</c> beside the tests.</summary>
    public string ScreenshotDirectory { get; } = Environment.GetEnvironmentVariable("LOGWELL_UI_SCREENSHOTS") is { Length: > 0 } dir
        ? Path.GetFullPath(dir)
        : Path.Combine(AppContext.BaseDirectory, "ui-screenshots");

    public static string Level(int i) => i % 12 == 0 ? "ERROR" : i % 12 <= 3 ? "WARN" : "INFO";

    public static string Message(int i) => string.Create(CultureInfo.InvariantCulture, $"request {i:D4} GET /api/orders/{i % 97} answered {(i % 12 == 0 ? 502 : 200)} in {i % 250 + 3} ms");

    public async Task InitializeAsync()
    {
        if (!File.Exists(Chromium))
        {
            return;
        }
        Directory.CreateDirectory(ScreenshotDirectory);
        Node = await LogwellNode.StartAsync(_data.Path);
        (await Node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "web", retention_days = 14 })).EnsureSuccessStatusCode();
        // Live tail writes to its own index set, so the counts of "web" hold whatever order the tests run in.
        (await Node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "live" })).EnsureSuccessStatusCode();
        First = DateTimeOffset.UtcNow.AddMinutes(-5).AddSeconds(-2 * (Events - 1));
        var body = new StringBuilder();
        for (var i = 0; i < Events; i++)
        {
            body.AppendLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["@timestamp"] = First.AddSeconds(2 * i).ToString("O", CultureInfo.InvariantCulture),
                ["level"] = Level(i),
                ["host"] = Hosts[i % 3],
                ["service"] = "checkout",
                ["status"] = i % 12 == 0 ? 502 : 200,
                ["latency_ms"] = i % 250 + 3,
                ["message"] = Message(i),
            }));
        }
        await IngestAsync(body.ToString());
        // Values the query syntax must escape, to filter on from the page.
        (await Node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "odd" })).EnsureSuccessStatusCode();
        await IngestAsync(string.Concat(new[]
        {
            new Dictionary<string, object> { ["message"] = "odd one", ["file"] = """C:\temp\"quoted" (1).log""", ["http.route"] = "/a:b/{id}", ["user agent"] = "curl/8" },
            new Dictionary<string, object> { ["message"] = "odd two", ["file"] = """C:\temp\other.log""", ["http.route"] = "/a:b" },
            new Dictionary<string, object> { ["message"] = "odd three", ["file"] = "AND OR NOT", ["http.route"] = "*" },
        }.Select(e => JsonSerializer.Serialize(e) + "\n")), "odd");
        (_playwright, Browser) = await LaunchAsync();
    }

    /// <summary>Debian's Chromium, headless, through Playwright (no browser is downloaded).</summary>
    public static async Task<(IPlaywright, IBrowser)> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        return (playwright, browser);
    }

    public async Task IngestAsync(string ndjson, string indexSet = "web")
    {
        using var content = new StringContent(ndjson, Encoding.UTF8, "application/x-ndjson");
        (await Node.Http.PostAsync($"/api/v1/indexsets/{indexSet}/ingest", content)).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }
        _playwright?.Dispose();
        if (Node is not null)
        {
            await Node.DisposeAsync();
        }
        _data.Dispose();
    }
}

/// <summary>The web UI in a real browser against a real node: each step as a user would take it, with a screenshot.</summary>
public sealed class WebUiTests(WebUiFixture fixture, ITestOutputHelper output) : IClassFixture<WebUiFixture>, IAsyncLifetime
{
    private static readonly float Timeout = 20_000;
    private readonly List<IBrowserContext> _contexts = [];
    private readonly List<string> _pageErrors = [];

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Closes the test's browser windows; a script error in any of them fails the test.</summary>
    public async Task DisposeAsync()
    {
        foreach (var context in _contexts)
        {
            await context.CloseAsync();
        }
        lock (_pageErrors)
        {
            Assert.True(_pageErrors.Count == 0, "script errors in the page:\n" + string.Join("\n", _pageErrors));
        }
    }

    private async Task<IPage> OpenAsync(string path, bool dark = false, bool observeLongTasks = false)
    {
        Skip.IfNot(File.Exists(WebUiFixture.Chromium), $"{WebUiFixture.Chromium} is not installed (test.sh installs the chromium package from Debian when run as root)");
        var context = await fixture.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1400, Height = 860 },
            AcceptDownloads = true,
            ColorScheme = dark ? ColorScheme.Dark : ColorScheme.Light,
            TimezoneId = "UTC",
        });
        context.SetDefaultTimeout(Timeout);
        _contexts.Add(context);
        var page = await context.NewPageAsync();
        page.PageError += (_, message) =>
        {
            lock (_pageErrors)
            {
                _pageErrors.Add(message);
            }
        };
        if (observeLongTasks)
        {
            await page.AddInitScriptAsync("window.longTasks = []; new PerformanceObserver(list => window.longTasks.push(...list.getEntries().map(e => e.duration))).observe({ type: 'longtask', buffered: true });");
        }
        await page.GotoAsync(new Uri(fixture.Node.BaseAddress, path).ToString());
        return page;
    }

    private async Task ShotAsync(IPage page, string name)
    {
        var path = Path.Combine(fixture.ScreenshotDirectory, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        output.WriteLine($"screenshot: {path}");
    }

    private static async Task<long> TotalAsync(IPage page)
    {
        var summary = page.Locator("#summary[data-total]");
        await summary.WaitForAsync();
        return long.Parse((await summary.GetAttributeAsync("data-total"))!, CultureInfo.InvariantCulture);
    }

    /// <summary>Waits until the summary shows a total other than <paramref name="previous"/> (a new search finished).</summary>
    private static async Task<long> NewTotalAsync(IPage page, long previous)
    {
        await page.WaitForFunctionAsync("previous => { const s = document.querySelector('#summary[data-total]'); return s && s.dataset.total !== String(previous); }", previous);
        return await TotalAsync(page);
    }

    [SkippableFact]
    public async Task A_query_typed_in_the_page_shows_its_hits_and_histogram()
    {
        var clock = Stopwatch.StartNew();
        var page = await OpenAsync("/?indexset=web");
        Assert.Equal(WebUiFixture.Events, await TotalAsync(page));
        // A figure, not an assertion: from the start of navigation to the hits counted and listed.
        output.WriteLine($"page usable after {await page.EvaluateAsync<double>("performance.now()"):0} ms in the page ({clock.ElapsedMilliseconds} ms with the browser's set-up)");
        await ShotAsync(page, "01-search");

        // "/" focuses the query, Enter runs it.
        await page.Locator("body").PressAsync("/");
        await page.Keyboard.TypeAsync("level:ERROR");
        await page.Keyboard.PressAsync("Enter");
        Assert.Equal(100, await NewTotalAsync(page, WebUiFixture.Events));
        Assert.Contains("q=level%3AERROR", page.Url, StringComparison.Ordinal);
        Assert.Equal("level:ERROR", await page.InputValueAsync("#query"));

        // The histogram's bars add up to the hits.
        await page.Locator("svg.histogram").WaitForAsync();
        var titles = await page.Locator("svg.histogram rect.bar title").AllTextContentsAsync();
        Assert.NotEmpty(titles);
        Assert.Equal(100, titles.Sum(t => int.Parse(t.Split(' ')[0].Replace(",", ""), CultureInfo.InvariantCulture)));

        // Newest first: the first row is the newest ERROR.
        var newestError = Enumerable.Range(0, WebUiFixture.Events).Last(i => i % 12 == 0);
        Assert.Contains(WebUiFixture.Message(newestError), await page.Locator(".hit .message").First.TextContentAsync());
        await ShotAsync(page, "02-search-errors");

        // A link reproduces the view.
        var again = await OpenAsync(new Uri(page.Url).PathAndQuery);
        Assert.Equal(100, await TotalAsync(again));
        Assert.Equal("level:ERROR", await again.InputValueAsync("#query"));
    }

    [SkippableFact]
    public async Task Five_hundred_hits_are_listed_with_only_the_rows_in_view_in_the_page()
    {
        var page = await OpenAsync("/?indexset=web&from=all", observeLongTasks: true);
        Assert.Equal(WebUiFixture.Events, await TotalAsync(page));
        var rendered = await page.Locator(".hit").CountAsync();
        Assert.InRange(rendered, 10, 200);
        // Hits come 500 at a time: scrolling to the end loads the next page, until the oldest event is listed.
        await page.WaitForFunctionAsync("""
            oldest => {
              const list = document.querySelector('#hits');
              list.scrollTop = list.scrollHeight;
              return [...document.querySelectorAll('.hit .message')].some(m => m.textContent === oldest);
            }
            """, WebUiFixture.Message(0), new() { PollingInterval = 200 });
        Assert.InRange(await page.Locator(".hit").CountAsync(), 10, 200);
        output.WriteLine($"rows in the page: {rendered} of {WebUiFixture.Events} hits");
        output.WriteLine($"longest main-thread task while loading and scrolling 1,200 hits: {await page.EvaluateAsync<double>("Math.max(0, ...window.longTasks)"):0} ms (tasks over 50 ms are reported)");
    }

    [SkippableFact]
    public async Task Clicking_a_field_value_filters_on_it_and_its_negation_excludes_it()
    {
        var page = await OpenAsync("/?indexset=web");
        Assert.Equal(WebUiFixture.Events, await TotalAsync(page));
        await page.Locator(".field[data-field='host'] .field-name").ClickAsync();
        await ShotAsync(page, "03-field-values");
        await page.GetByLabel("filter host is web-1", new() { Exact = true }).ClickAsync();
        Assert.Equal(WebUiFixture.Events / 3, await NewTotalAsync(page, WebUiFixture.Events));
        Assert.Equal("host:=\"web-1\"", await page.InputValueAsync("#query"));

        // The negation, from a hit's own fields.
        await page.Locator(".hit .hit-line").First.ClickAsync();
        await page.Locator(".hit-detail").GetByLabel("filter level is not INFO", new() { Exact = true }).ClickAsync();
        var expected = Enumerable.Range(0, WebUiFixture.Events).Count(i => i % 3 == 0 && WebUiFixture.Level(i) != "INFO");
        Assert.Equal(expected, await NewTotalAsync(page, WebUiFixture.Events / 3));
        Assert.Equal("host:=\"web-1\" AND NOT level:=\"INFO\"", await page.InputValueAsync("#query"));
        await ShotAsync(page, "04-filtered");
    }

    [SkippableFact]
    public async Task Filtering_on_values_the_query_syntax_must_escape_finds_exactly_them()
    {
        foreach (var (field, value) in new[] { ("file", """C:\temp\"quoted" (1).log"""), ("file", "AND OR NOT"), ("http.route", "/a:b"), ("http.route", "*") })
        {
            var page = await OpenAsync("/?indexset=odd&from=all");
            Assert.Equal(3, await TotalAsync(page));
            await page.Locator($".field[data-field='{field}'] .field-name").ClickAsync();
            await page.Locator($".field[data-field='{field}']").GetByLabel($"filter {field} is {value}", new() { Exact = true }).ClickAsync();
            Assert.Equal(1, await NewTotalAsync(page, 3));
            output.WriteLine($"{field} = {value}: {await page.InputValueAsync("#query")}");
            await page.Locator(".hit .hit-line").First.ClickAsync();
            var shown = await page.Locator(".hit-detail .field-table tr", new() { HasTextString = field }).Locator("td.value").TextContentAsync();
            Assert.Equal(value, shown);

            // Its negation keeps the other two.
            page = await OpenAsync("/?indexset=odd&from=all");
            Assert.Equal(3, await TotalAsync(page));
            await page.Locator($".field[data-field='{field}'] .field-name").ClickAsync();
            await page.Locator($".field[data-field='{field}']").GetByLabel($"filter {field} is not {value}", new() { Exact = true }).ClickAsync();
            Assert.Equal(2, await NewTotalAsync(page, 3));
        }

        // A field the query syntax cannot name (a space in it) is listed, with no filter buttons.
        var last = await OpenAsync("/?indexset=odd&from=all");
        await last.Locator(".field[data-field='user agent'] .field-name").ClickAsync();
        await last.Locator(".field[data-field='user agent'] .top-value", new() { HasTextString = "curl/8" }).WaitForAsync();
        Assert.Equal(0, await last.Locator(".field[data-field='user agent'] button.icon").CountAsync());
    }

    [SkippableFact]
    public async Task A_hit_opens_into_its_fields_and_its_context()
    {
        const int target = 600;
        var page = await OpenAsync($"/?indexset=web&q={Uri.EscapeDataString("\"request 0600\"")}");
        Assert.Equal(1, await TotalAsync(page));
        await page.Locator(".hit .hit-line").First.ClickAsync();
        await page.Locator(".hit-detail .field-table").WaitForAsync();
        Assert.Contains("web-1", await page.Locator(".hit-detail").TextContentAsync());
        await page.GetByRole(AriaRole.Button, new() { Name = "JSON" }).ClickAsync();
        var json = JsonDocument.Parse((await page.Locator(".hit-detail pre.json").TextContentAsync())!);
        Assert.Equal(WebUiFixture.Message(target), json.RootElement.GetProperty("message").GetString());
        await ShotAsync(page, "05-hit-json");

        await page.Locator(".context-button").ClickAsync();
        var current = page.Locator("#context-lines .context-line.current");
        await current.WaitForAsync();
        Assert.Contains(WebUiFixture.Message(target), await current.TextContentAsync());
        // The same host's lines, in time order around it.
        var lines = await page.Locator("#context-lines .context-line .message").AllTextContentsAsync();
        var at = lines.ToList().FindIndex(l => l == WebUiFixture.Message(target));
        Assert.Equal(WebUiFixture.Message(target - 3), lines[at - 1]);
        Assert.Equal(WebUiFixture.Message(target + 3), lines[at + 1]);
        Assert.Equal(25, at);
        await ShotAsync(page, "06-context");
        await page.Keyboard.PressAsync("Escape");
        await page.Locator("#drawer").WaitForAsync(new() { State = WaitForSelectorState.Hidden });
    }

    [SkippableFact]
    public async Task Live_tail_shows_new_lines_and_holds_them_while_paused()
    {
        var page = await OpenAsync("/?indexset=live&q=tailtoken");
        Assert.Equal(0, await TotalAsync(page));
        await page.Locator("#live").ClickAsync();
        await page.Locator("#tail-status", new() { HasTextString = "waiting for events" }).WaitForAsync();
        await fixture.IngestAsync(JsonSerializer.Serialize(new { message = "tailtoken first line arrives", level = "WARN", host = "web-2" }) + "\n", "live");
        await page.Locator(".hit .message", new() { HasTextString = "tailtoken first line arrives" }).WaitForAsync();
        await ShotAsync(page, "07-live-tail");

        await page.Locator("#pause").ClickAsync();
        await fixture.IngestAsync(JsonSerializer.Serialize(new { message = "tailtoken second line waits", host = "web-2" }) + "\n", "live");
        await page.Locator("#tail-status", new() { HasTextString = "1 waiting" }).WaitForAsync();
        Assert.Equal(0, await page.Locator(".hit .message", new() { HasTextString = "second line waits" }).CountAsync());
        await page.Locator("#pause").ClickAsync();
        await page.Locator(".hit .message", new() { HasTextString = "tailtoken second line waits" }).WaitForAsync();
        // Newest on top.
        Assert.Contains("second line waits", await page.Locator(".hit .message").First.TextContentAsync());
        await page.Locator("#live").ClickAsync();
        Assert.Equal("false", await page.Locator("#live").GetAttributeAsync("aria-pressed"));
    }

    [SkippableFact]
    public async Task A_stats_pipe_shows_a_table_and_a_timechart_a_chart()
    {
        var page = await OpenAsync("/?indexset=web");
        await TotalAsync(page);
        await page.FillAsync("#query", "* | stats count() by level");
        await page.PressAsync("#query", "Enter");
        var table = page.GetByRole(AriaRole.Table, new() { Name = "result" });
        await table.Locator("[role=cell]").First.WaitForAsync();
        Assert.Equal(["level", "count()"], await table.GetByRole(AriaRole.Columnheader).AllTextContentsAsync());
        var rows = new Dictionary<string, string>();
        foreach (var row in await table.Locator("[role=rowgroup] [role=row]").AllAsync())
        {
            var cells = await row.GetByRole(AriaRole.Cell).AllTextContentsAsync();
            rows[cells[0]] = cells[1];
        }
        Assert.Equal(new Dictionary<string, string> { ["ERROR"] = "100", ["WARN"] = "300", ["INFO"] = "800" }, rows);
        Assert.True(await page.Locator("#histogram").IsHiddenAsync());
        await ShotAsync(page, "08-stats-table");

        await page.FillAsync("#query", "* | timechart span=5m count() by level");
        await page.PressAsync("#query", "Enter");
        await page.Locator("#timechart svg.timechart.line polyline").First.WaitForAsync();
        Assert.Equal(3, await page.Locator("#timechart polyline").CountAsync());
        await page.Locator(".segmented button[data-kind='bar']").ClickAsync();
        await page.Locator("#timechart svg.timechart.bar rect.series").First.WaitForAsync();
        await ShotAsync(page, "09-timechart");
    }

    [SkippableFact]
    public async Task The_patterns_tab_shows_templates_with_their_change_and_a_click_searches_one()
    {
        Skip.IfNot(File.Exists(WebUiFixture.Chromium), $"{WebUiFixture.Chromium} is not installed");
        (await fixture.Node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "patterns" })).EnsureSuccessStatusCode();
        var now = DateTimeOffset.UtcNow;
        string Line(DateTimeOffset at, string message) => JsonSerializer.Serialize(new Dictionary<string, object> { ["@t"] = at.ToString("O", CultureInfo.InvariantCulture), ["message"] = message }) + "\n";
        var body = new StringBuilder();
        for (var i = 0; i < 40; i++)
        {
            body.Append(Line(now.AddMinutes(-50 + i), $"Connection closed by 10.0.{i % 4}.{i} port {40000 + i}"));
        }
        // The same window a day before: half as many closed connections, and nothing else.
        for (var i = 0; i < 20; i++)
        {
            body.Append(Line(now.AddDays(-1).AddMinutes(-50 + i), $"Connection closed by 10.1.{i % 4}.{i} port {30000 + i}"));
        }
        for (var i = 0; i < 6; i++)
        {
            body.Append(Line(now.AddMinutes(-20 + i), $"disk /dev/sd{(char)('a' + i)} is {90 + i}% full"));
        }
        await fixture.IngestAsync(body.ToString(), "patterns");
        var closed = Logwell.Core.Patterns.TemplateMiner.Id("Connection closed by <*> port <*>");

        var page = await OpenAsync("/?indexset=patterns");
        Assert.Equal(46, await TotalAsync(page));
        await page.GetByRole(AriaRole.Tab, new() { Name = "Patterns" }).ClickAsync();
        var first = page.Locator($".pattern-row[data-pattern='{closed}']");
        await first.WaitForAsync();
        Assert.Contains("view=patterns", page.Url, StringComparison.Ordinal);
        Assert.Equal(2, await page.Locator(".pattern-row").CountAsync());
        // Most frequent first, with its count and its change against the day before.
        Assert.Equal(closed, await page.Locator(".pattern-row").First.GetAttributeAsync("data-pattern"));
        Assert.Equal("40", await first.Locator(".pattern-count").TextContentAsync());
        Assert.Equal("+100%", await first.Locator(".pattern-change").TextContentAsync());
        Assert.Equal(0, await first.Locator(".badge.new").CountAsync());
        var disk = page.Locator(".pattern-row").Nth(1);
        Assert.Equal("new", await disk.Locator(".badge.new").TextContentAsync());
        Assert.Equal("6", await disk.Locator(".pattern-count").TextContentAsync());
        Assert.Equal(1, await first.Locator("svg.spark polyline").CountAsync());
        // The template with its variables, and the example with the parts they stand for marked.
        Assert.Equal("Connection closed by <*> port <*>", await first.Locator(".pattern-template").TextContentAsync());
        Assert.Equal("Connection closed by 10.0.3.39 port 40039", await first.Locator(".pattern-example").TextContentAsync());
        Assert.Equal(["10.0.3.39", "40039"], await first.Locator(".pattern-example mark.variable").AllTextContentsAsync());
        await ShotAsync(page, "16-patterns");

        // A click searches the pattern's events by the id ingest gave them.
        await first.Locator("button.pattern-template").ClickAsync();
        Assert.Equal(40, await NewTotalAsync(page, 46));
        Assert.Equal($"pattern:{closed}", await page.InputValueAsync("#query"));
        Assert.DoesNotContain("view=patterns", page.Url, StringComparison.Ordinal);
        Assert.True(await page.Locator("#patterns").IsHiddenAsync());
    }

    [SkippableFact]
    public async Task An_export_runs_shows_its_progress_and_downloads()
    {
        var page = await OpenAsync("/?indexset=web&q=level:WARN&from=all");
        Assert.Equal(300, await TotalAsync(page));
        await page.Locator("#export").ClickAsync();
        await page.SelectOptionAsync("#export-format", "csv");
        await page.FillAsync("#export-fields", "level, host, status");
        await page.Locator("#export-start").ClickAsync();
        var link = page.Locator("#export-progress a.download");
        await link.WaitForAsync(new() { Timeout = 60_000 });
        await ShotAsync(page, "10-export");
        var download = await page.RunAndWaitForDownloadAsync(() => link.ClickAsync());
        var path = Path.Combine(Path.GetTempPath(), $"logwell-ui-export-{Guid.NewGuid():N}.csv.gz");
        await download.SaveAsAsync(path);
        try
        {
            await using var file = File.OpenRead(path);
            await using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var reader = new StreamReader(gzip);
            var lines = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("level,host,status", lines[0].TrimEnd('\r'));
            Assert.Equal(301, lines.Length);
            Assert.All(lines.Skip(1), line => Assert.StartsWith("WARN,", line, StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [SkippableFact]
    public async Task Index_sets_are_created_given_a_retention_and_deleted_after_confirmation()
    {
        var page = await OpenAsync("/indexsets");
        await page.Locator("tr[data-name='web'] td.events", new() { HasTextString = "1,2" }).WaitForAsync();
        await page.FillAsync("#new-name", "payments");
        await page.FillAsync("#new-retention", "9");
        await page.Locator("#create").ClickAsync();
        var row = page.Locator("tr[data-name='payments']");
        await row.Locator("td.retention", new() { HasTextString = "9 days" }).WaitForAsync();

        await row.GetByRole(AriaRole.Button, new() { Name = "Edit" }).ClickAsync();
        await row.Locator("input[type=number]").FillAsync("30");
        await row.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await row.Locator("td.retention", new() { HasTextString = "30 days" }).WaitForAsync();
        var listed = await fixture.Node.Http.GetFromJsonAsync<JsonElement>("/api/v1/indexsets");
        Assert.Equal(30, listed.GetProperty("indexsets").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "payments").GetProperty("retention_days").GetInt32());
        await ShotAsync(page, "11-indexsets");

        // The pipeline editor previews sample lines as they are typed.
        await row.GetByRole(AriaRole.Button, new() { Name = "Pipeline" }).ClickAsync();
        await page.Locator("#pipeline-status", new() { HasTextString = "3 lines → 1 failed" }).WaitForAsync();
        Assert.Contains("/api/pay", await page.Locator("#pipeline-preview").TextContentAsync());
        await ShotAsync(page, "12-pipeline-editor");

        await row.GetByRole(AriaRole.Button, new() { Name = "delete payments" }).ClickAsync();
        await ShotAsync(page, "13-delete-confirm");
        await page.Locator("dialog[open] button[data-confirm]").ClickAsync();
        await row.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        var after = await fixture.Node.Http.GetAsync("/api/v1/indexsets/payments/pipeline");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, after.StatusCode);
    }

    [SkippableFact]
    public async Task A_query_error_is_shown_at_its_position()
    {
        var page = await OpenAsync("/?indexset=web");
        await TotalAsync(page);
        await page.FillAsync("#query", "level:(ERROR");
        await page.PressAsync("#query", "Enter");
        var error = page.Locator("#query-error");
        await error.WaitForAsync();
        Assert.Contains("position 12", await error.Locator(".message").TextContentAsync());
        Assert.Equal(new string(' ', 12) + "^", await error.Locator(".caret").TextContentAsync());
        Assert.Equal(12, await page.Locator("#query").EvaluateAsync<int>("e => e.selectionStart"));
        await ShotAsync(page, "14-query-error");
        await page.Keyboard.PressAsync("Escape");
        await error.WaitForAsync(new() { State = WaitForSelectorState.Hidden });
        Assert.Equal("level:(ERROR", await page.InputValueAsync("#query"));
    }

    [SkippableFact]
    public async Task Saved_and_recent_searches_reopen_a_search()
    {
        var page = await OpenAsync("/?indexset=web&q=level:ERROR&from=now-7d");
        Assert.Equal(100, await TotalAsync(page));
        await page.Locator("#save").ClickAsync();
        await page.FillAsync("#save-name", "bad gateways");
        await page.Locator("#save-confirm").ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "bad gateways", Exact = true }).WaitForAsync();

        var other = await OpenAsync("/?indexset=web&q=level:WARN");
        Assert.Equal(300, await TotalAsync(other));
        await other.Locator("#saved").ClickAsync();
        await other.GetByRole(AriaRole.Button, new() { Name = "bad gateways", Exact = true }).ClickAsync();
        Assert.Equal(100, await NewTotalAsync(other, 300));
        Assert.Contains("from=now-7d", other.Url, StringComparison.Ordinal);
        Assert.Equal("Last 7 days", await other.Locator("#range").TextContentAsync());

        await other.Locator("#recent").ClickAsync();
        await other.Locator("#drawer button.link", new() { HasTextString = "level:WARN" }).ClickAsync();
        Assert.Equal(300, await NewTotalAsync(other, 100));
    }

    [SkippableFact]
    public async Task Dragging_across_the_histogram_zooms_into_that_range()
    {
        var page = await OpenAsync("/?indexset=web&from=all");
        Assert.Equal(WebUiFixture.Events, await TotalAsync(page));
        var chart = page.Locator("svg.histogram");
        await chart.WaitForAsync();
        var box = (await chart.BoundingBoxAsync())!;
        await page.Mouse.MoveAsync(box.X + 60, box.Y + 50);
        await page.Mouse.DownAsync();
        await page.Mouse.MoveAsync(box.X + box.Width / 2, box.Y + 50, new() { Steps = 5 });
        await page.Mouse.UpAsync();
        var zoomed = await NewTotalAsync(page, WebUiFixture.Events);
        Assert.InRange(zoomed, 1, WebUiFixture.Events - 1);
        var query = System.Web.HttpUtility.ParseQueryString(new Uri(page.Url).Query);
        Assert.True(DateTimeOffset.TryParse(query["from"], CultureInfo.InvariantCulture, out var from));
        Assert.True(DateTimeOffset.TryParse(query["to"], CultureInfo.InvariantCulture, out var to));
        Assert.True(from < to);
        // The hits are exactly the events in the chosen range.
        var expected = Enumerable.Range(0, WebUiFixture.Events).Count(i => fixture.First.AddSeconds(2 * i) is var t && t >= from && t < to);
        Assert.Equal(expected, zoomed);
    }

    [SkippableFact]
    public async Task A_custom_range_searches_exactly_that_range()
    {
        var page = await OpenAsync("/?indexset=web");
        Assert.Equal(WebUiFixture.Events, await TotalAsync(page));
        await page.Locator("#range").ClickAsync();
        // Events 100 to 199.
        await page.FillAsync("#custom-from", fixture.First.AddSeconds(2 * 100 - 1).ToString("O", CultureInfo.InvariantCulture));
        await page.FillAsync("#custom-to", fixture.First.AddSeconds(2 * 200 - 1).ToString("O", CultureInfo.InvariantCulture));
        await page.Locator("#custom-apply").ClickAsync();
        Assert.Equal(100, await NewTotalAsync(page, WebUiFixture.Events));
        Assert.Contains(WebUiFixture.Message(199), await page.Locator(".hit .message").First.TextContentAsync());
        Assert.Contains("→", await page.Locator("#range").TextContentAsync());
    }

    [SkippableFact]
    public async Task Dead_tasks_are_retried_and_purged_from_the_operations_page()
    {
        var page = await OpenAsync("/operations");
        // A task that always fails and has no retries goes dead on the node's own worker.
        var queue = new Logwell.Jobs.SqliteTaskQueue(Path.Combine(fixture.Node.DataDirectory, "tasks.db"), TimeProvider.System);
        await queue.EnqueueAsync(new Logwell.Jobs.TaskRequest("diag.fail", """{"error": "broken on purpose"}""", "default") { MaxRetries = 0 });
        var row = page.Locator("#queues tr[data-queue='default']");
        await row.Locator("td.dead", new() { HasTextString = "1" }).WaitForAsync();
        await row.GetByRole(AriaRole.Button, new() { Name = "Retry dead" }).ClickAsync();
        await page.Locator(".toast", new() { HasTextString = "1 task queued again" }).WaitForAsync();
        // It fails again, and is dead again.
        await row.Locator("td.dead", new() { HasTextString = "1" }).WaitForAsync();
        await row.GetByRole(AriaRole.Button, new() { Name = "Purge dead" }).ClickAsync();
        await page.Locator("dialog[open] button[data-confirm]").ClickAsync();
        await page.Locator(".toast", new() { HasTextString = "1 task purged" }).WaitForAsync();
        // A queue left with no task at all is no longer listed.
        await page.WaitForFunctionAsync("() => { const row = document.querySelector(\"#queues tr[data-queue='default']\"); return !row || row.querySelector('td.dead').textContent === '0'; }");
        var stats = (await queue.StatsAsync()).SingleOrDefault(q => q.Queue == "default");
        Assert.Equal(0, stats?.Dead ?? 0);
        Assert.Equal(0, (stats?.Pending ?? 0) + (stats?.Running ?? 0) + (stats?.Failed ?? 0));
    }

    [SkippableFact]
    public async Task The_operations_page_shows_health_queues_and_the_scheduler()
    {
        var page = await OpenAsync("/operations", dark: true);
        await page.Locator("#health tr[data-component='log-store']").WaitForAsync();
        await page.Locator("#scheduler-holder").WaitForAsync();
        Assert.False(string.IsNullOrWhiteSpace(await page.Locator("#scheduler-holder").TextContentAsync()));
        // Each node's components, as it reported them with its last heartbeat.
        await page.Locator("#nodes tr[data-node] .component[data-component='log-store'].ok").First.WaitForAsync();
        Assert.Contains("does not run under logwell supervise", await page.Locator("#processes").TextContentAsync());
        await ShotAsync(page, "15-operations-dark");
    }

    [SkippableFact]
    public async Task Collection_configs_are_written_on_their_page_and_agents_are_listed_with_their_lag()
    {
        var page = await OpenAsync("/collection");
        await page.Locator("#config-rows").WaitForAsync();
        await page.Locator("#new-config").ClickAsync();
        await page.FillAsync("#config-name", "checkout-ui");
        await page.FillAsync("#config-index-set", "web");
        await page.FillAsync("#config-paths", "/var/log/checkout/*.log\n/var/log/checkout/**/*.json");
        await page.FillAsync("#config-fields", "env=prod\nteam = payments");
        await page.FillAsync("#config-tags", "web, shop");
        // A broken pattern is refused by the node, with its reason, and nothing is saved.
        await page.FillAsync("#config-multiline-start", "^(\\d{4}");
        await page.Locator("#config-save").ClickAsync();
        var error = page.Locator("#config-error:not([hidden])");
        await error.WaitForAsync();
        Assert.Contains("multiline.start", await error.TextContentAsync());
        Assert.DoesNotContain("checkout-ui", await fixture.Node.Http.GetStringAsync("/api/v1/collection-configs"));
        await page.FillAsync("#config-multiline-start", "^\\d{4}-");
        await page.Locator("#config-save").ClickAsync();
        var row = page.Locator("#config-rows tr[data-name='checkout-ui']");
        await row.WaitForAsync();
        Assert.Contains("tag web", await row.Locator("td.targets").TextContentAsync());
        using (var saved = JsonDocument.Parse(await fixture.Node.Http.GetStringAsync("/api/v1/collection-configs")))
        {
            var config = saved.RootElement.GetProperty("collection_configs").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "checkout-ui");
            Assert.Equal(["/var/log/checkout/*.log", "/var/log/checkout/**/*.json"], config.GetProperty("paths").EnumerateArray().Select(p => p.GetString()));
            Assert.Equal("web", config.GetProperty("index_set").GetString());
            Assert.Equal("payments", config.GetProperty("fields").GetProperty("team").GetString());
            Assert.Equal("^\\d{4}-", config.GetProperty("multiline").GetProperty("start").GetString());
            Assert.Equal(["web", "shop"], config.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        }
        // Edited: the form comes back filled in, and a change is saved over it.
        await row.GetByRole(AriaRole.Button, new() { Name = "edit checkout-ui" }).ClickAsync();
        Assert.Equal("web", await page.InputValueAsync("#config-index-set"));
        Assert.Contains("team=payments", await page.InputValueAsync("#config-fields"));
        await page.FillAsync("#config-hosts", "shop-1");
        await page.Locator("#config-save").ClickAsync();
        await row.Locator("td.targets", new() { HasTextString = "shop-1" }).WaitForAsync();
        await ShotAsync(page, "25-collection");

        // An agent that reports shows on the operations page with what it has not read and not shipped.
        using var report = await fixture.Node.Http.PostAsJsonAsync("/api/v1/agents/shop-1/report", new
        {
            id = "a1b2c3",
            version = "test",
            tags = new[] { "web" },
            health = new { files = 7, bytes_behind = 3 * 1024 * 1024, buffer_bytes = 2048, poll_interval_seconds = 10, last_error = (string?)null },
        });
        report.EnsureSuccessStatusCode();
        using (var answer = JsonDocument.Parse(await report.Content.ReadAsStringAsync()))
        {
            Assert.Contains(answer.RootElement.GetProperty("collection_configs").EnumerateArray(), c => c.GetProperty("name").GetString() == "checkout-ui");
        }
        var operations = await OpenAsync("/operations");
        var agent = operations.Locator("#agents tr[data-agent='shop-1']");
        await agent.WaitForAsync();
        Assert.Equal("7", (await agent.Locator("td.files").TextContentAsync())?.Trim());
        Assert.Equal("3.00 MiB", (await agent.Locator("td.behind").TextContentAsync())?.Trim());
        Assert.Equal("2.00 KiB", (await agent.Locator("td.buffered").TextContentAsync())?.Trim());
        await ShotAsync(operations, "26-operations-agents");
        await agent.GetByRole(AriaRole.Button, new() { Name = "forget shop-1" }).ClickAsync();
        await operations.Locator("dialog[open] button[data-confirm]").ClickAsync();
        await operations.Locator("#agents tr[data-agent='shop-1']").WaitForAsync(new() { State = WaitForSelectorState.Detached });

        // Deleted from the page.
        await row.GetByRole(AriaRole.Button, new() { Name = "delete checkout-ui" }).ClickAsync();
        await page.Locator("dialog[open] button[data-confirm]").ClickAsync();
        await row.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        Assert.DoesNotContain("checkout-ui", await fixture.Node.Http.GetStringAsync("/api/v1/collection-configs"));
    }
}
