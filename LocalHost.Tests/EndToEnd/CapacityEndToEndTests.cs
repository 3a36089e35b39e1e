using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>Issue 9 items 15 and 19 against a started LocalHost serving the real app on the real Durable engine (Azurite).</summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class CapacityEndToEndTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(150);

    private static object Allocation(Guid instance, Guid customer, string tier = "standard") =>
        new { instance_id = instance.ToString(), customer_id = customer.ToString(), plan_tier = tier };

    private static string StatusUri(JsonElement accepted) => accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;

    private static async Task<JsonElement[]> PoolsAsync(AllocatorHost host, string? status = null)
    {
        var (code, list) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/pools" + (status is null ? "" : $"?status={status}"), AllocatorHost.MasterKey);
        Assert.Equal(200, code);
        return list.GetProperty("pools").EnumerateArray().ToArray();
    }

    [Fact]
    [Trait("Issue9", "15")]
    public async Task Allocate_ProvisioningRunTerminated_NextNoCapacityAllocateStartsAFreshRunAndTenantsAreAllocated()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            // Before the fix the waiting tenants sat on the dead run until this timeout.
            ["Allocation__WaitForCapacityTimeout"] = "00:02:00",
        });
        var first = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(first, Guid.NewGuid()));
        Assert.Equal(202, status);
        var pool = Assert.Single(await PoolsAsync(host));
        var runId = pool.GetProperty("provisioning_instance_id").GetString()!;

        // An operator (or anyone holding the master key) terminates the provisioning run while it creates the server.
        var (terminate, _) = await host.SendAsync(HttpMethod.Post, $"/runtime/webhooks/durabletask/instances/{runId}/terminate?reason=test", AllocatorHost.MasterKey);
        Assert.Equal(202, terminate);
        var lostRun = await host.WaitForOrchestrationAsync($"{host.BaseAddress}runtime/webhooks/durabletask/instances/{runId}?code={AllocatorHost.MasterKey}", RunTimeout);
        Assert.Equal("Terminated", lostRun.GetProperty("runtimeStatus").GetString());

        var second = Guid.NewGuid();
        var (secondStatus, secondAccepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(second, Guid.NewGuid()));
        Assert.Equal(202, secondStatus);

        foreach (var statusUri in new[] { StatusUri(accepted), StatusUri(secondAccepted) })
        {
            var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
            Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
            Assert.True(done.GetProperty("output").TryGetProperty("allocation", out var allocation) && allocation.ValueKind == JsonValueKind.Object,
                $"the tenant was not allocated: {done}");
        }

        var (lookup, where) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{first}");
        Assert.Equal(200, lookup);
        Assert.NotEqual(pool.GetProperty("name").GetString(), where.GetProperty("pool_name").GetString());
        // The lost pool left service (settled to error, then retired: deleting, or deleted once its server is removed).
        var (detailStatus, detail) = await host.SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{pool.GetProperty("id").GetInt64()}", AllocatorHost.MasterKey);
        Assert.Equal(200, detailStatus);
        Assert.Contains(detail.GetProperty("pool").GetProperty("status").GetString(), new[] { "deleting", "deleted" });
        Assert.Contains(detail.GetProperty("recent_events").EnumerateArray(), e => e.GetProperty("event").GetString() == "provisioning_run_lost");
        Assert.Single(await PoolsAsync(host, "active"));
        var client = new InstanceServiceClient(host);
        var claimed = new Dictionary<Guid, JsonElement>
        {
            [first] = await client.CredentialsAsync(first, RunTimeout),
            [second] = await client.CredentialsAsync(second, RunTimeout),
        };
        (await TenantInvariants.CheckAsync(host, claimed)).AssertSurvived("provisioning run terminated by an operator");
    }

    [Fact]
    [Trait("Issue9", "19")]
    public async Task Allocate_SameInstanceWhileItWaitsForCapacity_AnotherCustomerOrTierIs409()
    {
        await using var host = await AllocatorHost.StartAsync();
        var instance = Guid.NewGuid();
        var customer = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance, customer));
        Assert.Equal(202, status);

        var (otherCustomer, problem) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance, Guid.NewGuid()));
        var (otherTier, tierProblem) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance, customer, "starter"));
        var (same, _) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(instance, customer));

        Assert.Equal(409, otherCustomer);
        Assert.Equal("urn:tenantdb:problem:instance-conflict", problem.GetProperty("type").GetString());
        Assert.Equal(409, otherTier);
        Assert.Equal("urn:tenantdb:problem:instance-conflict", tierProblem.GetProperty("type").GetString());
        Assert.True(same is 202 or 200, $"the same request again answers {same}");

        var done = await host.WaitForOrchestrationAsync(StatusUri(accepted), RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var (lookup, where) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}");
        Assert.Equal(200, lookup);
        Assert.Equal(customer.ToString(), where.GetProperty("customer_id").GetString());
        Assert.Equal("standard", where.GetProperty("plan_tier").GetString());
    }
}
