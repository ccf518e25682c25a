using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Logwell.IntegrationTests;

/// <summary>
/// The archive as an operator uses it: old days of an index set moved off the hot disk into the archive directory,
/// listed, and a range of them restored into search as an index set of its own, through the CLI of a running node.
/// </summary>
public sealed class ArchiveTests
{
    [Fact]
    public async Task OldDaysMoveToTheArchiveAndARangeOfThemIsRestoredIntoSearch()
    {
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var archive = Path.Combine(dir.Path, "archive");
        var env = new Dictionary<string, string>(DurabilityTests.SmallMemTables) { ["LOGWELL_ArchiveTo"] = archive };
        var today = DateTimeOffset.UtcNow.UtcDateTime.Date;
        var days = new[] { 5, 4, 3 }.Select(ago => today.AddDays(-ago)).ToList();
        string Day(int index) => days[index].ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var node = await LogwellNode.StartAsync(data, env: env);
        try
        {
            await IngestOldDaysAsync(node, data, today, days);

            // Not at or past retention (7 days by default): retention would delete those days first.
            var tooLate = await CliTests.RunAsync(node, null, "indexsets", "set", "default", "--archive-after-days", "7");
            Assert.Equal(1, tooLate.ExitCode);
            Assert.Contains("less than the index set's retention_days (7)", tooLate.Stderr, StringComparison.Ordinal);
            var set = await CliTests.RunAsync(node, null, "indexsets", "set", "default", "--archive-after-days", "2");
            Assert.True(set.ExitCode == 0, set.Stderr + set.Stdout);
            Assert.Contains("days older than 2 days move to the archive", set.Stdout, StringComparison.Ordinal);

            var run = await CliTests.RunAsync(node, null, "archive", "run");
            Assert.True(run.ExitCode == 0, run.Stderr + run.Stdout);
            Assert.Contains("3 days archived", run.Stdout, StringComparison.Ordinal);
            Assert.Equal(0, EventsOfPastDays(data, today));

            // Off the hot disk: searches see today's events only; the archive lists the three days.
            var hot = await DurabilityTests.AllValuesOfN(node.Http, "event");
            Assert.DoesNotContain(hot, n => n < 10_000);
            var list = await CliTests.RunAsync(node, null, "archive", "list", "--index", "default");
            Assert.True(list.ExitCode == 0, list.Stderr);
            foreach (var day in new[] { 0, 1, 2 })
            {
                Assert.Matches($@"{Day(day)}\s+\d+\s+1,000\s", list.Stdout);
            }

            // Nothing archived in the range, a name that is taken, a range backwards: said, nothing started.
            var none = await CliTests.RunAsync(node, null, "archive", "restore", "--index", "default", "--from", today.AddDays(-30).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), "--to", today.AddDays(-20).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), "--as", "empty", "--wait");
            Assert.Equal(1, none.ExitCode);
            Assert.Contains("is in the archive", none.Stderr, StringComparison.Ordinal);
            var taken = await CliTests.RunAsync(node, null, "archive", "restore", "--index", "default", "--from", Day(0), "--to", Day(1), "--as", "default");
            Assert.Equal(1, taken.ExitCode);
            Assert.Contains("already exists", taken.Stderr, StringComparison.Ordinal);
            var backwards = await CliTests.RunAsync(node, null, "archive", "restore", "--index", "default", "--from", Day(2), "--to", Day(0));
            Assert.Equal(1, backwards.ExitCode);
            Assert.Contains("is before", backwards.Stderr, StringComparison.Ordinal);

            var restore = await CliTests.RunAsync(node, null, "archive", "restore", "--index", "default", "--from", Day(1), "--to", Day(2), "--as", "old-days", "--expire-days", "2", "--wait");
            Assert.True(restore.ExitCode == 0, restore.Stderr + restore.Stdout);
            Assert.Contains("restored: search it as index set old-days", restore.Stdout, StringComparison.Ordinal);

            var restored = await DurabilityTests.AllValuesOfN(node.Http, "event&indexset=old-days");
            Assert.Equal(Enumerable.Range(1_000, 2_000).Select(i => (long)i), restored.Order());
            list = await CliTests.RunAsync(node, null, "archive", "list", "--index", "default");
            Assert.Contains($"restored {Day(1)}..{Day(2)} as old-days: 2,000 events, deleted at {DateTimeOffset.UtcNow.AddDays(2):yyyy-MM-dd}", list.Stdout, StringComparison.Ordinal);
            using (var sets = JsonDocument.Parse(await node.Http.GetStringAsync("/api/v1/indexsets")))
            {
                var old = sets.RootElement.GetProperty("indexsets").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "old-days");
                Assert.Equal("default", old.GetProperty("restored").GetProperty("from").GetString());
            }
            await node.KillAsync();
        }
        finally
        {
            await node.DisposeAsync();
        }

        // The archive holds the days, the restored index set survives a kill -9; the days are still off the hot disk.
        await using var again = await LogwellNode.StartAsync(data, env: env);
        var afterRestart = await DurabilityTests.AllValuesOfN(again.Http, "event&indexset=old-days");
        Assert.Equal(2_000, afterRestart.Count);
        Assert.DoesNotContain(await DurabilityTests.AllValuesOfN(again.Http, "event"), n => n < 10_000);
        Assert.True(Directory.EnumerateFiles(Path.Combine(archive, "archives", "default"), "*.json", SearchOption.AllDirectories).Count() >= 3);
    }

    [SkippableFact]
    public async Task TheIndexSetPageListsArchivedDaysAndRestoresARangeIntoSearch()
    {
        Skip.IfNot(File.Exists(WebUiFixture.Chromium), $"{WebUiFixture.Chromium} is not installed (test.sh installs the chromium package from Debian when run as root)");
        using var dir = new TempDirectory();
        var data = Path.Combine(dir.Path, "data");
        var env = new Dictionary<string, string>(DurabilityTests.SmallMemTables) { ["LOGWELL_ArchiveTo"] = Path.Combine(dir.Path, "archive") };
        var today = DateTimeOffset.UtcNow.UtcDateTime.Date;
        var days = new[] { 5, 4, 3 }.Select(ago => today.AddDays(-ago)).ToList();
        string Day(int index) => days[index].ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        await using var node = await LogwellNode.StartAsync(data, env: env);
        await IngestOldDaysAsync(node, data, today, days);
        using (var request = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/indexsets/default") { Content = new StringContent("{\"archive_after_days\": 2}", Encoding.UTF8, "application/json") })
        {
            (await node.Http.SendAsync(request)).EnsureSuccessStatusCode();
        }
        (await node.Http.PostAsync("/api/v1/maintenance/archive", null)).EnsureSuccessStatusCode();

        var (playwright, browser) = await WebUiFixture.LaunchAsync();
        try
        {
            var page = await browser.NewPageAsync(new Microsoft.Playwright.BrowserNewPageOptions { TimezoneId = "UTC", ViewportSize = new Microsoft.Playwright.ViewportSize { Width = 1400, Height = 860 } });
            page.SetDefaultTimeout(20_000);
            var errors = new List<string>();
            page.PageError += (_, message) => errors.Add(message);
            await page.GotoAsync(new Uri(node.BaseAddress, "/indexsets").ToString());
            var row = page.Locator("tr[data-name='default']");
            await row.Locator("td.retention", new() { HasTextString = "archive after 2 days" }).WaitForAsync();
            await row.GetByRole(Microsoft.Playwright.AriaRole.Button, new() { Name = "archive of default" }).ClickAsync();
            foreach (var day in new[] { 0, 1, 2 })
            {
                await page.Locator($"#archived-days tr[data-day='{Day(day)}']", new() { HasTextString = "1,000" }).WaitForAsync();
            }

            await page.FillAsync("#restore-from", Day(1));
            await page.FillAsync("#restore-to", Day(2));
            await page.FillAsync("#restore-as", "ui-days");
            await page.FillAsync("#restore-expire", "3");
            await page.Locator("#restore-start").ClickAsync();
            await page.Locator("#archive-restores li.restored[data-as='ui-days']", new() { HasTextString = "2,000 events" }).WaitForAsync();
            await page.Locator("tr[data-name='ui-days'] .badge.restored", new() { HasTextString = "restored from default" }).WaitForAsync();
            Assert.Equal(2_000, (await DurabilityTests.AllValuesOfN(node.Http, "event&indexset=ui-days")).Count);

            // A range with nothing archived is refused in the form, with the reason.
            await page.FillAsync("#restore-from", Day(2));
            await page.FillAsync("#restore-to", Day(0));
            await page.Locator("#restore-start").ClickAsync();
            await page.Locator("#restore-form .error", new() { HasTextString = "is before" }).WaitForAsync();
            Assert.Empty(errors);
        }
        finally
        {
            await browser.CloseAsync();
            playwright.Dispose();
        }
    }

    /// <summary>
    /// 1,000 events on each of <paramref name="days"/> into the default index set, then 3,000 of today after them, so
    /// that the old days are written out as segments; waits for them.
    /// </summary>
    private static async Task IngestOldDaysAsync(LogwellNode node, string data, DateTime today, IReadOnlyList<DateTime> days)
    {
        var body = new StringBuilder();
        foreach (var (day, d) in days.Select((day, d) => (day, d)))
        {
            for (var i = 0; i < 1_000; i++)
            {
                body.Append(CultureInfo.InvariantCulture, $"{{\"t\":\"{day.AddHours(12).AddSeconds(i):yyyy-MM-ddTHH:mm:ssZ}\",\"message\":\"day {d} event {i}\",\"n\":{(d * 1_000) + i}}}\n");
            }
        }
        for (var i = 0; i < 3_000; i++)
        {
            body.Append(CultureInfo.InvariantCulture, $"{{\"message\":\"today event {i}\",\"n\":{10_000 + i}}}\n");
        }
        using (var content = new StringContent(body.ToString(), Encoding.UTF8, "application/x-ndjson"))
        {
            (await node.Http.PostAsync("/api/v1/indexsets/default/ingest", content)).EnsureSuccessStatusCode();
        }
        await WaitForAsync(() => EventsOfPastDays(data, today) == 1_000L * days.Count);
    }

    /// <summary>The events of days before today in the default index set's segments.</summary>
    private static long EventsOfPastDays(string data, DateTime today)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(data, "indexsets", "default", "manifest.json")));
            return document.RootElement.GetProperty("segments").EnumerateArray()
                .Where(s => string.CompareOrdinal(s.GetProperty("day").GetString(), today.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)) < 0)
                .Sum(s => s.GetProperty("events").GetInt64());
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return 0;
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!condition())
        {
            await Task.Delay(100, timeout.Token);
        }
    }
}
