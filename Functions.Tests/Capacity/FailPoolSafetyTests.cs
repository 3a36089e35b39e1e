using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Capacity;

/// <summary>Counts the removals a driver is asked for; otherwise the registered driver (which touches nothing).</summary>
internal sealed class RecordingDriver(RegisteredPoolProvisioner real) : IPoolProvisioner
{
    public int Deletes;

    public string Driver => real.Driver;
    public Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct) => real.CreateAsync(spec, ct);
    public Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct) => real.InspectAsync(server, ct);
    public Task RestartAsync(PoolServerRef server, CancellationToken ct) => real.RestartAsync(server, ct);
    public Task StopAsync(PoolServerRef server, CancellationToken ct) => real.StopAsync(server, ct);
    public Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct) => real.ListOwnedAsync(ct);

    public Task DeleteAsync(PoolServerRef server, CancellationToken ct)
    {
        Interlocked.Increment(ref Deletes);
        return real.DeleteAsync(server, ct);
    }
}

/// <summary>DESIGN §8.1: the provisioning run's final-failure step never removes the server of a pool in service.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class FailPoolSafetyTests(PostgresFixture fixture)
{
    [Fact]
    public async Task FailPool_LateForAPoolAlreadyActiveWithATenant_RemovesNothingAndKeepsItActive()
    {
        RecordingDriver? driver = null;
        await using var app = await TestApp.StartAsync(fixture, configure: services =>
            services.AddSingleton<IPoolProvisioner>(sp => driver = new RecordingDriver(ActivatorUtilities.CreateInstance<RegisteredPoolProvisioner>(sp))));
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(instance.ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None));

        // A FailPool activity delivered late (activities may run twice; a reply may be lost after the pool went active).
        await app.Get<ProvisioningService>().FailAsync(pool.Id, "late failure", CancellationToken.None);

        Assert.Equal(0, driver!.Deletes);
        Assert.Equal("active", await app.CatalogScalarAsync<string>("SELECT status FROM db_servers WHERE id = @id", ("id", pool.Id)));
        Assert.Equal(TenantDatabaseStatus.Ready, (await app.Allocation.FindAsync(instance, CancellationToken.None))!.Tenant.Status);
    }
}
