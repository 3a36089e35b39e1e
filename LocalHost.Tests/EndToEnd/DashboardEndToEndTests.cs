using System.Diagnostics;
using System.Globalization;
using Microsoft.Playwright;
using Npgsql;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 12 item 7: the operators' dashboard rendered by Debian's headless Chromium (driven by Playwright, which downloads no
/// browser) against LocalHost serving the real app with real pools. What the page shows is compared with the catalog; without
/// the admin key it shows nothing; a screenshot is kept (<see cref="ArtifactsDirectory"/>).
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class DashboardEndToEndTests(ITestOutputHelper output)
{
    private const string DashboardPath = "/api/database/admin/dashboard";
    private const string ChromiumVariable = "TENANTDB_CHROMIUM";
    private const string ArtifactsVariable = "TENANTDB_TEST_ARTIFACTS";

    [Fact]
    public async Task Dashboard_RealPools_ShowsTheCatalogsPoolsRunsAndEventsOnlyWithTheAdminKey()
    {
        var clock = Stopwatch.StartNew();
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Pools__Shared__MaxInstances"] = "3",
            // The third pool's run fails its first create (the data root is broken) and waits 5 minutes before the next:
            // it stays in flight while the page is looked at.
            ["Provisioning__CreateAttempts"] = "3",
            ["Provisioning__FirstRetryInterval"] = "00:05:00",
        });
        await host.ProvisionSharedPoolsAsync(2);
        var pools = await PoolIdsAsync(host);
        Assert.Equal(2, pools.Count);

        // Four tenants: fill-first puts three on the first pool (full) and one on the second.
        for (var i = 0; i < 4; i++)
        {
            var (status, _) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(Guid.NewGuid()));
            Assert.True(status == 200, $"allocate answered {status}: {host.Tail()}");
        }

        // An operator drains the second pool: a real event in the trail.
        var (drained, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/admin/pools/{pools[1]}/drain", AllocatorHost.MasterKey);
        Assert.Equal(200, drained);

        // No room left: the next tenant waits, and a third pool's run starts that cannot finish yet.
        var waiting = Guid.NewGuid();
        PoolDataRoot.Break(host.PoolsRoot);
        try
        {
            var (accepted, _) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(waiting));
            Assert.Equal(202, accepted);
            var runId = await WaitForTextAsync(host, "SELECT provisioning_instance_id FROM db_servers WHERE status = 'provisioning'");
            var drainEvent = await host.ScalarAsync(
                $"SELECT max(id) FROM pool_events WHERE db_server_id = {pools[1]} AND event = 'status_changed' AND to_status = 'draining'");
            var hostReady = clock.Elapsed;

            // The page's data route: the admin key only, and it names the run and the waiting tenant.
            Assert.Equal(401, (await host.SendAsync(HttpMethod.Get, "/api/database/admin/activity", key: null)).Status);
            Assert.Equal(401, (await host.SendAsync(HttpMethod.Get, "/api/database/admin/activity", AllocatorHost.FunctionKey)).Status);
            var (activityStatus, activity) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/activity", AllocatorHost.MasterKey);
            Assert.Equal(200, activityStatus);
            Assert.Equal(runId, Assert.Single(activity.GetProperty("provisioning_runs").EnumerateArray()).GetProperty("orchestration_id").GetString());
            Assert.Equal(waiting.ToString(), Assert.Single(activity.GetProperty("waiting_allocations").EnumerateArray()).GetProperty("instance_id").GetString());

            await using var browser = await Browser.StartAsync();
            var expected = await CatalogViewAsync(host);
            var shown = await RenderAsync(browser, host, expected, runId, waiting, drainEvent);
            output.WriteLine($"screenshot: {shown.Screenshot}");
            output.WriteLine($"host and pools ready in {hostReady.TotalSeconds:F1} s, browser part {(clock.Elapsed - hostReady).TotalSeconds:F1} s, "
                + $"total {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            PoolDataRoot.Heal(host.PoolsRoot);
        }
    }

    private sealed record Shown(string Screenshot);

    private async Task<Shown> RenderAsync(Browser browser, AllocatorHost host, CatalogView expected, string runId, Guid waiting, long drainEvent)
    {
        var url = new Uri(host.BaseAddress, DashboardPath).ToString();
        var (page, problems, requests) = await browser.NewPageAsync();

        // 1. Without a key: the shell, and nothing of the catalog; no admin data was asked for.
        var response = await page.GotoAsync(url);
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        var headers = response.Headers;
        Assert.StartsWith("text/html", headers["content-type"], StringComparison.Ordinal);
        var policy = headers["content-security-policy"];
        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'sha256-", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
        Assert.Equal("no-store", headers["cache-control"]);
        await page.Locator("body[data-state=locked]").WaitForAsync();
        Assert.True(await page.Locator("#key").IsVisibleAsync());
        Assert.False(await page.Locator("#data").IsVisibleAsync());
        AssertShowsNoCatalogData(await response.TextAsync(), expected, runId, waiting, "the page as served");
        AssertShowsNoCatalogData(await page.ContentAsync(), expected, runId, waiting, "the page without a key");
        Assert.DoesNotContain(requests, r => r.Contains("/activity", StringComparison.Ordinal) || r.Contains("/stats", StringComparison.Ordinal));

        // 2. A function key is not the admin key: refused, still nothing shown, the key not kept.
        await SubmitKeyAsync(page, AllocatorHost.FunctionKey);
        await page.Locator("#key-error:has-text('refused')").WaitForAsync();
        Assert.Equal("locked", await page.Locator("body").GetAttributeAsync("data-state"));
        AssertShowsNoCatalogData(await page.ContentAsync(), expected, runId, waiting, "the page after a wrong key");
        Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('tenantdb.adminKey')"));

        // 3. The admin key: the data, equal to the catalog's.
        await SubmitKeyAsync(page, AllocatorHost.MasterKey);
        await page.Locator("body[data-state=loaded]").WaitForAsync();
        Assert.Equal("", await page.Locator("#key").InputValueAsync());
        Assert.False(await page.Locator("#key-panel").IsVisibleAsync());

        var rows = page.Locator("#pools tbody tr[data-pool-id]");
        Assert.Equal(expected.Pools.Count, await rows.CountAsync());
        foreach (var pool in expected.Pools)
        {
            var row = page.Locator($"#pools tbody tr[data-pool-id='{pool.Id}']");
            Assert.Equal(pool.Name, await Field(row, "name"));
            Assert.Equal(pool.Status, await Field(row, "status"));
            Assert.Equal(pool.Health, await Field(row, "health"));
            Assert.Equal(Text(pool.Used), await Field(row, "used"));
            Assert.Equal(Text(pool.Max), await Field(row, "max"));
            Assert.Equal(Text(pool.LiveTenants), await Field(row, "tenants"));
            var bar = await row.Locator(".bar .fill").EvaluateAsync<double>("e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width");
            Assert.Equal(pool.Max == 0 ? 0 : (double)pool.Used / pool.Max, bar, 2);
        }

        // The catalog's sums; this run made 3 + 3 + 3 slots and holds 4 tenants (one more waits for the third pool).
        Assert.Equal(Text(expected.Pools.Sum(p => p.Max)), await Summary(page, "total_capacity"));
        Assert.Equal(Text(expected.Pools.Sum(p => p.Used)), await Summary(page, "used_capacity"));
        Assert.Equal(Text(expected.Pools.Sum(p => p.LiveTenants)), await Summary(page, "total_tenants"));
        Assert.Equal(Text(expected.Pools.Count), await Summary(page, "total_pools"));
        Assert.Equal(9, expected.Pools.Sum(p => p.Max));
        Assert.Equal(4, expected.Pools.Sum(p => p.LiveTenants));

        // The run in flight is the catalog's third pool's, as the task hub reports it; the waiting tenant is listed.
        var making = expected.Pools.Single(p => p.Status == "provisioning");
        var run = page.Locator($"#runs tbody tr[data-orchestration-id='{runId}']");
        Assert.Equal(making.Name, await Field(run, "pool_name"));
        Assert.Contains(await Field(run, "runtime_status"), new[] { "running", "pending" });
        Assert.Equal(1, await page.Locator($"#waiting tbody tr[data-instance-id='{waiting}']").CountAsync());

        // The operator's drain, as the trail recorded it.
        var drained = expected.Pools.Single(p => p.Status == "draining");
        var drainRow = page.Locator($"#events tbody tr[data-event-id='{drainEvent}']");
        Assert.Equal(drained.Name, await Field(drainRow, "pool_name"));
        Assert.Equal("status_changed", await Field(drainRow, "event"));
        Assert.Equal("draining", await Field(drainRow, "to_status"));
        Assert.Equal(await ScalarTextAsync(host, $"SELECT actor FROM pool_events WHERE id = {drainEvent}"), await Field(drainRow, "actor"));

        // Nothing secret on the page, in any URL it asked for, nor in the browser's complaints.
        var html = await page.ContentAsync();
        foreach (var secret in Secrets(host))
        {
            Assert.DoesNotContain(secret, html, StringComparison.Ordinal);
            Assert.DoesNotContain(requests, r => r.Contains(secret, StringComparison.Ordinal));
        }

        Assert.Contains(requests, r => r.Contains("/api/database/admin/activity", StringComparison.Ordinal));
        Assert.True(problems.IsEmpty, "the browser reported: " + string.Join(" | ", problems));

        var screenshot = Path.Combine(ArtifactsDirectory(), "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        Assert.True(new FileInfo(screenshot).Length > 1000, "the screenshot is empty");

        // 4. Forgetting the key hides everything again; a new tab (another session) starts without data.
        await page.Locator("#forget").ClickAsync();
        await page.Locator("body[data-state=locked]").WaitForAsync();
        AssertShowsNoCatalogData(await page.ContentAsync(), expected, runId, waiting, "the page after 'Forget key'");
        var (fresh, _, _) = await browser.NewPageAsync();
        await fresh.GotoAsync(url);
        await fresh.Locator("body[data-state=locked]").WaitForAsync();
        AssertShowsNoCatalogData(await fresh.ContentAsync(), expected, runId, waiting, "a new session");
        return new Shown(screenshot);
    }

    private static async Task SubmitKeyAsync(IPage page, string key)
    {
        await page.Locator("#key").FillAsync(key);
        await page.Locator("#key-form button[type=submit]").ClickAsync();
    }

    private static async Task<string> Field(ILocator row, string name) => (await row.Locator($"[data-field='{name}']").InnerTextAsync()).Trim();

    private static Task<string> Summary(IPage page, string name) => Field(page.Locator("#summary"), name);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static void AssertShowsNoCatalogData(string html, CatalogView catalog, string runId, Guid waiting, string what)
    {
        foreach (var pool in catalog.Pools)
        {
            Assert.False(html.Contains(pool.Name, StringComparison.Ordinal), $"{what} shows the pool name {pool.Name}");
        }

        Assert.False(html.Contains(runId, StringComparison.Ordinal), $"{what} shows the provisioning run");
        Assert.False(html.Contains(waiting.ToString(), StringComparison.Ordinal), $"{what} shows the waiting instance");
        Assert.False(html.Contains("data-pool-id", StringComparison.Ordinal), $"{what} has pool rows");
    }

    /// <summary>Keys and every password the host's traffic carried (none is printed: only whether it was found).</summary>
    private static IEnumerable<string> Secrets(AllocatorHost host) =>
        new[] { AllocatorHost.MasterKey, AllocatorHost.FunctionKey, AllocatorHost.SystemKey,
            new NpgsqlConnectionStringBuilder(host.CatalogConnectionString).Password! }.Concat(host.Seen.Passwords);

    private static object Allocation(Guid instance) =>
        new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" };

    private sealed record PoolRow(long Id, string Name, string Status, string Health, int Used, int Max, int LiveTenants);

    private sealed record CatalogView(IReadOnlyList<PoolRow> Pools);

    /// <summary>The pools not retired as the catalog holds them, with their live tenant rows counted.</summary>
    private static async Task<CatalogView> CatalogViewAsync(AllocatorHost host)
    {
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT s.id, s.name, s.status, s.health_status, s.current_instances, s.max_instances,
                (SELECT count(*)::int FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status IN ('creating', 'ready', 'released'))
            FROM db_servers s WHERE s.status <> 'deleted' ORDER BY s.id
            """, conn);
        var pools = new List<PoolRow>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            pools.Add(new PoolRow(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4),
                reader.GetInt32(5), reader.GetInt32(6)));
        }

        return new CatalogView(pools);
    }

    private static async Task<List<long>> PoolIdsAsync(AllocatorHost host)
    {
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT id FROM db_servers WHERE status = 'active' ORDER BY id", conn);
        var ids = new List<long>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    private static async Task<string?> ScalarTextAsync(AllocatorHost host, string sql)
    {
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync() as string;
    }

    private async Task<string> WaitForTextAsync(AllocatorHost host, string sql)
    {
        var deadline = DateTimeOffset.UtcNow.AddSeconds(30);
        while (true)
        {
            if (await ScalarTextAsync(host, sql) is { Length: > 0 } text)
            {
                return text;
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, $"nothing for {sql}: {host.Tail()}");
            await Task.Delay(250);
        }
    }

    /// <summary>
    /// Where the screenshot goes: <c>TENANTDB_TEST_ARTIFACTS</c>, else <c>.local/test/artifacts</c> in the repository (ignored
    /// by git, beside <c>infra/test.sh</c>'s results).
    /// </summary>
    private static string ArtifactsDirectory()
    {
        var directory = Environment.GetEnvironmentVariable(ArtifactsVariable);
        if (string.IsNullOrEmpty(directory))
        {
            var repo = new DirectoryInfo(AppContext.BaseDirectory);
            while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "Functions.sln")))
            {
                repo = repo.Parent;
            }

            directory = Path.Combine(repo?.FullName ?? AppContext.BaseDirectory, ".local", "test", "artifacts");
        }

        Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>
    /// Debian's chromium (<c>TENANTDB_CHROMIUM</c> names another) driven by Playwright, headless; as root without its sandbox,
    /// which needs an unprivileged user. Every page records the requests it makes and what the browser complained of.
    /// </summary>
    private sealed class Browser : IAsyncDisposable
    {
        private readonly IPlaywright _playwright;
        private readonly IBrowser _browser;

        private Browser(IPlaywright playwright, IBrowser browser)
        {
            _playwright = playwright;
            _browser = browser;
        }

        public static async Task<Browser> StartAsync()
        {
            var executable = Environment.GetEnvironmentVariable(ChromiumVariable) is { Length: > 0 } named ? named : "/usr/bin/chromium";
            Assert.True(File.Exists(executable), $"no Chromium at {executable}: run infra/prerequisites.sh chromium (or set {ChromiumVariable})");
            // The browser comes from Debian; Playwright must never fetch one of its own.
            Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
            var playwright = await Playwright.CreateAsync();
            try
            {
                var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
                {
                    ExecutablePath = executable,
                    Headless = true,
                    Args = Environment.IsPrivilegedProcess ? ["--no-sandbox"] : [],
                });
                return new Browser(playwright, browser);
            }
            catch
            {
                playwright.Dispose();
                throw;
            }
        }

        public async Task<(IPage Page, System.Collections.Concurrent.ConcurrentQueue<string> Problems, System.Collections.Concurrent.ConcurrentQueue<string> Requests)> NewPageAsync()
        {
            var context = await _browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
            var page = await context.NewPageAsync();
            var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var requests = new System.Collections.Concurrent.ConcurrentQueue<string>();
            page.Console += (_, message) =>
            {
                if (message.Type is "error" or "warning" && !message.Text.Contains("401", StringComparison.Ordinal))
                {
                    problems.Enqueue(message.Type + ": " + message.Text);
                }
            };
            page.PageError += (_, error) => problems.Enqueue("page error: " + error);
            page.Request += (_, request) => requests.Enqueue(request.Url);
            return (page, problems, requests);
        }

        public async ValueTask DisposeAsync()
        {
            await _browser.DisposeAsync();
            _playwright.Dispose();
        }
    }

}
