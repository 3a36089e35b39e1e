using System.Text.Json;
using Npgsql;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>Real HTTP against a started LocalHost serving the real Functions app: the instance-service's whole flow.</summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class EndToEndTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    private static object Allocation(Guid instance, Guid customer, string tier = "standard") =>
        new { instance_id = instance.ToString(), customer_id = customer.ToString(), plan_tier = tier };

    private static async Task ConnectAsync(JsonElement credentials)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("CREATE TABLE hello(x int); SELECT current_database()", conn);
        Assert.Equal(credentials.GetProperty("db_name").GetString(), (string?)await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task EmptySystem_AllocateWaitsForNewPool_ClaimOnceAndConnect_SecondInstanceLandsThere()
    {
        await using var host = await AllocatorHost.StartAsync();
        var first = Guid.NewGuid();

        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(first, Guid.NewGuid()));

        Assert.Equal(202, status);
        Assert.Equal("provisioning", accepted.GetProperty("status").GetString());
        var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;
        var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var allocation = done.GetProperty("output").GetProperty("allocation");
        Assert.False(allocation.TryGetProperty("db_password", out _), "an orchestration's output must never carry the password");
        var claimUrl = allocation.GetProperty("credentials").GetProperty("claim_url").GetString()!;

        var (claimStatus, credentials) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
        Assert.Equal(200, claimStatus);
        await ConnectAsync(credentials);
        var (again, problem) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
        Assert.Equal(410, again);
        Assert.StartsWith("urn:tenantdb:problem:", problem.GetProperty("type").GetString());

        var second = Guid.NewGuid();
        var (placedStatus, placed) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(second, Guid.NewGuid()));
        Assert.Equal(200, placedStatus);
        Assert.Equal(allocation.GetProperty("pool_name").GetString(), placed.GetProperty("pool_name").GetString());
        var (secondClaim, secondCredentials) = await host.SendAsync(HttpMethod.Post, new Uri(placed.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
        Assert.Equal(200, secondClaim);
        await ConnectAsync(secondCredentials);

        var (lookup, where) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{first}");
        Assert.Equal(200, lookup);
        Assert.Equal("allocated", where.GetProperty("status").GetString());

        var (statsStatus, stats) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/stats", AllocatorHost.MasterKey);
        Assert.Equal(200, statsStatus);
        Assert.Equal(2, stats.GetProperty("total_tenants").GetInt32());
        var (listStatus, list) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/pools?status=active", AllocatorHost.MasterKey);
        Assert.Equal(200, listStatus);
        var pool = Assert.Single(list.GetProperty("pools").EnumerateArray());
        Assert.Equal(2, pool.GetProperty("current_instances").GetInt32());

        var log = await File.ReadAllTextAsync(host.LogFile);
        Assert.DoesNotContain(credentials.GetProperty("db_password").GetString()!, log);
        Assert.DoesNotContain(secondCredentials.GetProperty("db_password").GetString()!, log);
    }

    [Fact]
    public async Task StoppedPoolServer_IsUnhealthyAfterTheHealthCheck_AndHealthyWhenBack()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Pools__UnhealthyAfterFailures"] = "1" });
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(Guid.NewGuid(), Guid.NewGuid()));
        Assert.Equal(202, status);
        await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        var (_, list) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/pools", AllocatorHost.MasterKey);
        var poolId = Assert.Single(list.GetProperty("pools").EnumerateArray()).GetProperty("id").GetInt64();
        var dataDir = Assert.Single(Directory.GetDirectories(host.PoolsRoot));

        await host.StopServerAsync(dataDir);
        var (checkStatus, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/admin/pools/{poolId}/health-check", AllocatorHost.MasterKey);
        var (_, down) = await host.SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{poolId}", AllocatorHost.MasterKey);

        Assert.Equal(200, checkStatus);
        Assert.Equal("unhealthy", PoolOf(down).GetProperty("health_status").GetString());

        await host.StartServerAsync(dataDir);
        await host.SendAsync(HttpMethod.Post, $"/api/database/admin/pools/{poolId}/health-check", AllocatorHost.MasterKey);
        var (_, up) = await host.SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{poolId}", AllocatorHost.MasterKey);
        Assert.Equal("healthy", PoolOf(up).GetProperty("health_status").GetString());
    }

    private static JsonElement PoolOf(JsonElement detail) => detail.TryGetProperty("pool", out var pool) ? pool : detail;

    [Fact]
    public async Task Keys_MissingOrWrongKey401_FunctionKeyOnAdminRoute401()
    {
        await using var host = await AllocatorHost.StartAsync();
        var body = Allocation(Guid.NewGuid(), Guid.NewGuid());

        var (missing, _) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", key: null, body: body);
        var (wrong, _) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", key: "not-a-key", body: body);
        var (adminWithFunctionKey, _) = await host.SendAsync(HttpMethod.Post, "/api/database/admin/provision-pool", key: AllocatorHost.FunctionKey);
        var (badInput, problem) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: new { instance_id = "'; DROP TABLE db_servers; --" });

        Assert.Equal(401, missing);
        Assert.Equal(401, wrong);
        Assert.Equal(401, adminWithFunctionKey);
        Assert.Equal(400, badInput);
        Assert.Equal("urn:tenantdb:problem:validation", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Sigkill_WhileAPoolIsProvisioning_RestartedHostCompletesTheRun()
    {
        // A slow health poll keeps the run in flight long enough to kill the host in the middle of it.
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Provisioning__ReadyPollInterval"] = "00:00:03",
            ["LocalHost__QueueVisibilityTimeout"] = "00:00:10",
        });
        var instance = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance, Guid.NewGuid()));
        Assert.Equal(202, status);
        var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;

        await Task.Delay(TimeSpan.FromSeconds(1));
        await host.KillAsync();
        await host.StartProcessAsync();

        var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var (lookup, where) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}");
        Assert.Equal(200, lookup);
        Assert.Equal("allocated", where.GetProperty("status").GetString());
        Assert.Single(Directory.GetDirectories(host.PoolsRoot)); // one pool server, not a second one after the restart
        var claimed = new Dictionary<Guid, JsonElement> { [instance] = await new InstanceServiceClient(host).CredentialsAsync(instance, RunTimeout) };
        (await TenantInvariants.CheckAsync(host, claimed)).AssertSurvived("allocator SIGKILLed mid-provisioning");
    }
}
