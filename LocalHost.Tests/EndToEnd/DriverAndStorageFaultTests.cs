using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Azure.Data.Tables;
using Npgsql;
using TenantDb.Functions.Drivers;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 11, faults: the provisioning driver failing (a few times, then for good) and the task hub's storage restarted under
/// a waiting allocation. Real failures of the real <c>process</c> driver (its data root made unusable for the <c>postgres</c>
/// user, then healed), a real Azurite of the test's own stopped and started again on its data. Each test ends with the
/// shared invariant check and writes its <c>proof faults</c> line.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class DriverAndStorageFaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(90);

    /// <summary>An allocate body; the customer id is derived from the instance id, so a repeated request is the same request.</summary>
    private static object Allocation(Guid instance) =>
        new { instance_id = instance.ToString(), customer_id = new Guid(instance.ToByteArray().Reverse().ToArray()).ToString(), plan_tier = "standard" };

    [Fact]
    public async Task Driver_FailingThreeTimesThenSucceeding_OnePoolActive_TheWaitingAllocateCompletes()
    {
        // Four attempts, 2 s then 4 s then 8 s apart: the data root is healed in the 8 s after the third failure.
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Provisioning__CreateAttempts"] = "4",
            ["Provisioning__FirstRetryInterval"] = "00:00:02",
        });
        var instance = Guid.NewGuid();
        var claimed = new Dictionary<Guid, JsonElement>();
        PoolDataRoot.Break(host.PoolsRoot);
        try
        {
            var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance));
            Assert.Equal(202, status);
            var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;

            var runId = await WaitForAsync(() => ScalarTextAsync(host, "SELECT provisioning_instance_id FROM db_servers WHERE status = 'provisioning'"),
                TimeSpan.FromSeconds(30), "the provisioning run was not started");
            var history = new DurableHistory(DevelopmentStorage, host.Settings["LocalHost__HubName"]);
            await WaitForAsync(async () => await history.CountAsync(runId, "TaskFailed", "CreatePoolServer") >= 3 ? "" : null,
                TimeSpan.FromSeconds(40), "the create step did not fail three times");
            Assert.Equal("provisioning", await ScalarTextAsync(host, "SELECT status FROM db_servers"));
            PoolDataRoot.Heal(host.PoolsRoot);

            var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
            Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
            var allocation = done.GetProperty("output").GetProperty("allocation");
            var failures = await history.CountAsync(runId, "TaskFailed", "CreatePoolServer");
            var creates = await history.CountAsync(runId, "TaskScheduled", "CreatePoolServer");
            output.WriteLine($"create attempts={creates} failed={failures}");
            Assert.Equal(3, failures);
            Assert.Equal(4, creates);

            var (again, placed) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance));
            Assert.Equal(200, again);
            Assert.Equal(allocation.GetProperty("db_name").GetString(), placed.GetProperty("db_name").GetString());
            var (claimStatus, credentials) = await host.SendAsync(HttpMethod.Post,
                new Uri(allocation.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
            Assert.Equal(200, claimStatus);
            claimed[instance] = credentials;
            Assert.Equal(allocation.GetProperty("db_name").GetString(), credentials.GetProperty("db_name").GetString());

            Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM db_servers WHERE status <> 'deleted'"));
            Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM db_servers WHERE status = 'active'"));
            Assert.Equal(0, await ScalarAsync(host, "SELECT count(*) FROM pool_events WHERE to_status = 'error'"));
            Assert.Single(Directory.GetDirectories(host.PoolsRoot));
            Assert.Single(PoolServerProcesses(host.PoolsRoot));
        }
        finally
        {
            PoolDataRoot.Heal(host.PoolsRoot);
        }

        var report = await TenantInvariants.CheckAsync(host, claimed);
        report.AssertSurvived("driver failing three times, then succeeding");
    }

    [Fact]
    public async Task Driver_AlwaysFailing_PoolInErrorServerRemoved_TheWaitEndsCleanly_AfterHealingAFreshRunServes()
    {
        // Two attempts half a second apart; one server at most, so the failed pool is the only one the broken driver makes
        // and the wait ends at its (shortest) timeout instead of trying pool after pool.
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Provisioning__CreateAttempts"] = "2",
            ["Provisioning__FirstRetryInterval"] = "00:00:00.500",
            ["Provisioning__MaxServers"] = "1",
            ["Allocation__WaitForCapacityTimeout"] = "00:00:40",
        });
        var instance = Guid.NewGuid();
        var claimed = new Dictionary<Guid, JsonElement>();
        PoolDataRoot.Break(host.PoolsRoot);
        try
        {
            var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance));
            Assert.Equal(202, status);
            var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;

            var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
            Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
            var result = done.GetProperty("output");
            Assert.True(result.GetProperty("done").GetBoolean());
            Assert.Equal("timed-out", result.GetProperty("step").GetString());
            Assert.True(result.GetProperty("allocation").ValueKind == JsonValueKind.Null, $"a broken driver allocated: {result}");

            // The failed pool: in error, with the failure recorded, its run ended, its server gone (no folder, no process).
            Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM db_servers"));
            Assert.Equal("error", await ScalarTextAsync(host, "SELECT status FROM db_servers"));
            var reason = await ScalarTextAsync(host, "SELECT reason FROM pool_events WHERE to_status = 'error'");
            Assert.False(string.IsNullOrEmpty(reason), "no pool event records the failure");
            output.WriteLine($"failure recorded: {reason}");
            var runId = (await ScalarTextAsync(host, "SELECT provisioning_instance_id FROM db_servers"))!;
            var history = new DurableHistory(DevelopmentStorage, host.Settings["LocalHost__HubName"]);
            Assert.Equal(2, await history.CountAsync(runId, "TaskFailed", "CreatePoolServer"));
            Assert.Equal(1, await history.CountAsync(runId, "TaskCompleted", "FailPool"));
            var run = await host.WaitForOrchestrationAsync(RunStatusUri(host, runId), RunTimeout);
            Assert.Equal("error", run.GetProperty("output").EnumerateObject().Single(p => p.NameEquals("Status") || p.NameEquals("status")).Value.GetString());
            Assert.Empty(Directory.GetDirectories(host.PoolsRoot));
            Assert.Empty(PoolServerProcesses(host.PoolsRoot));
            // No capacity leaked: no row for the tenant, nothing counted on the pool.
            Assert.Equal(0, await ScalarAsync(host, "SELECT count(*) FROM tenant_databases"));
            Assert.Equal(0, await ScalarAsync(host, "SELECT coalesce(sum(current_instances), 0) FROM db_servers"));
            var (lookup, _) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}");
            Assert.Equal(404, lookup);

            // While the failed pool holds the only server slot, an allocate is a fault answer (503 + Retry-After), not a hang.
            using (var refused = host.Request(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance)))
            using (var answer = await host.Client.SendAsync(refused))
            {
                Assert.Equal(503, (int)answer.StatusCode);
                Assert.NotNull(answer.Headers.RetryAfter);
            }

            PoolDataRoot.Heal(host.PoolsRoot);
            var poolId = await ScalarAsync(host, "SELECT id FROM db_servers");
            var (retired, _) = await host.SendAsync(HttpMethod.Delete, $"/api/database/admin/pools/{poolId}", AllocatorHost.MasterKey);
            Assert.Equal(200, retired);

            var (fresh, freshAccepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance));
            Assert.Equal(202, fresh);
            var freshDone = await host.WaitForOrchestrationAsync(
                freshAccepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
            Assert.Equal("Completed", freshDone.GetProperty("runtimeStatus").GetString());
            var allocation = freshDone.GetProperty("output").GetProperty("allocation");
            var freshRunId = await ScalarTextAsync(host, "SELECT provisioning_instance_id FROM db_servers WHERE status = 'active'");
            Assert.NotEqual(runId, freshRunId);
            var (claimStatus, credentials) = await host.SendAsync(HttpMethod.Post,
                new Uri(allocation.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
            Assert.Equal(200, claimStatus);
            claimed[instance] = credentials;

            Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM db_servers WHERE status = 'active'"));
            Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM db_servers WHERE status = 'deleted'"));
            Assert.Single(Directory.GetDirectories(host.PoolsRoot));
            Assert.Single(PoolServerProcesses(host.PoolsRoot));
        }
        finally
        {
            PoolDataRoot.Heal(host.PoolsRoot);
        }

        var report = await TenantInvariants.CheckAsync(host, claimed);
        report.AssertSurvived("driver always failing");
    }

    [Fact]
    public async Task Azurite_RestartedWhileAllocateWhenReadyWaitsOnATimer_TheWaitCompletesAfterwards()
    {
        // The shared Azurite serves other tests: this one restarts an Azurite of its own. The wait polls every 40 s, so the
        // restart falls inside the timer that follows the first try (the pool is made meanwhile).
        await using var azurite = await OwnAzurite.StartAsync();
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = azurite.ConnectionString,
            ["Allocation__WaitPollInterval"] = "00:00:40",
        });
        var instance = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance));
        Assert.Equal(202, status);
        var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;
        var waitId = $"allocate-{instance:D}";
        var history = new DurableHistory(azurite.ConnectionString, host.Settings["LocalHost__HubName"]);

        // The pool is active and its run finished; the wait sleeps on a durable timer that has not fired yet.
        var runId = await WaitForAsync(() => ScalarTextAsync(host, "SELECT provisioning_instance_id FROM db_servers WHERE status = 'active'"),
            TimeSpan.FromSeconds(60), "the pool did not become active");
        var provisioned = await host.WaitForOrchestrationAsync(RunStatusUri(host, runId), RunTimeout);
        Assert.Equal("Completed", provisioned.GetProperty("runtimeStatus").GetString());
        var events = await history.EventsAsync(waitId);
        var timers = events.Where(e => e.GetString("EventType") == "TimerCreated").ToList();
        var fired = events.Count(e => e.GetString("EventType") == "TimerFired");
        Assert.True(timers.Count == fired + 1, $"the wait is not on a timer: {timers.Count} timers created, {fired} fired");
        Assert.Equal(0, await ScalarAsync(host, "SELECT count(*) FROM tenant_databases"));
        var fireAt = timers[^1].GetDateTimeOffset("FireAt")!.Value;
        output.WriteLine($"timer due in {(fireAt - DateTimeOffset.UtcNow).TotalSeconds:0.0} s; restarting Azurite");

        var clock = Stopwatch.StartNew();
        // Azurite ignores SIGINT while the host holds connections open; after 10 s the script kills it (a crash, not a clean stop).
        output.WriteLine(await azurite.StopAsync(waitSeconds: 10));
        var stopped = clock.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(3));
        await azurite.StartAgainAsync();
        output.WriteLine($"Azurite stopped in {stopped.TotalSeconds:0.0} s, down for {clock.Elapsed.TotalSeconds:0.0} s; " +
            $"back {(fireAt - DateTimeOffset.UtcNow).TotalSeconds:0.0} s before the timer was due");

        var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var allocation = done.GetProperty("output").GetProperty("allocation");
        Assert.True(allocation.ValueKind == JsonValueKind.Object, $"the wait ended without a database: {done}");
        var before = events.Select(e => e.RowKey).ToHashSet();
        events = await history.EventsAsync(waitId);
        Assert.Subset(events.Select(e => e.RowKey).ToHashSet(), before); // the history written before the restart survived it
        Assert.Contains(events, e => e.GetString("EventType") == "TimerFired" && e.GetInt32("TimerId") == timers[^1].GetInt32("EventId"));
        output.WriteLine($"wait completed {clock.Elapsed.TotalSeconds:0.0} s after the restart began");

        var (again, placed) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance));
        Assert.Equal(200, again);
        Assert.Equal(allocation.GetProperty("db_name").GetString(), placed.GetProperty("db_name").GetString());
        var claimed = new Dictionary<Guid, JsonElement>();
        var (claimStatus, credentials) = await host.SendAsync(HttpMethod.Post,
            new Uri(allocation.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
        Assert.Equal(200, claimStatus);
        claimed[instance] = credentials;
        Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM tenant_databases WHERE status = 'ready'"));
        Assert.Equal(1, await ScalarAsync(host, "SELECT count(*) FROM db_servers WHERE status <> 'deleted'"));

        var report = await TenantInvariants.CheckAsync(host, claimed);
        report.AssertSurvived("Azurite restarted while AllocateWhenReady waits on a timer");
    }

    private const string DevelopmentStorage = "UseDevelopmentStorage=true";

    private static string RunStatusUri(AllocatorHost host, string runId) =>
        $"{host.BaseAddress}runtime/webhooks/durabletask/instances/{runId}?code={AllocatorHost.MasterKey}";

    /// <summary>
    /// An Azurite of the test's own (infra/azurite.sh on three free ports, its data in a temporary folder), stopped and started
    /// again on the same data; stopped and removed when disposed.
    /// </summary>
    private sealed class OwnAzurite : IAsyncDisposable
    {
        private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        private readonly string _data = Path.Combine(Path.GetTempPath(), "tenantdb-e2e", "azurite-" + Guid.NewGuid().ToString("N")[..10]);
        private readonly int _blobPort = FreePortRun();

        public string ConnectionString =>
            $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};" +
            $"BlobEndpoint=http://127.0.0.1:{_blobPort}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{_blobPort + 1}/devstoreaccount1;" +
            $"TableEndpoint=http://127.0.0.1:{_blobPort + 2}/devstoreaccount1;";

        public static async Task<OwnAzurite> StartAsync()
        {
            var azurite = new OwnAzurite();
            await azurite.StartAgainAsync();
            return azurite;
        }

        public Task<string> StartAgainAsync() => ScriptAsync("start");

        /// <summary>Stops it (SIGINT, SIGKILL after <paramref name="waitSeconds"/>); returns what the script said.</summary>
        public Task<string> StopAsync(int waitSeconds = 20) => ScriptAsync("stop", waitSeconds);

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            Directory.Delete(_data, recursive: true);
        }

        private async Task<string> ScriptAsync(string command, int stopWaitSeconds = 20)
        {
            var start = new ProcessStartInfo(Path.Combine(TestEnvironment.RepositoryRoot, "infra", "azurite.sh"), [command, _data])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["TENANTDB_AZURITE_PORT"] = _blobPort.ToString(CultureInfo.InvariantCulture);
            start.Environment["TENANTDB_STOP_WAIT"] = stopWaitSeconds.ToString(CultureInfo.InvariantCulture);
            using var process = Process.Start(start)!;
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            Assert.True(process.ExitCode == 0, $"infra/azurite.sh {command} failed: {await stdout}{await stderr}");
            return (await stdout + await stderr).Trim();
        }

        /// <summary>A loopback port whose next two ports are free as well (blob, queue, table).</summary>
        private static int FreePortRun()
        {
            for (var attempt = 0; ; attempt++)
            {
                var port = LocalPostgres.FreeLoopbackPort();
                if (port < 65000 && IsFree(port + 1) && IsFree(port + 2))
                {
                    return port;
                }

                Assert.True(attempt < 50, "no three consecutive free loopback ports");
            }
        }

        private static bool IsFree(int port)
        {
            var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            try
            {
                listener.Start();
                return true;
            }
            catch (System.Net.Sockets.SocketException)
            {
                return false;
            }
            finally
            {
                listener.Stop();
            }
        }
    }

    /// <summary>A Durable run's history as the Azure Storage backend keeps it (<c>{hub}History</c>, one partition per run).</summary>
    private sealed class DurableHistory(string connectionString, string hub)
    {
        private readonly TableClient _table = new(connectionString, hub + "History");

        public async Task<List<TableEntity>> EventsAsync(string instanceId)
        {
            var events = new List<TableEntity>();
            await foreach (var row in _table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {instanceId}")))
            {
                events.Add(row);
            }

            return events;
        }

        /// <summary>Events of one type; for a failed or completed task, matched by the name of the task it scheduled.</summary>
        public async Task<int> CountAsync(string instanceId, string eventType, string? name)
        {
            var events = await EventsAsync(instanceId);
            var scheduled = events.Where(e => e.GetString("EventType") == "TaskScheduled")
                .ToDictionary(e => e.GetInt32("EventId") ?? -1, e => e.GetString("Name"));
            return events.Count(e => e.GetString("EventType") == eventType && (name is null
                || (eventType == "TaskScheduled" ? e.GetString("Name") : scheduled.GetValueOrDefault(e.GetInt32("TaskScheduledId") ?? -2)) == name));
        }
    }

    /// <summary>Running postmasters whose data folder lies under <paramref name="root"/>.</summary>
    private static List<int> PoolServerProcesses(string root)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            string[] args;
            try
            {
                args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            var d = Array.IndexOf(args, "-D");
            if (args.Length > 0 && Path.GetFileName(args[0]) == "postgres" && d >= 0 && d + 1 < args.Length
                && args[d + 1].StartsWith(root + "/", StringComparison.Ordinal))
            {
                found.Add(pid);
            }
        }

        return found;
    }

    private static async Task<string> WaitForAsync(Func<Task<string?>> probe, TimeSpan timeout, string failure)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, failure);
            await Task.Delay(200);
        }
    }

    private static async Task<long> ScalarAsync(AllocatorHost host, string sql) =>
        Convert.ToInt64(await ScalarObjectAsync(host, sql), CultureInfo.InvariantCulture);

    private static async Task<string?> ScalarTextAsync(AllocatorHost host, string sql) => await ScalarObjectAsync(host, sql) as string;

    private static async Task<object?> ScalarObjectAsync(AllocatorHost host, string sql)
    {
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }
}
