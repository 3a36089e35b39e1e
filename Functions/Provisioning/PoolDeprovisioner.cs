using Microsoft.Extensions.Logging;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Provisioning;

/// <summary>Removes the server of a pool already in <c>deleting</c> through its driver, then marks the pool deleted.</summary>
public sealed partial class PoolDeprovisioner(
    PoolStore pools,
    PoolProvisioners provisioners,
    PoolConnections connections,
    PoolAdminPasswords passwords,
    ILogger<PoolDeprovisioner> logger)
{
    /// <summary>
    /// The driver removes the server of a pool already in deleting; the pool becomes deleted and its connections are
    /// dropped. Null when the driver failed (the pool stays deleting, the failure is in its trail).
    /// </summary>
    public async Task<Pool?> DeprovisionAsync(Pool pool, string actor, CancellationToken ct)
    {
        try
        {
            // Removing a server needs its name and resource id, not its password: an unreadable one is no reason to keep it.
            passwords.TryReveal(pool, out var password);
            await provisioners.For(pool.Driver).DeleteAsync(PoolServerRef.Of(pool, password), ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            LogDeprovisionFailed(e, pool.Name, pool.Driver);
            await pools.AppendEventAsync(pool.Id, null, PoolEventNames.DeprovisionFailed, $"{e.GetType().Name}: {e.Message}", actor, CancellationToken.None);
            return null;
        }

        await connections.ForgetAsync(pool.Id);
        var deleted = await pools.TransitionAsync(pool.Id, [PoolStatus.Deleting], PoolStatus.Deleted, "server removed", actor, ct);
        LogRetired(pool.Name, pool.Driver);
        return deleted;
    }

    [LoggerMessage(LogLevel.Information, "Pool {Pool} retired; driver {Driver} removed its server")]
    private partial void LogRetired(string pool, string driver);

    [LoggerMessage(LogLevel.Error, "Driver {Driver} could not remove the server of pool {Pool}")]
    private partial void LogDeprovisionFailed(Exception e, string pool, string driver);
}
