using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TenantDb.Functions.Api;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 12, the contract through a real LocalHost: <c>GET /api/openapi.yaml</c> answers without a key and parses, and every
/// answer of the end-to-end flow (allocate 202 and 200, look-up, claim, rotate, release, the admin routes, health, problems)
/// validates against the schema the served document gives its route and status.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class OpenApiEndToEndTests
{
    private const string Allocate = "/database/allocate";
    private const string Dedicated = "/database/provision-dedicated";
    private const string Allocation = "/database/allocations/{instance_id}";
    private const string Claim = "/database/credentials/{instance_id}/claim";
    private const string Rotate = "/database/credentials/{instance_id}/rotate";
    private const string Pools = "/database/admin/pools";
    private const string PoolById = "/database/admin/pools/{id}";
    private const string Tenants = "/database/admin/tenants";
    private const string Rebalance = "/database/admin/rebalance";
    private const string Backups = "/database/allocations/{instance_id}/backups";
    private const string Restore = "/database/allocations/{instance_id}/backups/{backup_id}/restore";
    private const string Move = "/database/admin/allocations/{instance_id}/move";
    private const string RestoreRelease = "/database/allocations/{instance_id}/restore-release";
    private const string AdminBackups = "/database/admin/allocations/{instance_id}/backups";
    private const string Purge = "/database/admin/allocations/{instance_id}";
    private const string Usage = "/database/allocations/{instance_id}/usage";

    /// <summary>Sends requests, checks each answer against the document, and keeps what it found.</summary>
    private sealed class Checker(AllocatorHost host, OpenApiContract contract)
    {
        public List<string> Failures { get; } = [];
        public HashSet<string> Operations { get; } = [];
        public int Validated { get; private set; }

        /// <param name="template">The documented path (e.g. <c>/database/allocations/{instance_id}</c>).</param>
        /// <param name="path">The path sent, under <c>/api</c>.</param>
        public async Task<(int Status, JsonElement Body, HttpResponseHeaders Headers)> CallAsync(HttpMethod method, string template, string path,
            string? key, object? body = null, int[]? expect = null, Action<HttpRequestMessage>? tweak = null)
        {
            using var request = host.Request(method, "/api" + path, key, body);
            tweak?.Invoke(request);
            using var response = await host.Client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            if (expect is not null)
            {
                Assert.True(expect.Contains(status), $"{method} {path} answered {status}, expected {string.Join(" or ", expect)}: {Masked(text)}");
            }

            Operations.Add($"{method.Method} {template}");
            Failures.AddRange(contract.Check(template, method.Method, status, response.Content.Headers.ContentType?.MediaType, text));
            Validated++;
            var json = response.Content.Headers.ContentType?.MediaType?.EndsWith("json", StringComparison.Ordinal) == true && text.Length > 0
                ? JsonDocument.Parse(text).RootElement.Clone()
                : default;
            return (status, json, response.Headers);
        }

        // A failure message prints no password.
        private static string Masked(string text) => System.Text.RegularExpressions.Regex.Replace(text, "\"db_password\":\"[^\"]*\"", "\"db_password\":\"[secret]\"");
    }

    [Fact]
    public async Task Contract_ServedWithoutKey_AndEveryAnswerOfTheFlowValidatesAgainstItsRouteAndStatus()
    {
        // Two servers at most: the shared pool and the dedicated one below (the spare pool is retired before the dedicated is made).
        // Callbacks (issue 14 item 6) signed with a key of this test, to a listener of this test on loopback.
        var callbackKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        using var hooks = new System.Net.HttpListener();
        var hookPort = Functions.Drivers.LocalPostgres.FreeLoopbackPort();
        hooks.Prefixes.Add($"http://127.0.0.1:{hookPort}/");
        hooks.Start();
        var hooked = Task.Run(async () =>
        {
            var context = await hooks.GetContextAsync();
            using var received = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(received);
            var signature = context.Request.Headers["X-TenantDb-Signature"];
            context.Response.StatusCode = 204;
            context.Response.Close();
            return (Body: received.ToArray(), Signature: signature);
        });
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Provisioning__MaxServers"] = "2",
            ["Api__AllowLoopbackCallbacks"] = "true",
            ["Callbacks__Key"] = Convert.ToBase64String(callbackKey),
            ["Callbacks__Backoff"] = "00:00:00.200",
        });

        // (c) The document, anonymous, parses, and is the one embedded in the app.
        using (var response = await host.Client.GetAsync(new Uri(host.BaseAddress, "/api/openapi.yaml")))
        {
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal("application/yaml", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(OpenApiFunctions.Text, await response.Content.ReadAsStringAsync());
        }

        using var served = await host.Client.GetAsync(new Uri(host.BaseAddress, "/api/openapi.yaml"));
        var contract = OpenApiContract.Parse(await served.Content.ReadAsStringAsync());
        var c = new Checker(host, contract);
        await c.CallAsync(HttpMethod.Get, "/openapi.yaml", "/openapi.yaml", key: null, expect: [200]);

        const string Fk = AllocatorHost.FunctionKey;
        const string Mk = AllocatorHost.MasterKey;
        await c.CallAsync(HttpMethod.Get, "/healthz", "/healthz", key: null, expect: [200]);
        await c.CallAsync(HttpMethod.Get, "/database/admin/stats", "/database/admin/stats", Fk, expect: [401]);
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, key: null, body: Request(Guid.NewGuid()), expect: [401]);

        // Allocate with no pool: 202 and its run; meanwhile the look-up and a repeat answer 202 (or 200 once it is done).
        var a = Guid.NewGuid();
        var hookUrl = $"http://127.0.0.1:{hookPort}/hooks/database";
        var (_, accepted, _) = await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, RequestWithCallback(a, hookUrl), expect: [202]);
        await c.CallAsync(HttpMethod.Get, Allocation, $"/database/allocations/{a}", Fk, expect: [200, 202]);
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(a), expect: [200, 202]);
        // The look-up while the run waits (its step moves on as it retries), every answer checked, until it is placed.
        var steps = new HashSet<string>();
        for (var deadline = DateTimeOffset.UtcNow.AddSeconds(120); ;)
        {
            var (status, waiting, _) = await c.CallAsync(HttpMethod.Get, Allocation, $"/database/allocations/{a}", Fk, expect: [200, 202]);
            if (status == 200)
            {
                break;
            }

            steps.Add(waiting.TryGetProperty("step", out var step) ? step.GetString()! : waiting.GetProperty("status").GetString()!);
            Assert.True(DateTimeOffset.UtcNow < deadline, "the allocation was not placed within 120 s");
            await Task.Delay(300);
        }

        Console.WriteLine($"steps seen while waiting: {string.Join(", ", steps)}");
        var done = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());

        var (_, allocated, _) = await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(a), expect: [200]);
        var poolId = allocated.GetProperty("db_server_id").GetInt64();
        var (_, looked, _) = await c.CallAsync(HttpMethod.Get, Allocation, $"/database/allocations/{a}", Fk, expect: [200]);
        Assert.Equal(hookUrl, looked.GetProperty("callback_url").GetString());
        await c.CallAsync(HttpMethod.Post, Claim, $"/database/credentials/{a}/claim", Fk, expect: [200],
            tweak: r => r.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString()));
        await c.CallAsync(HttpMethod.Post, Claim, $"/database/credentials/{a}/claim", Fk, expect: [410]);
        await c.CallAsync(HttpMethod.Post, Rotate, $"/database/credentials/{a}/rotate", Fk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, Claim, $"/database/credentials/{a}/claim", Fk, expect: [400],
            tweak: r => r.Headers.Add("Idempotency-Key", "short"));

        // Backups (issue 14): 202 and its run, the list, a restore in place (202 and its run), refusals.
        var (_, backup, backupHeaders) = await c.CallAsync(HttpMethod.Post, Backups, $"/database/allocations/{a}/backups", Fk, expect: [202]);
        Assert.NotNull(backupHeaders.Location);
        var dumped = await host.WaitForOrchestrationAsync(backup.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("completed", dumped.GetProperty("output").GetProperty("status").GetString());
        var backupId = backup.GetProperty("backup_id").GetString();
        await c.CallAsync(HttpMethod.Get, Backups, $"/database/allocations/{a}/backups", Fk, expect: [200]);
        var (_, restore, _) = await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{a}/backups/{backupId}/restore", Fk, expect: [202]);
        var restoredRun = await host.WaitForOrchestrationAsync(restore.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("restored", restoredRun.GetProperty("output").GetProperty("status").GetString());
        // The restore told the allocation's callback URL, signed over the exact body bytes.
        var hook = await hooked.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("sha256=" + Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(callbackKey, hook.Body)), hook.Signature);
        using (var notice = JsonDocument.Parse(hook.Body))
        {
            Assert.Equal("restored", notice.RootElement.GetProperty("event").GetString());
            Assert.Equal(a, notice.RootElement.GetProperty("instance_id").GetGuid());
            Assert.Equal(backupId, notice.RootElement.GetProperty("backup_id").GetString());
        }
        await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{a}/backups/not-a-uuid/restore", Fk, expect: [400]);
        var (_, into, _) = await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{a}/backups/{backupId}/restore", Fk,
            new { target_instance_id = Guid.NewGuid().ToString() }, expect: [202]);
        var intoRun = await host.WaitForOrchestrationAsync(into.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("restored", intoRun.GetProperty("output").GetProperty("status").GetString());
        await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{a}/backups/{backupId}/restore", Fk,
            new { target_instance_id = "x" }, expect: [400]);
        await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{a}/backups/{Guid.NewGuid()}/restore", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Backups, "/database/allocations/not-a-uuid/backups", Fk, expect: [400]);
        await c.CallAsync(HttpMethod.Post, Backups, $"/database/allocations/{a}/backups", key: null, expect: [401]);

        // A tier change (issue 14 item 4): shared to shared in place, the same tier again, refusals.
        await c.CallAsync(HttpMethod.Patch, Allocation, $"/database/allocations/{a}", Fk, new { plan_tier = "professional" }, expect: [200]);
        await c.CallAsync(HttpMethod.Patch, Allocation, $"/database/allocations/{a}", Fk, new { plan_tier = "professional" }, expect: [200]);
        await c.CallAsync(HttpMethod.Patch, Allocation, $"/database/allocations/{a}", Fk, new { plan_tier = "gold" }, expect: [400]);
        await c.CallAsync(HttpMethod.Patch, Allocation, $"/database/allocations/{Guid.NewGuid()}", Fk, new { plan_tier = "starter" }, expect: [404]);
        await c.CallAsync(HttpMethod.Patch, Allocation, $"/database/allocations/{a}", Fk, new { plan_tier = "standard" }, expect: [200]);

        // A second tenant on the pool with room: 200 at once; released; looked up released; refused rotation and re-allocation.
        var b = Guid.NewGuid();
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(b), expect: [200]);
        await c.CallAsync(HttpMethod.Delete, Allocation, $"/database/allocations/{b}", Fk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, Backups, $"/database/allocations/{b}/backups", Fk, expect: [409]);
        await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{b}/backups/{backupId}/restore", Fk, expect: [409]);
        await c.CallAsync(HttpMethod.Get, Allocation, $"/database/allocations/{b}", Fk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, Rotate, $"/database/credentials/{b}/rotate", Fk, expect: [409]);
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(b), expect: [409]);

        // Issue 14: the operators' backup; b un-released (its final backup's run may still hold it: instance-busy), released
        // again and purged now (503 while its new final backup still runs).
        var (_, adminBackup, _) = await c.CallAsync(HttpMethod.Post, AdminBackups, $"/database/admin/allocations/{a}/backups", Mk, expect: [202]);
        await host.WaitForOrchestrationAsync(adminBackup.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, TimeSpan.FromSeconds(120));
        await c.CallAsync(HttpMethod.Post, AdminBackups, $"/database/admin/allocations/{b}/backups", Mk, expect: [409]);
        await c.CallAsync(HttpMethod.Post, AdminBackups, $"/database/admin/allocations/{a}/backups", Fk, expect: [401]);
        await c.CallAsync(HttpMethod.Post, RestoreRelease, $"/database/allocations/{a}/restore-release", Fk, expect: [409]);
        await UntilAsync(c, HttpMethod.Post, RestoreRelease, $"/database/allocations/{b}/restore-release", Fk, 200, 409);
        await c.CallAsync(HttpMethod.Delete, Purge, $"/database/admin/allocations/{b}?purge=now", Mk, expect: [409]);
        await c.CallAsync(HttpMethod.Delete, Allocation, $"/database/allocations/{b}", Fk, expect: [200]);
        await c.CallAsync(HttpMethod.Delete, Purge, $"/database/admin/allocations/{b}", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Delete, Purge, $"/database/admin/allocations/{b}?purge=now", Fk, expect: [401]);
        await UntilAsync(c, HttpMethod.Delete, Purge, $"/database/admin/allocations/{b}?purge=now", Mk, 200, 503);
        await c.CallAsync(HttpMethod.Delete, Purge, $"/database/admin/allocations/{b}?purge=now", Mk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, RestoreRelease, $"/database/allocations/{b}/restore-release", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, RestoreRelease, "/database/allocations/not-a-uuid/restore-release", Fk, expect: [400]);
        await c.CallAsync(HttpMethod.Post, RestoreRelease, $"/database/allocations/{a}/restore-release", key: null, expect: [401]);

        // Bad input and unknown instances: problems.
        var nobody = Guid.NewGuid();
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, new { instance_id = "x", customer_id = Guid.NewGuid().ToString(), plan_tier = "gold" }, expect: [400]);
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, expect: [400]);
        await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, expect: [415],
            tweak: r => r.Content = new StringContent(JsonSerializer.Serialize(Request(nobody)), Encoding.UTF8, "text/plain"));
        await c.CallAsync(HttpMethod.Post, Dedicated, Dedicated, Fk, Request(nobody), expect: [400]);
        await c.CallAsync(HttpMethod.Get, Allocation, "/database/allocations/not-a-uuid", Fk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, Allocation, $"/database/allocations/{nobody}", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Delete, Allocation, $"/database/allocations/{nobody}", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Claim, $"/database/credentials/{nobody}/claim", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Rotate, $"/database/credentials/{nobody}/rotate", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Backups, $"/database/allocations/{nobody}/backups", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Get, Backups, $"/database/allocations/{nobody}/backups", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Restore, $"/database/allocations/{nobody}/backups/{Guid.NewGuid()}/restore", Fk, expect: [404]);

        // The operators' routes.
        await c.CallAsync(HttpMethod.Get, Pools, $"{Pools}?status=active&page=1&page_size=10", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, Pools, $"{Pools}?status=sleeping&page_size=0", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, PoolById, $"{Pools}/{poolId}", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, PoolById, $"{Pools}/abc", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, PoolById, $"{Pools}/999999", Mk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/health-check", $"{Pools}/{poolId}/health-check", Mk, expect: [200]);
        // The usage its health check measured (issue 15 item 4); refusals.
        var (_, usage, _) = await c.CallAsync(HttpMethod.Get, Usage, $"/database/allocations/{a}/usage", Fk, expect: [200]);
        Assert.True(usage.GetProperty("size_bytes").GetInt64() > 0, usage.ToString());
        Assert.Equal("ok", usage.GetProperty("quota_state").GetString());
        await c.CallAsync(HttpMethod.Get, Usage, $"/database/allocations/{nobody}/usage", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Get, Usage, "/database/allocations/not-a-uuid/usage", Fk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, Usage, $"/database/allocations/{a}/usage", key: null, expect: [401]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/drain", $"{Pools}/{poolId}/drain", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/health-check", $"{Pools}/{poolId}/health-check", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/activate", $"{Pools}/{poolId}/activate", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/activate", $"{Pools}/999999/activate", Mk, expect: [404]);
        await c.CallAsync(HttpMethod.Delete, PoolById, $"{Pools}/{poolId}", Mk, expect: [409]);
        await c.CallAsync(HttpMethod.Get, "/database/admin/stats", "/database/admin/stats", Mk, expect: [200]);
        var (_, history, _) = await c.CallAsync(HttpMethod.Get, $"{Allocation}/events", $"/database/allocations/{a}/events?limit=1", Fk, expect: [200]);
        Assert.True(history.TryGetProperty("next_before", out _), "a one-event page of a history with several events names the next page");
        await c.CallAsync(HttpMethod.Get, $"{Allocation}/events", $"/database/allocations/{a}/events?limit=0", Fk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, $"{Allocation}/events", $"/database/allocations/{nobody}/events", Fk, expect: [404]);
        await c.CallAsync(HttpMethod.Get, $"{PoolById}/events", $"{Pools}/{poolId}/events?limit=5", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, $"{PoolById}/events", $"{Pools}/{poolId}/events?before=x", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, $"{PoolById}/events", $"{Pools}/999999/events", Mk, expect: [404]);
        await c.CallAsync(HttpMethod.Get, $"{PoolById}/events", $"{Pools}/{poolId}/events", Fk, expect: [401]);
        // Load (issue 15): after the health check above collected usage, the pool's load and largest tenants, the tenant list
        // (filters, sort, paging, refusals) and the rebalance suggestion (read-only).
        var (_, detailed, _) = await c.CallAsync(HttpMethod.Get, PoolById, $"{Pools}/{poolId}", Mk, expect: [200]);
        Assert.True(detailed.GetProperty("load").GetProperty("stored_bytes").GetInt64() > 0, "the health check recorded the pool's stored bytes");
        var (_, listed, _) = await c.CallAsync(HttpMethod.Get, Tenants, $"{Tenants}?sort=size&page_size=10", Mk, expect: [200]);
        Assert.True(listed.GetProperty("tenants")[0].GetProperty("size_bytes").GetInt64() > 0, "the largest tenant has its measured size");
        await c.CallAsync(HttpMethod.Get, Tenants, $"{Tenants}?pool={poolId}&status=ready&tier=standard&customer={Guid.NewGuid()}&over_quota=false&sort=connections&page=1", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, Tenants, $"{Tenants}?sort=name&page_size=501&customer=x&over_quota=maybe", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, Tenants, Tenants, Fk, expect: [401]);
        await c.CallAsync(HttpMethod.Get, Rebalance, $"{Rebalance}?target_score=0.7", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, Rebalance, $"{Rebalance}?target_score=0.01", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, Rebalance, $"{Rebalance}?target_score=2", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Get, Rebalance, Rebalance, Fk, expect: [401]);
        await c.CallAsync(HttpMethod.Get, "/database/admin/activity", "/database/admin/activity", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, "/database/admin/activity", "/database/admin/activity", Fk, expect: [401]);
        await c.CallAsync(HttpMethod.Get, "/database/admin/dashboard", "/database/admin/dashboard", null, expect: [200]);
        await c.CallAsync(HttpMethod.Post, "/database/admin/secrets/rewrap", "/database/admin/secrets/rewrap", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, $"{Pools}/register", $"{Pools}/register", Mk, new { name = "Bad Name" }, expect: [400]);
        // Adopting existing databases (issue 14 item 7): only from a registered pool; bad bodies and unknown pools are problems.
        var legacy = new { databases = new[] { new { instance_id = Guid.NewGuid().ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard", db_name = "legacy_db", db_user = "legacy_user" } } };
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/adopt", $"{Pools}/{poolId}/adopt", Mk, legacy, expect: [409]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/adopt", $"{Pools}/999999/adopt", Mk, legacy, expect: [404]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/adopt", $"{Pools}/{poolId}/adopt", Mk, new { databases = Array.Empty<object>() }, expect: [400]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/adopt", $"{Pools}/{poolId}/adopt", Fk, legacy, expect: [401]);
        await c.CallAsync(HttpMethod.Post, $"{Pools}/register", $"{Pools}/register", Mk, new
        {
            name = "nothing-there",
            host = "127.0.0.1",
            port = Functions.Drivers.LocalPostgres.FreeLoopbackPort(),
            admin_user = "postgres",
            admin_password = "not-a-real-password",
            max_instances = 5,
        }, expect: [422]);

        // A pool provisioned on request (202 and its run), then retired empty (200, deleted).
        var (_, provisioning, headers) = await c.CallAsync(HttpMethod.Post, "/database/admin/provision-pool", "/database/admin/provision-pool", Mk, expect: [202]);
        Assert.NotNull(headers.Location);
        var made = await host.WaitForOrchestrationAsync(provisioning.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("Completed", made.GetProperty("runtimeStatus").GetString());
        var spare = provisioning.GetProperty("pool_id").GetInt64();

        // Moves (issue 14): the tenant to the spare pool and back (no body: the allocator picks), each 202 and its run; the
        // look-up follows with a new generation; refusals; the spare evacuated (nothing left on it), then retired.
        var (_, move, moveHeaders) = await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Mk, new { target_pool_id = spare }, expect: [202]);
        Assert.NotNull(moveHeaders.Location);
        var movedRun = await host.WaitForOrchestrationAsync(move.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("moved", movedRun.GetProperty("output").GetProperty("status").GetString());
        var (_, movedThere, _) = await c.CallAsync(HttpMethod.Get, Allocation, $"/database/allocations/{a}", Fk, expect: [200]);
        Assert.Equal(spare, movedThere.GetProperty("db_server_id").GetInt64());
        Assert.Equal(movedRun.GetProperty("output").GetProperty("generation").GetInt32(), movedThere.GetProperty("generation").GetInt32());
        await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Mk, new { target_pool_id = spare }, expect: [409]);
        var (_, back, _) = await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Mk, expect: [202]);
        var backRun = await host.WaitForOrchestrationAsync(back.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("moved", backRun.GetProperty("output").GetProperty("status").GetString());
        await c.CallAsync(HttpMethod.Post, Move, "/database/admin/allocations/not-a-uuid/move", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Mk, new { target_pool_id = -1 }, expect: [400]);
        await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Mk, new { target_pool_id = 999999 }, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{Guid.NewGuid()}/move", Mk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Fk, expect: [401]);
        await c.CallAsync(HttpMethod.Post, Move, $"/database/admin/allocations/{a}/move", Mk, expect: [415],
            tweak: r => r.Content = new StringContent("{}", Encoding.UTF8, "text/plain"));
        var (_, evacuation, _) = await c.CallAsync(HttpMethod.Post, $"{PoolById}/evacuate", $"{Pools}/{spare}/evacuate", Mk, expect: [202]);
        var evacuated = await host.WaitForOrchestrationAsync(evacuation.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal(0, evacuated.GetProperty("output").GetProperty("remaining").GetInt32());
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/evacuate", $"{Pools}/999999/evacuate", Mk, expect: [404]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/evacuate", $"{Pools}/abc/evacuate", Mk, expect: [400]);
        await c.CallAsync(HttpMethod.Delete, PoolById, $"{Pools}/{spare}", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Post, $"{PoolById}/drain", $"{Pools}/{spare}/drain", Mk, expect: [409]);

        // A dedicated tier: 202 while its server is made, then 200.
        var d = Guid.NewGuid();
        var (_, dedicated, _) = await c.CallAsync(HttpMethod.Post, Dedicated, Dedicated, Fk, Request(d, "premium"), expect: [202]);
        var ready = await host.WaitForOrchestrationAsync(dedicated.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("Completed", ready.GetProperty("runtimeStatus").GetString());
        await c.CallAsync(HttpMethod.Post, Dedicated, Dedicated, Fk, Request(d, "premium"), expect: [200]);
        await c.CallAsync(HttpMethod.Get, Pools, $"{Pools}?server_type=dedicated", Mk, expect: [200]);
        await c.CallAsync(HttpMethod.Get, "/database/admin/stats", "/database/admin/stats", Mk, expect: [200]);

        // At the server limit: 503 server-limit-reached, its Retry-After header and retry_after member saying the same.
        var (_, refused, refusedHeaders) = await c.CallAsync(HttpMethod.Post, "/database/admin/provision-pool", "/database/admin/provision-pool", Mk, expect: [503]);
        Assert.Equal("urn:tenantdb:problem:server-limit-reached", refused.GetProperty("type").GetString());
        Assert.Equal(refused.GetProperty("retry_after").GetInt32(), (int)refusedHeaders.RetryAfter!.Delta!.Value.TotalSeconds);

        // A change to a dedicated tier: 202 and its run (at the server limit it waits for room; the host ends with it).
        var (_, tierRun, tierHeaders) = await c.CallAsync(HttpMethod.Patch, Allocation, $"/database/allocations/{a}", Fk, new { plan_tier = "premium" }, expect: [202]);
        Assert.NotNull(tierHeaders.Location);
        Assert.Equal("changing", tierRun.GetProperty("status").GetString());

        var documented = contract.Operations.Select(o => $"{o.Method} {o.Path}").ToHashSet();
        Console.WriteLine($"contract: operations exercised {c.Operations.Count}/{documented.Count}, answers validated {c.Validated}, failures {c.Failures.Count}");
        Assert.True(c.Failures.Count == 0, "answers that do not match openapi.yaml:\n" + string.Join('\n', c.Failures));
        Assert.True(documented.SetEquals(c.Operations), "operations the flow did not exercise: " + string.Join(", ", documented.Except(c.Operations)));
    }

    [Fact]
    public async Task InlinePasswordMode_AllocateAndRotateAnswers_ValidateAgainstTheSameSchemas()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Allocation__InlinePassword"] = "true" });
        var c = new Checker(host, OpenApiContract.Parse(OpenApiFunctions.Text));
        const string Fk = AllocatorHost.FunctionKey;

        var a = Guid.NewGuid();
        var (_, accepted, _) = await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(a), expect: [202]);
        var done = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var (_, first, _) = await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(a), expect: [200]);
        Assert.True(first.TryGetProperty("db_password", out _), "the first 200 after the 202 carries db_password");
        var b = Guid.NewGuid();
        var (_, created, _) = await c.CallAsync(HttpMethod.Post, Allocate, Allocate, Fk, Request(b), expect: [200]);
        Assert.True(created.TryGetProperty("db_password", out _), "the creating 200 carries db_password");
        var (_, rotated, _) = await c.CallAsync(HttpMethod.Post, Rotate, $"/database/credentials/{b}/rotate", Fk, expect: [200]);
        Assert.True(rotated.TryGetProperty("db_password", out _) && rotated.TryGetProperty("db_user", out _), "an inline rotation answers db_user and db_password");

        Console.WriteLine($"contract (inline passwords): answers validated {c.Validated}, failures {c.Failures.Count}");
        Assert.True(c.Failures.Count == 0, "answers that do not match openapi.yaml:\n" + string.Join('\n', c.Failures));
    }

    /// <summary>Calls until the answer is <paramref name="wanted"/> (each answer checked), while it is <paramref name="meanwhile"/>; bounded.</summary>
    private static async Task UntilAsync(Checker c, HttpMethod method, string template, string path, string key, int wanted, int meanwhile)
    {
        for (var deadline = DateTimeOffset.UtcNow.AddSeconds(120); ;)
        {
            var (status, _, _) = await c.CallAsync(method, template, path, key, expect: [wanted, meanwhile]);
            if (status == wanted)
            {
                return;
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, $"{method} {path} still answered {status} after 120 s");
            await Task.Delay(500);
        }
    }

    /// <summary>The allocate body of an instance: the same customer every time (another one is a 409 conflict).</summary>
    private static object Request(Guid instance, string tier = "standard") =>
        new { instance_id = instance.ToString(), customer_id = new Guid(instance.ToByteArray().Reverse().ToArray()).ToString(), plan_tier = tier };

    /// <summary>The allocate body with a <c>callback_url</c> (issue 14 item 6).</summary>
    private static object RequestWithCallback(Guid instance, string callbackUrl) =>
        new { instance_id = instance.ToString(), customer_id = new Guid(instance.ToByteArray().Reverse().ToArray()).ToString(), plan_tier = "standard", callback_url = callbackUrl };
}
