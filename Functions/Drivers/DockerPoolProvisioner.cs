using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Drivers;

/// <summary>A pool server as one container on a single Docker host: restart unless-stopped, reached on loopback.</summary>
public sealed class DockerPoolProvisioner(DockerEngine engine, IOptions<ProvisioningOptions> options) : IPoolProvisioner
{

    public string Driver => DriverNames.Docker;

    private bool HostNetwork => options.Value.Docker.NetworkMode == "host";

    public async Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct)
    {
        var name = DockerEngine.ResourceName(spec.Name);
        var existing = await FindAsync(name, ct);
        if (existing is null)
        {
            var port = HostNetwork ? LocalPostgresPort() : PostgresPorts.Default;
            var labels = engine.Labels(spec, HostNetwork ? port : null);
            var host = new HostConfig
            {
                RestartPolicy = new RestartPolicy { Name = RestartPolicyKind.UnlessStopped },
                NanoCPUs = DockerEngine.NanoCpus(spec.Cpu) ?? 0,
                Memory = DockerEngine.MemoryBytes(spec.Memory) ?? 0,
                // The engine creates the volume with the container: labelled like it, so a label-based cleanup finds it too.
                Mounts = [new Mount { Type = "volume", Source = DockerEngine.VolumeName(spec.Name), Target = DockerEngine.DataPath, VolumeOptions = new VolumeOptions { Labels = labels } }],
                NetworkMode = HostNetwork ? "host" : "bridge",
            };
            if (!HostNetwork)
            {
                host.PortBindings = new Dictionary<string, IList<PortBinding>>
                {
                    [PostgresPorts.DockerTcp] = [new PortBinding { HostIP = "127.0.0.1", HostPort = "" }],
                };
            }

            try
            {
                await engine.Client.Containers.CreateContainerAsync(new CreateContainerParameters
                {
                    Name = name,
                    Image = engine.Image,
                    Env = engine.Environment(spec),
                    Cmd = engine.Command(port, HostNetwork ? "127.0.0.1" : "*"),
                    Labels = labels,
                    ExposedPorts = HostNetwork ? null : new Dictionary<string, EmptyStruct> { [PostgresPorts.DockerTcp] = default },
                    HostConfig = host,
                }, ct);
            }
            catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
            {
                // A concurrent create of the same name won; use its container.
            }

            existing = await FindAsync(name, ct) ?? throw new InvalidOperationException($"Container {name} vanished right after it was created.");
        }

        if (existing.State != "running")
        {
            await engine.Client.Containers.StartContainerAsync(existing.ID, new ContainerStartParameters(), ct);
        }

        var (endpointHost, endpointPort) = await EndpointAsync(existing.ID, ct);
        return new ServerEndpoint(endpointHost, endpointPort, existing.ID, DockerEngine.VolumeName(spec.Name));
    }

    public async Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct)
    {
        var container = await FindAsync(DockerEngine.ResourceName(server.Name), ct);
        if (container is null)
        {
            return new ServerState(ServerPresence.Missing, null, null);
        }

        if (container.State != "running")
        {
            return new ServerState(ServerPresence.Down, server.Host, server.Port, $"container {container.State}");
        }

        var (host, port) = await EndpointAsync(container.ID, ct);
        var probe = await PoolProbe.ProbeAsync(host, port, server.AdminUser, server.AdminPassword, options.Value.ProbeTimeout, ct);
        return new ServerState(probe.Ok ? ServerPresence.Running : ServerPresence.Starting, host, port, probe.Error);
    }

    public async Task DeleteAsync(PoolServerRef server, CancellationToken ct)
    {
        var container = await FindAsync(DockerEngine.ResourceName(server.Name), ct);
        if (container is not null)
        {
            try
            {
                await engine.Client.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, ct);
            }
            catch (DockerContainerNotFoundException)
            {
                // Removed concurrently.
            }
        }

        try
        {
            await engine.Client.Volumes.RemoveAsync(DockerEngine.VolumeName(server.Name), force: true, ct);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            // No volume: nothing to remove.
        }
    }

    public async Task RestartAsync(PoolServerRef server, CancellationToken ct)
    {
        var container = await FindAsync(DockerEngine.ResourceName(server.Name), ct)
            ?? throw new InvalidOperationException($"No container for pool {server.Name}.");
        await engine.Client.Containers.RestartContainerAsync(container.ID, new ContainerRestartParameters { WaitBeforeKillSeconds = 10 }, ct);
    }

    public async Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct)
    {
        var containers = await engine.Client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{DockerEngine.OwnerLabel}={engine.Owner}"] = true } },
        }, ct);
        return containers.Select(c => DockerEngine.Owned(c.Labels, c.ID)).OfType<OwnedServer>().ToList();
    }

    public async Task StopAsync(PoolServerRef server, CancellationToken ct)
    {
        if (await FindAsync(DockerEngine.ResourceName(server.Name), ct) is { State: "running" or "restarting" } container)
        {
            // The restart policy would bring it back; an orphan stays down until it is deleted or a pool claims it again.
            await engine.Client.Containers.UpdateContainerAsync(container.ID, new ContainerUpdateParameters { RestartPolicy = new RestartPolicy { Name = RestartPolicyKind.No } }, ct);
            await engine.Client.Containers.StopContainerAsync(container.ID, new ContainerStopParameters { WaitBeforeKillSeconds = 30 }, ct);
        }
    }

    private async Task<ContainerListResponse?> FindAsync(string name, CancellationToken ct)
    {
        var containers = await engine.Client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["name"] = new Dictionary<string, bool> { [$"^/{name}$"] = true } },
        }, ct);
        return containers.SingleOrDefault();
    }

    private async Task<(string Host, int Port)> EndpointAsync(string containerId, CancellationToken ct)
    {
        var inspect = await engine.Client.Containers.InspectContainerAsync(containerId, ct);
        if (inspect.Config.Labels.TryGetValue(DockerEngine.PortLabel, out var label) && inspect.HostConfig.NetworkMode == "host")
        {
            return ("127.0.0.1", int.Parse(label, System.Globalization.CultureInfo.InvariantCulture));
        }

        PortBinding? binding = null;
        if (inspect.NetworkSettings?.Ports is { } ports && ports.TryGetValue(PostgresPorts.DockerTcp, out var bindings))
        {
            binding = bindings?.FirstOrDefault(b => !string.IsNullOrEmpty(b.HostPort));
        }

        if (binding is null)
        {
            throw new InvalidOperationException($"The container publishes no port for {PostgresPorts.DockerTcp}.");
        }

        return ("127.0.0.1", int.Parse(binding.HostPort, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static int LocalPostgresPort() => LocalPostgres.FreeLoopbackPort();
}
