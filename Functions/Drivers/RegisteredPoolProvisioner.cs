using Microsoft.Extensions.Options;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Drivers;

/// <summary>
/// An existing server (a managed PostgreSQL, the old <c>postgres2</c>) that an operator registers with admin credentials.
/// Create and delete do nothing to the server; create and inspect check it answers.
/// </summary>
public sealed class RegisteredPoolProvisioner(IOptions<ProvisioningOptions> options) : IPoolProvisioner
{

    public string Driver => DriverNames.Registered;

    public async Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct)
    {
        if (spec.RegisteredHost is not { Length: > 0 } host || spec.RegisteredPort is not { } port)
        {
            throw new ArgumentException("A registered server needs its host and port.", nameof(spec));
        }

        var probe = await PoolProbe.ProbeAsync(host, port, spec.AdminUser, spec.AdminPassword, options.Value.ProbeTimeout, ct);
        return probe.Ok
            ? new ServerEndpoint(host, port, $"{host}:{port}", null)
            // The driver's text (user names, pg_hba lines) stays out of the answer; the health trail keeps it.
            : throw new ServerUnreachableException($"The server {host}:{port} did not answer with the given admin credentials.");
    }

    public async Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct)
    {
        var probe = await PoolProbe.ProbeAsync(server.Host, server.Port, server.AdminUser, server.AdminPassword, options.Value.ProbeTimeout, ct);
        return new ServerState(probe.Ok ? ServerPresence.Running : ServerPresence.Down, server.Host, server.Port, probe.Error);
    }

    public Task DeleteAsync(PoolServerRef server, CancellationToken ct) => Task.CompletedTask;

    public Task RestartAsync(PoolServerRef server, CancellationToken ct) =>
        throw new InvalidOperationException("A registered server is not managed by the allocator; restart it where it runs.");

    public Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<OwnedServer>>([]);

    /// <summary>An operator's server is never stopped by the allocator.</summary>
    public Task StopAsync(PoolServerRef server, CancellationToken ct) => Task.CompletedTask;
}

/// <summary>A server did not answer with its admin credentials.</summary>
public sealed class ServerUnreachableException(string message) : Exception(message);
