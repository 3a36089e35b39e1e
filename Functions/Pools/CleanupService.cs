using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocation;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Provisioning;

namespace TenantDb.Functions.Pools;

/// <summary>What one cleanup did. <see cref="Errors"/> counts the steps that failed and will be retried next time.</summary>
public sealed record CleanupSummary(int StalePoolsRemoved, int StalePoolsKept, int OrphanServersRemoved, int TenantsPurged, int FailedAllocationsCleaned, int Errors,
    int DedicatedReclaimed = 0);

/// <summary>
/// The daily cleanup: abandoned pools (stuck provisioning, long in error) deprovisioned; servers a driver owns that no
/// catalog pool knows removed; released tenant databases past retention purged; leftovers of failed allocations
/// dropped; old orchestration history purged. Never touches a pool that hosts a live tenant database.
/// </summary>
public sealed partial class CleanupService(
    PoolStore pools,
    PoolAdminService admin,
    PoolProvisioners provisioners,
    AllocationService allocation,
    IOptions<SweepOptions> options,
    TimeProvider time,
    ILogger<CleanupService> logger)
{
    public const string Actor = "daily-cleanup";
    private static readonly PoolStatus[] Abandonable = [PoolStatus.Provisioning, PoolStatus.Error, PoolStatus.Deleting];
    private static readonly PoolStatus[] Reclaimable = [PoolStatus.Active, PoolStatus.Full, PoolStatus.Draining, PoolStatus.Error];
    private static readonly OrchestrationRuntimeStatus[] Finished =
        [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated];

    private SweepOptions Options => options.Value;

    public async Task<CleanupSummary> RunAsync(CancellationToken ct)
    {
        var (removed, kept, poolErrors) = await RemoveStalePoolsAsync(ct);
        var (orphans, orphanErrors) = await RemoveOrphanServersAsync(ct);
        var purged = await allocation.PurgeExpiredAsync(Actor, ct);
        var cleaned = await allocation.CleanFailedAsync(ct);
        var (reclaimed, reclaimErrors) = await ReclaimDedicatedAsync(ct);
        var summary = new CleanupSummary(removed, kept, orphans, purged, cleaned, poolErrors + orphanErrors + reclaimErrors, reclaimed);
        LogCleaned(summary.StalePoolsRemoved, summary.StalePoolsKept, summary.OrphanServersRemoved, summary.TenantsPurged,
            summary.FailedAllocationsCleaned, summary.Errors);
        return summary;
    }

    /// <summary>Purges completed, failed and terminated orchestrations created before now − <see cref="SweepOptions.HistoryRetention"/>.</summary>
    public async Task<int> PurgeHistoryAsync(DurableTaskClient client, CancellationToken ct)
    {
        var result = await client.PurgeAllInstancesAsync(
            new PurgeInstancesFilter(CreatedFrom: null, CreatedTo: time.GetUtcNow() - Options.HistoryRetention, Statuses: Finished), ct);
        LogHistoryPurged(result.PurgedInstanceCount);
        return result.PurgedInstanceCount;
    }

    private async Task<(int Removed, int Kept, int Errors)> RemoveStalePoolsAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        int removed = 0, kept = 0, errors = 0;
        foreach (var stale in await pools.ListStaleAsync(now - Options.ProvisioningStuckAfter, now - Options.ErrorPoolRetention, ct))
        {
            var reason = stale.Status == PoolStatus.Provisioning ? $"provisioning for more than {Options.ProvisioningStuckAfter}"
                : stale.Status == PoolStatus.Error ? $"in error for more than {Options.ErrorPoolRetention}" : "left in deleting";
            switch (await pools.BeginRetireAsync(stale.Id, Abandonable, reason, Actor, ct))
            {
                case RetireGate.Started started:
                    if (await admin.DeprovisionAsync(started.Pool, Actor, ct) is not null)
                    {
                        removed++;
                        LogStaleRemoved(stale.Name, reason);
                    }
                    else
                    {
                        errors++;
                    }

                    break;
                case RetireGate.HasTenants tenants:
                    kept++;
                    LogStaleKept(stale.Name, tenants.LiveTenants);
                    break;
            }
        }

        return (removed, kept, errors);
    }

    // A dedicated server whose tenants are all purged serves nobody: retired (the retire gate re-checks for live tenants
    // under the pool's lock) and deprovisioned, with its events.
    private async Task<(int Reclaimed, int Errors)> ReclaimDedicatedAsync(CancellationToken ct)
    {
        int reclaimed = 0, errors = 0;
        foreach (var pool in await pools.ListReclaimableDedicatedAsync(ct))
        {
            var reason = $"dedicated server of instance {pool.DedicatedToInstanceId:D} reclaimed: its tenant was purged";
            if (await pools.BeginRetireAsync(pool.Id, Reclaimable, reason, Actor, ct) is not RetireGate.Started started)
            {
                continue;
            }

            if (await admin.DeprovisionAsync(started.Pool, Actor, ct) is null)
            {
                errors++;
                continue;
            }

            await pools.AppendEventAsync(pool.Id, pool.DedicatedToInstanceId, "dedicated_reclaimed", reason, Actor, ct);
            reclaimed++;
            LogDedicatedReclaimed(pool.Name, pool.DedicatedToInstanceId);
        }

        return (reclaimed, errors);
    }

    // A server a driver owns is an orphan when no pool of that name is in the catalog (or only a retired one).
    // Provisioning reserves the catalog row before it creates the server, so a server being made is never an orphan.
    private async Task<(int Removed, int Errors)> RemoveOrphanServersAsync(CancellationToken ct)
    {
        int removed = 0, errors = 0;
        foreach (var driver in provisioners.All)
        {
            IReadOnlyList<OwnedServer> owned;
            try
            {
                owned = await driver.ListOwnedAsync(ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // A driver with no engine here (no Docker, no swarm) has nothing to clean; the others still do.
                if (driver == provisioners.Default)
                {
                    LogDefaultDriverUnavailable(e, driver.Driver);
                }
                else
                {
                    LogDriverUnavailable(e, driver.Driver);
                }

                continue;
            }

            if (owned.Count == 0)
            {
                continue;
            }

            // Read after listing: a pool reserved meanwhile is in this set.
            var known = await pools.LiveNamesAsync(ct);
            foreach (var server in owned.Where(s => !known.Contains(s.Name)))
            {
                try
                {
                    await driver.DeleteAsync(new PoolServerRef(server.Name, server.ResourceId, "", 0, "", ""), ct);
                    await pools.AppendEventAsync(null, null, "orphan_server_removed", $"{driver.Driver} server {server.Name} ({server.ResourceId})", Actor, ct);
                    removed++;
                    LogOrphanRemoved(server.Name, driver.Driver);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    errors++;
                    LogOrphanFailed(e, server.Name, driver.Driver);
                }
            }
        }

        return (removed, errors);
    }

    [LoggerMessage(LogLevel.Information, "Cleanup: {Removed} stale pools removed, {Kept} kept (tenants), {Orphans} orphan servers removed, {Purged} tenant databases purged, {Cleaned} failed allocations cleaned, {Errors} errors")]
    private partial void LogCleaned(int removed, int kept, int orphans, int purged, int cleaned, int errors);

    [LoggerMessage(LogLevel.Information, "Reclaimed dedicated server {Pool} of instance {InstanceId}: its tenant was purged")]
    private partial void LogDedicatedReclaimed(string pool, Guid? instanceId);

    [LoggerMessage(LogLevel.Information, "Purged {Count} finished orchestrations from the task hub")]
    private partial void LogHistoryPurged(int count);

    [LoggerMessage(LogLevel.Warning, "Removed stale pool {Pool}: {Reason}")]
    private partial void LogStaleRemoved(string pool, string reason);

    [LoggerMessage(LogLevel.Warning, "Stale pool {Pool} still hosts {LiveTenants} live tenant databases; kept")]
    private partial void LogStaleKept(string pool, int liveTenants);

    [LoggerMessage(LogLevel.Warning, "Removed orphan server {Server} of driver {Driver}: no catalog pool knows it")]
    private partial void LogOrphanRemoved(string server, string driver);

    [LoggerMessage(LogLevel.Error, "Could not remove orphan server {Server} of driver {Driver}")]
    private partial void LogOrphanFailed(Exception e, string server, string driver);

    [LoggerMessage(LogLevel.Warning, "The configured driver {Driver} cannot list its servers; orphans are not cleaned")]
    private partial void LogDefaultDriverUnavailable(Exception e, string driver);

    [LoggerMessage(LogLevel.Debug, "Driver {Driver} cannot list its servers here; skipped")]
    private partial void LogDriverUnavailable(Exception e, string driver);
}
