using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Backups;

/// <summary>A release, and the final backup it started (null when none could be started now: the purge takes it).</summary>
public sealed record ReleaseWithBackup(ReleaseOutcome Outcome, Guid? FinalBackupId);

/// <summary>
/// The final backup of a released tenant (DESIGN.md §10, <c>Backups:FinalOnRelease</c>). The release starts it best-effort
/// (its answer never waits long for the task hub or the blob store, nor fails because of them); the purge takes it itself
/// when none completed after the release, and skips (until the next cleanup) a tenant whose final backup fails.
/// </summary>
public sealed partial class FinalBackups(
    AllocationService allocations, TenantStore tenants, BackupStore backups, BackupService service, IOptions<BackupsOptions> options,
    TimeProvider time, ILogger<FinalBackups> logger) : IFinalBackup
{
    private BackupsOptions Options => options.Value;

    /// <summary>Releases the tenant (logins refused, data kept), then starts its final backup's run, best effort.</summary>
    public async Task<ReleaseWithBackup> ReleaseAsync(Guid instanceId, string actor, DurableTaskClient client, CancellationToken ct)
    {
        var outcome = await allocations.ReleaseAsync(instanceId, actor, ct);
        var backupId = outcome is ReleaseOutcome.Released released && Options.FinalOnRelease
            ? await StartBestEffortAsync(released.Tenant, client, ct)
            : null;
        return new ReleaseWithBackup(outcome, backupId);
    }

    public async Task<FinalBackupCheck> EnsureAsync(Allocation released, CancellationToken ct)
    {
        if (!Options.FinalOnRelease)
        {
            return FinalBackupCheck.Taken(null);
        }

        var tenant = released.Tenant;
        var since = await backups.ListSinceAsync(tenant.Id, tenant.ReleasedAt ?? throw new InvalidOperationException("A released row has no released_at."), ct);
        if (since.FirstOrDefault(b => b.Status == BackupStatus.Completed) is { } done)
        {
            return FinalBackupCheck.Taken(done.Id);
        }

        var abandonedBefore = time.GetUtcNow() - Options.AbandonedAfter;
        if (since.Any(b => b.Status == BackupStatus.Creating && b.StartedAt > abandonedBefore))
        {
            return FinalBackupCheck.Missing("a final backup is still running");
        }

        foreach (var abandoned in since.Where(b => b.Status == BackupStatus.Creating))
        {
            await backups.MarkFailedAsync(abandoned.Id, $"abandoned: still creating after {Options.AbandonedAfter}", AuditActor.Current, ct);
        }

        var started = await service.RecordAsync(released, BackupKind.Final, ct);
        var result = await service.RunAsync(started.Backup.Id, ct);
        LogTaken(tenant.InstanceId, result.BackupId, result.Status);
        return result.Status == BackupStatus.Completed
            ? FinalBackupCheck.Taken(result.BackupId)
            : FinalBackupCheck.Missing($"backup {result.BackupId} {result.Status}: {result.Error}");
    }

    public async Task<bool> ExistsAsync(TenantDatabase released, CancellationToken ct) =>
        !Options.FinalOnRelease || released.ReleasedAt is { } at && (await backups.ListSinceAsync(released.Id, at, ct)).Any(b => b.Status == BackupStatus.Completed);

    // Bounded by Backups:FinalStartTimeout. A release repeated (idempotent) starts none when one is done or under way.
    private async Task<Guid?> StartBestEffortAsync(TenantDatabase tenant, DurableTaskClient client, CancellationToken ct)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(Options.FinalStartTimeout);
        Guid? backupId = null;
        try
        {
            var since = await backups.ListSinceAsync(tenant.Id, tenant.ReleasedAt!.Value, bounded.Token);
            if (since.FirstOrDefault(b => b.Status is BackupStatus.Completed or BackupStatus.Creating) is { } existing)
            {
                return existing.Id;
            }

            var live = await tenants.FindLiveAsync(tenant.InstanceId, bounded.Token);
            if (live is null || live.Tenant.Id != tenant.Id || live.Tenant.Status != TenantDatabaseStatus.Released)
            {
                return null;
            }

            var started = await service.RecordAsync(live, BackupKind.Final, bounded.Token);
            backupId = started.Backup.Id;
            await client.ScheduleNewOrchestrationInstanceAsync(BackupRuns.BackupOrchestrator, new BackupRunInput(started.Backup.Id),
                new StartOrchestrationOptions(started.OrchestrationId), bounded.Token);
            return backupId;
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // The release stands; the purge takes the final backup itself. A row recorded without a run is failed, so the
            // purge does not wait on it (a run that did start after all answers it as failed and stops).
            LogStartFailed(e, tenant.InstanceId);
            if (backupId is { } id)
            {
                using var mark = new CancellationTokenSource(Options.FinalStartTimeout);
                try
                {
                    await backups.MarkFailedAsync(id, "the final backup's run could not be started; the purge takes it", AuditActor.Current, mark.Token);
                }
                catch (Exception markFailed) when (PoolFailures.IsTransient(markFailed) || markFailed is OperationCanceledException)
                {
                    LogStartFailed(markFailed, tenant.InstanceId);
                }
            }

            return null;
        }
    }

    [LoggerMessage(LogLevel.Information, "Final backup {BackupId} of released instance {InstanceId}: {Status}")]
    private partial void LogTaken(Guid instanceId, Guid backupId, string status);

    [LoggerMessage(LogLevel.Warning, "The final backup of released instance {InstanceId} could not be started now; the purge takes it")]
    private partial void LogStartFailed(Exception e, Guid instanceId);
}
