using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Orchestrations;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Orchestrations;

/// <summary>
/// Test double over the real process driver: its first <c>failures</c> creates throw (after really creating the server when
/// <c>createBeforeFailing</c>), so the orchestration's retries and its error path run against real servers.
/// </summary>
internal sealed class FlakyProcessDriver(ProcessPoolProvisioner real, int failures, bool createBeforeFailing) : IPoolProvisioner
{
    private int _calls;
    public int Calls => _calls;
    public string Driver => real.Driver;

    public async Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct)
    {
        if (Interlocked.Increment(ref _calls) <= failures)
        {
            if (createBeforeFailing)
            {
                await real.CreateAsync(spec, ct);
            }

            throw new InvalidOperationException($"injected create failure #{_calls}");
        }

        return await real.CreateAsync(spec, ct);
    }

    public Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct) => real.InspectAsync(server, ct);
    public Task DeleteAsync(PoolServerRef server, CancellationToken ct) => real.DeleteAsync(server, ct);
    public Task RestartAsync(PoolServerRef server, CancellationToken ct) => real.RestartAsync(server, ct);
    public Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct) => real.ListOwnedAsync(ct);
    public Task StopAsync(PoolServerRef server, CancellationToken ct) => real.StopAsync(server, ct);
}

/// <summary>The ProvisionPool orchestrator on the in-memory Durable engine, its activities doing the real work.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class ProvisionPoolTests(PostgresFixture fixture)
{
    private static readonly string DataRoot = Path.Combine(PostgresFixture.Root, "orchestrated-pools");

    private async Task<(TestApp App, FlakyProcessDriver Driver)> StartAsync(int failures, bool createBeforeFailing)
    {
        FlakyProcessDriver? flaky = null;
        var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["Provisioning:Driver"] = "process",
            ["Provisioning:Process:DataRoot"] = DataRoot,
            ["Provisioning:CreateAttempts"] = "3",
            ["Provisioning:FirstRetryInterval"] = "00:00:00.200",
            ["Provisioning:ReadyPollInterval"] = "00:00:00.500",
            ["Provisioning:ReadyTimeout"] = "00:01:00",
            ["Pools:Shared:MaxInstances"] = "3",
        }, services =>
        {
            services.AddSingleton<ProcessPoolProvisioner>();
            services.AddSingleton<IPoolProvisioner>(sp =>
                flaky = new FlakyProcessDriver(sp.GetRequiredService<ProcessPoolProvisioner>(), failures, createBeforeFailing));
        });
        _ = app.Get<PoolProvisioners>(); // builds the drivers
        return (app, flaky!);
    }

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _attempts = new();

    private string Attempts => string.Join("; ", _attempts);

    private Task<DurableTaskTestHost> StartEngineAsync(ProvisioningService provisioning) =>
        InMemoryEngine.StartAsync(registry =>
        {
            registry.AddOrchestratorFunc<ProvisionPoolInput, ProvisionPoolResult>(nameof(ProvisionPool), (ctx, _) => ProvisionPool.Run(ctx));
            var activities = new ProvisionPool(provisioning);
            registry.AddActivityFunc<long>(nameof(ProvisionPool.CreatePoolServer), async (ctx, id) =>
            {
                // Kept for the failure messages: which create attempts the engine ran, and how each ended.
                try
                {
                    await activities.CreatePoolServer(id, CancellationToken.None);
                    _attempts.Enqueue($"{ctx.InstanceId}: created");
                }
                catch (Exception e)
                {
                    _attempts.Enqueue($"{ctx.InstanceId}: {e.Message}");
                    throw;
                }
            });
            registry.AddActivityFunc<long, bool>(nameof(ProvisionPool.CheckPoolReady), (_, id) => activities.CheckPoolReady(id, CancellationToken.None));
            registry.AddActivityFunc<long>(nameof(ProvisionPool.InitializePool), (_, id) => activities.InitializePool(id, CancellationToken.None));
            registry.AddActivityFunc<FailPoolInput>(nameof(ProvisionPool.FailPool), (_, input) => activities.FailPool(input, CancellationToken.None));
        });

    [Fact]
    public async Task ProvisionPool_DriverFailsTwiceThenSucceeds_RetriesAndPoolBecomesActive()
    {
        var (app, driver) = await StartAsync(failures: 2, createBeforeFailing: false);
        await using var appScope = app;
        var provisioning = app.Get<ProvisioningService>();
        await using var engine = await StartEngineAsync(provisioning);

        var reserved = await provisioning.StartSharedAsync(engine.Client, "test", "test", CancellationToken.None);
        var done = await engine.Client.WaitForInstanceCompletionAsync(reserved.ProvisioningInstanceId, getInputsAndOutputs: true,
            new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        var result = done.ReadOutputAs<ProvisionPoolResult>()!;
        Assert.True(result.Status == "active", $"status {result.Status} after {driver.Calls} driver calls: {result.Error}; attempts run: {Attempts}");
        Assert.Equal(3, driver.Calls);
        var pool = (await app.Get<PoolStore>().GetAsync(reserved.PoolId, CancellationToken.None))!;
        Assert.Equal(PoolStatus.Active, pool.Status);
        Assert.Equal(HealthStatus.Healthy, pool.HealthStatus);
        Assert.StartsWith("15", pool.PostgresVersion);

        // The new pool takes tenants.
        var outcome = await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "starter"), CancellationToken.None);
        Assert.Equal(pool.Id, Assert.IsType<AllocationOutcome.Allocated>(outcome).Pool.Id);
        await app.Get<TenantDb.Functions.Pools.PoolConnections>().DisposeAsync();
        await driver.DeleteAsync(new PoolServerRef(pool.Name, pool.DriverResourceId, pool.Host, pool.Port, pool.AdminUser, "unused"), CancellationToken.None);
    }

    [Fact]
    public async Task ProvisionPool_DriverAlwaysFails_PoolErrorWithReasonAndServerRemoved()
    {
        var (app, driver) = await StartAsync(failures: int.MaxValue, createBeforeFailing: true);
        await using var appScope = app;
        var provisioning = app.Get<ProvisioningService>();
        await using var engine = await StartEngineAsync(provisioning);

        var reserved = await provisioning.StartSharedAsync(engine.Client, "test", "test", CancellationToken.None);
        var done = await engine.Client.WaitForInstanceCompletionAsync(reserved.ProvisioningInstanceId, getInputsAndOutputs: true,
            new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        var result = done.ReadOutputAs<ProvisionPoolResult>()!;
        Assert.Equal("error", result.Status);
        Assert.True(driver.Calls == 3, $"{driver.Calls} driver calls, then: {result.Error}; attempts run: {Attempts}");
        var pool = (await app.Get<PoolStore>().GetAsync(reserved.PoolId, CancellationToken.None))!;
        Assert.Equal(PoolStatus.Error, pool.Status);
        Assert.Contains("injected create failure", pool.LastError);
        Assert.False(Directory.Exists(Path.Combine(DataRoot, pool.Name)), "the half-made server must be removed");
    }

    [Fact]
    public async Task CreateServer_RunBeforeTheReservationCommits_WaitsForItInsteadOfFailingTheAttempt()
    {
        // The run is started under the reservation's lock, before its commit: an engine that runs the first activity at once
        // (LocalHost, the in-memory engine) used to find no pool ("Pool 1 is not in the catalog") and spend a create attempt.
        var (app, driver) = await StartAsync(failures: 0, createBeforeFailing: false);
        await using var appScope = app;
        var provisioning = app.Get<ProvisioningService>();
        Task? create = null;
        var reserved = await app.Get<ProvisioningStore>().ReserveAsync(
            new PoolReservationRequest(ServerType.Shared, 3, null, null, "tenantdb_admin", null, null, "process", "test", "test"),
            name => app.Get<TenantDb.Functions.Pools.PoolAdminPasswords>().Protect("not-a-real-password-0", name),
            async run =>
            {
                create = Task.Run(() => provisioning.CreateServerAsync(run.PoolId, CancellationToken.None));
                await Task.Delay(500); // the activity is running before the reservation commits
            },
            CancellationToken.None);

        await create!;
        Assert.Equal(1, driver.Calls);
        var pool = (await app.Get<PoolStore>().GetAsync(reserved.PoolId, CancellationToken.None))!;
        Assert.True(pool.Port > 0, "the server got its endpoint");
        await driver.DeleteAsync(new PoolServerRef(pool.Name, pool.DriverResourceId, pool.Host, pool.Port, pool.AdminUser, "unused"), CancellationToken.None);
    }

    [Fact]
    public async Task StartShared_ConcurrentStarts_JoinOneRunNeverDuplicate()
    {
        var (app, driver) = await StartAsync(failures: 0, createBeforeFailing: false);
        await using var appScope = app;
        var provisioning = app.Get<ProvisioningService>();
        await using var engine = await StartEngineAsync(provisioning);

        var starts = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            Task.Run(() => provisioning.StartSharedAsync(engine.Client, "test", "test", CancellationToken.None))));

        Assert.Single(starts.Select(s => s.PoolId).Distinct());
        Assert.Equal(7, starts.Count(s => s.Joined));
        var done = await engine.Client.WaitForInstanceCompletionAsync(starts[0].ProvisioningInstanceId, new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
        var pool = (await app.Get<PoolStore>().GetAsync(starts[0].PoolId, CancellationToken.None))!;
        await driver.DeleteAsync(new PoolServerRef(pool.Name, pool.DriverResourceId, pool.Host, pool.Port, pool.AdminUser, "unused"), CancellationToken.None);
    }

    [Fact]
    public async Task EnsureHeadroom_FreeSlotsBelowMinimum_StartsOneRunOtherwiseNone()
    {
        var (app, driver) = await StartAsync(failures: 0, createBeforeFailing: false);
        await using var appScope = app;
        var provisioning = app.Get<ProvisioningService>();
        await using var engine = await StartEngineAsync(provisioning);
        await app.AddPoolAsync(fixture.Pools[1], 100);

        Assert.Null(await provisioning.EnsureHeadroomAsync(engine.Client, CancellationToken.None));

        await using (var cmd = app.Catalog.CreateCommand("UPDATE db_servers SET max_instances = 2"))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var started = await provisioning.EnsureHeadroomAsync(engine.Client, CancellationToken.None);
        Assert.NotNull(started);
        Assert.Null(await provisioning.EnsureHeadroomAsync(engine.Client, CancellationToken.None)); // one run at a time
        var done = await engine.Client.WaitForInstanceCompletionAsync(started.ProvisioningInstanceId, new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        var pool = (await app.Get<PoolStore>().GetAsync(started.PoolId, CancellationToken.None))!;
        await driver.DeleteAsync(new PoolServerRef(pool.Name, pool.DriverResourceId, pool.Host, pool.Port, pool.AdminUser, "unused"), CancellationToken.None);
    }
}
