using System.Security.Cryptography;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Backups;

/// <summary>What asking for a restore came to.</summary>
public abstract record RestoreStart
{
    public sealed record Started(string OrchestrationId) : RestoreStart;
    public sealed record NotFound : RestoreStart;
    public sealed record NotReady(TenantDatabaseStatus Status) : RestoreStart;
    public sealed record BackupNotFound : RestoreStart;
    public sealed record BackupNotUsable(string Status) : RestoreStart;
}

/// <summary>
/// Restore in place (DESIGN.md §10): the tenant's database content replaced by a backup's, its roles and passwords untouched.
/// The blob is downloaded to a private file and its SHA-256 and size checked before anything on the pool changes; the archive
/// is restored into a scratch database (the tenant keeps working meanwhile) and verified table by table against the row
/// counts taken in the dump's snapshot (the tables being the archive's TABLE DATA entries). Only then the freeze: logins
/// refused, sessions ended, the scratch swapped in under the database's name in one transaction, the replaced copy dropped,
/// logins back. Any failure before the swap drops the scratch and leaves the tenant as it was; the freeze always ends.
/// </summary>
public sealed partial class RestoreService(
    TenantStore tenants, BackupStore backups, BackupBlobs blobs, PgClientTools tools, TenantRestoreDdl pools,
    IOptions<AllocationOptions> allocation, TimeProvider time, ILogger<RestoreService> logger)
{
    /// <summary>Checks the tenant and the backup, then starts the restore's run.</summary>
    public async Task<RestoreStart> StartAsync(Guid instanceId, Guid backupId, DurableTaskClient client, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new RestoreStart.NotFound();
        }

        if (live.Tenant.Status != TenantDatabaseStatus.Ready)
        {
            return new RestoreStart.NotReady(live.Tenant.Status);
        }

        var backup = await backups.FindAsync(backupId, ct);
        if (backup is null || backup.InstanceId != instanceId)
        {
            return new RestoreStart.BackupNotFound();
        }

        if (backup.Status != BackupStatus.Completed || backup.TenantId != live.Tenant.Id)
        {
            return new RestoreStart.BackupNotUsable(backup.TenantId != live.Tenant.Id ? "of an earlier database of this instance" : backup.Status);
        }

        var runId = BackupRuns.RestoreInstanceIdFor(Guid.NewGuid());
        await client.ScheduleNewOrchestrationInstanceAsync(BackupRuns.RestoreOrchestrator, new RestoreRunInput(instanceId, backupId),
            new StartOrchestrationOptions(runId), ct);
        return new RestoreStart.Started(runId);
    }

    /// <summary>Runs the restore (the activity). Never throws for a restore that cannot be done: its result says why.</summary>
    public async Task<RestoreResult> RunAsync(RestoreRunInput input, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var verified = (Tables: 0, Rows: 0L, LargeObjects: 0L);
        double? downtimeMs = null;
        Allocation? live = null;
        try
        {
            // One restore of an instance at a time, and none while an allocation or cleanup works on it.
            await using var instanceLock = await tenants.OpenInstanceLockAsync(input.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                throw new BackupRefusedException("instance-busy", "Another operation on this instance is under way; try again later.");
            }

            live = await tenants.FindLiveAsync(input.InstanceId, ct);
            var backup = await backups.FindAsync(input.BackupId, ct);
            if (live is null || live.Tenant.Status != TenantDatabaseStatus.Ready)
            {
                throw new BackupRefusedException("allocation-not-ready", "The tenant database is not ready.");
            }

            if (backup is null || backup.InstanceId != input.InstanceId || backup.TenantId != live.Tenant.Id || backup.Status != BackupStatus.Completed)
            {
                throw new BackupRefusedException("backup-not-usable", "The backup is not a completed backup of this tenant database.");
            }

            var names = TenantNames.Of(live.Tenant, allocation.Value.DatabasePrefix);
            if (names.Database != live.Tenant.DbName)
            {
                throw new InvalidOperationException("The tenant's database name is not the one its instance id makes.");
            }

            // A restore that died mid-freeze left logins refused: they come back before anything else.
            await pools.UnfreezeAsync(live.Pool, names, await pools.FrozenLoginsAsync(live.Pool, names, ct), ct);

            var (versionNum, _) = await pools.ServerVersionAsync(live.Pool, ct);
            await tools.EnsureCanServeAsync(versionNum, ct);
            var work = Directory.CreateTempSubdirectory("tenantdb-restore-");
            try
            {
                var archive = Path.Combine(work.FullName, "backup.dump");
                await DownloadVerifiedAsync(backup, archive, ct);
                var expected = ExpectedTables(backup, await tools.ListAsync(archive, ct));
                verified = await RestoreScratchAsync(live, names, backup, archive, expected, ct);
            }
            finally
            {
                work.Delete(recursive: true);
            }

            downtimeMs = await SwapInAsync(live, names, input.BackupId, verified, ct);
            var seconds = time.GetElapsedTime(started).TotalSeconds;
            LogRestored(input.InstanceId, input.BackupId, verified.Tables, verified.Rows, downtimeMs.Value);
            return new RestoreResult(input.InstanceId, input.BackupId, RestoreResult.Restored, verified.Tables, verified.Rows, verified.LargeObjects,
                seconds, downtimeMs, null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var error = e is BackupRefusedException or InvalidOperationException or PostgresException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            error = PgClientTools.Trim(error);
            LogFailed(e, input.InstanceId, input.BackupId);
            if (live is not null)
            {
                await backups.RecordRestoreFailedAsync(live.Tenant.Id, input.BackupId, error, AuditActor.Current, CancellationToken.None);
            }

            return new RestoreResult(input.InstanceId, input.BackupId, RestoreResult.Failed, verified.Tables, verified.Rows, verified.LargeObjects,
                time.GetElapsedTime(started).TotalSeconds, downtimeMs, error);
        }
    }

    // The blob to a private file, hashed on the way; refused unless size and SHA-256 are the recorded ones.
    internal async Task DownloadVerifiedAsync(TenantBackup backup, string path, CancellationToken ct)
    {
        var blob = await blobs.BlobAsync(backup.BlobName, ct);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            var download = await blob.DownloadStreamingAsync(cancellationToken: ct);
            await using var source = download.Value.Content;
            await using var file = new FileStream(path, fileOptions);
            var buffer = new byte[1 << 20];
            int read;
            while ((read = await source.ReadAsync(buffer, ct)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), ct);
                size += read;
            }
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            throw new BackupRefusedException("backup-missing", "The backup's blob is missing; nothing was changed.");
        }

        var sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (size != backup.SizeBytes || sha256 != backup.Sha256)
        {
            throw new BackupRefusedException("backup-corrupt",
                $"The backup's blob does not match its record (size {size} of {backup.SizeBytes}, SHA-256 {(sha256 == backup.Sha256 ? "equal" : "different")}); nothing was changed.");
        }
    }

    // The tables the archive holds data for (its TABLE DATA entries, "<dump id>; 0 <table oid> TABLE DATA <schema> <name> <owner>")
    // must be the ones counted at dump time, one for one. Matched by the table's OID: a name may contain anything, even
    // " TABLE DATA ".
    internal static IReadOnlyList<TableRows> ExpectedTables(TenantBackup backup, string toc)
    {
        var expected = backup.TableRows ?? throw new InvalidOperationException("The backup has no table counts.");
        var oids = toc.Split('\n').Select(l => TocTableData().Match(l)).Where(m => m.Success)
            .Select(m => uint.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        var missing = expected.Count(t => !oids.Contains(t.Oid));
        if (oids.Count != expected.Count || missing > 0)
        {
            throw new InvalidOperationException(
                $"The archive's table of contents lists {oids.Count} tables with data, the backup recorded {expected.Count}; {missing} recorded tables are not in it.");
        }

        return expected;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\d+; 0 (\d+) TABLE DATA ", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex TocTableData();

    private async Task<(int Tables, long Rows, long LargeObjects)> RestoreScratchAsync(Allocation live, TenantNames names, TenantBackup backup, string archive,
        IReadOnlyList<TableRows> expected, CancellationToken ct)
    {
        // pg_restore runs as a short-lived login in the owner role, never as the admin (see TenantRestoreDdl.RestoreLoginName):
        // its password exists only here and in the child's PGPASSWORD; the server gets a SCRAM verifier.
        var restorePassword = PasswordGenerator.Generate(40);
        await pools.CreateScratchAsync(live.Pool, names, ScramVerifier.Compute(restorePassword), ct);
        try
        {
            var scratch = TenantRestoreDdl.ScratchName(names);
            var restoreLogin = new PgTarget(live.Pool.Host, live.Pool.Port, TenantRestoreDdl.RestoreLoginName(names), restorePassword, scratch);
            try
            {
                await tools.RestoreAsync(restoreLogin, names.OwnerRole, archive, ct);
            }
            finally
            {
                await pools.DropRestoreLoginAsync(live.Pool, names, CancellationToken.None);
            }

            IReadOnlyList<TableRows> restored;
            long largeObjects;
            await using (var conn = await pools.OpenAsync(live.Pool, scratch, ct))
            {
                (restored, largeObjects) = await TenantRestoreDdl.CountAsync(conn, null, ct);
            }

            var differ = expected.Where(e => !restored.Any(e.SameAs)).Select(e => $"{e.Schema}.{e.Table}").ToList();
            if (differ.Count > 0 || restored.Count != expected.Count || largeObjects != backup.LargeObjects)
            {
                throw new InvalidOperationException(
                    $"The restored copy does not match the backup: {differ.Count} tables differ in rows, {restored.Count} tables of {expected.Count}, " +
                    $"{largeObjects} large objects of {backup.LargeObjects}; nothing was changed.");
            }

            return (restored.Count, restored.Sum(t => t.Rows), largeObjects);
        }
        catch
        {
            await pools.DropScratchAsync(live.Pool, names, CancellationToken.None);
            throw;
        }
    }

    // Freeze, swap, drop the replaced copy, unfreeze: under the tenant row's lock (no rotation meanwhile), the restore recorded
    // on the row in the same catalog transaction. Returns the downtime (freeze to unfreeze) in milliseconds.
    private async Task<double> SwapInAsync(Allocation live, TenantNames names, Guid backupId, (int Tables, long Rows, long LargeObjects) verified,
        CancellationToken ct)
    {
        var downtime = await backups.WhileTenantLockedAsync<object>(live.Tenant.Id, backupId, AuditActor.Current, async () =>
        {
            var frozenAt = time.GetTimestamp();
            IReadOnlyList<string> frozen = [];
            try
            {
                frozen = await pools.FreezeAsync(live.Pool, names, ct);
                await pools.SwapAsync(live.Pool, names, ct);
            }
            finally
            {
                // Never left frozen: the logins come back whatever happened (refused again only if a release closed the database).
                await pools.UnfreezeAsync(live.Pool, names, frozen, CancellationToken.None);
            }

            var ms = time.GetElapsedTime(frozenAt).TotalMilliseconds;
            // The replaced copy is not needed once the swap committed; a failure here leaves it for the next restore to drop.
            try
            {
                await pools.DropScratchAsync(live.Pool, names, CancellationToken.None);
            }
            catch (NpgsqlException e)
            {
                LogDropFailed(e, live.Tenant.InstanceId);
            }

            return ms;
        }, ms => $"restored in place from backup {backupId}: {verified.Tables} tables, {verified.Rows} rows, {verified.LargeObjects} large objects; " +
                 $"downtime {(double)ms:0} ms", ct);
        if (downtime is null)
        {
            await pools.DropScratchAsync(live.Pool, names, CancellationToken.None);
            throw new BackupRefusedException("allocation-not-ready", "The tenant database is no longer ready; nothing was changed.");
        }

        return (double)downtime;
    }

    [LoggerMessage(LogLevel.Information, "Instance {InstanceId} restored in place from backup {BackupId}: {Tables} tables, {Rows} rows, downtime {DowntimeMs:0} ms")]
    private partial void LogRestored(Guid instanceId, Guid backupId, int tables, long rows, double downtimeMs);

    [LoggerMessage(LogLevel.Warning, "Restore of instance {InstanceId} from backup {BackupId} failed; the tenant is as it was")]
    private partial void LogFailed(Exception e, Guid instanceId, Guid backupId);

    [LoggerMessage(LogLevel.Warning, "The replaced copy of instance {InstanceId} could not be dropped; the next restore drops it")]
    private partial void LogDropFailed(Exception e, Guid instanceId);
}
