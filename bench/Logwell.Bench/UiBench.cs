using System.Diagnostics;
using System.Globalization;
using Logwell.Bench.Systems;
using Microsoft.Playwright;

namespace Logwell.Bench;

/// <summary>
/// The web UI over a large index set: a <c>logwell serve</c> fed the benchmark corpus over HTTP, then Debian's
/// Chromium (headless, through Playwright) timing what a user waits for: the search page usable, a query, its
/// histogram and fields, scrolling through thousands of hits, a pipe's table; and the longest main-thread task the
/// page ran (the browser reports tasks over 50 ms), which is what a user feels as a freeze.
/// </summary>
internal static class UiBench
{
    private const string Chromium = "/usr/bin/chromium";

    public static async Task<int> RunAsync(string[] args)
    {
        var events = 1_000_000L;
        var runs = 5;
        var outDir = "bench-out";
        var loghub = Environment.GetEnvironmentVariable("LOGWELL_LOGHUB_DIR");
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--events":
                    events = long.Parse(Next(), CultureInfo.InvariantCulture);
                    break;
                case "--runs":
                    runs = int.Parse(Next(), CultureInfo.InvariantCulture);
                    break;
                case "--out":
                    outDir = Next();
                    break;
                case "--loghub":
                    loghub = Next();
                    break;
                default:
                    throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        if (!File.Exists(Chromium))
        {
            Console.Error.WriteLine($"{Chromium} is missing: apt-get install chromium");
            return 2;
        }
        Directory.CreateDirectory(outDir);
        var corpus = Corpus.Create(outDir, events, loghub, null);
        var data = Path.Combine(outDir, "ui-data-" + Guid.NewGuid().ToString("N"));
        await using var node = await LogwellHttpSystem.StartAsync(data, bulk: false);
        var ingest = Stopwatch.StartNew();
        await node.IngestAsync(corpus);
        Console.WriteLine($"ingested {corpus.Events:N0} events ({corpus.Source}) in {ingest.Elapsed.TotalSeconds:0.0} s");
        var baseUrl = node.BaseAddress.ToString().TrimEnd('/');

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });

        var figures = new Dictionary<string, List<double>>();
        void Add(string name, double ms)
        {
            if (!figures.TryGetValue(name, out var list))
            {
                figures[name] = list = [];
            }
            list.Add(ms);
        }

        for (var run = 0; run < runs; run++)
        {
            await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 860 } });
            context.SetDefaultTimeout(120_000);
            var page = await context.NewPageAsync();
            await page.AddInitScriptAsync("window.longTasks = []; new PerformanceObserver(list => window.longTasks.push(...list.getEntries().map(e => e.duration))).observe({ type: 'longtask', buffered: true });");

            // Every event, all time: hits, histogram and fields, timed from the start of navigation.
            await page.GotoAsync($"{baseUrl}/?indexset=default&from=all");
            await page.Locator("#summary[data-total]").WaitForAsync();
            Add("page usable: all events counted, newest 500 listed", await page.EvaluateAsync<double>("performance.now()"));
            await page.Locator("svg.histogram").WaitForAsync();
            Add("histogram drawn (all events)", await page.EvaluateAsync<double>("performance.now()"));
            await page.Locator(".field").First.WaitForAsync();
            Add("fields shown (newest 10,000)", await page.EvaluateAsync<double>("performance.now()"));

            Add("query: level:ERROR, hits and total", await TimeQueryAsync(page, "level:ERROR"));
            Add("query: a trace id (one event)", await TimeQueryAsync(page, $"trace_id:{corpus.NeedleTraceId}"));
            Add("query: host:web-1* AND NOT level:INFO", await TimeQueryAsync(page, "host:web-1* AND NOT level:INFO"));

            // Scroll through 5,000 hits: ten pages of 500 loaded as the list nears its end.
            await TimeQueryAsync(page, "");
            var scroll = Stopwatch.StartNew();
            await page.WaitForFunctionAsync("""
                () => {
                  const list = document.querySelector('#hits');
                  list.scrollTop = list.scrollHeight;
                  return list.querySelector('.virtual-canvas').offsetHeight > 4900 * 28;
                }
                """, null, new() { PollingInterval = 50 });
            Add("scroll through 5,000 hits (10 pages)", scroll.Elapsed.TotalMilliseconds);
            Add("rows in the page after scrolling 5,000 hits", await page.Locator(".hit").CountAsync());

            var pipe = Stopwatch.StartNew();
            await page.FillAsync("#query", "* | stats count() by service");
            await page.PressAsync("#query", "Enter");
            await page.Locator("#table [role=cell]").First.WaitForAsync();
            Add("pipe: * | stats count() by service (all events)", pipe.Elapsed.TotalMilliseconds);

            Add("longest main-thread task (over 50 ms reported; 0 when none)", await page.EvaluateAsync<double>("Math.max(0, ...window.longTasks)"));
        }

        Console.WriteLine();
        Console.WriteLine($"web UI over {corpus.Events:N0} events, {runs} runs, Chromium {browser.Version}, ms (median / max):");
        foreach (var (name, values) in figures)
        {
            values.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-62} {values[values.Count / 2],8:0} / {values[^1],6:0}"));
        }
        Directory.Delete(data, recursive: true);
        return 0;
    }

    /// <summary>Types a query, presses Enter and waits for the new total: what the user waits for, in milliseconds.</summary>
    private static async Task<double> TimeQueryAsync(IPage page, string query)
    {
        await page.EvaluateAsync("() => { const s = document.querySelector('#summary'); delete s.dataset.total; }");
        await page.FillAsync("#query", query);
        var clock = Stopwatch.StartNew();
        await page.PressAsync("#query", "Enter");
        await page.Locator("#summary[data-total]").WaitForAsync();
        return clock.Elapsed.TotalMilliseconds;
    }
}
