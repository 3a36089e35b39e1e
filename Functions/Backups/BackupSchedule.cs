using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Backups;

/// <summary>What the backup schedule or expiry did in one run; <see cref="Failed"/> are retried by the next run.</summary>
public sealed record BackupScheduleResult(int Done, int Failed);

/// <summary>
/// Backups over time (DESIGN.md §10). The schedule: every ready tenant of a tier with <c>Pools:Tiers:&lt;tier&gt;:BackupEvery</c>
/// whose last completed backup is older than that gets a <c>scheduled</c> backup, started as a <c>BackupTenant</c> run, at
/// most <c>Backups:ScheduleBatch</c> per health sweep (the sweep runs every few minutes, so a tier's interval is kept to within
/// one sweep; the dumps run in the task hub, not in the timer). Expiry: a completed backup past its <c>expires_at</c> has its
/// blob deleted first, then its row marked <c>expired</c> (kept, never restorable), by the daily cleanup.
/// </summary>
public sealed partial class BackupSchedule(
    BackupStore backups, BackupService service, BackupBlobs blobs, IOptions<BackupsOptions> options, IOptions<PoolsOptions> pools,
    TimeProvider time, ILogger<BackupSchedule> logger)
{
    /// <summary>Starts the scheduled backups that are due (the health sweep).</summary>
    public async Task<BackupScheduleResult> StartDueAsync(DurableTaskClient client, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var cutoffs = pools.Value.Tiers.Where(t => t.Value.BackupEvery is not null)
            .ToDictionary(t => t.Key, t => now - t.Value.BackupEvery!.Value, StringComparer.Ordinal);
        if (cutoffs.Count == 0 || options.Value.ScheduleBatch == 0)
        {
            return new BackupScheduleResult(0, 0);
        }

        int started = 0, failed = 0;
        foreach (var due in await backups.ListScheduleDueAsync(cutoffs, options.Value.ScheduleBatch, ct))
        {
            try
            {
                if (await service.StartAsync(due.InstanceId, client, ct, BackupKind.Scheduled) is BackupStart.Started)
                {
                    started++;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                failed++;
                LogScheduleFailed(e, due.InstanceId);
            }
        }

        if (started + failed > 0)
        {
            LogScheduled(started, failed);
        }

        return new BackupScheduleResult(started, failed);
    }

    /// <summary>Deletes the blobs of expired backups and marks their rows <c>expired</c> (the daily cleanup).</summary>
    public async Task<BackupScheduleResult> ExpireAsync(string actor, CancellationToken ct)
    {
        int expired = 0, failed = 0;
        foreach (var backup in await backups.ListExpiredAsync(time.GetUtcNow(), options.Value.ExpiryBatch, ct))
        {
            try
            {
                // Blob first: a row marked expired never names a blob that is still there, and a blob is never left without its row.
                var blob = await blobs.BlobAsync(backup.BlobName, ct);
                await blob.DeleteIfExistsAsync(cancellationToken: ct);
                if (await backups.MarkExpiredAsync(backup.Id, actor, ct))
                {
                    expired++;
                }
            }
            catch (Exception e) when (e is Azure.RequestFailedException or InvalidOperationException || PoolFailures.IsTransient(e))
            {
                failed++;
                LogExpireFailed(e, backup.Id);
            }
        }

        return new BackupScheduleResult(expired, failed);
    }

    [LoggerMessage(LogLevel.Information, "Backup schedule: {Started} scheduled backups started, {Failed} failed to start")]
    private partial void LogScheduled(int started, int failed);

    [LoggerMessage(LogLevel.Warning, "The scheduled backup of instance {InstanceId} could not be started; the next sweep tries again")]
    private partial void LogScheduleFailed(Exception e, Guid instanceId);

    [LoggerMessage(LogLevel.Warning, "Expired backup {BackupId} could not be deleted; the next cleanup tries again")]
    private partial void LogExpireFailed(Exception e, Guid backupId);
}
