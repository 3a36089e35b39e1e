using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Drivers;

/// <summary>
/// What a driver needs to create a pool server. The admin password is clear only in memory, for this call.
/// <see cref="CatalogId"/> is the identity of the catalog that makes it, written on the server (label, data-folder marker).
/// </summary>
public sealed record PoolServerSpec(
    string Name,
    string ServerType,
    string AdminUser,
    string AdminPassword,
    decimal? Cpu,
    string? Memory,
    string? RegisteredHost = null,
    int? RegisteredPort = null,
    Guid? CatalogId = null)
{
    // Printing the record (logs, exceptions, test output) shows a mask for the password.
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Name = {Name}, ServerType = {ServerType}, AdminUser = {AdminUser}, AdminPassword = {Redacted.Mask}, ");
        builder.Append($"Cpu = {Cpu}, Memory = {Memory}, RegisteredHost = {RegisteredHost}, RegisteredPort = {RegisteredPort}, CatalogId = {CatalogId}");
        return true;
    }
}

/// <summary>A server a driver manages, as the catalog knows it.</summary>
public sealed record PoolServerRef(string Name, string? ResourceId, string Host, int Port, string AdminUser, string AdminPassword)
{
    public static PoolServerRef Of(Pool pool, string adminPassword) =>
        new(pool.Name, pool.DriverResourceId, pool.Host, pool.Port, pool.AdminUser, adminPassword);

    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Name = {Name}, ResourceId = {ResourceId}, Host = {Host}, Port = {Port}, AdminUser = {AdminUser}, AdminPassword = {Redacted.Mask}");
        return true;
    }
}

/// <summary>Where a created server is reached, and the driver's id for it.</summary>
public sealed record ServerEndpoint(string Host, int Port, string ResourceId, string? StoragePath);

public enum ServerPresence
{
    /// <summary>The driver knows no such server.</summary>
    Missing,
    /// <summary>It exists and runs but does not answer <c>SELECT 1</c> yet.</summary>
    Starting,
    /// <summary>It answers <c>SELECT 1</c> over TCP with the admin credentials.</summary>
    Running,
    /// <summary>It exists but is stopped, exited or unreachable.</summary>
    Down,
}

public sealed record ServerState(ServerPresence Presence, string? Host, int? Port, string? Detail = null);

/// <summary>
/// A server found by the driver's own marks (labels, data folders), whether or not the catalog remembers it, with the id of
/// the catalog that made it (null for a server made before catalogs had ids: never anyone's orphan).
/// </summary>
public sealed record OwnedServer(string Name, string ResourceId, Guid? CatalogId);

/// <summary>Creates, inspects, restarts and removes pool servers of one kind.</summary>
public interface IPoolProvisioner
{
    string Driver { get; }

    /// <summary>Idempotent by name: a second call for an existing server returns it.</summary>
    Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct);

    /// <summary>Never throws for a missing server: that is <see cref="ServerPresence.Missing"/>.</summary>
    Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct);

    /// <summary>Removes the server and its data; succeeds when it is already gone.</summary>
    Task DeleteAsync(PoolServerRef server, CancellationToken ct);

    Task RestartAsync(PoolServerRef server, CancellationToken ct);

    /// <summary>Stops the server and keeps its data (an orphan waiting out its grace period); succeeds when it is gone or stopped.</summary>
    Task StopAsync(PoolServerRef server, CancellationToken ct);

    Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct);
}
