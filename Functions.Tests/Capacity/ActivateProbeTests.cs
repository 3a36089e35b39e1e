using TenantDb.Functions.Allocations;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Capacity;

/// <summary>Issue 9 item 17: activating a pool in error probes its server first.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class ActivateProbeTests(PostgresFixture fixture)
{
    [Fact]
    [Trait("Issue9", "17")]
    public async Task ActivatePool_ErrorPoolOnADeadServer_IsRefusedAndStaysOutOfPlacement()
    {
        var server = await fixture.StartServerAsync($"err-{Guid.NewGuid():N}"[..12], null);
        await using var app = await TestApp.StartAsync(fixture);
        var api = AdminApi(app);
        var pool = await app.AddPoolAsync(server, 5, status: PoolStatus.Error);
        var id = pool.Id.ToString();
        await server.StopAsync();

        var (refused, _, problem) = Http.Read(await api.ActivatePool(Send("POST", $"/api/database/admin/pools/{id}/activate", id: id), id, CancellationToken.None));

        Assert.Equal(409, refused);
        Assert.Equal("urn:tenantdb:problem:pool-unreachable", problem.GetProperty("type").GetString());
        Assert.Equal("error", await app.CatalogScalarAsync<string>("SELECT status FROM db_servers WHERE id = @id", ("id", pool.Id)));
        Assert.IsType<AllocationOutcome.NoCapacity>(await app.Allocation.AllocateAsync(Tenant(), CancellationToken.None));

        // The server answers again: now activation puts it back, healthy.
        await server.StartAsync();
        var (activated, _, body) = Http.Read(await api.ActivatePool(Send("POST", $"/api/database/admin/pools/{id}/activate", id: id), id, CancellationToken.None));
        Assert.Equal(200, activated);
        Assert.Equal("active", body.GetProperty("status").GetString());
        Assert.Equal("healthy", await app.CatalogScalarAsync<string>("SELECT health_status FROM db_servers WHERE id = @id", ("id", pool.Id)));
        Assert.Equal(pool.Id, (await AllocateOkAsync(app)).Pool.Id);
        await server.StopImmediatelyAsync();
    }
}
