using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// The status history through LocalHost: its keys have names (<c>LocalHost:NamedFunctionKeys</c>, <c>default</c>,
/// <c>_master</c>), it puts the Functions host's key claims on the request, and the app records the key's name as the
/// actor, as under the real host; provisioning's own steps name the orchestration.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class AuditTrailEndToEndTests
{
    private const string NamedKey = "e2e-instance-service-key-0123456789";

    [Fact]
    public async Task Events_NameTheKeyOfEachCall_AndTheOrchestration_NeverAKeyValue()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["LocalHost__NamedFunctionKeys__instance-service"] = NamedKey,
        });
        await host.ProvisionSharedPoolsAsync(1);
        var instance = Guid.NewGuid();

        var (allocated, placed) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", NamedKey,
            new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        Assert.Equal(200, allocated);
        var (released, _) = await host.SendAsync(HttpMethod.Delete, $"/api/database/allocations/{instance}", AllocatorHost.FunctionKey);
        Assert.Equal(200, released);

        var (status, page) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/events", NamedKey);
        Assert.Equal(200, status);
        Assert.Equal(["released:key:default", "ready:key:instance-service", "creating:key:instance-service"], Changes(page));

        var poolId = placed.GetProperty("db_server_id").GetInt64();
        var (adminStatus, poolPage) = await host.SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{poolId}/events?limit=200", AllocatorHost.MasterKey);
        Assert.Equal(200, adminStatus);
        var actors = poolPage.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("actor").GetString()).ToHashSet();
        Assert.Contains("key:_master", actors); // the operator's provision-pool call reserved the pool
        Assert.Contains("orchestration:ProvisionPool", actors); // its activities made it active
        Assert.Contains("key:instance-service", actors);
        Assert.Equal(401, (await host.SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{poolId}/events", NamedKey)).Status);
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{Guid.NewGuid()}/events", NamedKey)).Status);
        Assert.Equal(400, (await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}/events?limit=0", NamedKey)).Status);

        Assert.Equal(0, await host.ScalarAsync(
            $"SELECT count(*) FROM pool_events WHERE actor = 'unattributed' OR actor LIKE '%{NamedKey}%' OR actor LIKE '%{AllocatorHost.FunctionKey}%' OR actor LIKE '%{AllocatorHost.MasterKey}%'"));
    }

    private static List<string> Changes(JsonElement page) =>
        [.. page.GetProperty("events").EnumerateArray().Select(e => $"{e.GetProperty("to_status").GetString()}:{e.GetProperty("actor").GetString()}")];
}
