using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Allocations;

/// <summary>The daily cleanup's settling of objects that failed allocations left on servers that were down at the time.</summary>
public sealed partial class FailedAllocationCleanup(
    TenantStore tenants,
    ITenantDdl ddl,
    WarmStockDdl stockDdl,
    IOptions<AllocationOptions> allocationOptions,
    ILogger<FailedAllocationCleanup> logger)
{
    /// <summary>Leftovers settled per run at most; the rest wait for the next run.</summary>
    public const int BatchSize = 500;

    private AllocationOptions Options => allocationOptions.Value;

    /// <summary>
    /// Settles the leftovers of failed allocations whose server was unreachable when they failed. Names are deterministic
    /// per instance, so a name match proves nothing: under the instance's lock, a leftover on a server where a live row of the
    /// same instance now lives is only marked settled (its objects are that tenant's); any other is dropped.
    /// </summary>
    public async Task<CleanResult> CleanFailedAsync(CancellationToken ct)
    {
        int cleaned = 0, failed = 0;
        foreach (var (pool, tenant) in await tenants.ListUncleanedFailuresAsync(BatchSize, ct))
        {
            await using var instanceLock = await tenants.OpenInstanceLockAsync(tenant.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                continue; // an allocation of this instance is under way; the next cleanup looks again
            }

            try
            {
                if (!await tenants.SettleLeftoverOfLiveTenantAsync(tenant.Id, ct))
                {
                    await ddl.DropAsync(pool, TenantNames.Of(tenant, Options.DatabasePrefix), ct);
                    if (tenant.StockName is { } stockName)
                    {
                        await stockDdl.DropAsync(pool, stockName, ct);
                    }

                    await tenants.MarkCleanedAsync(tenant.Id, ct);
                }

                cleaned++;
            }
            catch (Exception e) when (PoolFailures.IsTransient(e))
            {
                failed++;
                LogCleanupFailed(e, tenant.InstanceId, pool.Name);
            }
        }

        return new CleanResult(cleaned, failed);
    }

    [LoggerMessage(LogLevel.Warning, "Could not settle the leftover of a failed allocation of instance {InstanceId} on pool {Pool}; the next cleanup retries")]
    private partial void LogCleanupFailed(Exception e, Guid instanceId, string pool);
}
