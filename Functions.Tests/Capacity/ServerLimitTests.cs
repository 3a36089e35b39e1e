using TenantDb.Functions.Moves;
using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Capacity;

/// <summary>Issue 9 item 20: the number of servers is capped; a dedicated server whose tenant is purged is reclaimed.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class ServerLimitTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static string Body(string tier, Guid? instance = null) =>
        Http.Json(new { instance_id = (instance ?? Guid.NewGuid()).ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = tier });

    [Fact]
    [Trait("Issue9", "20")]
    public async Task Allocate_NoCapacityAtMaxServers_503ProblemNoNewServerAndOneEvent()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers(("Provisioning:MaxServers", "2")));
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        // Two servers that take no tenants now: the catalog is at its limit.
        await app.AddPoolAsync(fixture.Pools[1], 5, status: PoolStatus.Draining);
        await app.AddPoolAsync(fixture.Pools[2], 5, status: PoolStatus.Error);
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);

        var instance = Guid.NewGuid();
        var shared = Http.Request("POST", "/api/database/allocate", Body("standard", instance));
        var (status, contentType, problem) = Http.Read(await functions.AllocateDatabase(shared, engine.Client, None));
        var dedicated = Http.Request("POST", "/api/database/provision-dedicated", Body("premium"));
        var (dedicatedStatus, _, dedicatedProblem) = Http.Read(await functions.ProvisionDedicatedDatabase(dedicated, engine.Client, None));
        var admin = Send("POST", "/api/database/admin/provision-pool");
        var (adminStatus, _, adminProblem) = Http.Read(await new ProvisioningFunctions(app.Get<ProvisioningService>()).ProvisionPoolNow(admin, engine.Client, None));

        Assert.Equal(503, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal("urn:tenantdb:problem:server-limit-reached", problem.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(shared.HttpContext.Response.Headers.RetryAfter));
        Assert.Equal(503, dedicatedStatus);
        Assert.Equal("urn:tenantdb:problem:server-limit-reached", dedicatedProblem.GetProperty("type").GetString());
        Assert.Equal(503, adminStatus);
        Assert.Equal("urn:tenantdb:problem:server-limit-reached", adminProblem.GetProperty("type").GetString());
        Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
        // Recorded, once per quiet period (the dedicated refusal names its instance, so it is its own event).
        Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'server-limit-reached'"));
        Assert.Null(await engine.Client.GetInstanceAsync(TenantDb.Functions.Orchestrations.AllocateWhenReady.InstanceIdFor(instance)));
    }

    [Fact]
    [Trait("Issue9", "20")]
    public async Task Cleanup_DedicatedServerWhoseTenantIsPurged_IsReclaimedWithEvents()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers());
        var driver = app.Get<PoolProvisioners>().For("process");
        var (spec, endpoint) = await CreateProcessServerAsync(app, "dedicated");
        var (waitingSpec, waitingEndpoint) = await CreateProcessServerAsync(app, "awaited");
        var instance = Guid.NewGuid();
        var pool = await app.AddPoolAsync(spec.Name, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword, "process", 1,
            type: ServerType.Dedicated, dedicatedTo: instance, resourceId: endpoint.ResourceId);
        // A new dedicated server whose tenant has not arrived yet is never reclaimed.
        var awaited = await app.AddPoolAsync(waitingSpec.Name, waitingEndpoint.Host, waitingEndpoint.Port, waitingSpec.AdminUser, waitingSpec.AdminPassword,
            "process", 1, type: ServerType.Dedicated, dedicatedTo: Guid.NewGuid(), resourceId: waitingEndpoint.ResourceId);
        try
        {
            var allocated = await app.Allocation.AllocateAsync(new AllocationRequest(instance.ToString(), Guid.NewGuid().ToString(), "premium"), None);
            Assert.Equal(pool.Id, Assert.IsType<AllocationOutcome.Allocated>(allocated).Pool.Id);
            Assert.IsType<ReleaseOutcome.Released>(await app.Allocation.ReleaseAsync(instance, "test", None));
            Assert.Equal(new PurgeResult(1, 0), await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None));

            var summary = await app.Get<CleanupService>().RunAsync(None);

            Assert.Equal(1, summary.DedicatedReclaimed);
            Assert.Equal(0, summary.Errors);
            Assert.Equal(PoolStatus.Deleted, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.Status);
            Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(RefOf(spec, endpoint), None)).Presence);
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id AND event = 'dedicated_reclaimed'", ("id", pool.Id)));
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id AND to_status = 'deleted'", ("id", pool.Id)));
            Assert.Equal(PoolStatus.Active, (await app.Get<PoolStore>().GetAsync(awaited.Id, None))!.Status);
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(waitingSpec, waitingEndpoint), None)).Presence);
        }
        finally
        {
            await app.Get<PoolConnections>().DisposeAsync();
            await driver.DeleteAsync(RefOf(spec, endpoint), None);
            await driver.DeleteAsync(RefOf(waitingSpec, waitingEndpoint), None);
        }
    }
    [Fact]
    public async Task Cleanup_DedicatedServerItsTenantMovedOffOnceTheCopyIsPurged_IsReclaimed()
    {
        // Found in the issue 14 review: a tenant moved off its dedicated server (a tier change to a shared tier) left the server
        // running forever, since no tenant row points at it any more (neither live nor dropped).
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers());
        var driver = app.Get<PoolProvisioners>().For("process");
        var (spec, endpoint) = await CreateProcessServerAsync(app, "moved-off");
        var instance = Guid.NewGuid();
        var pool = await app.AddPoolAsync(spec.Name, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword, "process", 1,
            type: ServerType.Dedicated, dedicatedTo: instance, resourceId: endpoint.ResourceId);
        var shared = await app.AddPoolAsync(fixture.Pools[1], 10);
        try
        {
            Assert.IsType<AllocationOutcome.Allocated>(
                await app.Allocation.AllocateAsync(new AllocationRequest(instance.ToString(), Guid.NewGuid().ToString(), "premium"), None));
            var moved = await app.Get<MoveService>().RunAsync(new MoveRunInput(Guid.NewGuid(), instance, shared.Id, "test", AsTier: "standard"), None);
            Assert.Equal(MoveResult.Moved, moved.Status);

            // While the source copy is kept the server stays.
            Assert.Equal(0, (await app.Get<CleanupService>().RunAsync(None)).DedicatedReclaimed);
            Assert.Equal(PoolStatus.Active, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.Status);

            await app.RewriteHistoryAsync("UPDATE tenant_moves SET source_purge_after = now() - interval '1 minute' WHERE instance_id = @i", ("i", instance));
            var summary = await app.Get<CleanupService>().RunAsync(None);

            Assert.Equal(1, summary.MovedCopiesPurged);
            Assert.Equal(1, summary.DedicatedReclaimed);
            Assert.Equal(0, summary.Errors);
            Assert.Equal(PoolStatus.Deleted, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.Status);
            Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(RefOf(spec, endpoint), None)).Presence);
            Assert.Equal(shared.Id, (await app.Allocation.FindAsync(instance, None))!.Pool.Id);
        }
        finally
        {
            await app.Get<PoolConnections>().DisposeAsync();
            await driver.DeleteAsync(RefOf(spec, endpoint), None);
        }
    }
}
