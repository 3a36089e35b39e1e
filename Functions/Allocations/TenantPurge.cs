using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Allocations;

/// <summary>What purging one released tenant at once came to (admin <c>DELETE …?purge=now</c>).</summary>
public abstract record PurgeNowOutcome
{
    public sealed record Purged(Guid? FinalBackupId) : PurgeNowOutcome;
    public sealed record NotFound : PurgeNowOutcome;
    public sealed record NotReleased(TenantDatabaseStatus Status) : PurgeNowOutcome;
    public sealed record NoFinalBackup(string Reason) : PurgeNowOutcome;
    public sealed record Busy : PurgeNowOutcome;
    public sealed record Failed(string Reason) : PurgeNowOutcome;
}

/// <summary>
/// Drops released tenant databases once their retention has passed (the daily cleanup), or at once (an admin's purge now);
/// never one without its final backup (<see cref="IFinalBackup"/>), and never while another operation holds the instance.
/// </summary>
public sealed partial class TenantPurge(
    TenantStore tenants,
    PoolStore pools,
    ITenantDdl ddl,
    IFinalBackup finalBackup,
    IOptions<AllocationOptions> allocationOptions,
    TimeProvider time,
    ILogger<TenantPurge> logger)
{
    /// <summary>Tenants purged per run at most; the rest wait for the next run.</summary>
    public const int BatchSize = 500;

    private AllocationOptions Options => allocationOptions.Value;

    /// <summary>
    /// Drops every released tenant database released before <paramref name="releasedBefore"/>. A purge that fails (server
    /// down, an object the tenant left that still blocks it, no final backup to be had) is counted and recorded as a
    /// <c>purge_failed</c> event; the row stays released and the next cleanup tries again.
    /// </summary>
    public async Task<PurgeResult> PurgeReleasedAsync(DateTimeOffset releasedBefore, string actor, CancellationToken ct)
    {
        int purged = 0, failed = 0;
        foreach (var released in await tenants.ListPurgeableAsync(releasedBefore, BatchSize, ct))
        {
            switch (await PurgeOneAsync(released, releasedBefore, actor, ct))
            {
                case PurgeNowOutcome.Purged:
                    purged++;
                    break;
                case PurgeNowOutcome.NoFinalBackup or PurgeNowOutcome.Failed:
                    failed++;
                    break;
            }
        }

        return new PurgeResult(purged, failed);
    }

    /// <summary>Retention applied to now: what the daily cleanup purges.</summary>
    public Task<PurgeResult> PurgeExpiredAsync(string actor, CancellationToken ct) =>
        PurgeReleasedAsync(time.GetUtcNow() - Options.ReleaseRetention, actor, ct);

    /// <summary>Purges one released tenant now, whatever its retention, after its final backup. A ready one is refused (release it first).</summary>
    public async Task<PurgeNowOutcome> PurgeNowAsync(Guid instanceId, string actor, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new PurgeNowOutcome.NotFound();
        }

        return live.Tenant.Status != TenantDatabaseStatus.Released
            ? new PurgeNowOutcome.NotReleased(live.Tenant.Status)
            : await PurgeOneAsync(live, releasedBefore: null, actor, ct);
    }

    // The final backup first (it takes the instance's lock for its dump), then under the instance's lock the row is read
    // again: still this released row (no un-release, no new release meanwhile) with its final backup, and only then dropped.
    private async Task<PurgeNowOutcome> PurgeOneAsync(Allocation released, DateTimeOffset? releasedBefore, string actor, CancellationToken ct)
    {
        var (pool, tenant) = released;
        try
        {
            var final = await finalBackup.EnsureAsync(released, ct);
            if (!final.Ready)
            {
                LogNoFinalBackup(tenant.InstanceId, final.Reason!);
                await pools.AppendEventAsync(pool.Id, tenant.InstanceId, PoolEventNames.PurgeFailed, $"no final backup: {final.Reason}", actor, ct);
                return new PurgeNowOutcome.NoFinalBackup(final.Reason!);
            }

            await using var instanceLock = await tenants.OpenInstanceLockAsync(tenant.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                return new PurgeNowOutcome.Busy();
            }

            var now = (await tenants.FindLiveAsync(tenant.InstanceId, ct))?.Tenant;
            if (now is null || now.Id != tenant.Id || now.Status != TenantDatabaseStatus.Released || now.ReleasedAt != tenant.ReleasedAt
                || (releasedBefore is { } before && now.ReleasedAt >= before))
            {
                return new PurgeNowOutcome.Busy();
            }

            if (!await finalBackup.ExistsAsync(now, ct))
            {
                return new PurgeNowOutcome.NoFinalBackup("the final backup is gone");
            }

            await ddl.DropAsync(pool, TenantNames.Of(tenant, Options.DatabasePrefix), ct);
            await tenants.MarkDroppedAsync(tenant.Id, actor, ct);
            LogPurged(tenant.InstanceId, pool.Name);
            return new PurgeNowOutcome.Purged(final.BackupId);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            LogPurgeFailed(e, tenant.InstanceId, pool.Name);
            await pools.AppendEventAsync(pool.Id, tenant.InstanceId, PoolEventNames.PurgeFailed, PoolFailures.Describe(e), actor, ct);
            return new PurgeNowOutcome.Failed(PoolFailures.Describe(e));
        }
    }

    [LoggerMessage(LogLevel.Information, "Purged the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurged(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not purge the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurgeFailed(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Did not purge the database of instance {InstanceId}: it has no final backup ({Reason}); the next cleanup tries again")]
    private partial void LogNoFinalBackup(Guid instanceId, string reason);
}
