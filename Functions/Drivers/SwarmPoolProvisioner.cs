using System.Globalization;
using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Drivers;

/// <summary>
/// A pool server as a Docker Swarm service (the platform's production path), its spec built by <see cref="SwarmServiceSpec"/>
/// in the mode <c>Provisioning:Swarm:Mode</c> selects (host networking for the tests, the overlay network and the storage
/// root in production). Unless the storage root is shared across nodes, the service is pinned to the
/// node it first ran on, so a reschedule never brings the pool back without its data.
/// </summary>
public sealed class SwarmPoolProvisioner(DockerEngine engine, IOptions<ProvisioningOptions> options) : IPoolProvisioner
{
    private static readonly TimeSpan PinWait = TimeSpan.FromSeconds(30);

    /// <summary>How often the driver asks the engine again while it waits for a task, a container or a volume.</summary>
    private static readonly TimeSpan EnginePollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a removed service's containers may take to go.</summary>
    private static readonly TimeSpan ContainersGoneWait = TimeSpan.FromSeconds(60);

    /// <summary>Tries to remove a service's volume while the engine still holds it (× <see cref="EnginePollInterval"/>).</summary>
    private const int VolumeRemoveAttempts = 120;
    private readonly SwarmServiceSpec _specs = new(engine, options);
    private SwarmDriverOptions Swarm => options.Value.Swarm;
    private bool HostNetwork => _specs.HostNetwork;

    public string Driver => DriverNames.Swarm;

    public async Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct)
    {
        var name = DockerEngine.ResourceName(spec.Name);
        var service = await FindAsync(name, ct);
        if (service is null)
        {
            var port = _specs.PortForNewServer();
            try
            {
                await engine.Client.Swarm.CreateServiceAsync(new ServiceCreateParameters { Service = Spec(spec, name, port) }, ct);
            }
            catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
            {
                // A concurrent create of the same name won; use its service.
            }

            service = await FindAsync(name, ct) ?? throw new InvalidOperationException($"Service {name} vanished right after it was created.");
        }

        await PinToNodeAsync(service, ct);
        var (host, endpointPort) = Endpoint(service);
        return new ServerEndpoint(host, endpointPort, service.ID, StoragePath(spec.Name) ?? DockerEngine.VolumeName(spec.Name));
    }

    public async Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct)
    {
        var service = await FindAsync(DockerEngine.ResourceName(server.Name), ct);
        if (service is null)
        {
            return new ServerState(ServerPresence.Missing, null, null);
        }

        var tasks = await TasksAsync(service.ID, ct);
        var (host, port) = Endpoint(service);
        if (!tasks.Any(t => t.Status?.State == TaskState.Running))
        {
            var state = tasks.OrderByDescending(t => t.UpdatedAt).FirstOrDefault()?.Status;
            return new ServerState(ServerPresence.Down, host, port, state is null ? "no task" : $"task {state.State}: {state.Err}");
        }

        await PinToNodeAsync(service, ct);
        var probe = await PoolProbe.ProbeAsync(host, port, server.AdminUser, server.AdminPassword, options.Value.ProbeTimeout, ct);
        return new ServerState(probe.Ok ? ServerPresence.Running : ServerPresence.Starting, host, port, probe.Error);
    }

    public async Task DeleteAsync(PoolServerRef server, CancellationToken ct)
    {
        var name = DockerEngine.ResourceName(server.Name);
        if (await FindAsync(name, ct) is { } service)
        {
            await EndTasksAsync(service, ct);
            try
            {
                await engine.Client.Swarm.RemoveServiceAsync(service.ID, ct);
            }
            catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                // Removed concurrently.
            }
        }

        // The service's containers go away asynchronously; the volume can be removed once none uses it.
        var deadline = DateTimeOffset.UtcNow.AddSeconds(60);
        while (true)
        {
            var left = await engine.Client.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true,
                Filters = Filter("label", $"com.docker.swarm.service.name={name}"),
            }, ct);
            if (left.Count == 0)
            {
                break;
            }

            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"The containers of service {name} were not removed within {ContainersGoneWait.TotalSeconds:0} s.");
            }

            await Task.Delay(EnginePollInterval, ct);
        }

        // The engine may still hold the volume for a moment after the last container is gone.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await engine.Client.Volumes.RemoveAsync(DockerEngine.VolumeName(server.Name), force: true, ct);
                break;
            }
            catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                break; // A bind-mounted or never-started service has no volume.
            }
            catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict && attempt < VolumeRemoveAttempts)
            {
                await Task.Delay(EnginePollInterval, ct);
            }
        }

        if (StoragePath(server.Name) is { } path && Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>
    /// Scales the service to zero and waits (bounded) until none of its tasks can still make a container: a task still being
    /// prepared when the service is removed may create its container, and with it the data volume, after the checks of
    /// <see cref="DeleteAsync"/> found none (issue 11: a <c>tenantdb-swarm-…-data</c> volume outlived its service).
    /// </summary>
    private async Task EndTasksAsync(SwarmService service, CancellationToken ct)
    {
        try
        {
            if (service.Spec.Mode?.Replicated is { Replicas: > 0 })
            {
                var spec = service.Spec;
                spec.Mode.Replicated.Replicas = 0;
                await engine.Client.Swarm.UpdateServiceAsync(service.ID, new ServiceUpdateParameters { Service = spec, Version = (long)service.Version.Index }, ct);
            }
        }
        catch (DockerApiException)
        {
            return; // changed or removed meanwhile: the removal and the checks after it still run
        }

        var deadline = DateTimeOffset.UtcNow + ContainersGoneWait;
        try
        {
            while (DateTimeOffset.UtcNow < deadline
                && (await TasksAsync(service.ID, ct)).Any(t => !string.IsNullOrEmpty(t.NodeID) && t.Status?.State is not (TaskState.Complete
                    or TaskState.Shutdown or TaskState.Failed or TaskState.Rejected or TaskState.Remove or TaskState.Orphaned)))
            {
                await Task.Delay(EnginePollInterval, ct);
            }
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            // Removed meanwhile.
        }
    }

    public async Task RestartAsync(PoolServerRef server, CancellationToken ct)
    {
        var service = await FindAsync(DockerEngine.ResourceName(server.Name), ct)
            ?? throw new InvalidOperationException($"No service for pool {server.Name}.");
        var spec = service.Spec;
        spec.TaskTemplate.ForceUpdate++;
        await engine.Client.Swarm.UpdateServiceAsync(service.ID, new ServiceUpdateParameters { Service = spec, Version = (long)service.Version.Index }, ct);
    }

    public async Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct)
    {
        var services = await engine.Client.Swarm.ListServicesAsync(new ServicesListParameters
        {
            Filters = new ServiceFilter { Label = [$"{DockerEngine.OwnerLabel}={engine.Owner}"] },
        }, ct);
        return services.Select(s => DockerEngine.Owned(s.Spec.Labels, s.ID)).OfType<OwnedServer>().ToList();
    }

    /// <summary>Scales the service to zero replicas: its volume and spec stay, no task runs.</summary>
    public async Task StopAsync(PoolServerRef server, CancellationToken ct)
    {
        if (await FindAsync(DockerEngine.ResourceName(server.Name), ct) is { } service && service.Spec.Mode?.Replicated is { Replicas: > 0 })
        {
            var spec = service.Spec;
            spec.Mode.Replicated.Replicas = 0;
            await engine.Client.Swarm.UpdateServiceAsync(service.ID, new ServiceUpdateParameters { Service = spec, Version = (long)service.Version.Index }, ct);
        }
    }

    private ServiceSpec Spec(PoolServerSpec spec, string name, int port)
    {
        if (_specs.StoragePath(spec.Name) is { } storage)
        {
            // The path lives on shared storage the allocator's host mounts too; the bind source must exist.
            Directory.CreateDirectory(storage);
        }

        return _specs.Build(spec, name, port);
    }

    /// <summary>Adds <c>node.id==…</c> once the first task has a node, unless the data lives on storage every node shares.</summary>
    private async Task PinToNodeAsync(SwarmService service, CancellationToken ct)
    {
        var constraints = service.Spec.TaskTemplate.Placement?.Constraints ?? [];
        if (Swarm.SharedStorage || constraints.Any(c => c.StartsWith("node.id==", StringComparison.Ordinal)))
        {
            return;
        }

        var deadline = DateTimeOffset.UtcNow + PinWait;
        string? node = null;
        while (node is null && DateTimeOffset.UtcNow < deadline)
        {
            node = (await TasksAsync(service.ID, ct)).Select(t => t.NodeID).FirstOrDefault(n => !string.IsNullOrEmpty(n));
            if (node is null)
            {
                await Task.Delay(EnginePollInterval, ct);
            }
        }

        if (node is null)
        {
            return; // Not scheduled yet; the next inspect pins it.
        }

        var current = await engine.Client.Swarm.InspectServiceAsync(service.ID, ct);
        var spec = current.Spec;
        spec.TaskTemplate.Placement ??= new Placement();
        spec.TaskTemplate.Placement.Constraints = [.. spec.TaskTemplate.Placement.Constraints ?? [], $"node.id=={node}"];
        await engine.Client.Swarm.UpdateServiceAsync(current.ID, new ServiceUpdateParameters { Service = spec, Version = (long)current.Version.Index }, ct);
    }

    private (string Host, int Port) Endpoint(SwarmService service) =>
        HostNetwork && service.Spec.Labels.TryGetValue(DockerEngine.PortLabel, out var port)
            ? (Swarm.HostNetworkAddress, int.Parse(port, CultureInfo.InvariantCulture))
            : (service.Spec.Name, PostgresPorts.Default);

    private string? StoragePath(string poolName) => _specs.StoragePath(poolName);

    private async Task<SwarmService?> FindAsync(string name, CancellationToken ct)
    {
        var services = await engine.Client.Swarm.ListServicesAsync(new ServicesListParameters { Filters = new ServiceFilter { Name = [name] } }, ct);
        return services.FirstOrDefault(s => s.Spec.Name == name);
    }

    private static Dictionary<string, IDictionary<string, bool>> Filter(string key, string value) =>
        new() { [key] = new Dictionary<string, bool> { [value] = true } };

    private async Task<IList<TaskResponse>> TasksAsync(string serviceId, CancellationToken ct) =>
        await engine.Client.Tasks.ListAsync(new TasksListParameters
        {
            Filters = Filter("service", serviceId),
        }, ct);
}
