using System.Security.Cryptography;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Backups;

/// <summary>What asking for a backup came to.</summary>
public abstract record BackupStart
{
    public sealed record Started(TenantBackup Backup, string OrchestrationId) : BackupStart;
    public sealed record NotFound : BackupStart;
    public sealed record NotReady(TenantDatabaseStatus Status) : BackupStart;
}

/// <summary>
/// Backups of tenant databases (DESIGN.md §10): a <c>pg_dump -Fc</c> of the tenant database, connected as the pool's admin,
/// streamed straight into a block blob while its SHA-256 and size are computed; the row counts of its tables are taken in
/// the dump's own snapshot. A failure marks the backup failed and deletes the partial blob.
/// </summary>
public sealed partial class BackupService(
    TenantStore tenants, BackupStore backups, BackupBlobs blobs, PgClientTools tools, TenantRestoreDdl pools, PoolAdminPasswords passwords,
    IOptions<BackupsOptions> options, IOptions<PoolsOptions> poolsOptions, TimeProvider time, ILogger<BackupService> logger)
{
    private const int CopyBufferBytes = 1 << 20;

    /// <summary>Records a new backup of a ready tenant (<c>creating</c>) and starts its run.</summary>
    public async Task<BackupStart> StartAsync(Guid instanceId, DurableTaskClient client, CancellationToken ct, string kind = BackupKind.Manual)
    {
        var start = await RecordAsync(instanceId, ct, kind);
        if (start is not BackupStart.Started started)
        {
            return start;
        }

        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(BackupRuns.BackupOrchestrator, new BackupRunInput(started.Backup.Id),
                new StartOrchestrationOptions(started.OrchestrationId), ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Nothing will run it: no row stays "creating" for ever.
            await backups.MarkFailedAsync(started.Backup.Id, "the backup run could not be started", AuditActor.Current, CancellationToken.None);
            throw;
        }

        return started;
    }

    /// <summary>Records a new backup of a ready tenant (<c>creating</c>), to be run by <see cref="RunAsync"/> under the returned run id.</summary>
    public async Task<BackupStart> RecordAsync(Guid instanceId, CancellationToken ct, string kind = BackupKind.Manual)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new BackupStart.NotFound();
        }

        if (live.Tenant.Status != TenantDatabaseStatus.Ready)
        {
            return new BackupStart.NotReady(live.Tenant.Status);
        }

        return await RecordAsync(live, kind, ct);
    }

    /// <summary>Records a new backup (<c>creating</c>) of this tenant row, whatever its status (a final backup's is released).</summary>
    public async Task<BackupStart.Started> RecordAsync(Allocation live, string kind, CancellationToken ct)
    {
        var backupId = Guid.NewGuid();
        var backup = await backups.InsertAsync(backupId, live, BackupBlobs.BlobNameOf(live.Tenant.InstanceId, backupId), ct, kind);
        return new BackupStart.Started(backup, BackupRuns.BackupInstanceIdFor(backupId));
    }

    /// <summary>How long a backup of a tenant of this tier is kept: the tier's <c>BackupRetention</c>, else <c>Backups:Retention</c>.</summary>
    public TimeSpan RetentionFor(string planTier) =>
        poolsOptions.Value.TryGetTier(planTier, out var tier) && tier.BackupRetention is { } retention ? retention : options.Value.Retention;

    /// <summary>The instance's backups, newest first; null when the instance has neither a live database nor any backup.</summary>
    public async Task<IReadOnlyList<TenantBackup>?> ListAsync(Guid instanceId, int limit, CancellationToken ct)
    {
        var list = await backups.ListAsync(instanceId, limit, ct);
        return list.Count > 0 || await tenants.FindLiveAsync(instanceId, ct) is not null ? list : null;
    }

    /// <summary>
    /// Runs a recorded backup (the activity). Idempotent by backup id: a backup already completed or failed is answered as it
    /// is; one still <c>creating</c> (a retried activity) is dumped again over its blob. A final backup dumps a released
    /// tenant: under the instance's lock (no un-release or purge meanwhile), its closed database opened for the admin's dump
    /// alone (the tenant's logins stay refused, CONNECT stays revoked) and closed again.
    /// </summary>
    public async Task<BackupResult> RunAsync(Guid backupId, CancellationToken ct)
    {
        var backup = await backups.FindAsync(backupId, ct) ?? throw new InvalidOperationException($"Backup {backupId} is not in the catalog.");
        if (backup.Status != BackupStatus.Creating)
        {
            return ResultOf(backup, null);
        }

        var started = time.GetTimestamp();
        BlockBlobWriteState? blob = null;
        InstanceLock? instanceLock = null;
        var reopened = false;
        Allocation? live = null;
        try
        {
            if (backup.Kind == BackupKind.Final)
            {
                instanceLock = await tenants.OpenInstanceLockAsync(backup.InstanceId, ct);
                if (!await instanceLock.TryAcquireAsync(ct))
                {
                    throw new BackupRefusedException("instance-busy", "Another operation on this instance is under way.");
                }
            }

            live = await backups.FindTenantAsync(backup.TenantId, ct) ?? throw new InvalidOperationException("The backup's tenant row is gone.");
            var status = live.Tenant.Status;
            if (status != TenantDatabaseStatus.Ready && !(backup.Kind == BackupKind.Final && status == TenantDatabaseStatus.Released))
            {
                throw new BackupRefusedException("allocation-not-ready", $"The tenant database is {status.ToSql()}, not ready.");
            }

            var (versionNum, version) = await pools.ServerVersionAsync(live.Pool, ct);
            await tools.EnsureCanServeAsync(versionNum, ct);
            blob = new BlockBlobWriteState(await blobs.BlobAsync(backup.BlobName, ct));
            reopened = status == TenantDatabaseStatus.Released && await pools.OpenForAdminAsync(live.Pool, live.Tenant.DbName, ct);
            var dump = await DumpAsync(live, blob, ct);
            var completed = dump with { ServerVersion = version };
            await backups.MarkCompletedAsync(backupId, completed, RetentionFor(live.Tenant.PlanTier), AuditActor.Current, CancellationToken.None);
            var seconds = time.GetElapsedTime(started).TotalSeconds;
            LogCompleted(backupId, live.Tenant.InstanceId, completed.SizeBytes, seconds);
            return ResultOf((await backups.FindAsync(backupId, CancellationToken.None))!, seconds);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var error = e is BackupRefusedException or InvalidOperationException or PostgresException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            LogFailed(e, backupId);
            if (blob is not null)
            {
                await blob.Blob.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
            }

            await backups.MarkFailedAsync(backupId, PgClientTools.Trim(error), AuditActor.Current, CancellationToken.None);
            return ResultOf((await backups.FindAsync(backupId, CancellationToken.None))!, time.GetElapsedTime(started).TotalSeconds);
        }
        finally
        {
            if (reopened)
            {
                // Closed again before the instance's lock goes: a purge or un-release after this sees the database as the release left it.
                await pools.CloseAsync(live!.Pool, live.Tenant.DbName, CancellationToken.None);
            }

            if (instanceLock is not null)
            {
                await instanceLock.DisposeAsync();
            }
        }
    }

    // pg_dump in the snapshot of an admin transaction that stays open until the dump is done; the rows are counted in that
    // same snapshot meanwhile, so the counts are exactly what the archive holds.
    private async Task<CompletedDump> DumpAsync(Allocation live, BlockBlobWriteState blob, CancellationToken ct)
    {
        await using var conn = await pools.OpenAsync(live.Pool, live.Tenant.DbName, ct);
        await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        string snapshot;
        await using (var export = new NpgsqlCommand("SET TRANSACTION READ ONLY; SELECT pg_export_snapshot()", conn, tx))
        {
            snapshot = (string)(await export.ExecuteScalarAsync(ct))!;
        }

        using var process = tools.StartDump(PgTarget.Of(live.Pool, passwords.Reveal(live.Pool), live.Tenant.DbName), snapshot);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            var copy = CopyAsync(process.StandardOutput.BaseStream, blob, ct);
            var (tables, largeObjects) = await TenantRestoreDdl.CountAsync(conn, tx, ct);
            var (size, sha256) = await copy;
            await process.WaitForExitAsync(ct);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"pg_dump failed ({process.ExitCode}): {PgClientTools.Trim(await stderr)}");
            }

            await tx.CommitAsync(ct);
            return new CompletedDump("", size, sha256, tables, largeObjects);
        }
        catch
        {
            PgClientTools.Kill(process);
            throw;
        }
    }

    private static async Task<(long Size, string Sha256)> CopyAsync(Stream dump, BlockBlobWriteState blob, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[CopyBufferBytes];
        long size = 0;
        await using (var target = await blob.Blob.OpenWriteAsync(overwrite: true, cancellationToken: ct))
        {
            int read;
            while ((read = await dump.ReadAsync(buffer, ct)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await target.WriteAsync(buffer.AsMemory(0, read), ct);
                size += read;
            }
        }

        return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static BackupResult ResultOf(TenantBackup b, double? seconds) =>
        new(b.Id, b.InstanceId, b.Status, b.SizeBytes, b.Sha256, seconds, b.Error);

    /// <summary>The blob a run writes (kept to delete a partial one on failure).</summary>
    private sealed record BlockBlobWriteState(Azure.Storage.Blobs.Specialized.BlockBlobClient Blob);

    [LoggerMessage(LogLevel.Information, "Backup {BackupId} of instance {InstanceId} completed: {Bytes} bytes in {Seconds:0.00} s")]
    private partial void LogCompleted(Guid backupId, Guid instanceId, long bytes, double seconds);

    [LoggerMessage(LogLevel.Warning, "Backup {BackupId} failed; its partial blob is deleted")]
    private partial void LogFailed(Exception e, Guid backupId);
}
