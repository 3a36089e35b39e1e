using Docker.DotNet.Models;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Drivers;

/// <summary>
/// The Swarm service spec of one pool server, in the mode <c>Provisioning:Swarm:Mode</c> selects. <c>host</c> (the tests):
/// host networking on a port chosen on the allocator's machine, data in a named volume. <c>overlay</c> (production): the
/// service joins the overlay network it shares with the app and is reached by its service name on 5432, publishes no port,
/// keeps its data under <c>StorageRoot/&lt;pool&gt;</c> (a bind mount of the platform's shared storage, so a rescheduled
/// task finds it), and reserves its memory so the scheduler places it only where that memory is free.
/// </summary>
public sealed class SwarmServiceSpec(DockerEngine engine, IOptions<ProvisioningOptions> options)
{
    /// <summary>How long Swarm lets PostgreSQL shut down cleanly before it kills the task (ns).</summary>
    private const long StopGracePeriodNanos = 30_000_000_000;

    /// <summary>Delay before Swarm restarts a failed task (ns).</summary>
    private const long RestartDelayNanos = 5_000_000_000;

    private SwarmDriverOptions Swarm => options.Value.Swarm;

    /// <summary>True in <c>host</c> mode: the server listens on a port of the node's own network.</summary>
    public bool HostNetwork => Swarm.Mode == SwarmDriverOptions.HostMode;

    /// <summary>The port a new server listens on: a free loopback port in <c>host</c> mode, else PostgreSQL's own.</summary>
    public int PortForNewServer() => HostNetwork ? LocalPostgres.FreeLoopbackPort() : PostgresPorts.Default;

    /// <summary>The server's data folder on the storage root (bind-mounted), or null: a named volume on the node.</summary>
    public string? StoragePath(string poolName) =>
        string.IsNullOrWhiteSpace(Swarm.StorageRoot) ? null : Path.Combine(Swarm.StorageRoot, poolName);

    /// <summary>The spec of service <paramref name="name"/> for <paramref name="spec"/>, listening on <paramref name="port"/>.</summary>
    public ServiceSpec Build(PoolServerSpec spec, string name, int port)
    {
        var labels = engine.Labels(spec, HostNetwork ? port : null);
        var storage = StoragePath(spec.Name);
        var memory = DockerEngine.MemoryBytes(spec.Memory) ?? 0;
        return new ServiceSpec
        {
            Name = name,
            Labels = labels,
            Mode = new ServiceMode { Replicated = new ReplicatedService { Replicas = 1 } },
            TaskTemplate = new TaskSpec
            {
                ContainerSpec = new ContainerSpec
                {
                    Image = engine.Image,
                    Env = engine.Environment(spec),
                    Args = engine.Command(port, HostNetwork ? Swarm.HostNetworkAddress : "*"),
                    Labels = labels,
                    Mounts = [DataMount(spec, storage, labels)],
                    StopGracePeriod = StopGracePeriodNanos,
                },
                Resources = new ResourceRequirements
                {
                    Limits = new SwarmLimit { NanoCPUs = DockerEngine.NanoCpus(spec.Cpu) ?? 0, MemoryBytes = memory },
                    // Production: place a pool only where its memory is free. Not on the tests' one small node, where
                    // several pools of several runs share two cores and a few GB.
                    Reservations = HostNetwork ? null : new SwarmResources { MemoryBytes = memory },
                },
                RestartPolicy = new SwarmRestartPolicy { Condition = "any", Delay = RestartDelayNanos },
                Placement = new Placement { Constraints = string.IsNullOrWhiteSpace(Swarm.PlacementConstraint) ? [] : [Swarm.PlacementConstraint] },
                Networks = [new NetworkAttachmentConfig { Target = Swarm.Network }],
            },
            // No published port in either mode: overlay pools are reached by service name, host ones on the node's port.
            EndpointSpec = HostNetwork ? null : new EndpointSpec { Mode = "vip", Ports = [] },
        };
    }

    private static Mount DataMount(PoolServerSpec spec, string? storage, Dictionary<string, string> labels) =>
        storage is null
            ? new Mount
            {
                Type = "volume", Source = DockerEngine.VolumeName(spec.Name), Target = DockerEngine.DataPath,
                VolumeOptions = new VolumeOptions { Labels = labels }, // the engine creates it on the node: labelled like the service
            }
            : new Mount { Type = "bind", Source = storage, Target = DockerEngine.DataPath };
}
