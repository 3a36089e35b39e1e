using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Allocations;

/// <summary>Drops released tenant databases once their retention has passed (the daily cleanup).</summary>
public sealed partial class TenantPurge(
    TenantStore tenants,
    PoolStore pools,
    ITenantDdl ddl,
    IOptions<AllocationOptions> allocationOptions,
    TimeProvider time,
    ILogger<TenantPurge> logger)
{
    /// <summary>Tenants purged per run at most; the rest wait for the next run.</summary>
    public const int BatchSize = 500;

    private AllocationOptions Options => allocationOptions.Value;

    /// <summary>
    /// Drops every released tenant database released before <paramref name="releasedBefore"/>. A purge that fails (server
    /// down, an object the tenant left that still blocks it) is counted and recorded as a <c>purge_failed</c> event; the row
    /// stays released and the next cleanup tries again.
    /// </summary>
    public async Task<PurgeResult> PurgeReleasedAsync(DateTimeOffset releasedBefore, string actor, CancellationToken ct)
    {
        int purged = 0, failed = 0;
        foreach (var (pool, tenant) in await tenants.ListPurgeableAsync(releasedBefore, BatchSize, ct))
        {
            try
            {
                await ddl.DropAsync(pool, TenantNames.Of(tenant, Options.DatabasePrefix), ct);
                await tenants.MarkDroppedAsync(tenant.Id, actor, ct);
                purged++;
                LogPurged(tenant.InstanceId, pool.Name);
            }
            catch (Exception e) when (PoolFailures.IsTransient(e))
            {
                failed++;
                LogPurgeFailed(e, tenant.InstanceId, pool.Name);
                await pools.AppendEventAsync(pool.Id, tenant.InstanceId, PoolEventNames.PurgeFailed, PoolFailures.Describe(e), actor, ct);
            }
        }

        return new PurgeResult(purged, failed);
    }

    /// <summary>Retention applied to now: what the daily cleanup purges.</summary>
    public Task<PurgeResult> PurgeExpiredAsync(string actor, CancellationToken ct) =>
        PurgeReleasedAsync(time.GetUtcNow() - Options.ReleaseRetention, actor, ct);

    [LoggerMessage(LogLevel.Information, "Purged the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurged(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not purge the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurgeFailed(Exception e, Guid instanceId, string pool);
}
