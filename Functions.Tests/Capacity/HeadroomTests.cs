using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Api;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Capacity;

/// <summary>
/// The headroom rule on the allocate path (issue 13, steady growth): the next shared pool is provisioned as soon as an allocation
/// leaves fewer than <c>Pools:MinFreeSlots</c> free slots, not only when a pool turns full, so a new server is ready before
/// tenants need it.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class HeadroomTests(PostgresFixture fixture)
{
    [Fact]
    public async Task Allocate_FreeSlotsFallBelowMinFreeSlots_NextPoolIsProvisionedBeforeThePoolIsFull()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["Pools:MinFreeSlots"] = "3",
            ["Allocation:InlinePassword"] = "true", // no handoff deposit: the in-memory engine has no entities
        });
        await using var engine = await InMemoryEngine.StartAsync(_ => { }); // the run is scheduled, never run: the pool stays provisioning
        await app.AddPoolAsync(fixture.Pools[1], 5);
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
        var client = FunctionsBinding.Client(engine.Client);
        async Task<int> AllocateAsync()
        {
            var body = Http.Json(new { instance_id = Guid.NewGuid().ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
            var (status, _, _) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", body), client, default));
            return status;
        }

        const string Provisioning = "SELECT count(*) FROM db_servers WHERE server_type = 'shared' AND status = 'provisioning'";
        Assert.Equal(200, await AllocateAsync());
        Assert.Equal(200, await AllocateAsync());
        var afterTwo = await app.CatalogScalarAsync<long>(Provisioning); // 3 free: not below the minimum
        Assert.Equal(200, await AllocateAsync());
        var afterThree = await app.CatalogScalarAsync<long>(Provisioning); // 2 free < 3, the pool is not full
        Assert.Equal(200, await AllocateAsync());
        var afterFour = await app.CatalogScalarAsync<long>(Provisioning); // the run under way is not doubled

        Assert.Equal(0L, afterTwo);
        Assert.Equal(1L, afterThree);
        Assert.Equal(1L, afterFour);
    }
}
