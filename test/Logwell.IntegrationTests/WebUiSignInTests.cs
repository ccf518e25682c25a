using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;

namespace Logwell.IntegrationTests;

/// <summary>
/// A secured <c>logwell serve</c>: the administrator alice and the viewer victor (viewer on the index set
/// <c>web</c>, which holds 30 events), made with the CLI; and Debian's Chromium driven by Playwright.
/// </summary>
public sealed class SecuredUiFixture : IAsyncLifetime
{
    public const string AlicePassword = "alice's long password";
    public const string VictorPassword = "victor's long password";
    public const int Events = 30;

    private readonly TempDirectory _data = new();
    private IPlaywright? _playwright;

    internal LogwellNode Node { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(WebUiFixture.Chromium))
        {
            return;
        }
        Node = await LogwellNode.StartAsync(_data.Path);
        // Before the first user, loopback may set the node up.
        (await Node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "web" })).EnsureSuccessStatusCode();
        var now = DateTimeOffset.UtcNow;
        var body = string.Concat(Enumerable.Range(0, Events).Select(i => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["@timestamp"] = now.AddMinutes(-30 + i).ToString("O", CultureInfo.InvariantCulture),
            ["service"] = "checkout",
            ["message"] = $"order {i} paid",
        }) + "\n"));
        using (var content = new StringContent(body, Encoding.UTF8, "application/x-ndjson"))
        {
            (await Node.Http.PostAsync("/api/v1/indexsets/web/ingest", content)).EnsureSuccessStatusCode();
        }
        await CreateUserAsync(Node, "alice", AlicePassword, "admin", "*");
        await CreateUserAsync(Node, "victor", VictorPassword, "viewer", "indexset:web");
        Node.Http.DefaultRequestHeaders.Authorization = Basic("alice", AlicePassword);
        (_playwright, Browser) = await WebUiFixture.LaunchAsync();
    }

    internal static async Task CreateUserAsync(LogwellNode node, string name, string password, string role, string scope)
    {
        var made = await CliTests.RunAsync(node, null, "users", "create", name, "--password", password, "--role", role, "--scope", scope, "--data", node.DataDirectory);
        Assert.True(made.ExitCode == 0, made.Stdout + made.Stderr);
    }

    public static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

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

/// <summary>Signing in to the web UI, its session cookie, signing out, expiry and forged requests, in a real browser.</summary>
public sealed class WebUiSignInTests(SecuredUiFixture fixture, ITestOutputHelper output) : IClassFixture<SecuredUiFixture>, IAsyncLifetime
{
    private readonly List<IBrowserContext> _contexts = [];
    private readonly List<string> _pageErrors = [];

    public Task InitializeAsync() => Task.CompletedTask;

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

    private static void RequireChromium() =>
        Skip.IfNot(File.Exists(WebUiFixture.Chromium), $"{WebUiFixture.Chromium} is not installed (test.sh installs the chromium package from Debian when run as root)");

    private async Task<IPage> OpenAsync(IBrowser browser, Uri url)
    {
        RequireChromium();
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 860 }, TimezoneId = "UTC" });
        context.SetDefaultTimeout(20_000);
        _contexts.Add(context);
        var page = await context.NewPageAsync();
        page.PageError += (_, message) =>
        {
            lock (_pageErrors)
            {
                _pageErrors.Add(message);
            }
        };
        await page.GotoAsync(url.ToString());
        return page;
    }

    private async Task ShotAsync(IPage page, string name)
    {
        var directory = Environment.GetEnvironmentVariable("LOGWELL_UI_SCREENSHOTS") is { Length: > 0 } dir ? Path.GetFullPath(dir) : Path.Combine(AppContext.BaseDirectory, "ui-screenshots");
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        output.WriteLine($"screenshot: {path}");
    }

    private static async Task SignInAsync(IPage page, string user, string password)
    {
        await page.FillAsync("#login-user", user);
        await page.FillAsync("#login-password", password);
        await page.ClickAsync("#login-submit");
    }

    private static async Task<int> TotalAsync(IPage page)
    {
        var summary = page.Locator("#summary[data-total]");
        await summary.WaitForAsync();
        return int.Parse((await summary.GetAttributeAsync("data-total"))!, CultureInfo.InvariantCulture);
    }

    [SkippableFact]
    public async Task A_user_signs_in_sees_what_the_role_allows_and_signs_out()
    {
        RequireChromium();
        var page = await OpenAsync(fixture.Browser, new Uri(fixture.Node.BaseAddress, "/?indexset=web&from=now-1h&q=service%3Acheckout"));
        // Signed out: the form, not the pages (and not the browser's own prompt).
        await page.Locator("#login-form").WaitForAsync();
        Assert.False(await page.Locator("nav").IsVisibleAsync());
        await ShotAsync(page, "20-sign-in");

        await SignInAsync(page, "victor", "not victor's password");
        await page.Locator("#login-message.error").WaitForAsync();
        Assert.Contains("wrong user name or password", await page.Locator("#login-message").TextContentAsync(), StringComparison.Ordinal);

        await SignInAsync(page, "victor", SecuredUiFixture.VictorPassword);
        Assert.Equal(SecuredUiFixture.Events, await TotalAsync(page));
        Assert.Equal("victor", await page.Locator("#user").TextContentAsync());
        // A viewer: search and export, no saving, no operations, access or audit pages.
        Assert.True(await page.Locator("#export").IsVisibleAsync());
        Assert.Equal(0, await page.Locator("#save").CountAsync());
        foreach (var hidden in new[] { "operations", "collection", "access", "audit" })
        {
            Assert.False(await page.Locator($"nav a[data-page={hidden}]").IsVisibleAsync(), hidden);
        }
        await ShotAsync(page, "21-signed-in-viewer");

        // The session cookie: for the node only, out of scripts' reach, never sent by another site's page.
        var cookie = Assert.Single(await page.Context.CookiesAsync(), c => c.Name == "logwell_session");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.False(cookie.Secure);
        Assert.DoesNotContain("logwell_session", await page.EvaluateAsync<string>("document.cookie"), StringComparison.Ordinal);

        // The index sets page shows no control a viewer may not use, and the server refuses them anyway.
        await page.ClickAsync("nav a[data-page=indexsets]");
        await page.Locator("tr[data-name=web]").WaitForAsync();
        Assert.False(await page.Locator("#create-form").IsVisibleAsync());
        Assert.Equal(0, await page.Locator("tr[data-name=web] button").CountAsync());
        var refused = await page.EvaluateAsync<JsonElement>("""
            async () => {
              const session = await (await fetch('/api/v1/access/session')).json();
              const r = await fetch('/api/v1/indexsets/web', { method: 'DELETE', headers: { 'X-Logwell-Csrf': session.csrf } });
              return { status: r.status, body: await r.json() };
            }
            """);
        Assert.Equal(403, refused.GetProperty("status").GetInt32());
        Assert.Equal("manage_indexset", refused.GetProperty("body").GetProperty("action").GetString());

        await page.ClickAsync("#sign-out");
        await page.Locator("#login-form").WaitForAsync();
        Assert.Contains("signed out", await page.Locator("#login-message").TextContentAsync(), StringComparison.Ordinal);
        // Ended on the node: the old cookie, replayed, is refused.
        using var replay = new HttpRequestMessage(HttpMethod.Get, new Uri(fixture.Node.BaseAddress, "/api/v1/indexsets"));
        replay.Headers.Add("Cookie", $"logwell_session={cookie.Value}");
        using var plain = new HttpClient();
        using var replayed = await plain.SendAsync(replay);
        Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
    }

    [SkippableFact]
    public async Task An_administrator_makes_a_key_on_the_access_page_and_reads_sign_ins_in_the_audit_log()
    {
        RequireChromium();
        var page = await OpenAsync(fixture.Browser, new Uri(fixture.Node.BaseAddress, "/access?tab=keys"));
        await page.Locator("#login-form").WaitForAsync();
        await SignInAsync(page, "nobody", "not a password at all");
        await page.Locator("#login-message.error").WaitForAsync();
        await SignInAsync(page, "alice", SecuredUiFixture.AlicePassword);

        // After signing in, the page the URL named.
        await page.Locator("#key-form").WaitForAsync();
        await page.FillAsync("#key-name", "shipper-web");
        await page.SelectOptionAsync("#key-role", "ingester");
        await page.FillAsync("#key-scope", "indexset:web");
        await page.ClickAsync("#key-form button[type=submit]");
        var secret = (await page.Locator("#new-secret .secret").TextContentAsync())!.Trim();
        Assert.StartsWith("lw_", secret, StringComparison.Ordinal);
        await page.Locator("#keys-table tr", new PageLocatorOptions { HasText = "shipper-web" }).WaitForAsync();
        await ShotAsync(page, "22-access-keys");

        // The key shown once works, for what it was given.
        using var shipper = new HttpClient { BaseAddress = fixture.Node.BaseAddress };
        shipper.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        using (var content = new StringContent("{\"message\":\"from the new key\"}\n", Encoding.UTF8, "application/x-ndjson"))
        using (var ingest = await shipper.PostAsync("/api/v1/indexsets/web/ingest", content))
        {
            Assert.True(ingest.IsSuccessStatusCode, await ingest.Content.ReadAsStringAsync());
        }
        using (var search = await shipper.GetAsync("/api/v1/search?indexset=web&q=*"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, search.StatusCode);
        }

        // The audit page: the failed sign-in with the name it claimed, and alice's.
        await page.ClickAsync("nav a[data-page=audit]");
        await page.FillAsync("#audit-query", "path:\"/api/v1/access/session\" AND method:POST");
        await page.ClickAsync("#audit-form button[type=submit]");
        // The audit log writes in batches: read until both entries are in.
        await page.WaitForFunctionAsync("""
            async () => {
              const rows = [...document.querySelectorAll('#audit-rows tr')].map(r => r.textContent);
              if (rows.some(r => r.includes('nobody') && r.includes('unauthenticated')) && rows.some(r => r.includes('alice') && r.includes('success'))) return true;
              document.querySelector('#audit-form button[type=submit]').click();
              await new Promise(resolve => setTimeout(resolve, 300));
              return false;
            }
            """, null, new PageWaitForFunctionOptions { PollingInterval = 500 });
        await ShotAsync(page, "23-audit");
    }

    [SkippableFact]
    public async Task A_cross_site_form_post_and_a_request_without_the_anti_forgery_token_are_refused()
    {
        RequireChromium();
        var node = fixture.Node.BaseAddress;
        var page = await OpenAsync(fixture.Browser, new Uri(node, "/?indexset=web&from=now-1h&q=service%3Acheckout"));
        await SignInAsync(page, "alice", SecuredUiFixture.AlicePassword);
        Assert.Equal(SecuredUiFixture.Events, await TotalAsync(page));

        // Another site's page, in the same browser, posts a form to the node: a forged event.
        const string attacker = "http://attacker.example/";
        await page.Context.RouteAsync(attacker + "**", route => route.FulfillAsync(new RouteFulfillOptions
        {
            ContentType = "text/html",
            Body = $$"""
                <form method="POST" action="{{new Uri(node, "/api/v1/indexsets/web/ingest")}}" enctype="text/plain">
                  <input name='{"message":"forged by a form","x":"' value='"}'>
                </form>
                <script>document.forms[0].submit()</script>
                """,
        }));
        var forged = await page.RunAndWaitForResponseAsync(() => page.GotoAsync(attacker), r => r.Url.Contains("/ingest", StringComparison.Ordinal));
        Assert.Equal(403, forged.Status);
        output.WriteLine($"the forged post: {forged.Status} {await forged.TextAsync()}");

        // A request from the node's own origin that carries the cookie but not the token: refused as well.
        await page.GotoAsync(new Uri(node, "/?indexset=web&from=now-1h&q=service%3Acheckout").ToString());
        await TotalAsync(page);
        var withoutToken = await page.EvaluateAsync<JsonElement>("""
            async () => {
              const r = await fetch('/api/v1/indexsets/web/ingest', { method: 'POST', body: '{"message":"forged without the token"}\n' });
              return { status: r.status, body: await r.json() };
            }
            """);
        Assert.Equal(403, withoutToken.GetProperty("status").GetInt32());
        Assert.Contains("X-Logwell-Csrf", withoutToken.GetProperty("body").GetProperty("error").GetString(), StringComparison.Ordinal);

        // Neither reached the index set; a change made through the page itself (it sends the token) does.
        using (var search = await fixture.Node.Http.GetAsync("/api/v1/search?indexset=web&q=forged&from=now-1d"))
        {
            Assert.Equal(0, (await search.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("total").GetInt32());
        }
        await page.ClickAsync("nav a[data-page=indexsets]");
        await page.FillAsync("#new-name", "made-in-the-page");
        await page.ClickAsync("#create");
        await page.Locator("tr[data-name=made-in-the-page]").WaitForAsync();

        // Signing in again in another tab ends this tab's session and makes a new one (the cookie they share): this
        // tab's next change takes the new session's token and goes through.
        var other = await page.Context.NewPageAsync();
        await other.GotoAsync(new Uri(node, "/indexsets").ToString());
        var rotated = await other.EvaluateAsync<int>("""
            async password => (await fetch('/api/v1/access/session', { method: 'POST', headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ user: 'alice', password }) })).status
            """, SecuredUiFixture.AlicePassword);
        Assert.Equal(200, rotated);
        await page.FillAsync("#new-name", "made-after-another-sign-in");
        await page.ClickAsync("#create");
        await page.Locator("tr[data-name=made-after-another-sign-in]").WaitForAsync();
    }

    [SkippableFact]
    public async Task A_live_tail_stops_when_the_session_ends_elsewhere_and_the_page_asks_to_sign_in()
    {
        RequireChromium();
        var page = await OpenAsync(fixture.Browser, new Uri(fixture.Node.BaseAddress, "/?indexset=web&q=tailsession"));
        await SignInAsync(page, "alice", SecuredUiFixture.AlicePassword);
        await page.Locator("#summary[data-total]").WaitForAsync();
        await page.Locator("#live").ClickAsync();
        // A locator, not a function evaluated in the page: the node's Content-Security-Policy forbids eval, and
        // Playwright's polling of a function expression has met it.
        await page.Locator("#tail-status", new PageLocatorOptions { HasText = "waiting" }).WaitForAsync();
        using (var content = new StringContent("{\"message\":\"tailsession one\"}\n", Encoding.UTF8, "application/x-ndjson"))
        {
            (await fixture.Node.Http.PostAsync("/api/v1/indexsets/web/ingest", content)).EnsureSuccessStatusCode();
        }
        await page.Locator(".hit", new PageLocatorOptions { HasText = "tailsession one" }).First.WaitForAsync();

        // Signed out in another tab: the node ends the stream at the next event, and this page asks to sign in.
        var other = await page.Context.NewPageAsync();
        await other.GotoAsync(new Uri(fixture.Node.BaseAddress, "/indexsets").ToString());
        await other.Locator("#sign-out").ClickAsync();
        await other.Locator("#login-form").WaitForAsync();
        using (var content = new StringContent("{\"message\":\"tailsession two\"}\n", Encoding.UTF8, "application/x-ndjson"))
        {
            (await fixture.Node.Http.PostAsync("/api/v1/indexsets/web/ingest", content)).EnsureSuccessStatusCode();
        }
        await page.Locator("#login-form").WaitForAsync();
        Assert.Equal(0, await page.Locator(".hit", new PageLocatorOptions { HasText = "tailsession two" }).CountAsync());
    }

    [SkippableFact]
    public async Task An_idle_session_expires_and_the_page_asks_to_sign_in_again()
    {
        RequireChromium();
        using var data = new TempDirectory();
        // Three seconds of idleness end a session on this node.
        await using var node = await LogwellNode.StartAsync(data.Path, env: new Dictionary<string, string> { ["LOGWELL_SessionIdleMinutes"] = "0.05" });
        (await node.Http.PostAsJsonAsync("/api/v1/indexsets", new { name = "web" })).EnsureSuccessStatusCode();
        await SecuredUiFixture.CreateUserAsync(node, "alice", SecuredUiFixture.AlicePassword, "admin", "*");

        var page = await OpenAsync(fixture.Browser, new Uri(node.BaseAddress, "/indexsets"));
        await SignInAsync(page, "alice", SecuredUiFixture.AlicePassword);
        await page.Locator("tr[data-name=web]").WaitForAsync();
        // Idle on purpose: the subject of this test is time without requests.
        await Task.Delay(TimeSpan.FromSeconds(4));
        await page.FillAsync("#new-name", "after-expiry");
        await page.ClickAsync("#create");
        await page.Locator("#login-form").WaitForAsync();
        Assert.Contains("session has ended", await page.Locator("#login-message").TextContentAsync(), StringComparison.Ordinal);
        await ShotAsync(page, "24-session-expired");
        using (var list = await new HttpClient().SendAsync(new HttpRequestMessage(HttpMethod.Get, new Uri(node.BaseAddress, "/api/v1/indexsets"))
        {
            Headers = { Authorization = SecuredUiFixture.Basic("alice", SecuredUiFixture.AlicePassword) },
        }))
        {
            Assert.DoesNotContain("after-expiry", await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Signing in again goes back to the same page, working.
        await SignInAsync(page, "alice", SecuredUiFixture.AlicePassword);
        await page.Locator("tr[data-name=web]").WaitForAsync();
        Assert.EndsWith("/indexsets", page.Url, StringComparison.Ordinal);
    }
}
