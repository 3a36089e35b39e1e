using System.Diagnostics;
using System.Text.Json;
using Npgsql;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 14, the end of a tenant's life over real HTTP: LocalHost, the Durable runs on Azurite, the dumps in a blob container
/// of the shared Azurite, a process-driver pool. Release → its final backup; un-release → the data back, a new password
/// claimed logs in, the old one is refused; release again and purge now → the database gone, its final backup kept.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class LifecycleEndToEndTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(180);

    private static async Task<long> CountAsync(JsonElement credentials, string sql)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<bool> LogsInAsync(JsonElement credentials)
    {
        try
        {
            await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
            await conn.OpenAsync();
            return true;
        }
        catch (PostgresException)
        {
            return false;
        }
    }

    /// <summary>Waits (bounded) until the instance's backup <paramref name="backupId"/> is listed completed.</summary>
    private static async Task<JsonElement> CompletedAsync(AllocatorHost host, Guid instance, string backupId)
    {
        for (var deadline = DateTimeOffset.UtcNow + RunTimeout; ;)
        {
            var (status, list) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/backups");
            Assert.Equal(200, status);
            var entry = list.GetProperty("backups").EnumerateArray().Single(b => b.GetProperty("backup_id").GetString() == backupId);
            var state = entry.GetProperty("status").GetString();
            Assert.True(state is "creating" or "completed", entry.ToString());
            if (state == "completed")
            {
                return entry;
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, $"backup {backupId} still {state}");
            await Task.Delay(300);
        }
    }

    [Fact]
    public async Task ReleaseUnreleasePurgeNow_OverHttp_FinalBackupTaken_DataBack_NewPasswordOnly_ThenGoneWithItsBackupKept()
    {
        await using var host = await AllocatorHost.StartAsync();
        var instance = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        Assert.Equal(202, status);
        var placed = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        var claimUrl = placed.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()!;
        var (claimed, before) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
        Assert.Equal(200, claimed);
        host.Seen.Add(before.GetProperty("db_password").GetString()!);
        await using (var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(before)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 4321);", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        // The operators' backup route: the same 202 and run.
        using (var request = host.Request(HttpMethod.Post, $"/api/database/admin/allocations/{instance}/backups", AllocatorHost.MasterKey))
        using (var response = await host.Client.SendAsync(request))
        {
            Assert.Equal(202, (int)response.StatusCode);
            var run = await host.WaitForOrchestrationAsync(response.Headers.Location!.ToString(), RunTimeout);
            Assert.Equal("completed", run.GetProperty("output").GetProperty("status").GetString());
        }

        // Release: the final backup starts with it.
        var watch = Stopwatch.StartNew();
        var (released, release) = await host.SendAsync(HttpMethod.Delete, $"/api/database/allocations/{instance}");
        var releaseMs = watch.Elapsed.TotalMilliseconds;
        Assert.Equal(200, released);
        var finalId = release.GetProperty("final_backup_id").GetString()!;
        var final = await CompletedAsync(host, instance, finalId);
        var finalSeconds = watch.Elapsed.TotalSeconds;
        Assert.Equal("final", final.GetProperty("kind").GetString());
        Assert.False(await LogsInAsync(before), "a released tenant's password is refused");

        // Un-release: the data back, a new password through the handoff; the old one stays refused.
        var (unreleased, back) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{instance}/restore-release");
        Assert.True(unreleased == 200, back.ToString());
        Assert.Equal("ready", back.GetProperty("status").GetString());
        Assert.False(back.TryGetProperty("db_password", out _));
        var (claimedAgain, after) = await host.SendAsync(HttpMethod.Post, new Uri(back.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
        Assert.Equal(200, claimedAgain);
        host.Seen.Add(after.GetProperty("db_password").GetString()!);
        Assert.NotEqual(before.GetProperty("db_password").GetString(), after.GetProperty("db_password").GetString());
        Assert.Equal(4321L, await CountAsync(after, "SELECT count(*) FROM orders"));
        Assert.False(await LogsInAsync(before), "the password held before the release stays refused");
        var report = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [instance] = after });
        Assert.True(report.Held, string.Join("\n", report.Problems));
        var (again, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{instance}/restore-release");
        Assert.Equal(409, again);

        // Purge now: refused while ready; after a new release, done once its final backup is complete.
        Assert.Equal(409, (await host.SendAsync(HttpMethod.Delete, $"/api/database/admin/allocations/{instance}?purge=now", key: AllocatorHost.MasterKey)).Status);
        var (releasedAgain, secondRelease) = await host.SendAsync(HttpMethod.Delete, $"/api/database/allocations/{instance}");
        Assert.Equal(200, releasedAgain);
        Assert.NotEqual(finalId, secondRelease.GetProperty("final_backup_id").GetString());
        watch.Restart();
        JsonElement purged;
        for (var deadline = DateTimeOffset.UtcNow + RunTimeout; ;)
        {
            var (code, body) = await host.SendAsync(HttpMethod.Delete, $"/api/database/admin/allocations/{instance}?purge=now", key: AllocatorHost.MasterKey);
            Assert.True(code is 200 or 503, $"purge answered {code}: {body}");
            if (code == 200)
            {
                purged = body;
                break;
            }

            Assert.Equal("urn:tenantdb:problem:final-backup-unavailable", body.GetProperty("type").GetString());
            Assert.True(DateTimeOffset.UtcNow < deadline, "purge now never found its final backup complete");
            await Task.Delay(500);
        }

        var purgeMs = watch.Elapsed.TotalMilliseconds;
        Assert.Equal("dropped", purged.GetProperty("status").GetString());
        Assert.Equal(secondRelease.GetProperty("final_backup_id").GetString(), purged.GetProperty("final_backup_id").GetString());
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}")).Status);
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{instance}/restore-release")).Status);
        // The backups outlive the database (until they expire): three completed, two of them final.
        var (listed, list) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/backups");
        Assert.Equal(200, listed);
        var backups = list.GetProperty("backups").EnumerateArray().ToList();
        Assert.Equal(3, backups.Count(b => b.GetProperty("status").GetString() == "completed"));
        Assert.Equal(2, backups.Count(b => b.GetProperty("kind").GetString() == "final"));
        // The catalog and the servers agree: no database left of the purged tenant, the pool's counter back.
        var gone = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement>());
        Assert.True(gone.Held, string.Join("\n", gone.Problems));
        Assert.Equal(0L, await host.ScalarAsync($"SELECT count(*) FROM tenant_databases WHERE instance_id = '{instance}' AND status <> 'dropped'"));
        Console.WriteLine(FormattableString.Invariant(
            $"lifecycle over HTTP: release answered in {releaseMs:0} ms; its final backup completed {finalSeconds:0.0} s after; purge now {purgeMs:0} ms"));
    }

    [Fact]
    public async Task RestoreIntoNewInstance_OverHttp_DataThere_SourceUntouched_TargetPasswordClaimedLogsIn()
    {
        await using var host = await AllocatorHost.StartAsync();
        var source = Guid.NewGuid();
        var customer = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = source.ToString(), customer_id = customer.ToString(), plan_tier = "standard" });
        Assert.Equal(202, status);
        var placed = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        var (_, sourceCredentials) = await host.SendAsync(HttpMethod.Post,
            new Uri(placed.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
        host.Seen.Add(sourceCredentials.GetProperty("db_password").GetString()!);
        await using (var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(sourceCredentials)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 2500) g;", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        using var backupRequest = host.Request(HttpMethod.Post, $"/api/database/allocations/{source}/backups");
        using var backupResponse = await host.Client.SendAsync(backupRequest);
        var backupRun = await host.WaitForOrchestrationAsync(backupResponse.Headers.Location!.ToString(), RunTimeout);
        var backupId = backupRun.GetProperty("output").GetProperty("backup_id").GetString()!;
        var target = Guid.NewGuid();

        var watch = Stopwatch.StartNew();
        var (started, restore) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{source}/backups/{backupId}/restore",
            body: new { target_instance_id = target.ToString() });
        Assert.True(started == 202, restore.ToString());
        Assert.Equal(target.ToString(), restore.GetProperty("target_instance_id").GetString());
        var run = await host.WaitForOrchestrationAsync(restore.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        var seconds = watch.Elapsed.TotalSeconds;
        var output = run.GetProperty("output");
        Assert.True(output.GetProperty("status").GetString() == "restored", output.ToString());
        Assert.Equal(2500L, output.GetProperty("rows").GetInt64());
        Assert.DoesNotContain("password", output.ToString(), StringComparison.OrdinalIgnoreCase);

        // The target's password through the handoff: claimed once, it logs in to the restored data.
        var (claimed, targetCredentials) = await host.SendAsync(HttpMethod.Post, new Uri(output.GetProperty("claim_url").GetString()!).PathAndQuery);
        Assert.Equal(200, claimed);
        host.Seen.Add(targetCredentials.GetProperty("db_password").GetString()!);
        Assert.Equal(2500L, await CountAsync(targetCredentials, "SELECT count(*) FROM orders"));
        Assert.Equal(1L, await CountAsync(targetCredentials, "SELECT count(*) FROM orders WHERE note = 'n77'"));
        Assert.NotEqual(sourceCredentials.GetProperty("db_name").GetString(), targetCredentials.GetProperty("db_name").GetString());
        // The target is the backed-up tenant's customer and tier, and says which backup it came from.
        var (_, lookedUp) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{target}");
        Assert.Equal("standard", lookedUp.GetProperty("plan_tier").GetString());
        Assert.Equal(1L, await host.ScalarAsync(
            $"SELECT count(*) FROM tenant_databases WHERE instance_id = '{target}' AND status = 'ready' AND customer_id = '{customer}' AND restored_from_backup_id = '{backupId}'"));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT count(*) FROM pool_events WHERE instance_id = '{target}' AND event = 'tenant_restored' AND reason LIKE '%{backupId}%'"));
        // The source is untouched: its own password, its rows, writable.
        Assert.Equal(2500L, await CountAsync(sourceCredentials, "SELECT count(*) FROM orders"));
        await using (var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(sourceCredentials)))
        {
            await conn.OpenAsync();
            await using var write = new NpgsqlCommand("INSERT INTO orders VALUES (9999, 'after')", conn);
            await write.ExecuteNonQueryAsync();
        }

        Assert.Equal(2500L, await CountAsync(targetCredentials, "SELECT count(*) FROM orders"));

        // Refusals: a target that exists (409), a target id that is not a UUID (400), an unknown backup (404).
        var (exists, existsProblem) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{source}/backups/{backupId}/restore",
            body: new { target_instance_id = target.ToString() });
        Assert.Equal(409, exists);
        Assert.Equal("urn:tenantdb:problem:target-exists", existsProblem.GetProperty("type").GetString());
        Assert.Equal(400, (await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{source}/backups/{backupId}/restore",
            body: new { target_instance_id = "not-a-uuid" })).Status);
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{source}/backups/{Guid.NewGuid()}/restore",
            body: new { target_instance_id = Guid.NewGuid().ToString() })).Status);

        var report = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [source] = sourceCredentials, [target] = targetCredentials });
        Assert.True(report.Held, string.Join("\n", report.Problems));
        Console.WriteLine(FormattableString.Invariant(
            $"restore into a new instance over HTTP: {output.GetProperty("rows").GetInt64()} rows in {output.GetProperty("seconds").GetDouble():0.00} s (run), {seconds:0.00} s (request to completed run)"));
    }
}
