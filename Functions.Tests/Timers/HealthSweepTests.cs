using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Timers;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Timers;

/// <summary>The health sweep against real servers that are stopped and started, and a capacity counter corrupted on purpose.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class HealthSweepTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private Task<TestApp> StartAppAsync() => TestApp.StartAsync(fixture, new Dictionary<string, string?>
    {
        ["Pools:UnhealthyAfterFailures"] = "2",
        ["Sweep:ProbeTimeout"] = "00:00:02",
    });

    [Fact]
    public async Task Sweep_StoppedServer_TurnsUnhealthyAfterNFailuresAndHealthyWhenBack()
    {
        await using var app = await StartAppAsync();
        var server = await fixture.StartServerAsync($"sweep-{Guid.NewGuid().ToString("N")[..8]}", null);
        try
        {
            var pool = await app.AddPoolAsync(server, 5);
            var other = await app.AddPoolAsync(fixture.Pools[1], 5, priority: 200);
            var health = app.Get<HealthService>();
            var sweep = new HealthSweep(health, app.Recovery, app.Get<TenantDb.Functions.Stock.WarmStockService>(), app.Get<TenantDb.Functions.Provisioning.ProvisioningService>(), app.Get<TenantDb.Functions.Handoff.PasswordRotation>(), app.Get<KeyRotationService>(), app.Get<TenantDb.Functions.Backups.BackupSchedule>(), app.Get<TenantDb.Functions.Moves.StuckMoveRecovery>());
            await using var engine = await InMemoryEngine.StartAsync(_ => { });

            await sweep.Run(new TimerInfo(), engine.Client, None);
            var first = (await app.Get<PoolStore>().GetAsync(pool.Id, None))!;
            Assert.Equal(HealthStatus.Healthy, first.HealthStatus);
            Assert.NotNull(first.LastHealthCheck);
            Assert.True(first.DatabaseCount >= 1);
            Assert.NotNull(first.LastResponseMs);

            await server.StopAsync();
            var once = await health.SweepAsync(None);
            var afterOne = (await app.Get<PoolStore>().GetAsync(pool.Id, None))!;
            Assert.Equal(new SweepSummary(2, 1, 1, 0, 0), once);
            Assert.Equal(HealthStatus.Healthy, afterOne.HealthStatus);
            Assert.Equal(1, afterOne.ConsecutiveHealthFailures);

            await sweep.Run(new TimerInfo(), engine.Client, None);
            var afterTwo = (await app.Get<PoolStore>().GetAsync(pool.Id, None))!;
            Assert.Equal(HealthStatus.Unhealthy, afterTwo.HealthStatus);
            Assert.Equal(2, afterTwo.ConsecutiveHealthFailures);
            Assert.NotNull(afterTwo.LastError);
            // Out of placement: a new tenant goes to the other pool.
            Assert.Equal(other.Id, (await AllocateOkAsync(app)).Pool.Id);

            await server.StartAsync();
            await sweep.Run(new TimerInfo(), engine.Client, None);
            var back = (await app.Get<PoolStore>().GetAsync(pool.Id, None))!;
            Assert.Equal(HealthStatus.Healthy, back.HealthStatus);
            Assert.Equal(0, back.ConsecutiveHealthFailures);

            var changes = await app.CatalogScalarAsync<string>("""
                SELECT string_agg(from_status || '>' || to_status || ':' || actor, ',' ORDER BY id) FROM pool_events
                WHERE db_server_id = @id AND event = 'health_changed'
                """, ("id", pool.Id));
            // Every change names the timer that made it (the status history's "who").
            Assert.Equal("unknown>healthy:timer:HealthSweep,healthy>unhealthy:timer:HealthSweep,unhealthy>healthy:timer:HealthSweep", changes);
        }
        finally
        {
            if (await server.IsRunningAsync())
            {
                await server.StopAsync();
            }
        }
    }

    [Fact]
    public async Task Sweep_CorruptedCounter_IsReconciledWithStatusAndEvent()
    {
        await using var app = await StartAppAsync();
        var pool = await app.AddPoolAsync(fixture.Pools[1], 3);
        await AllocateOkAsync(app);
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET current_instances = 3, status = 'full' WHERE id = @id", ("id", pool.Id));

        var summary = await app.Get<HealthService>().SweepAsync(None);

        Assert.Equal(1, summary.DriftFixed);
        var fixedPool = (await app.Get<PoolStore>().GetAsync(pool.Id, None))!;
        Assert.Equal(1, fixedPool.CurrentInstances);
        Assert.Equal(PoolStatus.Active, fixedPool.Status);
        var reason = await app.CatalogScalarAsync<string>(
            "SELECT reason FROM pool_events WHERE db_server_id = @id AND event = 'capacity_reconciled'", ("id", pool.Id));
        Assert.Equal("current_instances 3 -> 1 (live tenant databases: 1)", reason);

        // Too low a counter is raised back (and flips to full at the limit); a correct one is left alone.
        await AllocateOkAsync(app);
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET current_instances = 0 WHERE id = @id", ("id", pool.Id));
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET max_instances = 2 WHERE id = @id", ("id", pool.Id));
        Assert.Equal(1, (await app.Get<HealthService>().SweepAsync(None)).DriftFixed);
        var raised = (await app.Get<PoolStore>().GetAsync(pool.Id, None))!;
        Assert.Equal((2, PoolStatus.Full), (raised.CurrentInstances, raised.Status));
        Assert.Equal(0, (await app.Get<HealthService>().SweepAsync(None)).DriftFixed);
    }

    [Fact]
    public async Task Reconcile_ConcurrentAllocations_NeverLosesACount()
    {
        await using var app = await StartAppAsync();
        var pool = await app.AddPoolAsync(fixture.Pools[1], 40);
        var store = app.Get<PoolStore>();

        var allocations = Enumerable.Range(0, 12).Select(_ => app.Allocation.AllocateAsync(Tenant(), None)).ToList();
        var reconciles = Enumerable.Range(0, 12).Select(_ => app.Get<PoolHealthStore>().ReconcileCapacityAsync(pool.Id, "test", None)).ToList();
        await Task.WhenAll(allocations);
        await Task.WhenAll(reconciles);

        Assert.All(allocations, a => Assert.IsType<AllocationOutcome.Allocated>(a.Result));
        Assert.Equal(12, (await store.GetAsync(pool.Id, None))!.CurrentInstances);
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'capacity_reconciled'"));
    }

    [Fact]
    public async Task CheckPoolHealth_Http_ReportsAndProvisioningPoolIsConflict()
    {
        await using var app = await StartAppAsync();
        var pool = await app.AddPoolAsync(fixture.Pools[1], 3);
        var provisioning = await app.AddPoolAsync(fixture.Pools[1], 3, status: PoolStatus.Provisioning);
        var api = AdminApi(app);

        var (status, _, report) = Http.Read(await api.CheckPoolHealth(Send("POST", "/health-check"), pool.Id.ToString(), None));
        var (conflict, _, _) = Http.Read(await api.CheckPoolHealth(Send("POST", "/health-check"), provisioning.Id.ToString(), None));

        Assert.Equal(200, status);
        Assert.True(report.GetProperty("reachable").GetBoolean());
        Assert.Equal("healthy", report.GetProperty("health_status").GetString());
        Assert.Equal("unknown", report.GetProperty("previous_health_status").GetString());
        Assert.True(report.GetProperty("database_count").GetInt32() >= 1);
        Assert.Equal(409, conflict);
    }
}
