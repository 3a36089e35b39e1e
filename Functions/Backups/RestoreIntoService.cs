using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Backups;

/// <summary>What asking for a restore into a new instance came to.</summary>
public abstract record RestoreIntoStart
{
    public sealed record Started(string OrchestrationId) : RestoreIntoStart;
    public sealed record BackupNotFound : RestoreIntoStart;
    public sealed record BackupNotUsable(string Status) : RestoreIntoStart;
    public sealed record TargetExists : RestoreIntoStart;
}

/// <summary>
/// Restore into a new instance (DESIGN.md §10): the target is allocated as usual (the backed-up tenant's customer and tier),
/// and its database is filled from the archive and verified table by table before its row turns ready — a fill that fails
/// compensates the allocation like any failed allocation, so nothing is left half-made. The target's password goes only
/// through the handoff (its claim URL is in the output); the target's row records the backup it came from, with an event.
/// The source is never touched. When no server has room for the target (always, at first, for a dedicated tier: the target
/// gets its own server), a try starts or joins the provisioning run the allocate route would (the target's dedicated server, or
/// the next shared pool) and the run waits on a durable timer; a failed restore retires the dedicated server it made.
/// </summary>
public sealed partial class RestoreIntoService(
    TenantStore tenants, BackupStore backups, RestoreService restores, PgClientTools tools, TenantRestoreDdl pools, AllocationService allocations,
    ICredentialDeposit handoff, ProvisioningService provisioning, ProvisioningStore provisioningStore, MoveStore moves, PoolStore servers,
    PoolDeprovisioner deprovisioner, IOptions<PoolsOptions> poolsOptions, IOptions<AllocationOptions> allocationOptions, TimeProvider time,
    ILogger<RestoreIntoService> logger)
{
    /// <summary>Checks the backup and the target, then starts the run.</summary>
    public async Task<RestoreIntoStart> StartAsync(Guid sourceInstanceId, Guid backupId, Guid targetInstanceId, string baseUrl, DurableTaskClient client,
        CancellationToken ct)
    {
        var backup = await backups.FindAsync(backupId, ct);
        if (backup is null || backup.InstanceId != sourceInstanceId)
        {
            return new RestoreIntoStart.BackupNotFound();
        }

        if (backup.Status != BackupStatus.Completed)
        {
            return new RestoreIntoStart.BackupNotUsable(backup.Status);
        }

        if (await tenants.FindLiveAsync(targetInstanceId, ct) is not null)
        {
            return new RestoreIntoStart.TargetExists();
        }

        var runId = BackupRuns.RestoreInstanceIdFor(Guid.NewGuid());
        var options = allocationOptions.Value;
        await client.ScheduleNewOrchestrationInstanceAsync(BackupRuns.RestoreIntoOrchestrator,
            new RestoreIntoRunInput(sourceInstanceId, backupId, targetInstanceId, baseUrl, options.WaitPollInterval, options.WaitForCapacityTimeout),
            new StartOrchestrationOptions(runId), ct);
        return new RestoreIntoStart.Started(runId);
    }

    /// <summary>
    /// One try of the restore into the target (the activity): its result, or the server it waits for. Never throws for a restore
    /// that cannot be done: its result says why.
    /// </summary>
    public async Task<RestoreIntoTry> TryAsync(RestoreIntoRunInput input, DurableTaskClient client, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var verified = (Tables: 0, Rows: 0L, LargeObjects: 0L);
        RestoreIntoResult Result(string status, Allocation? placed, string? claimUrl, string? error) => new(input.SourceInstanceId, input.BackupId,
            input.TargetInstanceId, status, placed?.Pool.Id, placed?.Tenant.DbName, claimUrl, verified.Tables, verified.Rows, verified.LargeObjects,
            time.GetElapsedTime(started).TotalSeconds, error);
        var work = Directory.CreateTempSubdirectory("tenantdb-restore-into-");
        try
        {
            var backup = await backups.FindAsync(input.BackupId, ct);
            if (backup is null || backup.InstanceId != input.SourceInstanceId || backup.Status != BackupStatus.Completed)
            {
                throw new BackupRefusedException("backup-not-usable", "The backup is not a completed backup of this instance.");
            }

            var source = await backups.FindTenantAsync(backup.TenantId, ct) ?? throw new InvalidOperationException("The backup's tenant row is gone.");
            if (!poolsOptions.Value.TryGetTier(source.Tenant.PlanTier, out var tier))
            {
                throw new BackupRefusedException("tier-gone", $"The backed-up tenant's tier '{source.Tenant.PlanTier}' is no longer configured.");
            }

            var request = new ValidAllocationRequest(input.TargetInstanceId, source.Tenant.CustomerId, source.Tenant.PlanTier, tier);
            // No archive is fetched while the target has no server with room: the try starts or joins its provisioning instead.
            // A catalog fault here is no reason to give up the wait (nothing of the target exists yet): the next try looks again.
            if (input.PollInterval is not null)
            {
                try
                {
                    if (!await HasRoomAsync(request, ct))
                    {
                        return await WaitForServerAsync(request, client, ct);
                    }
                }
                catch (Exception e) when (PoolFailures.IsTransient(e) && !ct.IsCancellationRequested)
                {
                    LogWaitFault(e, input.TargetInstanceId);
                    return new RestoreIntoTry(null, "retrying", null);
                }
            }

            var archive = Path.Combine(work.FullName, "backup.dump");
            await restores.DownloadVerifiedAsync(backup, archive, ct);
            var expected = RestoreService.ExpectedTables(backup, await tools.ListAsync(archive, ct));
            var outcome = await allocations.AllocateAsync(request, ct, async (reservation, names, fillCt) =>
                verified = await FillAsync(reservation, names, backup, archive, expected, fillCt));
            if (outcome is AllocationOutcome.NoCapacity && input.PollInterval is not null)
            {
                return await WaitForServerAsync(request, client, ct);
            }

            if (outcome is not AllocationOutcome.Allocated { Password: { } password } placed)
            {
                throw new BackupRefusedException("target-not-allocated", outcome switch
                {
                    AllocationOutcome.Allocated => "The target instance already has a database.",
                    AllocationOutcome.NoCapacity => "No pool has room for the target instance now; nothing was made. Retry later.",
                    AllocationOutcome.Conflict conflict => $"The target instance cannot be allocated ({conflict.Type}): {conflict.Detail}",
                    AllocationOutcome.InProgress => "The target instance is being allocated by another request.",
                    AllocationOutcome.Failed failed => failed.Detail,
                    _ => $"The target instance could not be allocated ({outcome.GetType().Name}).",
                });
            }

            var reason = $"restored into a new instance from backup {input.BackupId} of instance {input.SourceInstanceId}: " +
                         $"{verified.Tables} tables, {verified.Rows} rows, {verified.LargeObjects} large objects";
            await backups.RecordRestoredIntoAsync(placed.Tenant.Id, input.BackupId, reason, AuditActor.Current, CancellationToken.None);
            try
            {
                await handoff.DepositAsync(client, input.TargetInstanceId, password, placed.Tenant.HandoffFrom, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // The target is made and ready: as for an allocation whose deposit is lost, the ready row's sealed first password
                // lets the claim hand it over (a rotation gives a new one in the inline mode). Never "failed" for a target that exists.
                LogDepositFailed(e, input.TargetInstanceId);
            }
            LogRestored(input.TargetInstanceId, input.BackupId, input.SourceInstanceId, verified.Tables, verified.Rows);
            return Done(Result(RestoreResult.Restored, new Allocation(placed.Pool, placed.Tenant), AllocationFlow.ClaimUrl(input.BaseUrl, input.TargetInstanceId), null));
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var error = e is BackupRefusedException or InvalidOperationException or PostgresException or AllocationFailedException or ProvisioningRefusedException
                ? (e.InnerException is { } inner && e is AllocationFailedException ? $"{e.Message} {inner.Message}" : e.Message)
                : $"{e.GetType().Name}: {e.Message}";
            LogFailed(e, input.TargetInstanceId, input.BackupId);
            return Done(Result(RestoreResult.Failed, null, null, PgClientTools.Trim(error)));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// After a failed restore (the activity): the dedicated server the run made for its target serves nobody, so it is retired
    /// and deprovisioned, as the daily cleanup reclaims a dedicated server whose tenant was purged (the retire gate re-checks
    /// for live tenants under the pool's lock: one allocated there meanwhile keeps it). Returns what became of it, for the
    /// run's error.
    /// </summary>
    public async Task<string> RetireMadeServerAsync(RestoreIntoRetireInput input, string actor, CancellationToken ct)
    {
        var pool = await servers.GetAsync(input.PoolId, ct);
        if (pool is null || pool.ServerType != ServerType.Dedicated || pool.DedicatedToInstanceId != input.TargetInstanceId)
        {
            return "";
        }

        var reason = $"dedicated server of instance {input.TargetInstanceId:D} retired: the restore into it failed";
        switch (await servers.BeginRetireAsync(pool.Id, Retirable, reason, actor, ct))
        {
            case RetireGate.Started started:
                if (await deprovisioner.DeprovisionAsync(started.Pool, actor, ct) is null)
                {
                    return $"The dedicated server made for it ({pool.Name}) is deleting: its driver could not remove it yet (see the pool's events).";
                }

                await servers.AppendEventAsync(pool.Id, input.TargetInstanceId, PoolEventNames.DedicatedReclaimed, reason, actor, ct);
                LogServerRetired(pool.Name, input.TargetInstanceId);
                return $"The dedicated server made for it ({pool.Name}) was retired.";
            case RetireGate.HasTenants:
                return $"The dedicated server made for it ({pool.Name}) is kept: the instance has a database there now.";
            case RetireGate.InStatus { Status: PoolStatus.Deleting or PoolStatus.Deleted }:
                return $"The dedicated server made for it ({pool.Name}) was retired.";
            case RetireGate.InStatus other:
                // Still being provisioned when the wait ran out: an allocate of the same instance_id, or a retry of this restore, joins it.
                LogServerKept(pool.Name, input.TargetInstanceId, other.Status.ToSql());
                return $"The dedicated server made for it ({pool.Name}) is kept: it is {other.Status.ToSql()}; a retry with the same target joins it.";
            default:
                return "";
        }
    }

    private static readonly PoolStatus[] Retirable = [PoolStatus.Active, PoolStatus.Full, PoolStatus.Error];

    private static RestoreIntoTry Done(RestoreIntoResult result) => new(result, null, null);

    // Room for the target now: its own dedicated server in service with a free slot, or a shared pool with a free slot.
    private async Task<bool> HasRoomAsync(ValidAllocationRequest request, CancellationToken ct) => request.Tier.Dedicated
        ? await moves.FindDedicatedTargetAsync(request.InstanceId, ct) is not null
        : (await provisioningStore.SharedHeadroomAsync(ct)).FreeSlots > 0;

    // As a waiting allocation's try (AllocationFlow.TryAllocateWaitingAsync): start or join the provisioning of the server the
    // target needs; at the server limit or with failing shared pools, wait on (room may come back); any other refusal fails.
    private async Task<RestoreIntoTry> WaitForServerAsync(ValidAllocationRequest request, DurableTaskClient client, CancellationToken ct)
    {
        try
        {
            var reserved = request.Tier.Dedicated
                ? await provisioning.StartDedicatedAsync(client, request, AuditActor.Current, ct)
                : await provisioning.StartSharedAsync(client, AuditActor.Current, $"no capacity for instance {request.InstanceId:D} (a restore into it)", ct,
                    forNoCapacity: true);
            return new RestoreIntoTry(null, $"waiting-for-pool:{reserved.Name}", request.Tier.Dedicated && !reserved.Joined ? reserved.PoolId : null);
        }
        catch (ProvisioningRefusedException refused)
            when (refused.Type is ProvisioningRefusedException.ServerLimit or ProvisioningRefusedException.SharedFailures)
        {
            return new RestoreIntoTry(null, refused.Type, null);
        }
    }

    // On the target's pool, its database just made and its row still creating: pg_restore as a short-lived login in the
    // owner role (never the admin), then the counts against the backup's. Any exception compensates the allocation.
    private async Task<(int Tables, long Rows, long LargeObjects)> FillAsync(Allocation reservation, TenantNames names, TenantBackup backup,
        string archive, IReadOnlyList<TableRows> expected, CancellationToken ct)
    {
        var pool = reservation.Pool;
        var (versionNum, _) = await pools.ServerVersionAsync(pool, ct);
        await tools.EnsureCanServeAsync(versionNum, ct);
        var restorePassword = PasswordGenerator.Generate(40);
        await pools.CreateRestoreLoginAsync(pool, names, names.Database, ScramVerifier.Compute(restorePassword), ct);
        try
        {
            await tools.RestoreAsync(new PgTarget(pool.Host, pool.Port, TenantRestoreDdl.RestoreLoginName(names), restorePassword, names.Database),
                names.OwnerRole, archive, ct);
        }
        finally
        {
            await pools.DropRestoreLoginAsync(pool, names, CancellationToken.None, names.Database);
        }

        IReadOnlyList<TableRows> restored;
        long largeObjects;
        await using (var conn = await pools.OpenAsync(pool, names.Database, ct))
        {
            (restored, largeObjects) = await TenantRestoreDdl.CountAsync(conn, null, ct);
        }

        var differ = expected.Where(e => !restored.Any(e.SameAs)).Select(e => $"{e.Schema}.{e.Table}").ToList();
        if (differ.Count > 0 || restored.Count != expected.Count || largeObjects != backup.LargeObjects)
        {
            throw new InvalidOperationException(
                $"The restored copy does not match the backup: {differ.Count} tables differ in rows, {restored.Count} tables of {expected.Count}, " +
                $"{largeObjects} large objects of {backup.LargeObjects}; the target was not made.");
        }

        return (restored.Count, restored.Sum(t => t.Rows), largeObjects);
    }

    [LoggerMessage(LogLevel.Information, "Instance {TargetInstanceId} made from backup {BackupId} of instance {SourceInstanceId}: {Tables} tables, {Rows} rows")]
    private partial void LogRestored(Guid targetInstanceId, Guid backupId, Guid sourceInstanceId, int tables, long rows);

    [LoggerMessage(LogLevel.Warning, "The password of restored instance {TargetInstanceId} could not be deposited now; its claim hands over the sealed copy")]
    private partial void LogDepositFailed(Exception e, Guid targetInstanceId);

    [LoggerMessage(LogLevel.Warning, "Restore of backup {BackupId} into new instance {TargetInstanceId} failed; nothing of the target is left")]
    private partial void LogFailed(Exception e, Guid targetInstanceId, Guid backupId);

    [LoggerMessage(LogLevel.Warning, "Restore into new instance {TargetInstanceId}: looking for its server failed; the next try looks again")]
    private partial void LogWaitFault(Exception e, Guid targetInstanceId);

    [LoggerMessage(LogLevel.Information, "Retired dedicated server {Pool}, made for instance {TargetInstanceId} whose restore failed")]
    private partial void LogServerRetired(string pool, Guid targetInstanceId);

    [LoggerMessage(LogLevel.Warning, "Dedicated server {Pool}, made for instance {TargetInstanceId} whose restore failed, is kept: it is {Status}")]
    private partial void LogServerKept(string pool, Guid targetInstanceId, string status);
}
