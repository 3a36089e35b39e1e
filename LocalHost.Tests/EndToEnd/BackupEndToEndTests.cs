using System.Text.Json;
using Npgsql;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 14, backups and restore in place over real HTTP: LocalHost serving the app, the Durable runs on Azurite, the dump in
/// a blob of the shared Azurite, a process-driver pool. Backup, drop a table, restore: the table is back and the password the
/// tenant claimed before still logs in.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class BackupEndToEndTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(180);

    private static async Task ExecAsync(JsonElement credentials, string sql)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(JsonElement credentials, string sql)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<JsonElement> RunAsync(AllocatorHost host, HttpMethod method, string path)
    {
        using var request = host.Request(method, path);
        using var response = await host.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == 202, $"{method} {path} answered {(int)response.StatusCode}: {text}");
        var location = response.Headers.Location!.ToString();
        // Status URLs carry the host's system key, never the caller's function key.
        Assert.DoesNotContain(AllocatorHost.FunctionKey, location, StringComparison.Ordinal);
        Assert.DoesNotContain(AllocatorHost.FunctionKey, text, StringComparison.Ordinal);
        Assert.NotNull(response.Headers.RetryAfter);
        var done = await host.WaitForOrchestrationAsync(location, RunTimeout);
        Assert.True(done.GetProperty("runtimeStatus").GetString() == "Completed", done.ToString());
        return done.GetProperty("output");
    }

    [Fact]
    public async Task BackupDropTableRestore_OverHttp_TableBackAndClaimedPasswordStillLogsIn()
    {
        await using var host = await AllocatorHost.StartAsync();
        var instance = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        Assert.Equal(202, status);
        var placed = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        var claimUrl = placed.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()!;
        var (claimed, credentials) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
        Assert.Equal(200, claimed);
        host.Seen.Add(credentials.GetProperty("db_password").GetString()!);
        await ExecAsync(credentials, "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 500) g;");

        var backup = await RunAsync(host, HttpMethod.Post, $"/api/database/allocations/{instance}/backups");
        Assert.Equal("completed", backup.GetProperty("status").GetString());
        var backupId = backup.GetProperty("backup_id").GetString()!;
        var (listed, list) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/backups");
        Assert.Equal(200, listed);
        var entry = Assert.Single(list.GetProperty("backups").EnumerateArray());
        Assert.Equal(backupId, entry.GetProperty("backup_id").GetString());
        Assert.Equal(backup.GetProperty("sha256").GetString(), entry.GetProperty("sha256").GetString());

        await ExecAsync(credentials, "DROP TABLE orders;");
        var restored = await RunAsync(host, HttpMethod.Post, $"/api/database/allocations/{instance}/backups/{backupId}/restore");

        Assert.True(restored.GetProperty("status").GetString() == "restored", restored.ToString());
        Assert.Equal(500L, await CountAsync(credentials, "SELECT count(*) FROM orders"));
        Assert.Equal(1L, await host.ScalarAsync(
            $"SELECT count(*) FROM tenant_databases WHERE instance_id = '{instance}' AND restored_from_backup_id = '{backupId}'"));
        Console.WriteLine($"backup over HTTP: {backup.GetProperty("size_bytes").GetInt64()} bytes; restore downtime {restored.GetProperty("downtime_ms").GetDouble():0} ms");

        // Refusals: an unknown backup (404), a released tenant (409), an instance with nothing (404).
        var (unknown, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{instance}/backups/{Guid.NewGuid()}/restore");
        Assert.Equal(404, unknown);
        var other = Guid.NewGuid();
        Assert.Equal(200, (await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = other.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" })).Status);
        Assert.Equal(200, (await host.SendAsync(HttpMethod.Delete, $"/api/database/allocations/{other}")).Status);
        var (released, problem) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{other}/backups");
        Assert.Equal(409, released);
        Assert.Equal("urn:tenantdb:problem:allocation-not-ready", problem.GetProperty("type").GetString());
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{Guid.NewGuid()}/backups")).Status);

        // The catalog and the servers agree, and the claimed password logs in (nothing left of the restore's scratch databases).
        var report = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [instance] = credentials });
        Assert.True(report.Held, string.Join("\n", report.Problems));
    }
}
