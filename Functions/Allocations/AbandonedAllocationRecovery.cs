using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Allocations;

/// <summary>The health sweep's recovery of allocations whose worker stopped mid-way.</summary>
public sealed partial class AbandonedAllocationRecovery(
    TenantStore tenants,
    AllocationCompensation compensation,
    IOptions<AllocationOptions> allocationOptions,
    TimeProvider time,
    ILogger<AbandonedAllocationRecovery> logger)
{
    /// <summary>Rows recovered per sweep at most; the rest wait for the next sweep.</summary>
    public const int BatchSize = 500;

    private AllocationOptions Options => allocationOptions.Value;

    /// <summary>
    /// Undoes allocations abandoned mid-way (still <c>creating</c> after <see cref="AllocationOptions.StaleCreatingAfter"/>
    /// and no live worker holding the instance's lock): the row marked failed and its slot given back first, then its objects
    /// dropped, so the instance can be allocated again. A slow allocation still running holds its lock and is left alone.
    /// </summary>
    public async Task<int> RecoverAbandonedAsync(CancellationToken ct)
    {
        var recovered = 0;
        foreach (var reservation in await tenants.ListStaleCreatingAsync(time.GetUtcNow() - Options.StaleCreatingAfter, BatchSize, ct))
        {
            await using var instanceLock = await tenants.OpenInstanceLockAsync(reservation.Tenant.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                LogStillAllocating(reservation.Tenant.InstanceId, reservation.Pool.Name);
                continue;
            }

            var cause = new InvalidOperationException("abandoned while creating: the allocator stopped mid-way");
            if ((await compensation.CompensateAsync(reservation, TenantNames.For(reservation.Tenant.InstanceId, Options.DatabasePrefix), cause, poolAtFault: false, instanceLock)).Moved)
            {
                recovered++;
            }
        }

        return recovered;
    }

    [LoggerMessage(LogLevel.Warning, "Instance {InstanceId} on pool {Pool} has been creating for long, but its allocation is still running; left alone")]
    private partial void LogStillAllocating(Guid instanceId, string pool);
}
