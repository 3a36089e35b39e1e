using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 15 item 2 over real HTTP: LocalHost serving the app, process-driver pools. A tenant filled past a tiny size limit is
/// read-only after its pool's health check (the usage route and the look-up say so, writes are refused even after turning the
/// read-only default off), stays read-only on the pool it is moved to once that pool is checked, and a tier with a larger limit
/// makes it writable again at once.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class QuotaEndToEndTests(ITestOutputHelper output)
{
    [Fact]
    public async Task OverQuota_OverHttp_ReadOnlyAfterCheckKeptAcrossAMove_TierRaiseMakesItWritable()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Pools__WarmStock"] = "0",
            // An empty database is about 7.5 MiB: 6,000 rows of 1 KiB take it past 12 MiB.
            ["Pools__Tiers__standard__MaxSizeMb"] = "12",
            ["Pools__Tiers__professional__MaxSizeMb"] = "200",
        });
        await host.ProvisionSharedPoolsAsync(1);
        var instance = Guid.NewGuid();
        var credentials = await host.AllocateClaimedAsync(instance);
        var source = await host.PoolOfAsync(instance);
        await ExecuteAsync(TenantInvariants.ConnectionString(credentials),
            "CREATE TABLE blobs AS SELECT g AS id, repeat(md5(g::text), 32) AS body FROM generate_series(1, 6000) g");

        var (before, _) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/usage");
        Assert.Equal(200, before);
        await CheckAsync(host, source);
        var usage = await UsageAsync(host, instance);
        output.WriteLine($"usage after the check: {usage}");
        Assert.Equal("read_only", usage.GetProperty("quota_state").GetString());
        Assert.True(usage.GetProperty("percent_used").GetDouble() > 100, usage.ToString());
        Assert.Equal(12, usage.GetProperty("limits").GetProperty("max_size_mb").GetInt32());
        Assert.Equal("read_only", (await host.LookUpAsync(instance)).GetProperty("quota_state").GetString());
        Assert.Equal(6000L, await ScalarAsync(TenantInvariants.ConnectionString(credentials), "SELECT count(*) FROM blobs"));
        var refusedBefore = await WriteRefusedAsync(TenantInvariants.ConnectionString(credentials));

        // Moved while read-only: the move works, and the next check of the new pool makes it read-only there too.
        await host.ProvisionSharedPoolsAsync(1);
        var target = await host.ScalarAsync($"SELECT id FROM db_servers WHERE id <> {source} AND server_type = 'shared' ORDER BY id DESC LIMIT 1");
        await host.RunToOutputAsync(HttpMethod.Post, $"/api/database/admin/allocations/{instance}/move", AllocatorHost.MasterKey, new { target_pool_id = target });
        var there = await host.LookUpAsync(instance);
        Assert.Equal(target, there.GetProperty("db_server_id").GetInt64());
        var moved = At(credentials, there.GetProperty("db_port").GetInt32());
        Assert.Equal(6000L, await ScalarAsync(moved, "SELECT count(*) FROM blobs"));
        await CheckAsync(host, target);
        Assert.Equal("read_only", (await UsageAsync(host, instance)).GetProperty("quota_state").GetString());
        var refusedAfterMove = await WriteRefusedAsync(moved);

        // A tier with a larger limit: writable again in the PATCH's own answer.
        var lift = Stopwatch.StartNew();
        var (patched, changed) = await host.SendAsync(HttpMethod.Patch, $"/api/database/allocations/{instance}", body: new { plan_tier = "professional" });
        lift.Stop();
        Assert.True(patched == 200, changed.ToString());
        Assert.Equal("ok", changed.GetProperty("quota_state").GetString());
        await ExecuteAsync(moved, "INSERT INTO blobs VALUES (0, 'writable again')");
        Assert.Equal(6001L, await ScalarAsync(moved, "SELECT count(*) FROM blobs"));
        var events = await EventNamesAsync(host, instance);
        Assert.Contains("quota_read_only", events);
        Assert.Contains("quota_lifted", events);

        var size = usage.GetProperty("size_bytes").GetInt64();
        ProofReport.Write(string.Create(CultureInfo.InvariantCulture,
            $"proof quota: tenant_mb={size / 1048576.0:0.0} limit_mb=12 read_only_after_check={(refusedBefore ? "true" : "false")} read_only_after_move={(refusedAfterMove ? "true" : "false")} writable_after_tier_raise=true lift_ms={lift.ElapsedMilliseconds}"));
    }

    /// <summary>True when an INSERT is refused for lack of privilege after the session turned the read-only default off.</summary>
    private static async Task<bool> WriteRefusedAsync(string connectionString)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        // Its own command: a batch is one transaction, which began with the read-only default.
        await using (var off = new NpgsqlCommand("SET default_transaction_read_only = off", conn))
        {
            await off.ExecuteNonQueryAsync();
        }

        await using var insert = new NpgsqlCommand("INSERT INTO blobs VALUES (0, 'over quota')", conn);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync());
        Assert.True(refused.SqlState == PostgresErrorCodes.InsufficientPrivilege, $"{refused.SqlState} {refused.MessageText}");
        return true;
    }

    private static async Task CheckAsync(AllocatorHost host, long poolId)
    {
        var (status, report) = await host.SendAsync(HttpMethod.Post, $"/api/database/admin/pools/{poolId}/health-check", AllocatorHost.MasterKey);
        Assert.True(status == 200, report.ToString());
    }

    private static async Task<JsonElement> UsageAsync(AllocatorHost host, Guid instance)
    {
        var (status, body) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/usage");
        Assert.True(status == 200, body.ToString());
        return body;
    }

    private static async Task<IReadOnlyList<string>> EventNamesAsync(AllocatorHost host, Guid instance)
    {
        var (status, body) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/events?limit=200");
        Assert.Equal(200, status);
        return body.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("event").GetString()!).ToList();
    }

    private static string At(JsonElement credentials, int port) =>
        new NpgsqlConnectionStringBuilder(TenantInvariants.ConnectionString(credentials)) { Port = port }.ConnectionString;

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 600 };
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 600 };
        return Convert.ToInt64(await cmd.ExecuteScalarAsync() ?? 0L, CultureInfo.InvariantCulture);
    }

}
