using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Orchestrations;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Tests.Orchestrations;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Capacity;

/// <summary>Test double over the real process driver: its first <c>failures</c> inspections throw, as a blip of the engine would.</summary>
internal sealed class BlippingInspectDriver(ProcessPoolProvisioner real, int failures) : IPoolProvisioner
{
    private int _inspections;
    public string Driver => real.Driver;
    public Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct) => real.CreateAsync(spec, ct);

    public Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct) =>
        Interlocked.Increment(ref _inspections) <= failures
            ? throw new InvalidOperationException($"injected inspect failure #{_inspections}")
            : real.InspectAsync(server, ct);

    public Task DeleteAsync(PoolServerRef server, CancellationToken ct) => real.DeleteAsync(server, ct);
    public Task RestartAsync(PoolServerRef server, CancellationToken ct) => real.RestartAsync(server, ct);
    public Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct) => real.ListOwnedAsync(ct);
    public Task StopAsync(PoolServerRef server, CancellationToken ct) => real.StopAsync(server, ct);
}

/// <summary>
/// Issue 9 items 15 and 20 on the in-memory Durable engine with the real orchestrations, the process driver and a real catalog:
/// a lost provisioning run never blocks capacity; dedicated provisioning and the number of servers are bounded.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class ProvisioningRecoveryTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private Task<TestApp> StartAppAsync(Func<ProcessPoolProvisioner, IPoolProvisioner>? wrap = null, params (string Key, string Value)[] more)
    {
        (string, string)[] defaults =
        [
            ("Provisioning:CreateAttempts", "3"),
            ("Provisioning:FirstRetryInterval", "00:00:00.200"),
            ("Provisioning:ReadyPollInterval", "00:00:00.300"),
            ("Provisioning:ReadyTimeout", "00:01:00"),
            ("Pools:Shared:MaxInstances", "3"),
            ("Pools:MinFreeSlots", "0"),
        ];
        var settings = Admin.AdminTestKit.IsolatedDrivers([.. defaults, .. more]);
        return TestApp.StartAsync(fixture, settings, services =>
        {
            if (wrap is not null)
            {
                services.AddSingleton<ProcessPoolProvisioner>();
                services.AddSingleton<IPoolProvisioner>(sp => wrap(sp.GetRequiredService<ProcessPoolProvisioner>()));
            }
        });
    }

    private static async Task<DurableTaskTestHost> StartEngineAsync(TestApp app)
    {
        var provisioning = app.Get<ProvisioningService>();
        var flow = app.Get<AllocationFlow>();
        DurableTaskTestHost? host = null;
        host = await InMemoryEngine.StartAsync(registry =>
        {
            registry.AddOrchestratorFunc<ProvisionPoolInput, ProvisionPoolResult>(nameof(ProvisionPool), (ctx, _) => ProvisionPool.Run(ctx));
            var activities = new ProvisionPool(provisioning);
            registry.AddActivityFunc<long>(nameof(ProvisionPool.CreatePoolServer), (_, id) => activities.CreatePoolServer(id, None));
            registry.AddActivityFunc<long, bool>(nameof(ProvisionPool.CheckPoolReady), (_, id) => activities.CheckPoolReady(id, None));
            registry.AddActivityFunc<long>(nameof(ProvisionPool.InitializePool), (_, id) => activities.InitializePool(id, None));
            registry.AddActivityFunc<FailPoolInput>(nameof(ProvisionPool.FailPool), (_, input) => activities.FailPool(input, None));
            registry.AddOrchestratorFunc<AllocateWhenReadyInput, AllocateAttempt>(nameof(AllocateWhenReady), (ctx, _) => AllocateWhenReady.Run(ctx));
            var waiting = new AllocateWhenReady(flow);
            registry.AddActivityFunc<AllocateWhenReadyInput, AllocateAttempt>(nameof(AllocateWhenReady.TryAllocate),
                (_, input) => waiting.TryAllocate(input, host!.Client, None));
        });
        return host;
    }

    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan timeout)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            var value = await read();
            if (done(value) || DateTimeOffset.UtcNow > deadline)
            {
                return value;
            }

            await Task.Delay(100);
        }
    }

    private async Task DeleteServersAsync(TestApp app)
    {
        await app.Get<Pools.PoolConnections>().DisposeAsync();
        var driver = app.Get<PoolProvisioners>().For("process");
        foreach (var pool in await app.Get<PoolStore>().ListLiveAsync(None))
        {
            try
            {
                await driver.DeleteAsync(new PoolServerRef(pool.Name, pool.DriverResourceId, pool.Host, pool.Port, pool.AdminUser, "unused"), None);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // Best effort: a server still being made by a run the test abandoned; the fixture's root is removed at the end.
            }
        }
    }

    [Fact]
    [Trait("Issue9", "15")]
    public async Task StartShared_RunTerminatedWhilePoolProvisioning_SettlesItDeprovisionsItAndStartsAFreshRun()
    {
        await using var app = await StartAppAsync();
        await using var engine = await StartEngineAsync(app);
        var provisioning = app.Get<ProvisioningService>();
        try
        {
            var first = await provisioning.StartSharedAsync(engine.Client, "test", "test", None);
            await engine.Client.TerminateInstanceAsync(first.ProvisioningInstanceId, "lost", None);
            var terminated = await engine.Client.WaitForInstanceCompletionAsync(first.ProvisioningInstanceId, new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            Assert.Equal(OrchestrationRuntimeStatus.Terminated, terminated.RuntimeStatus);
            // The terminated run's create activity still finishes; the pool row stays provisioning, its server running.
            var stuck = await EventuallyAsync(() => app.Get<PoolStore>().GetAsync(first.PoolId, None), p => p!.Host.Length > 0, TimeSpan.FromSeconds(30));
            Assert.Equal(PoolStatus.Provisioning, stuck!.Status);

            var second = await provisioning.StartSharedAsync(engine.Client, "test", "no capacity", None);

            Assert.False(second.Joined);
            Assert.NotEqual(first.PoolId, second.PoolId);
            var lost = (await app.Get<PoolStore>().GetAsync(first.PoolId, None))!;
            Assert.Equal(PoolStatus.Deleted, lost.Status);
            Assert.Contains("terminated", lost.LastError);
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id AND event = 'provisioning_run_lost'", ("id", first.PoolId)));
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id AND to_status = 'error'", ("id", first.PoolId)));
            var driver = app.Get<PoolProvisioners>().For("process");
            var lostServer = new PoolServerRef(lost.Name, lost.DriverResourceId, lost.Host, lost.Port, lost.AdminUser, "unused");
            Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(lostServer, None)).Presence);

            var done = await engine.Client.WaitForInstanceCompletionAsync(second.ProvisioningInstanceId, new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            var tenant = await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None);
            Assert.Equal(second.PoolId, Assert.IsType<AllocationOutcome.Allocated>(tenant).Pool.Id);
        }
        finally
        {
            await DeleteServersAsync(app);
        }
    }

    [Fact]
    [Trait("Issue9", "15")]
    public async Task StartShared_RunVanishedWhilePoolInitializing_SettlesItAndStartsAFreshRun()
    {
        await using var app = await StartAppAsync();
        await using var engine = await StartEngineAsync(app);
        var provisioning = app.Get<ProvisioningService>();
        try
        {
            var first = await provisioning.StartSharedAsync(engine.Client, "test", "test", None);
            await engine.Client.TerminateInstanceAsync(first.ProvisioningInstanceId, "lost", None);
            await engine.Client.WaitForInstanceCompletionAsync(first.ProvisioningInstanceId, new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            await EventuallyAsync(() => app.Get<PoolStore>().GetAsync(first.PoolId, None), p => p!.Host.Length > 0, TimeSpan.FromSeconds(30));
            await app.CatalogScalarAsync<int>("UPDATE db_servers SET status = 'initializing' WHERE id = @id", ("id", first.PoolId));
            await engine.Client.PurgeInstanceAsync(first.ProvisioningInstanceId);
            Assert.Null(await engine.Client.GetInstanceAsync(first.ProvisioningInstanceId));

            var second = await provisioning.StartSharedAsync(engine.Client, "test", "no capacity", None);

            Assert.NotEqual(first.PoolId, second.PoolId);
            var lost = (await app.Get<PoolStore>().GetAsync(first.PoolId, None))!;
            Assert.Equal(PoolStatus.Deleted, lost.Status);
            Assert.Contains("gone", lost.LastError);
            var done = await engine.Client.WaitForInstanceCompletionAsync(second.ProvisioningInstanceId, new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            Assert.Equal(PoolStatus.Active, (await app.Get<PoolStore>().GetAsync(second.PoolId, None))!.Status);
        }
        finally
        {
            await DeleteServersAsync(app);
        }
    }

    [Fact]
    [Trait("Issue9", "15")]
    public async Task ProvisionPool_ServerCheckFailsTwice_IsRetriedAndThePoolBecomesActive()
    {
        await using var app = await StartAppAsync(real => new BlippingInspectDriver(real, failures: 2));
        await using var engine = await StartEngineAsync(app);
        try
        {
            var reserved = await app.Get<ProvisioningService>().StartSharedAsync(engine.Client, "test", "test", None);
            var done = await engine.Client.WaitForInstanceCompletionAsync(reserved.ProvisioningInstanceId, getInputsAndOutputs: true,
                new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

            Assert.Equal("active", done.ReadOutputAs<ProvisionPoolResult>()!.Status);
            Assert.Equal(PoolStatus.Active, (await app.Get<PoolStore>().GetAsync(reserved.PoolId, None))!.Status);
        }
        finally
        {
            await DeleteServersAsync(app);
        }
    }

    [Fact]
    [Trait("Issue9", "20")]
    public async Task AllocateWhenReady_DedicatedProvisioningAlwaysFails_StopsAfterMaxDedicatedAttempts()
    {
        FlakyProcessDriver? flaky = null;
        await using var app = await StartAppAsync(real => flaky = new FlakyProcessDriver(real, int.MaxValue, createBeforeFailing: false),
            ("Provisioning:CreateAttempts", "1"), ("Provisioning:MaxDedicatedAttempts", "2"));
        await using var engine = await StartEngineAsync(app);
        var instance = Guid.NewGuid();
        var input = new AllocateWhenReadyInput(instance.ToString(), Guid.NewGuid().ToString(), "premium", "http://127.0.0.1:7071",
            TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(40));

        var id = await engine.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AllocateWhenReady), input);
        var done = await engine.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

        var attempt = done.ReadOutputAs<AllocateAttempt>()!;
        Assert.True(attempt.Done);
        Assert.Equal("dedicated-provisioning-failed", attempt.Step);
        Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE dedicated_to_instance_id = @i", ("i", instance)));
        Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE dedicated_to_instance_id = @i AND status = 'error'", ("i", instance)));
        Assert.Equal(2, flaky!.Calls);
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = @e AND instance_id = @i",
            ("e", "dedicated-provisioning-failed"), ("i", instance)));
    }

    [Fact]
    public async Task AllocateWhenReady_SharedProvisioningAlwaysFails_AtMostMaxSharedFailedPoolsThenWaitsWithoutMakingMore()
    {
        // Found by DriverAndStorageFaultTests: a waiting shared allocation started a new pool on every poll, each failing, until
        // the failed pools filled Provisioning:MaxServers and blocked all provisioning.
        FlakyProcessDriver? flaky = null;
        await using var app = await StartAppAsync(real => flaky = new FlakyProcessDriver(real, int.MaxValue, createBeforeFailing: false),
            ("Provisioning:CreateAttempts", "1"), ("Provisioning:MaxSharedFailedPools", "2"));
        await using var engine = await StartEngineAsync(app);
        var instance = Guid.NewGuid();
        var input = new AllocateWhenReadyInput(instance.ToString(), Guid.NewGuid().ToString(), "standard", "http://127.0.0.1:7071",
            TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(8));

        var id = await engine.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AllocateWhenReady), input);
        var done = await engine.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

        var attempt = done.ReadOutputAs<AllocateAttempt>()!;
        Assert.True(attempt.Done);
        Assert.Null(attempt.Allocation);
        Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE server_type = 'shared'"));
        Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE server_type = 'shared' AND status = 'error'"));
        Assert.Equal(2, flaky!.Calls);
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = @e", ("e", "shared-provisioning-failing")));
    }
}
