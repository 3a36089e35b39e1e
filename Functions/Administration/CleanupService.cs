using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Moves;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Usage;

namespace TenantDb.Functions.Administration;

/// <summary>What one cleanup did. <see cref="Errors"/> counts the steps that failed and will be retried next time.</summary>
public sealed record CleanupSummary(int StalePoolsRemoved, int StalePoolsKept, int OrphanServersStopped, int OrphanServersRemoved, int TenantsPurged,
    int FailedAllocationsCleaned, int Errors, int DedicatedReclaimed = 0, int EventsPurged = 0, int FirstPasswordsExpired = 0,
    int BackupsExpired = 0, int MovedCopiesPurged = 0, int UsageHoursPruned = 0);

/// <summary>
/// The daily cleanup: abandoned pools (stuck provisioning, long in error) deprovisioned; servers a driver owns that no
/// catalog pool knows removed; released tenant databases past retention purged; leftovers of failed allocations
/// dropped; events of the status history past retention purged; first-password copies past the handoff TTL cleared; expired backups
/// deleted; source copies kept by moves past their retention dropped; the usage rollup past its retention deleted; old orchestration history purged. Never touches a pool that hosts a live tenant database.
/// </summary>
public sealed partial class CleanupService(
    PoolStore pools,
    PoolQueries poolQueries,
    PoolDeprovisioner deprovisioner,
    PoolProvisioners provisioners,
    TenantPurge purge,
    FailedAllocationCleanup leftovers,
    CatalogIdentity identity,
    OrphanStore orphans,
    AuditTrailService auditTrail,
    FirstPasswordStore firstPasswords,
    MovedCopyPurge movedCopies,
    UsageCollector usage,
    BackupSchedule backups,
    IOptions<HandoffOptions> handoff,
    IOptions<SweepOptions> options,
    IOptions<CleanupOptions> cleanup,
    TimeProvider time,
    ILogger<CleanupService> logger)
{
    private static readonly PoolStatus[] Abandonable = [PoolStatus.Provisioning, PoolStatus.Error, PoolStatus.Deleting];
    private static readonly PoolStatus[] Reclaimable = [PoolStatus.Active, PoolStatus.Full, PoolStatus.Draining, PoolStatus.Error];
    private static readonly OrchestrationRuntimeStatus[] Finished =
        [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated];

    private SweepOptions Options => options.Value;

    public async Task<CleanupSummary> RunAsync(CancellationToken ct)
    {
        var (removed, kept, poolErrors) = await RemoveStalePoolsAsync(ct);
        var (orphansStopped, orphansRemoved, orphanErrors) = await RemoveOrphanServersAsync(ct);
        var purged = await purge.PurgeExpiredAsync(AuditActor.Current, ct);
        var cleaned = await leftovers.CleanFailedAsync(ct);
        // Before the dedicated servers: a server whose tenant moved off is reclaimed once the copy kept there is gone.
        var copies = await movedCopies.PurgeDueAsync(AuditActor.Current, ct);
        var (reclaimed, reclaimErrors) = await ReclaimDedicatedAsync(ct);
        var eventsPurged = await auditTrail.PurgeExpiredAsync(ct);
        // The first-password copies of handoffs past their TTL: no claim can take them any more.
        var firstPasswordsExpired = await firstPasswords.ClearExpiredAsync(time.GetUtcNow() - handoff.Value.Ttl, ct);
        // Backups past their expires_at (the tier's BackupRetention): blob deleted, row kept as expired.
        var expired = await backups.ExpireAsync(AuditActor.Current, ct);
        var usageHours = await usage.PruneHistoryAsync(ct);
        var summary = new CleanupSummary(removed, kept, orphansStopped, orphansRemoved, purged.Purged, cleaned.Cleaned,
            poolErrors + orphanErrors + purged.Failed + cleaned.Failed + reclaimErrors + expired.Failed + copies.Failed, reclaimed, eventsPurged,
            firstPasswordsExpired, expired.Done, copies.Purged, usageHours);
        LogCleaned(summary.StalePoolsRemoved, summary.StalePoolsKept, summary.OrphanServersStopped, summary.OrphanServersRemoved, summary.TenantsPurged,
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
        foreach (var stale in await poolQueries.ListStaleAsync(now - Options.ProvisioningStuckAfter, now - Options.ErrorPoolRetention, ct))
        {
            var reason = stale.Status == PoolStatus.Provisioning ? $"provisioning for more than {Options.ProvisioningStuckAfter}"
                : stale.Status == PoolStatus.Error ? $"in error for more than {Options.ErrorPoolRetention}" : "left in deleting";
            switch (await pools.BeginRetireAsync(stale.Id, Abandonable, reason, AuditActor.Current, ct))
            {
                case RetireGate.Started started:
                    if (await deprovisioner.DeprovisionAsync(started.Pool, AuditActor.Current, ct) is not null)
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
        foreach (var pool in await poolQueries.ListReclaimableDedicatedAsync(ct))
        {
            var reason = $"dedicated server of instance {pool.DedicatedToInstanceId:D} reclaimed: its tenant was purged";
            if (await pools.BeginRetireAsync(pool.Id, Reclaimable, reason, AuditActor.Current, ct) is not RetireGate.Started started)
            {
                continue;
            }

            if (await deprovisioner.DeprovisionAsync(started.Pool, AuditActor.Current, ct) is null)
            {
                errors++;
                continue;
            }

            await pools.AppendEventAsync(pool.Id, pool.DedicatedToInstanceId, PoolEventNames.DedicatedReclaimed, reason, AuditActor.Current, ct);
            reclaimed++;
            LogDedicatedReclaimed(pool.Name, pool.DedicatedToInstanceId);
        }

        return (reclaimed, errors);
    }

    // A server a driver owns is an orphan of this catalog when it carries this catalog's id and no live pool has its name.
    // Servers of another catalog (a new, empty, restored-elsewhere or foreign one) or without an id are never touched. An
    // orphan is stopped first (data kept) and deleted only after Cleanup:OrphanGrace; each act is re-checked against the
    // catalog in the transaction that records it. Provisioning reserves the pool row before it creates the server, so a
    // server being made is never an orphan.
    private async Task<(int Stopped, int Removed, int Errors)> RemoveOrphanServersAsync(CancellationToken ct)
    {
        int stoppedNow = 0, removed = 0, errors = 0;
        var catalogId = await identity.GetAsync(ct);
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

            var ours = owned.Where(s => s.CatalogId == catalogId).ToList();
            if (ours.Count == 0)
            {
                continue;
            }

            // Read after listing: a pool reserved meanwhile is in this set (and re-checked under the lock before any act).
            var known = await poolQueries.LiveNamesAsync(ct);
            var stopped = await orphans.ListAsync(driver.Driver, ct);
            foreach (var server in ours)
            {
                if (known.Contains(server.Name))
                {
                    if (stopped.ContainsKey(server.Name))
                    {
                        await orphans.ForgetAsync(driver.Driver, server.Name, ct);
                    }

                    continue;
                }

                var target = new PoolServerRef(server.Name, server.ResourceId, "", 0, "", "");
                try
                {
                    if (!stopped.TryGetValue(server.Name, out var orphan))
                    {
                        if (await orphans.ActAsync(driver.Driver, server.Name, server.ResourceId, OrphanAct.Stop, AuditActor.Current, c => driver.StopAsync(target, c), ct))
                        {
                            stoppedNow++;
                            LogOrphanStopped(server.Name, driver.Driver, cleanup.Value.OrphanGrace);
                        }
                    }
                    else if (orphan.StoppedAt <= time.GetUtcNow() - cleanup.Value.OrphanGrace
                             && await orphans.ActAsync(driver.Driver, server.Name, server.ResourceId, OrphanAct.Delete, AuditActor.Current, c => driver.DeleteAsync(target, c), ct))
                    {
                        removed++;
                        LogOrphanRemoved(server.Name, driver.Driver);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    errors++;
                    LogOrphanFailed(e, server.Name, driver.Driver);
                }
            }
        }

        return (stoppedNow, removed, errors);
    }

    [LoggerMessage(LogLevel.Information, "Cleanup: {Removed} stale pools removed, {Kept} kept (tenants), {OrphansStopped} orphan servers stopped, {OrphansRemoved} removed, {Purged} tenant databases purged, {Cleaned} failed allocations cleaned, {Errors} errors")]
    private partial void LogCleaned(int removed, int kept, int orphansStopped, int orphansRemoved, int purged, int cleaned, int errors);

    [LoggerMessage(LogLevel.Information, "Reclaimed dedicated server {Pool} of instance {InstanceId}: its tenant was purged")]
    private partial void LogDedicatedReclaimed(string pool, Guid? instanceId);

    [LoggerMessage(LogLevel.Information, "Purged {Count} finished orchestrations from the task hub")]
    private partial void LogHistoryPurged(int count);

    [LoggerMessage(LogLevel.Warning, "Removed stale pool {Pool}: {Reason}")]
    private partial void LogStaleRemoved(string pool, string reason);

    [LoggerMessage(LogLevel.Warning, "Stale pool {Pool} still hosts {LiveTenants} live tenant databases; kept")]
    private partial void LogStaleKept(string pool, int liveTenants);

    [LoggerMessage(LogLevel.Warning, "Removed orphan server {Server} of driver {Driver}: stopped past its grace period and still no pool of this catalog knows it")]
    private partial void LogOrphanRemoved(string server, string driver);

    [LoggerMessage(LogLevel.Warning, "Stopped orphan server {Server} of driver {Driver}: no pool of this catalog knows it; its data is deleted after {Grace} unless a pool claims it")]
    private partial void LogOrphanStopped(string server, string driver, TimeSpan grace);

    [LoggerMessage(LogLevel.Error, "Could not remove orphan server {Server} of driver {Driver}")]
    private partial void LogOrphanFailed(Exception e, string server, string driver);

    [LoggerMessage(LogLevel.Warning, "The configured driver {Driver} cannot list its servers; orphans are not cleaned")]
    private partial void LogDefaultDriverUnavailable(Exception e, string driver);

    [LoggerMessage(LogLevel.Debug, "Driver {Driver} cannot list its servers here; skipped")]
    private partial void LogDriverUnavailable(Exception e, string driver);
}
