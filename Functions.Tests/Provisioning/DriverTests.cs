using System.Diagnostics;
using Docker.DotNet.Models;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;
using Xunit.Abstractions;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Provisioning;

/// <summary>
/// Each driver's whole lifecycle against the real thing: a Docker engine with a swarm, local processes, a running server.
/// What the driver tests share; the tests that need the Docker engine are in <see cref="DockerDriverTests"/>.
/// </summary>
public abstract class DriverTestKit(PostgresFixture fixture, ITestOutputHelper output)
{
    protected static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    protected PostgresFixture Fixture => fixture;

    protected Task<TestApp> StartAppAsync(string driver) => TestApp.StartAsync(fixture, new Dictionary<string, string?>
    {
        ["Provisioning:Driver"] = driver,
        ["Provisioning:Owner"] = DockerTestEngine.Owner,
        ["Provisioning:Docker:Image"] = DockerTestEngine.Image,
        ["Provisioning:Docker:NetworkMode"] = "host",
        ["Provisioning:Swarm:Network"] = "host",
        ["Provisioning:Process:DataRoot"] = Path.Combine(PostgresFixture.Root, "process-pools"),
    });

    protected static PoolServerSpec NewSpec(string prefix) =>
        new($"{prefix}-{Guid.NewGuid().ToString("N")[..8]}", "shared", "tenantdb_admin", PasswordGenerator.Generate(40), 1, "512m", CatalogId: Guid.NewGuid());

    protected static PoolServerRef RefOf(PoolServerSpec spec, ServerEndpoint endpoint) =>
        new(spec.Name, endpoint.ResourceId, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword);

    protected async Task<ServerState> WaitRunningAsync(IPoolProvisioner driver, PoolServerRef server, Stopwatch since)
    {
        var deadline = DateTimeOffset.UtcNow + ReadyTimeout;
        while (true)
        {
            var state = await driver.InspectAsync(server, CancellationToken.None);
            if (state.Presence == ServerPresence.Running)
            {
                output.WriteLine($"{driver.Driver}: create → ready in {since.Elapsed.TotalSeconds:F2} s");
                return state;
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, $"{driver.Driver} server not ready within {ReadyTimeout}: {state.Presence} {state.Detail}");
            await Task.Delay(250);
        }
    }

    protected static async Task<ServerState> WaitNotRunningAsync(IPoolProvisioner driver, PoolServerRef server)
    {
        var deadline = DateTimeOffset.UtcNow + ReadyTimeout;
        while (true)
        {
            var state = await driver.InspectAsync(server, CancellationToken.None);
            if (state.Presence is ServerPresence.Down or ServerPresence.Missing || DateTimeOffset.UtcNow > deadline)
            {
                return state;
            }

            await Task.Delay(250);
        }
    }

    /// <summary>Create twice (one server), ready by SELECT 1, a tenant database placed on it, stop, delete, nothing left.</summary>
    protected async Task FullLifecycleAsync(string driverName, Func<PoolServerSpec, Task<int>> countResources)
    {
        await using var app = await StartAppAsync(driverName);
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = NewSpec(driverName);
        var watch = Stopwatch.StartNew();

        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        var again = await driver.CreateAsync(spec, CancellationToken.None);
        var server = RefOf(spec, endpoint);
        try
        {
            Assert.Equal(endpoint.ResourceId, again.ResourceId);
            Assert.Equal(1, await countResources(spec));
            var state = await WaitRunningAsync(driver, server, watch);
            Assert.Equal(endpoint.Port, state.Port);

            var pool = await app.AddPoolAsync(spec.Name, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword, driverName, 5, resourceId: endpoint.ResourceId);
            var outcome = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
                new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "starter"), CancellationToken.None));
            Assert.Equal(pool.Id, outcome.Pool.Id);
            await using var tenant = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
            {
                Host = endpoint.Host, Port = endpoint.Port, Database = outcome.Tenant.DbName, Username = outcome.Tenant.DbUser,
                Password = outcome.Password!.Reveal(), Pooling = false,
            }.ConnectionString);
            await tenant.OpenAsync();
            // The server carries the identity of the catalog that made it (issue 9, item 2).
            Assert.Contains(await driver.ListOwnedAsync(CancellationToken.None), o => o.Name == spec.Name && o.CatalogId == spec.CatalogId);

            // Stopped (an orphan in its grace period): down, still listed, and idempotent.
            await tenant.CloseAsync();
            await app.Get<TenantDb.Functions.Pools.PoolConnections>().DisposeAsync();
            await driver.StopAsync(server, CancellationToken.None);
            await driver.StopAsync(server, CancellationToken.None);
            Assert.Equal(ServerPresence.Down, (await WaitNotRunningAsync(driver, server)).Presence);
            Assert.Contains(await driver.ListOwnedAsync(CancellationToken.None), o => o.Name == spec.Name);
        }
        finally
        {
            await app.Get<TenantDb.Functions.Pools.PoolConnections>().DisposeAsync();
            await driver.DeleteAsync(server, CancellationToken.None);
        }

        Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(server, CancellationToken.None)).Presence);
        Assert.Equal(0, await countResources(spec));
        Assert.DoesNotContain(await driver.ListOwnedAsync(CancellationToken.None), o => o.Name == spec.Name);
    }
}

/// <summary>The drivers that need no Docker engine: local processes and a registered server.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class DriverTests(PostgresFixture fixture, ITestOutputHelper output) : DriverTestKit(fixture, output)
{
    [Fact]
    public async Task Process_Lifecycle_CreateIdempotentReadyAllocateDeleteLeavesNothing()
    {
        var root = Path.Combine(PostgresFixture.Root, "process-pools");
        await FullLifecycleAsync("process", spec => Task.FromResult(Directory.Exists(Path.Combine(root, spec.Name)) ? 1 : 0));
    }

    [Fact]
    public async Task Process_KilledServer_IsSeenDownAndRestartBringsItBack()
    {
        await using var app = await StartAppAsync("process");
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = NewSpec("process");
        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        var server = RefOf(spec, endpoint);
        try
        {
            await WaitRunningAsync(driver, server, Stopwatch.StartNew());

            ProcessPoolProvisioner.Kill(endpoint.ResourceId);
            var deadline = DateTimeOffset.UtcNow.AddSeconds(20);
            ServerState state;
            do
            {
                await Task.Delay(200);
                state = await driver.InspectAsync(server, CancellationToken.None);
            }
            while (state.Presence != ServerPresence.Down && DateTimeOffset.UtcNow < deadline);
            Assert.Equal(ServerPresence.Down, state.Presence);

            await driver.RestartAsync(server, CancellationToken.None);
            await WaitRunningAsync(driver, server, Stopwatch.StartNew());
        }
        finally
        {
            await driver.DeleteAsync(server, CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("process")]
    [InlineData("registered")]
    public async Task Inspect_MissingServer_IsMissingOrDownNotAnException(string driverName)
    {
        await using var app = await StartAppAsync(driverName);
        var driver = app.Get<PoolProvisioners>().Default;

        var state = await driver.InspectAsync(new PoolServerRef($"nothere-{Guid.NewGuid():N}"[..16], null, "127.0.0.1", LocalPostgres.FreeLoopbackPort(), "x", "y"), CancellationToken.None);

        Assert.Equal(driverName == "registered" ? ServerPresence.Down : ServerPresence.Missing, state.Presence);
    }

    [Fact]
    public async Task Registered_ExistingServer_IsCheckedInspectedAndHostsATenant()
    {
        var existing = await Fixture.StartServerAsync($"reg-{Guid.NewGuid():N}"[..12], null);
        await using var app = await StartAppAsync("registered");
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = new PoolServerSpec(existing.Name, "shared", TestServer.Superuser, existing.Password, null, null, "127.0.0.1", existing.Port);

        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        var server = RefOf(spec, endpoint);
        var state = await WaitRunningAsync(driver, server, Stopwatch.StartNew());
        await app.AddPoolAsync(existing, 5);
        var outcome = await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "starter"), CancellationToken.None);

        Assert.Equal(existing.Port, state.Port);
        Assert.IsType<AllocationOutcome.Allocated>(outcome);
        await existing.StopAsync();
        Assert.Equal(ServerPresence.Down, (await driver.InspectAsync(server, CancellationToken.None)).Presence);
        await driver.DeleteAsync(server, CancellationToken.None); // does nothing to the server
        await existing.StartAsync();
        Assert.Equal(ServerPresence.Running, (await driver.InspectAsync(server, CancellationToken.None)).Presence);
        await existing.StopAsync();
    }

    [Fact]
    public async Task Registered_WrongPassword_IsRefusedAtCreate()
    {
        await using var app = await StartAppAsync("registered");
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = new PoolServerSpec("reg-wrong", "shared", TestServer.Superuser, "WrongPassword123", null, null, "127.0.0.1", Fixture.Pools[2].Port);

        await Assert.ThrowsAsync<ServerUnreachableException>(() => driver.CreateAsync(spec, CancellationToken.None));
    }
}

/// <summary>The swarm and Docker drivers, against the Docker engine the test command started (infra/docker/engine.sh).</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Docker)]
public sealed class DockerDriverTests(PostgresFixture fixture, ITestOutputHelper output) : DriverTestKit(fixture, output)
{
    [Fact]
    public async Task Swarm_Lifecycle_CreateIdempotentReadyAllocateDeleteLeavesNothing()
    {
        var docker = DockerTestEngine.Client();
        await FullLifecycleAsync("swarm", async spec =>
        {
            var name = DockerEngine.ResourceName(spec.Name);
            var services = await docker.Swarm.ListServicesAsync(new ServicesListParameters { Filters = new ServiceFilter { Name = [name] } });
            var volumes = await docker.Volumes.ListAsync();
            var containers = await DockerTestEngine.ContainersWithLabelAsync(docker, $"com.docker.swarm.service.name={name}");
            // While it exists: exactly one service. After delete: no service, no container, no volume.
            return services.Count(s => s.Spec.Name == name)
                + (!services.Any() ? containers.Count + (volumes.Volumes?.Count(v => v.Name == DockerEngine.VolumeName(spec.Name)) ?? 0) : 0);
        });
    }

    [Fact]
    public async Task Swarm_Service_IsPinnedToItsNodeAndCarriesLimitsAndLabels()
    {
        await using var app = await StartAppAsync("swarm");
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = NewSpec("swarm");
        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        try
        {
            var service = await DockerTestEngine.Client().Swarm.InspectServiceAsync(endpoint.ResourceId);
            var constraints = service.Spec.TaskTemplate.Placement.Constraints;
            Assert.Contains("node.labels.role==database", constraints);
            Assert.Contains(constraints, c => c.StartsWith("node.id==", StringComparison.Ordinal));
            Assert.Equal(1_000_000_000, service.Spec.TaskTemplate.Resources.Limits.NanoCPUs);
            Assert.Equal(512L << 20, service.Spec.TaskTemplate.Resources.Limits.MemoryBytes);
            Assert.Equal(DockerTestEngine.Owner, service.Spec.Labels[DockerEngine.OwnerLabel]);
            Assert.Equal(spec.Name, service.Spec.Labels[DockerEngine.PoolLabel]);
            Assert.Equal("any", service.Spec.TaskTemplate.RestartPolicy.Condition);
        }
        finally
        {
            await driver.DeleteAsync(RefOf(spec, endpoint), CancellationToken.None);
        }
    }

    /// <summary>Every Docker object the drivers make carries the labels, the data volume too (issue 11: it had none).</summary>
    [Theory]
    [InlineData("swarm")]
    [InlineData("docker")]
    public async Task Volume_CarriesTheServersLabels_AndDeleteRemovesIt(string driverName)
    {
        var docker = DockerTestEngine.Client();
        await using var app = await StartAppAsync(driverName);
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = NewSpec(driverName);
        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        var server = RefOf(spec, endpoint);
        try
        {
            await WaitRunningAsync(driver, server, Stopwatch.StartNew());
            var labels = new Dictionary<string, string>((await docker.Volumes.InspectAsync(DockerEngine.VolumeName(spec.Name))).Labels ?? new Dictionary<string, string>());
            Assert.Equal(DockerTestEngine.Owner, labels.GetValueOrDefault(DockerEngine.OwnerLabel));
            Assert.Equal(spec.Name, labels.GetValueOrDefault(DockerEngine.PoolLabel));
            Assert.Equal(spec.CatalogId?.ToString("D"), labels.GetValueOrDefault(DockerEngine.CatalogLabel));
        }
        finally
        {
            await driver.DeleteAsync(server, CancellationToken.None);
        }

        Assert.Equal(0, await VolumesOfAsync(docker, spec));
    }

    /// <summary>
    /// A delete right after a create, while the swarm task is still being prepared, leaves no container and no volume
    /// behind, not even one made a moment after the delete returned (issue 11: a <c>tenantdb-swarm-…-data</c> volume stayed).
    /// </summary>
    [Fact]
    public async Task Swarm_DeleteRightAfterCreate_LeavesNoContainerOrVolumeLater()
    {
        var docker = DockerTestEngine.Client();
        await using var app = await StartAppAsync("swarm");
        var driver = app.Get<PoolProvisioners>().Default;
        var spec = NewSpec("swarm");
        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        await driver.DeleteAsync(RefOf(spec, endpoint), CancellationToken.None);

        // Anything the engine was still making shows up within seconds.
        var name = DockerEngine.ResourceName(spec.Name);
        var leftovers = 0;
        for (var i = 0; i < 20 && leftovers == 0; i++)
        {
            await Task.Delay(500);
            leftovers = (await DockerTestEngine.ContainersWithLabelAsync(docker, $"com.docker.swarm.service.name={name}")).Count + await VolumesOfAsync(docker, spec);
        }

        if (leftovers > 0)
        {
            // Leave nothing behind for the next test, then fail.
            await driver.DeleteAsync(RefOf(spec, endpoint), CancellationToken.None);
        }

        Assert.Equal(0, leftovers);
    }

    private static async Task<int> VolumesOfAsync(Docker.DotNet.DockerClient docker, PoolServerSpec spec) =>
        (await docker.Volumes.ListAsync()).Volumes?.Count(v => v.Name == DockerEngine.VolumeName(spec.Name)) ?? 0;

    [Fact]
    public async Task Docker_Lifecycle_CreateIdempotentReadyAllocateDeleteLeavesNothing()
    {
        var docker = DockerTestEngine.Client();
        await FullLifecycleAsync("docker", async spec =>
        {
            var containers = await DockerTestEngine.ContainersWithLabelAsync(docker, $"{DockerEngine.PoolLabel}={spec.Name}");
            var volumes = await docker.Volumes.ListAsync();
            return containers.Count + (containers.Count == 0 ? volumes.Volumes?.Count(v => v.Name == DockerEngine.VolumeName(spec.Name)) ?? 0 : 0);
        });
    }

    [Theory]
    [InlineData("swarm")]
    [InlineData("docker")]
    public async Task Inspect_MissingServer_IsMissingOrDownNotAnException(string driverName)
    {
        await using var app = await StartAppAsync(driverName);
        var driver = app.Get<PoolProvisioners>().Default;

        var state = await driver.InspectAsync(new PoolServerRef($"nothere-{Guid.NewGuid():N}"[..16], null, "127.0.0.1", LocalPostgres.FreeLoopbackPort(), "x", "y"), CancellationToken.None);

        Assert.Equal(driverName == "registered" ? ServerPresence.Down : ServerPresence.Missing, state.Presence);
    }
}
