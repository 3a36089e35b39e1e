using System.Text.Json;
using Npgsql;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 14, moves over real HTTP: LocalHost serving the app, the Durable runs on Azurite, process-driver pools. The platform's
/// flow (allocate, write, move, read with the same password at the new port, back up, drop, restore, read), an evacuation of
/// a pool of ten tenants, and a move whose target server dies mid-copy.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class MoveEndToEndTests(ITestOutputHelper output)
{
    private static readonly TimeSpan RunTimeout = TenantFlows.RunTimeout;

    private static string At(JsonElement credentials, int port) =>
        new NpgsqlConnectionStringBuilder(TenantInvariants.ConnectionString(credentials)) { Port = port }.ConnectionString;

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 600 };
        return Convert.ToInt64(await cmd.ExecuteScalarAsync() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<string> DataDirOfAsync(AllocatorHost host, long poolId)
    {
        foreach (var dataDir in Directory.GetDirectories(host.PoolsRoot))
        {
            if (await host.ScalarAsync($"SELECT count(*) FROM db_servers WHERE id = {poolId} AND name = '{Path.GetFileName(dataDir)}'") == 1)
            {
                return dataDir;
            }
        }

        throw new InvalidOperationException($"no data directory for pool {poolId}");
    }

    [Fact]
    public async Task MoveThenBackupDropRestore_OverHttp_RowReadWithTheSamePasswordAtTheNewPortBothTimes()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Pools__WarmStock"] = "0" });
        await host.ProvisionSharedPoolsAsync(1);
        var instance = Guid.NewGuid();
        var credentials = await host.AllocateClaimedAsync(instance);
        var sourcePort = credentials.GetProperty("db_port").GetInt32();
        await ScalarAsync(At(credentials, sourcePort), "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders VALUES (1, 'kept across the move') RETURNING 1");
        var source = await host.PoolOfAsync(instance);
        await host.ProvisionSharedPoolsAsync(1);
        var target = await host.ScalarAsync($"SELECT max(id) FROM db_servers WHERE status = 'active' AND id <> {source}");

        var moved = await host.RunToOutputAsync(HttpMethod.Post, $"/api/database/admin/allocations/{instance}/move", AllocatorHost.MasterKey, new { target_pool_id = target });

        Assert.True(moved.GetProperty("status").GetString() == "moved", moved.ToString());
        var there = await host.LookUpAsync(instance);
        Assert.Equal(target, there.GetProperty("db_server_id").GetInt64());
        Assert.Equal(2, there.GetProperty("generation").GetInt32());
        var port = there.GetProperty("db_port").GetInt32();
        Assert.NotEqual(sourcePort, port);
        Assert.Equal(1L, await ScalarAsync(At(credentials, port), "SELECT count(*) FROM orders WHERE note = 'kept across the move'"));
        await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(At(credentials, sourcePort), "SELECT 1"));
        Assert.Equal(0L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {source}"));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {target}"));
        output.WriteLine($"move over HTTP: downtime {moved.GetProperty("downtime_ms").GetDouble():0} ms, {moved.GetProperty("seconds").GetDouble():0.0} s in all");

        var backup = await host.RunToOutputAsync(HttpMethod.Post, $"/api/database/allocations/{instance}/backups", AllocatorHost.FunctionKey);
        Assert.Equal("completed", backup.GetProperty("status").GetString());
        await ScalarAsync(At(credentials, port), "DROP TABLE orders; SELECT 1");
        var restored = await host.RunToOutputAsync(HttpMethod.Post,
            $"/api/database/allocations/{instance}/backups/{backup.GetProperty("backup_id").GetString()}/restore", AllocatorHost.FunctionKey);
        Assert.True(restored.GetProperty("status").GetString() == "restored", restored.ToString());
        Assert.Equal(1L, await ScalarAsync(At(credentials, port), "SELECT count(*) FROM orders WHERE note = 'kept across the move'"));
    }

    [Fact]
    public async Task TierChangeToDedicated_OverHttp_TenantMovedToItsOwnServerWithItsDataAndPassword()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Pools__WarmStock"] = "0" });
        await host.ProvisionSharedPoolsAsync(1);
        var instance = Guid.NewGuid();
        var credentials = await host.AllocateClaimedAsync(instance);
        await ScalarAsync(TenantInvariants.ConnectionString(credentials), "CREATE TABLE orders (id int); INSERT INTO orders VALUES (7); SELECT 1");
        var shared = await host.PoolOfAsync(instance);

        var changed = await host.RunToOutputAsync(HttpMethod.Patch, $"/api/database/allocations/{instance}", AllocatorHost.FunctionKey, new { plan_tier = "premium" });

        output.WriteLine($"tier change by a move: {changed}");
        Assert.True(changed.GetProperty("status").GetString() == "changed", changed.ToString());
        var there = await host.LookUpAsync(instance);
        Assert.Equal("premium", there.GetProperty("plan_tier").GetString());
        Assert.Equal("dedicated", there.GetProperty("server_type").GetString());
        Assert.Equal(2, there.GetProperty("generation").GetInt32());
        Assert.NotEqual(shared, there.GetProperty("db_server_id").GetInt64());
        Assert.Equal(7L, await ScalarAsync(At(credentials, there.GetProperty("db_port").GetInt32()), "SELECT id FROM orders"));
        Assert.Equal(0L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {shared}"));
    }

    [Fact]
    public async Task Evacuate_PoolOfTenTenants_AllMovedWithTheirDataThePoolRetires()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Pools__WarmStock"] = "0",
            ["Pools__Shared__MaxInstances"] = "10",
            ["Pools__EvacuateParallelism"] = "3",
        });
        await host.ProvisionSharedPoolsAsync(1);
        var tenants = new Dictionary<Guid, JsonElement>();
        for (var i = 0; i < 10; i++)
        {
            var instance = Guid.NewGuid();
            tenants[instance] = await host.AllocateClaimedAsync(instance);
            await ScalarAsync(TenantInvariants.ConnectionString(tenants[instance]),
                $"CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, {100 * (i + 1)}); SELECT 1");
        }

        var evacuated = await host.PoolOfAsync(tenants.Keys.First());
        await host.ProvisionSharedPoolsAsync(1);

        var progress = await host.RunToOutputAsync(HttpMethod.Post, $"/api/database/admin/pools/{evacuated}/evacuate", AllocatorHost.MasterKey);

        output.WriteLine($"evacuation: {progress}");
        Assert.Equal(10, progress.GetProperty("total").GetInt32());
        Assert.Equal(10, progress.GetProperty("moved").GetInt32());
        Assert.Equal(0, progress.GetProperty("failed").GetInt32());
        var i2 = 0;
        foreach (var (instance, credentials) in tenants)
        {
            var there = await host.LookUpAsync(instance);
            Assert.NotEqual(evacuated, there.GetProperty("db_server_id").GetInt64());
            var rows = await ScalarAsync(At(credentials, there.GetProperty("db_port").GetInt32()), "SELECT count(*) FROM t");
            Assert.True(rows is >= 100 and <= 1000 && rows % 100 == 0, $"tenant {i2++} has {rows} rows");
        }

        Assert.Equal(0L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {evacuated}"));
        Assert.Equal("draining", (await host.SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{evacuated}", AllocatorHost.MasterKey)).Body
            .GetProperty("pool").GetProperty("status").GetString());
        var (retired, _) = await host.SendAsync(HttpMethod.Delete, $"/api/database/admin/pools/{evacuated}", AllocatorHost.MasterKey);
        Assert.Equal(200, retired);
    }

    [Fact]
    public async Task Move_TargetServerKilledMidCopy_TenantBackOnItsSourceWritableCountersRight()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Pools__WarmStock"] = "0" });
        await host.ProvisionSharedPoolsAsync(1);
        var instance = Guid.NewGuid();
        var credentials = await host.AllocateClaimedAsync(instance);
        // Large enough that the copy is still streaming when the target dies.
        await ScalarAsync(TenantInvariants.ConnectionString(credentials),
            "CREATE TABLE big (id int, pad text); INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g; SELECT 1");
        var source = await host.PoolOfAsync(instance);
        await host.ProvisionSharedPoolsAsync(1);
        var target = await host.ScalarAsync($"SELECT max(id) FROM db_servers WHERE status = 'active' AND id <> {source}");
        var targetDir = await DataDirOfAsync(host, target);

        using var request = host.Request(HttpMethod.Post, $"/api/database/admin/allocations/{instance}/move", AllocatorHost.MasterKey, new { target_pool_id = target });
        using var response = await host.Client.SendAsync(request);
        Assert.Equal(202, (int)response.StatusCode);
        var deadline = DateTimeOffset.UtcNow.AddMinutes(1);
        // The copy runs while the source is frozen: the tenant's login refused (the freeze) means pg_restore is under way.
        while (await host.ScalarAsync($"SELECT count(*) FROM pool_events WHERE instance_id = '{instance}' AND event = 'tenant_move_started'") == 0
               || await CanLogInAsync(credentials))
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, "the move did not reach its copy");
            await Task.Delay(50);
        }

        await host.StopServerAsync(targetDir, immediate: true);
        var done = await host.WaitForOrchestrationAsync(response.Headers.Location!.ToString(), RunTimeout);
        var result = done.GetProperty("output");

        output.WriteLine($"move with its target killed: {result}");
        Assert.Equal("failed", result.GetProperty("status").GetString());
        Assert.Equal(source, await host.PoolOfAsync(instance));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT generation FROM tenant_databases WHERE instance_id = '{instance}' AND status = 'ready'"));
        Assert.Equal(400000L, await ScalarAsync(TenantInvariants.ConnectionString(credentials), "SELECT count(*) FROM big"));
        await ScalarAsync(TenantInvariants.ConnectionString(credentials), "INSERT INTO big VALUES (0, 'written after the failed move'); SELECT 1");
        Assert.Equal(1L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {source}"));
        Assert.Equal(0L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {target}"));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT count(*) FROM tenant_moves WHERE instance_id = '{instance}' AND status = 'failed'"));
    }

    private static async Task<bool> CanLogInAsync(JsonElement credentials)
    {
        try
        {
            await ScalarAsync(TenantInvariants.ConnectionString(credentials), "SELECT 1");
            return true;
        }
        catch (PostgresException)
        {
            return false;
        }
    }
}
