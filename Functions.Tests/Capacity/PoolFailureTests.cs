using TenantDb.Functions.Allocations;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Capacity;

/// <summary>Issue 9 item 16: one transient failure never takes a pool out of placement; repeated ones do.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class PoolFailureTests(PostgresFixture fixture)
{
    private static AllocationRequest Request() => new(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard");

    private static async Task<(string Health, int Failures)> HealthOf(TestApp app, long poolId)
    {
        var health = await app.CatalogScalarAsync<string>("SELECT health_status FROM db_servers WHERE id = @id", ("id", poolId));
        var failures = await app.CatalogScalarAsync<int>("SELECT consecutive_health_failures FROM db_servers WHERE id = @id", ("id", poolId));
        return (health!, failures);
    }

    [Fact]
    [Trait("Issue9", "16")]
    public async Task Allocate_OnePoolFailsOnce_AnswersFailedAndThePoolStaysInPlacement()
    {
        var flaky = await fixture.StartServerAsync($"blip-{Guid.NewGuid():N}"[..12], null);
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(flaky, 10);
        await flaky.StopAsync();

        var outcome = await app.Allocation.AllocateAsync(Request(), CancellationToken.None);

        // A failing pool with room is a fault to retry, never "no capacity" (which would provision a new server).
        Assert.IsType<AllocationOutcome.Failed>(outcome);
        var (health, failures) = await HealthOf(app, pool.Id);
        Assert.Equal("unknown", health);
        Assert.Equal(1, failures);
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id AND event = 'pool_failure'", ("id", pool.Id)));

        await flaky.StartAsync();
        var again = await app.Allocation.AllocateAsync(Request(), CancellationToken.None);
        Assert.Equal(pool.Id, Assert.IsType<AllocationOutcome.Allocated>(again).Pool.Id);
        await flaky.StopImmediatelyAsync();
    }

    [Fact]
    [Trait("Issue9", "16")]
    public async Task Allocate_PoolFailsRepeatedly_IsUnhealthyAfterTheThresholdAndOutOfPlacement()
    {
        var dead = await fixture.StartServerAsync($"dead-{Guid.NewGuid():N}"[..12], null);
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:UnhealthyAfterFailures"] = "3" });
        var pool = await app.AddPoolAsync(dead, 10);
        await dead.StopAsync();

        Assert.IsType<AllocationOutcome.Failed>(await app.Allocation.AllocateAsync(Request(), CancellationToken.None));
        Assert.IsType<AllocationOutcome.Failed>(await app.Allocation.AllocateAsync(Request(), CancellationToken.None));
        Assert.Equal(("unknown", 2), await HealthOf(app, pool.Id));
        Assert.IsType<AllocationOutcome.Failed>(await app.Allocation.AllocateAsync(Request(), CancellationToken.None));

        Assert.Equal(("unhealthy", 3), await HealthOf(app, pool.Id));
        Assert.Equal(1L, await app.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE db_server_id = @id AND event = 'health_changed' AND to_status = 'unhealthy'", ("id", pool.Id)));
        Assert.IsType<AllocationOutcome.NoCapacity>(await app.Allocation.AllocateAsync(Request(), CancellationToken.None));
        Assert.Equal(0, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", pool.Id)));
    }

    [Fact]
    [Trait("Issue9", "16")]
    public async Task Allocate_AllocatorsConnectionPoolExhausted_IsNotAServerFailure()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["Pools:MaxAdminConnections"] = "1",
            ["Pools:ConnectTimeoutSeconds"] = "1",
            ["Pools:UnhealthyAfterFailures"] = "1",
        });
        var pool = await app.AddPoolAsync(fixture.Pools[2], 10);
        var held = await app.Get<PoolConnections>().For(pool).OpenConnectionAsync();

        var outcome = await app.Allocation.AllocateAsync(Request(), CancellationToken.None);

        Assert.IsType<AllocationOutcome.Failed>(outcome);
        Assert.Equal(("unknown", 0), await HealthOf(app, pool.Id));
        Assert.Equal(0, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", pool.Id)));
        await held.DisposeAsync();
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(), CancellationToken.None));
    }
}
