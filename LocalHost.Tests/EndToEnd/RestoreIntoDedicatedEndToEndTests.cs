using System.Diagnostics;
using System.Text.Json;
using Azure.Storage.Blobs;
using Npgsql;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 14 item 2, restore into a new instance of a DEDICATED tier, over real HTTP: LocalHost, the Durable runs on Azurite, the
/// dumps in a blob container, process-driver servers. The target gets its own dedicated server (provisioned by the run, as the
/// allocate route's 202 path would), then is filled like a shared target; a restore that fails leaves no target and retires
/// the dedicated server it made. The same wait serves a shared tier whose pools are all full: the run provisions the next pool.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class RestoreIntoDedicatedEndToEndTests(ITestOutputHelper output)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(300);
    private const int Rows = 1800;

    [Fact]
    public async Task RestoreIntoNewInstance_DedicatedTier_TargetOnItsOwnServerWithTheRows_PasswordClaimedLogsIn_SourceUntouched()
    {
        await using var host = await AllocatorHost.StartAsync();
        var customer = Guid.NewGuid();
        var (source, sourceCredentials) = await AllocatePremiumWithRowsAsync(host, customer);
        var sourceServer = await host.ScalarAsync($"SELECT db_server_id FROM tenant_databases WHERE instance_id = '{source}' AND status = 'ready'");
        var backupId = await BackUpAsync(host, source);
        var target = Guid.NewGuid();

        var watch = Stopwatch.StartNew();
        var run = await RestoreIntoAsync(host, source, backupId, target);
        var seconds = watch.Elapsed.TotalSeconds;

        var result = run.GetProperty("output");
        output.WriteLine($"restore into a dedicated target: {result}");
        Assert.True(result.GetProperty("status").GetString() == "restored", result.ToString());
        Assert.Equal("restored", run.GetProperty("customStatus").GetString());
        Assert.Equal((long)Rows, result.GetProperty("rows").GetInt64());
        Assert.DoesNotContain("password", result.ToString(), StringComparison.OrdinalIgnoreCase);

        // The target's OWN dedicated server: made for this instance, active, holding exactly its database, not the source's server.
        var targetServer = result.GetProperty("db_server_id").GetInt64();
        Assert.NotEqual(sourceServer, targetServer);
        Assert.Equal(1L, await host.ScalarAsync(
            $"SELECT count(*) FROM db_servers WHERE id = {targetServer} AND server_type = 'dedicated' AND dedicated_to_instance_id = '{target}' AND status IN ('active', 'full') AND current_instances = 1"));
        Assert.Equal(1L, await host.ScalarAsync(
            $"SELECT count(*) FROM tenant_databases WHERE instance_id = '{target}' AND status = 'ready' AND db_server_id = {targetServer} AND plan_tier = 'premium' AND customer_id = '{customer}' AND restored_from_backup_id = '{backupId}'"));
        var (_, lookedUp) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{target}");
        Assert.Equal("dedicated", lookedUp.GetProperty("server_type").GetString());

        // Its password, claimed once through the handoff, logs in to the restored rows on that server.
        var targetCredentials = await ClaimAsync(host, result.GetProperty("claim_url").GetString()!);
        Assert.Equal(lookedUp.GetProperty("db_port").GetInt32(), targetCredentials.GetProperty("db_port").GetInt32());
        Assert.Equal((long)Rows, await ScalarAsync(targetCredentials, "SELECT count(*) FROM orders"));
        Assert.Equal(1L, await ScalarAsync(targetCredentials, "SELECT count(*) FROM orders WHERE note = 'n77'"));

        // The source is untouched: same server, its own password, its rows, writable; its server still holds only it.
        Assert.Equal(sourceServer, await host.ScalarAsync($"SELECT db_server_id FROM tenant_databases WHERE instance_id = '{source}' AND status = 'ready'"));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT current_instances FROM db_servers WHERE id = {sourceServer}"));
        Assert.Equal(Rows + 1L, await ScalarAsync(sourceCredentials, "INSERT INTO orders VALUES (999999, 'after'); SELECT count(*) FROM orders"));
        Assert.Equal((long)Rows, await ScalarAsync(targetCredentials, "SELECT count(*) FROM orders"));

        var report = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [source] = sourceCredentials, [target] = targetCredentials });
        Assert.True(report.Held, string.Join("\n", report.Problems));
        output.WriteLine(FormattableString.Invariant(
            $"restore into a dedicated target over HTTP: {Rows} rows, {seconds:0.0} s request to completed run (its server provisioned), last try {result.GetProperty("seconds").GetDouble():0.00} s"));
        ProofReport.Write(FormattableString.Invariant($"proof restore-dedicated: restored=1/1 own_server=true seconds={seconds:0.0}"));
    }

    [Fact]
    public async Task RestoreIntoNewInstance_DedicatedTier_ArchiveGone_FailsWithNoTarget_ItsDedicatedServerRetired()
    {
        await using var host = await AllocatorHost.StartAsync();
        var (source, sourceCredentials) = await AllocatePremiumWithRowsAsync(host, Guid.NewGuid());
        var backupId = await BackUpAsync(host, source);
        // The archive vanishes from the container after the backup completed: the run provisions the target's server first, and
        // only then fetches the archive, which fails.
        string blobName;
        await using (var catalog = new NpgsqlConnection(host.CatalogConnectionString))
        {
            await catalog.OpenAsync();
            await using var cmd = new NpgsqlCommand($"SELECT blob_name FROM tenant_backups WHERE id = '{backupId}'", catalog);
            blobName = (string)(await cmd.ExecuteScalarAsync())!;
        }

        var container = new BlobServiceClient(host.Settings["AzureWebJobsStorage"]).GetBlobContainerClient(host.Settings["Backups__Container"]);
        Assert.True((await container.GetBlobClient(blobName).DeleteIfExistsAsync()).Value);
        var target = Guid.NewGuid();

        var run = await RestoreIntoAsync(host, source, backupId, target);

        var result = run.GetProperty("output");
        output.WriteLine($"restore into a dedicated target, archive gone: {result}");
        Assert.True(result.GetProperty("status").GetString() == "failed", result.ToString());
        var error = result.GetProperty("error").GetString()!;
        Assert.Contains("was retired", error, StringComparison.Ordinal);
        // Nothing of the target: no live row, no claim, and the dedicated server made for it retired (deleted, its server gone).
        Assert.Equal(0L, await host.ScalarAsync($"SELECT count(*) FROM tenant_databases WHERE instance_id = '{target}' AND status IN ('creating', 'ready', 'released')"));
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{target}")).Status);
        Assert.Equal(1L, await host.ScalarAsync($"SELECT count(*) FROM db_servers WHERE dedicated_to_instance_id = '{target}'"));
        Assert.Equal(0L, await host.ScalarAsync($"SELECT count(*) FROM db_servers WHERE dedicated_to_instance_id = '{target}' AND status <> 'deleted'"));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT count(*) FROM pool_events WHERE instance_id = '{target}' AND event = 'dedicated_reclaimed'"));
        Assert.Equal(1L, await host.ScalarAsync($"SELECT count(*) FROM db_servers WHERE dedicated_to_instance_id = '{target}' AND port IS NOT NULL"));
        var port = (int)await host.ScalarAsync($"SELECT port FROM db_servers WHERE dedicated_to_instance_id = '{target}'");
        Assert.False(await AcceptsAsync(port), $"the retired server still listens on {port}");

        // The source is untouched.
        Assert.Equal((long)Rows, await ScalarAsync(sourceCredentials, "SELECT count(*) FROM orders"));
        var report = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [source] = sourceCredentials });
        Assert.True(report.Held, string.Join("\n", report.Problems));
        ProofReport.Write("proof restore-dedicated: failed_left_nothing=true");
    }

    [Fact]
    public async Task RestoreIntoNewInstance_SharedTierWithNoRoom_WaitsForTheNextSharedPool_ThenRestored()
    {
        // One tenant per shared pool: the source fills the only one, so the target has no room until the run provisions the next.
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Pools__Shared__MaxInstances"] = "1", ["Pools__WarmStock"] = "0" });
        var (source, sourceCredentials) = await AllocateWithRowsAsync(host, Guid.NewGuid(), "standard");
        var sourceServer = await host.ScalarAsync($"SELECT db_server_id FROM tenant_databases WHERE instance_id = '{source}' AND status = 'ready'");
        Assert.Equal(0L, await host.ScalarAsync("SELECT coalesce(sum(max_instances - current_instances), 0) FROM db_servers WHERE server_type = 'shared' AND status IN ('active', 'full')"));
        var backupId = await BackUpAsync(host, source);
        var target = Guid.NewGuid();

        var run = await RestoreIntoAsync(host, source, backupId, target);

        var result = run.GetProperty("output");
        output.WriteLine($"restore into a shared target with no room: {result}");
        Assert.True(result.GetProperty("status").GetString() == "restored", result.ToString());
        var targetServer = result.GetProperty("db_server_id").GetInt64();
        Assert.NotEqual(sourceServer, targetServer);
        Assert.Equal(1L, await host.ScalarAsync($"SELECT count(*) FROM db_servers WHERE id = {targetServer} AND server_type = 'shared' AND current_instances = 1"));
        var targetCredentials = await ClaimAsync(host, result.GetProperty("claim_url").GetString()!);
        Assert.Equal((long)Rows, await ScalarAsync(targetCredentials, "SELECT count(*) FROM orders"));
        Assert.Equal((long)Rows, await ScalarAsync(sourceCredentials, "SELECT count(*) FROM orders"));
        var report = await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [source] = sourceCredentials, [target] = targetCredentials });
        Assert.True(report.Held, string.Join("\n", report.Problems));
        ProofReport.Write("proof restore-dedicated: shared_waited_for_pool=true");
    }

    private Task<(Guid Instance, JsonElement Credentials)> AllocatePremiumWithRowsAsync(AllocatorHost host, Guid customer) =>
        AllocateWithRowsAsync(host, customer, "premium");

    private async Task<(Guid Instance, JsonElement Credentials)> AllocateWithRowsAsync(AllocatorHost host, Guid customer, string tier)
    {
        var instance = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = instance.ToString(), customer_id = customer.ToString(), plan_tier = tier });
        Assert.True(status == 202, $"allocate {tier} answered {status}: {accepted}");
        var placed = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        var claimUrl = placed.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()!;
        var credentials = await ClaimAsync(host, claimUrl);
        Assert.Equal((long)Rows, await ScalarAsync(credentials,
            $"CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, {Rows}) g; SELECT count(*) FROM orders"));
        Assert.Equal(1L, await host.ScalarAsync(
            $"SELECT count(*) FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id WHERE t.instance_id = '{instance}' AND " +
            (tier == "premium" ? $"s.server_type = 'dedicated' AND s.dedicated_to_instance_id = '{instance}'" : "s.server_type = 'shared'")));
        return (instance, credentials);
    }

    // A claim answered 503 (its deposit not applied within the claim's bounded wait, on a loaded machine) is asked again after its
    // Retry-After, as a client does; a 503 is never a lost password (the claim takes it once, on the 200).
    private async Task<JsonElement> ClaimAsync(AllocatorHost host, string claimUrl)
    {
        for (var attempt = 1; ; attempt++)
        {
            var (status, body) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
            if (status == 503 && attempt < 5)
            {
                output.WriteLine($"claim answered 503 ({(body.ValueKind == JsonValueKind.Object && body.TryGetProperty("type", out var type) ? type.GetString() : "?")}); asking again");
                await Task.Delay(TimeSpan.FromSeconds(2));
                continue;
            }

            Assert.True(status == 200, $"the claim answered {status}: {(body.ValueKind == JsonValueKind.Object && body.TryGetProperty("type", out var problem) ? problem.GetString() : "")}");
            host.Seen.Add(body.GetProperty("db_password").GetString()!);
            return body;
        }
    }

    private static async Task<string> BackUpAsync(AllocatorHost host, Guid instance)
    {
        using var request = host.Request(HttpMethod.Post, $"/api/database/allocations/{instance}/backups");
        using var response = await host.Client.SendAsync(request);
        Assert.Equal(202, (int)response.StatusCode);
        var run = await host.WaitForOrchestrationAsync(response.Headers.Location!.ToString(), RunTimeout);
        var backup = run.GetProperty("output");
        Assert.True(backup.GetProperty("status").GetString() == "completed", backup.ToString());
        return backup.GetProperty("backup_id").GetString()!;
    }

    private static async Task<JsonElement> RestoreIntoAsync(AllocatorHost host, Guid source, string backupId, Guid target)
    {
        var (started, restore) = await host.SendAsync(HttpMethod.Post, $"/api/database/allocations/{source}/backups/{backupId}/restore",
            body: new { target_instance_id = target.ToString() });
        Assert.True(started == 202, restore.ToString());
        Assert.Equal(target.ToString(), restore.GetProperty("target_instance_id").GetString());
        var run = await host.WaitForOrchestrationAsync(restore.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        Assert.True(run.GetProperty("runtimeStatus").GetString() == "Completed", run.ToString());
        return run;
    }

    private static async Task<long> ScalarAsync(JsonElement credentials, string sql)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new System.Net.Sockets.TcpClient();
        try
        {
            await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
