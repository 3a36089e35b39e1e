using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Timers;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Timers;

/// <summary>The daily cleanup against real process servers, a real catalog and the in-memory Durable engine.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class DailyCleanupTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Cleanup_PoolStuckProvisioning_IsDeprovisionedWithItsServer()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers());
        var (spec, endpoint) = await CreateProcessServerAsync(app, "stuck");
        var (freshSpec, freshEndpoint) = await CreateProcessServerAsync(app, "fresh");
        var stuck = await app.AddPoolAsync(spec.Name, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword, "process", 5,
            status: PoolStatus.Provisioning, resourceId: endpoint.ResourceId);
        var fresh = await app.AddPoolAsync(freshSpec.Name, freshEndpoint.Host, freshEndpoint.Port, freshSpec.AdminUser, freshSpec.AdminPassword, "process", 5,
            status: PoolStatus.Provisioning, resourceId: freshEndpoint.ResourceId);
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET created_at = now() - interval '2 hours' WHERE id = @id", ("id", stuck.Id));
        var driver = app.Get<PoolProvisioners>().For("process");
        try
        {
            var summary = await app.Get<CleanupService>().RunAsync(None);

            Assert.Equal(1, summary.StalePoolsRemoved);
            Assert.Equal(0, summary.OrphanServersRemoved);
            Assert.Equal(0, summary.Errors);
            Assert.Equal(PoolStatus.Deleted, (await app.Get<PoolStore>().GetAsync(stuck.Id, None))!.Status);
            Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(RefOf(spec, endpoint), None)).Presence);
            // A server whose pool is still (recently) provisioning is never touched.
            Assert.Equal(PoolStatus.Provisioning, (await app.Get<PoolStore>().GetAsync(fresh.Id, None))!.Status);
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(freshSpec, freshEndpoint), None)).Presence);
        }
        finally
        {
            await driver.DeleteAsync(RefOf(freshSpec, freshEndpoint), None);
        }
    }

    [Fact]
    [Trait("Issue9", "2")]
    public async Task Cleanup_OrphanServerOfThisCatalog_IsStoppedThenRemovedOnlyAfterGrace()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers());
        var (orphan, orphanEndpoint) = await CreateProcessServerAsync(app, "orphan");
        var (known, knownEndpoint) = await CreateProcessServerAsync(app, "known");
        await app.AddPoolAsync(known.Name, knownEndpoint.Host, knownEndpoint.Port, known.AdminUser, known.AdminPassword, "process", 5,
            resourceId: knownEndpoint.ResourceId);
        var driver = app.Get<PoolProvisioners>().For("process");
        try
        {
            var first = await app.Get<CleanupService>().RunAsync(None);

            // Stopped, its data kept: a catalog restored meanwhile could still claim it.
            Assert.Equal((1, 0, 0), (first.OrphanServersStopped, first.OrphanServersRemoved, first.Errors));
            Assert.Equal(ServerPresence.Down, (await driver.InspectAsync(RefOf(orphan, orphanEndpoint), None)).Presence);
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(known, knownEndpoint), None)).Presence);
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'orphan_server_stopped'"));

            var withinGrace = await app.Get<CleanupService>().RunAsync(None);
            Assert.Equal((0, 0), (withinGrace.OrphanServersStopped, withinGrace.OrphanServersRemoved));
            Assert.Equal(ServerPresence.Down, (await driver.InspectAsync(RefOf(orphan, orphanEndpoint), None)).Presence);

            await app.CatalogScalarAsync<int>("UPDATE orphan_servers SET stopped_at = now() - interval '8 days'");
            var pastGrace = await app.Get<CleanupService>().RunAsync(None);

            Assert.Equal(1, pastGrace.OrphanServersRemoved);
            Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(RefOf(orphan, orphanEndpoint), None)).Presence);
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(known, knownEndpoint), None)).Presence);
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'orphan_server_removed'"));
            Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM orphan_servers"));
        }
        finally
        {
            await app.Get<PoolConnections>().DisposeAsync();
            await driver.DeleteAsync(RefOf(known, knownEndpoint), None);
            await driver.DeleteAsync(RefOf(orphan, orphanEndpoint), None);
        }
    }

    [Fact]
    [Trait("Issue9", "2")]
    public async Task Cleanup_NewEmptyCatalogOverExistingServers_StopsAndDeletesNothing()
    {
        var drivers = IsolatedDrivers(("Cleanup:OrphanGrace", "00:00:00"));
        await using var first = await TestApp.StartAsync(fixture, drivers);
        var (spec, endpoint) = await CreateProcessServerAsync(first, "pool");
        await first.AddPoolAsync(spec.Name, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword, "process", 5, resourceId: endpoint.ResourceId);
        var driver = first.Get<PoolProvisioners>().For("process");
        try
        {
            // The same deployment pointed at a new, empty catalog database (or a foreign one sharing the owner label).
            await using var fresh = await TestApp.StartAsync(fixture, drivers);
            Assert.NotEqual(await first.Get<CatalogIdentity>().GetAsync(None), await fresh.Get<CatalogIdentity>().GetAsync(None));

            var summary = await fresh.Get<CleanupService>().RunAsync(None);
            await fresh.Get<CleanupService>().RunAsync(None);

            Assert.Equal((0, 0, 0), (summary.OrphanServersStopped, summary.OrphanServersRemoved, summary.Errors));
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(spec, endpoint), None)).Presence);
            Assert.Equal(0L, await fresh.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event LIKE 'orphan%'"));
        }
        finally
        {
            await first.Get<PoolConnections>().DisposeAsync();
            await driver.DeleteAsync(RefOf(spec, endpoint), None);
        }
    }

    [Fact]
    [Trait("Issue9", "2")]
    public async Task Cleanup_ServersOfForeignCatalogOrUnmarked_AreNeverTouched()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers(("Cleanup:OrphanGrace", "00:00:00")));
        var (foreign, foreignEndpoint) = await CreateProcessServerAsync(app, "foreign", Guid.NewGuid());
        var driver = app.Get<PoolProvisioners>().For("process");
        // A server made before catalogs had ids carries no marker.
        var (unmarked, unmarkedEndpoint) = await CreateProcessServerAsync(app, "unmarked");
        File.Delete(Path.Combine(unmarkedEndpoint.ResourceId, ProcessPoolProvisioner.CatalogMarker));
        try
        {
            var summary = await app.Get<CleanupService>().RunAsync(None);
            await app.Get<CleanupService>().RunAsync(None);

            Assert.Equal((0, 0), (summary.OrphanServersStopped, summary.OrphanServersRemoved));
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(foreign, foreignEndpoint), None)).Presence);
            Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(RefOf(unmarked, unmarkedEndpoint), None)).Presence);
        }
        finally
        {
            await driver.DeleteAsync(RefOf(foreign, foreignEndpoint), None);
            await driver.DeleteAsync(RefOf(unmarked, unmarkedEndpoint), None);
        }
    }

    [Fact]
    public async Task Cleanup_OldErrorPool_WithTenantsIsKeptAndEmptyOneRemoved()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers(("Sweep:ErrorPoolRetention", "01:00:00")));
        var hosting = await app.AddPoolAsync(fixture.Pools[1], 5);
        await AllocateOkAsync(app);
        var empty = await app.AddPoolAsync(fixture.Pools[2], 5, status: PoolStatus.Error);
        var recent = await app.AddPoolAsync(fixture.Pools[2], 5, status: PoolStatus.Error);
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET status = 'error' WHERE id = @id", ("id", hosting.Id));
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET updated_at = now() - interval '2 hours' WHERE id IN (@a, @b)", ("a", hosting.Id), ("b", empty.Id));
        await app.RewriteHistoryAsync("UPDATE pool_events SET at = now() - interval '2 hours' WHERE db_server_id = @id", ("id", empty.Id));

        var summary = await app.Get<CleanupService>().RunAsync(None);

        Assert.Equal((1, 1), (summary.StalePoolsRemoved, summary.StalePoolsKept));
        var store = app.Get<PoolStore>();
        Assert.Equal(PoolStatus.Error, (await store.GetAsync(hosting.Id, None))!.Status);
        Assert.Equal(PoolStatus.Deleted, (await store.GetAsync(empty.Id, None))!.Status);
        Assert.Equal(PoolStatus.Error, (await store.GetAsync(recent.Id, None))!.Status);
        // The registered driver removes nothing: the operator's server still answers.
        Assert.Equal(1, await fixture.Pools[2].ScalarAsync<int>("SELECT 1"));
    }

    [Fact]
    public async Task Cleanup_ReleasedTenantPastRetention_IsPurged()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers(("Allocation:ReleaseRetention", "00:00:00")));
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        var kept = await AllocateOkAsync(app);
        var released = await AllocateOkAsync(app);
        await app.Allocation.ReleaseAsync(released.Tenant.InstanceId, "test", None);

        var summary = await app.Get<CleanupService>().RunAsync(None);

        Assert.Equal(1, summary.TenantsPurged);
        Assert.Equal("dropped", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_databases WHERE id = @id", ("id", released.Tenant.Id)));
        Assert.Equal(0L, await fixture.Pools[1].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{released.Tenant.DbName}'"));
        Assert.Equal(1L, await fixture.Pools[1].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{kept.Tenant.DbName}'"));
        Assert.Equal(1, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.CurrentInstances);
    }

    [Fact]
    public async Task DailyCleanup_Timer_RunsCleanupThenPurgesFinishedHistoryOlderThanRetention()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers(("Allocation:ReleaseRetention", "00:00:00"), ("Sweep:HistoryRetention", "3.00:00:00")));
        await app.AddPoolAsync(fixture.Pools[1], 5);
        var released = await AllocateOkAsync(app);
        await app.Allocation.ReleaseAsync(released.Tenant.InstanceId, "test", None);
        var client = new PurgeRecordingClient();
        var before = DateTimeOffset.UtcNow;

        await new DailyCleanup(app.Get<CleanupService>()).Run(new TimerInfo(), client, None);

        Assert.Equal("dropped", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_databases WHERE id = @id", ("id", released.Tenant.Id)));
        var filter = Assert.Single(client.Purges);
        Assert.Null(filter.CreatedFrom);
        Assert.InRange(filter.CreatedTo!.Value, before - TimeSpan.FromDays(3), DateTimeOffset.UtcNow - TimeSpan.FromDays(3));
        Assert.Equal([OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated],
            filter.Statuses!.Order());
    }
}
