using Microsoft.Extensions.Options;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Provisioning;

/// <summary>
/// The swarm driver's production mode (<c>Provisioning:Swarm:Mode=overlay</c>), which no test here can run (it needs an
/// overlay network and shared storage across nodes; the tests stay on host networking): the service spec it would send,
/// built and checked field by field, against the host-mode spec the Docker tests do run. No engine is contacted.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class SwarmServiceSpecTests
{
    private const string StorageRoot = "/mnt/cephfs/tenantdb/pools";

    private static readonly PoolServerSpec Pool = new("pool-0a1b2c3d", "shared", "tenantdb_admin", PasswordGenerator.Generate(40), 2, "4g", CatalogId: Guid.NewGuid());

    private static SwarmServiceSpec Builder(Action<SwarmDriverOptions> configure)
    {
        var options = new ProvisioningOptions { Owner = "tenantdb-prod", Docker = { Image = "postgres:16-alpine" } };
        configure(options.Swarm);
        var wrapped = Options.Create(options);
        return new SwarmServiceSpec(new DockerEngine(wrapped), wrapped);
    }

    private static SwarmServiceSpec Production() => Builder(s =>
    {
        s.Mode = SwarmDriverOptions.OverlayMode;
        s.Network = "tenantdb-pools";
        s.StorageRoot = StorageRoot;
        s.SharedStorage = true;
    });

    [Fact]
    public void Overlay_JoinsTheSharedNetwork_ListensOn5432_PublishesNothing()
    {
        var builder = Production();
        var port = builder.PortForNewServer();
        var spec = builder.Build(Pool, DockerEngine.ResourceName(Pool.Name), port);

        Assert.False(builder.HostNetwork);
        Assert.Equal(PostgresPorts.Default, port);
        Assert.Equal("tenantdb-pools", Assert.Single(spec.TaskTemplate.Networks).Target);
        Assert.Empty(spec.EndpointSpec.Ports);
        var args = spec.TaskTemplate.ContainerSpec.Args;
        Assert.Contains("port=5432", args);
        Assert.Contains("listen_addresses=*", args);
        Assert.Equal("tenantdb-pool-0a1b2c3d", spec.Name);
    }

    [Fact]
    public void Overlay_DataIsABindMountUnderTheStorageRoot()
    {
        var spec = Production().Build(Pool, DockerEngine.ResourceName(Pool.Name), PostgresPorts.Default);

        var mount = Assert.Single(spec.TaskTemplate.ContainerSpec.Mounts);
        Assert.Equal("bind", mount.Type);
        Assert.Equal($"{StorageRoot}/{Pool.Name}", mount.Source);
        Assert.Equal(DockerEngine.DataPath, mount.Target);
        Assert.Contains($"PGDATA={DockerEngine.PgData}", spec.TaskTemplate.ContainerSpec.Env);
        Assert.Equal($"{StorageRoot}/{Pool.Name}", Production().StoragePath(Pool.Name));
    }

    [Fact]
    public void Overlay_IsPlacedOnDatabaseNodes_WithLabelsLimitsAndAReservation()
    {
        var spec = Production().Build(Pool, DockerEngine.ResourceName(Pool.Name), PostgresPorts.Default);
        var task = spec.TaskTemplate;

        Assert.Equal(["node.labels.role==database"], task.Placement.Constraints);
        foreach (var labels in new[] { spec.Labels, task.ContainerSpec.Labels })
        {
            Assert.Equal("tenantdb-prod", labels[DockerEngine.OwnerLabel]);
            Assert.Equal(Pool.Name, labels[DockerEngine.PoolLabel]);
            Assert.Equal("shared", labels[DockerEngine.ServerTypeLabel]);
            Assert.Equal("5432", labels[DockerEngine.PortLabel]);
            Assert.Equal(Pool.CatalogId!.Value.ToString("D"), labels[DockerEngine.CatalogLabel]);
        }

        Assert.Equal(2_000_000_000, task.Resources.Limits.NanoCPUs);
        Assert.Equal(4L << 30, task.Resources.Limits.MemoryBytes);
        Assert.Equal(4L << 30, task.Resources.Reservations.MemoryBytes);
        Assert.Equal("any", task.RestartPolicy.Condition);
        Assert.Equal(1UL, spec.Mode.Replicated.Replicas);
        Assert.Equal("postgres:16-alpine", task.ContainerSpec.Image);
    }

    /// <summary>The mode the Docker tests run: what production changes is really different there.</summary>
    [Fact]
    public void Host_UsesHostNetworking_AChosenPort_AndANamedVolume()
    {
        var builder = Builder(_ => { });
        var spec = builder.Build(Pool, DockerEngine.ResourceName(Pool.Name), 54_321);

        Assert.True(builder.HostNetwork);
        Assert.Equal("host", Assert.Single(spec.TaskTemplate.Networks).Target);
        Assert.Null(spec.EndpointSpec);
        Assert.Contains("port=54321", spec.TaskTemplate.ContainerSpec.Args);
        Assert.Contains("listen_addresses=127.0.0.1", spec.TaskTemplate.ContainerSpec.Args);
        Assert.Equal("54321", spec.Labels[DockerEngine.PortLabel]);
        var mount = Assert.Single(spec.TaskTemplate.ContainerSpec.Mounts);
        Assert.Equal("volume", mount.Type);
        Assert.Equal(DockerEngine.VolumeName(Pool.Name), mount.Source);
        Assert.Null(spec.TaskTemplate.Resources.Reservations);
    }

    [Fact]
    public async Task Overlay_Settings_Validate()
    {
        await using var app = OfflineApp.Start(new Dictionary<string, string?>
        {
            ["Provisioning:Driver"] = "swarm",
            ["Provisioning:Swarm:Mode"] = "overlay",
            ["Provisioning:Swarm:Network"] = "tenantdb-pools",
            ["Provisioning:Swarm:StorageRoot"] = StorageRoot,
            ["Provisioning:Swarm:SharedStorage"] = "true",
        });

        app.Get<IStartupValidator>().Validate();
        Assert.Equal(SwarmDriverOptions.OverlayMode, app.Get<IOptions<ProvisioningOptions>>().Value.Swarm.Mode);
    }

    [Theory]
    [InlineData("Provisioning:Swarm:Mode", "ingress", null, null, "Provisioning:Swarm:Mode")]
    [InlineData("Provisioning:Swarm:Mode", "overlay", "Provisioning:Swarm:StorageRoot", StorageRoot, "Provisioning:Swarm:Network")]
    [InlineData("Provisioning:Swarm:Mode", "overlay", "Provisioning:Swarm:Network", "tenantdb-pools", "Provisioning:Swarm:StorageRoot")]
    [InlineData("Provisioning:Swarm:Network", "tenantdb-pools", null, null, "Provisioning:Swarm:Network")]
    [InlineData("Provisioning:Swarm:StorageRoot", "relative/pools", null, null, "Provisioning:Swarm:StorageRoot")]
    public async Task BadSwarmSetting_StartUpFails_NamingTheKey(string key, string value, string? otherKey, string? otherValue, string named)
    {
        var settings = new Dictionary<string, string?> { [key] = value };
        if (otherKey is not null)
        {
            settings[otherKey] = otherValue;
        }

        await using var app = OfflineApp.Start(settings);

        var error = Assert.Throws<OptionsValidationException>(() => app.Get<IStartupValidator>().Validate());
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }
}
