using System.Data.Common;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// The row count of one table in a dump, as counted in the dump's own snapshot, with the table's OID on the dumped server (what
/// the archive's TABLE DATA entry names it by: names may hold anything, an OID cannot be confused).
/// </summary>
public sealed record TableRows(string Schema, string Table, long Rows, uint Oid)
{
    /// <summary>The same table with the same rows, wherever it lives (OIDs differ between databases).</summary>
    public bool SameAs(TableRows other) => Schema == other.Schema && Table == other.Table && Rows == other.Rows;
}

/// <summary>A row of <c>tenant_backups</c>.</summary>
public sealed record TenantBackup
{
    public required Guid Id { get; init; }
    public required Guid InstanceId { get; init; }
    public required long TenantId { get; init; }
    public required long DbServerId { get; init; }
    public string? ServerVersion { get; init; }
    public required string BlobName { get; init; }
    public long? SizeBytes { get; init; }
    public string? Sha256 { get; init; }
    public IReadOnlyList<TableRows>? TableRows { get; init; }
    public long? LargeObjects { get; init; }
    public required string Status { get; init; }
    public string Kind { get; init; } = BackupKind.Manual;
    public required DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public string? Error { get; init; }
}

/// <summary>The status words of <c>tenant_backups.status</c>.</summary>
public static class BackupStatus
{
    public const string Creating = "creating";
    public const string Completed = "completed";
    public const string Failed = "failed";

    /// <summary>Past its <c>expires_at</c>: its blob is deleted, the row kept (never restorable).</summary>
    public const string Expired = "expired";
}

/// <summary>Why a backup was taken: the words of <c>tenant_backups.kind</c>.</summary>
public static class BackupKind
{
    /// <summary>Asked for over HTTP.</summary>
    public const string Manual = "manual";

    /// <summary>Taken after a release, before the purge.</summary>
    public const string Final = "final";

    /// <summary>Taken by the tier's schedule (<c>BackupEvery</c>).</summary>
    public const string Scheduled = "scheduled";
}

/// <summary>A tenant due for a scheduled backup.</summary>
public sealed record ScheduledBackupDue(Guid InstanceId, string PlanTier, DateTimeOffset? LastCompletedAt);

/// <summary>What the dump measured, recorded when its blob is complete.</summary>
public sealed record CompletedDump(string ServerVersion, long SizeBytes, string Sha256, IReadOnlyList<TableRows> TableRows, long LargeObjects);

/// <summary>
/// The <c>tenant_backups</c> table, and the restore's record on the tenant row. Every change writes its line in
/// <c>pool_events</c> in the same statement.
/// </summary>
public sealed class BackupStore(NpgsqlDataSource catalog)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>A new backup (<c>creating</c>) of the tenant row; the blob name is fixed here, before anything is written.</summary>
    public async Task<TenantBackup> InsertAsync(Guid backupId, Allocation live, string blobName, CancellationToken ct, string kind = BackupKind.Manual)
    {
        await using var cmd = catalog.CreateCommand("""
            INSERT INTO tenant_backups (id, instance_id, tenant_id, db_server_id, blob_name, status, server_version, kind)
            VALUES (@id, @instance_id, @tenant_id, @server_id, @blob, 'creating', NULL, @kind)
            RETURNING *
            """);
        cmd.Parameters.AddWithValue("kind", kind);
        cmd.Parameters.AddWithValue("id", backupId);
        cmd.Parameters.AddWithValue("instance_id", live.Tenant.InstanceId);
        cmd.Parameters.AddWithValue("tenant_id", live.Tenant.Id);
        cmd.Parameters.AddWithValue("server_id", live.Pool.Id);
        cmd.Parameters.AddWithValue("blob", blobName);
        return (await ReadAsync(cmd, ct)).Single();
    }

    public async Task<TenantBackup?> FindAsync(Guid backupId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT * FROM tenant_backups WHERE id = @id");
        cmd.Parameters.AddWithValue("id", backupId);
        return (await ReadAsync(cmd, ct)).SingleOrDefault();
    }

    /// <summary>The instance's backups, newest first.</summary>
    public async Task<IReadOnlyList<TenantBackup>> ListAsync(Guid instanceId, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT * FROM tenant_backups WHERE instance_id = @instance_id ORDER BY started_at DESC, id LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("instance_id", instanceId);
        cmd.Parameters.AddWithValue("limit", limit);
        return await ReadAsync(cmd, ct);
    }

    /// <summary>
    /// The tenant row's backups started at or after <paramref name="since"/> (its release), newest first: what a purge looks
    /// at for a final backup.
    /// </summary>
    public async Task<IReadOnlyList<TenantBackup>> ListSinceAsync(long tenantId, DateTimeOffset since, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT * FROM tenant_backups WHERE tenant_id = @tenant_id AND started_at >= @since ORDER BY started_at DESC, id
            """);
        cmd.Parameters.AddWithValue("tenant_id", tenantId);
        cmd.Parameters.AddWithValue("since", since);
        return await ReadAsync(cmd, ct);
    }

    /// <summary>Completed backups past their expiry, oldest first: their blobs are to be deleted.</summary>
    public async Task<IReadOnlyList<TenantBackup>> ListExpiredAsync(DateTimeOffset now, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT * FROM tenant_backups WHERE status = 'completed' AND expires_at <= @now ORDER BY expires_at, id LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("now", now);
        cmd.Parameters.AddWithValue("limit", limit);
        return await ReadAsync(cmd, ct);
    }

    /// <summary>The backup's blob is deleted: the row becomes <c>expired</c> (kept, never restorable), with its event. False when it was not completed.</summary>
    public async Task<bool> MarkExpiredAsync(Guid backupId, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH b AS (
                UPDATE tenant_backups SET status = 'expired'
                WHERE id = @id AND status = 'completed'
                RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.BackupExpired}', 'backup ' || id || ' expired at ' || expires_at || '; blob deleted', @actor FROM b
            )
            SELECT count(*) FROM b
            """);
        cmd.Parameters.AddWithValue("id", backupId);
        cmd.Parameters.AddWithValue("actor", actor);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>
    /// Ready tenants of the given tiers whose last completed backup finished before their tier's cutoff (or that have none),
    /// and that have no backup under way; the longest-waiting first.
    /// </summary>
    public async Task<IReadOnlyList<ScheduledBackupDue>> ListScheduleDueAsync(IReadOnlyDictionary<string, DateTimeOffset> cutoffByTier, int limit,
        CancellationToken ct)
    {
        if (cutoffByTier.Count == 0 || limit <= 0)
        {
            return [];
        }

        await using var cmd = catalog.CreateCommand($"""
            WITH tiers AS (SELECT * FROM unnest(@tiers, @cutoffs) AS x(plan_tier, cutoff))
            SELECT t.instance_id, t.plan_tier, last.finished_at
            FROM tenant_databases t
            JOIN tiers ON tiers.plan_tier = t.plan_tier
            LEFT JOIN LATERAL (
                SELECT b.finished_at FROM tenant_backups b WHERE b.tenant_id = t.id AND b.status = 'completed' ORDER BY b.finished_at DESC LIMIT 1
            ) last ON true
            WHERE t.status = '{Words.Ready}'
              AND (last.finished_at IS NULL OR last.finished_at < tiers.cutoff)
              AND COALESCE(t.ready_at, t.created_at) < tiers.cutoff
              AND NOT EXISTS (SELECT 1 FROM tenant_backups c WHERE c.tenant_id = t.id AND c.status = 'creating')
            ORDER BY last.finished_at NULLS FIRST, t.id
            LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("tiers", cutoffByTier.Keys.ToArray());
        cmd.Parameters.AddWithValue("cutoffs", cutoffByTier.Values.Select(v => v.UtcDateTime).ToArray());
        cmd.Parameters.AddWithValue("limit", limit);
        var due = new List<ScheduledBackupDue>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            due.Add(new ScheduledBackupDue(reader.GetGuid(0), reader.GetString(1),
                reader.IsDBNull(2) ? null : new DateTimeOffset(reader.GetDateTime(2), TimeSpan.Zero)));
        }

        return due;
    }

    /// <summary>The backup's tenant row (whatever its status now) with its pool.</summary>
    public async Task<Allocation?> FindTenantAsync(long tenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT s.*, {TenantStore.TenantColumns}
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE t.id = @id
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? new Allocation(reader.ToPool(), reader.ToTenant("t_")) : null;
    }

    /// <summary>The dump is in its blob: completed, with what it measured. False when the row was no longer <c>creating</c>.</summary>
    public async Task<bool> MarkCompletedAsync(Guid backupId, CompletedDump dump, TimeSpan retention, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH b AS (
                UPDATE tenant_backups
                SET status = 'completed', server_version = @version, size_bytes = @size, sha256 = @sha256, table_rows = @tables,
                    large_objects = @large_objects, finished_at = now(), expires_at = now() + @retention, error = NULL
                WHERE id = @id AND status = 'creating'
                RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.BackupCompleted}',
                       'backup ' || id || ': ' || size_bytes || ' bytes, ' || jsonb_array_length(table_rows) || ' tables', @actor FROM b
            )
            SELECT count(*) FROM b
            """);
        cmd.Parameters.AddWithValue("id", backupId);
        cmd.Parameters.AddWithValue("version", dump.ServerVersion);
        cmd.Parameters.AddWithValue("size", dump.SizeBytes);
        cmd.Parameters.AddWithValue("sha256", dump.Sha256);
        cmd.Parameters.Add(new NpgsqlParameter("tables", NpgsqlDbType.Jsonb) { Value = JsonSerializer.Serialize(dump.TableRows, Json) });
        cmd.Parameters.AddWithValue("large_objects", dump.LargeObjects);
        cmd.Parameters.AddWithValue("retention", retention);
        cmd.Parameters.AddWithValue("actor", actor);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>The backup failed (its partial blob already deleted): failed, with the reason. False when it was not <c>creating</c>.</summary>
    public async Task<bool> MarkFailedAsync(Guid backupId, string error, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH b AS (
                UPDATE tenant_backups SET status = 'failed', finished_at = now(), error = @error
                WHERE id = @id AND status = 'creating'
                RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.BackupFailed}', 'backup ' || id || ': ' || @error, @actor FROM b
            )
            SELECT count(*) FROM b
            """);
        cmd.Parameters.AddWithValue("id", backupId);
        cmd.Parameters.AddWithValue("error", error);
        cmd.Parameters.AddWithValue("actor", actor);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>
    /// Runs <paramref name="onPool"/> (the freeze, swap and unfreeze of a restore) while the tenant row is locked and still
    /// <c>ready</c>, the lock every change of a login on a pool runs under (see <see cref="LoginRotationStore"/>), so no
    /// rotation sets a login meanwhile. When <paramref name="onPool"/> returns a restore, the tenant row records it and its
    /// event is written in the same transaction. Null, and <paramref name="onPool"/> not run, when the row is not ready.
    /// </summary>
    public async Task<T?> WhileTenantLockedAsync<T>(long tenantId, Guid backupId, string actor, Func<Task<T>> onPool, Func<T, string?> restoredReason,
        CancellationToken ct) where T : class
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var find = new NpgsqlCommand($"SELECT 1 FROM tenant_databases WHERE id = @id AND status = '{Words.Ready}' FOR UPDATE", conn, tx))
        {
            find.Parameters.AddWithValue("id", tenantId);
            if (await find.ExecuteScalarAsync(ct) is null)
            {
                return null;
            }
        }

        var result = await onPool();
        if (restoredReason(result) is { } reason)
        {
            await using var record = new NpgsqlCommand($"""
                WITH t AS (
                    UPDATE tenant_databases SET restored_from_backup_id = @backup_id, restored_at = now(), updated_at = now()
                    WHERE id = @id
                    RETURNING db_server_id, instance_id
                )
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantRestored}', @reason, @actor FROM t
                """, conn, tx);
            record.Parameters.AddWithValue("id", tenantId);
            record.Parameters.AddWithValue("backup_id", backupId);
            record.Parameters.AddWithValue("reason", reason);
            record.Parameters.AddWithValue("actor", actor);
            await record.ExecuteNonQueryAsync(CancellationToken.None);
        }

        await tx.CommitAsync(CancellationToken.None);
        return result;
    }

    /// <summary>A new instance made from a backup (restore into a new instance): its row records the backup, with its event.</summary>
    public async Task RecordRestoredIntoAsync(long tenantId, Guid backupId, string reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                UPDATE tenant_databases SET restored_from_backup_id = @backup_id, restored_at = now(), updated_at = now()
                WHERE id = @id
                RETURNING db_server_id, instance_id
            )
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT db_server_id, instance_id, '{PoolEventNames.TenantRestored}', @reason, @actor FROM t
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("backup_id", backupId);
        cmd.Parameters.AddWithValue("reason", reason);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>A restore that did not happen (refused or failed): its event, the tenant row unchanged.</summary>
    public async Task RecordRestoreFailedAsync(long tenantId, Guid backupId, string error, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT db_server_id, instance_id, '{PoolEventNames.RestoreFailed}', 'backup ' || @backup_id || ': ' || @error, @actor
            FROM tenant_databases WHERE id = @id
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("backup_id", backupId.ToString());
        cmd.Parameters.AddWithValue("error", error);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<IReadOnlyList<TenantBackup>> ReadAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var rows = new List<TenantBackup>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(ToBackup(reader));
        }

        return rows;
    }

    private static TenantBackup ToBackup(DbDataReader r) => new()
    {
        Id = r.GetGuid(r.GetOrdinal("id")),
        InstanceId = r.GetGuid(r.GetOrdinal("instance_id")),
        TenantId = r.GetInt64(r.GetOrdinal("tenant_id")),
        DbServerId = r.GetInt64(r.GetOrdinal("db_server_id")),
        ServerVersion = r.IsDBNull(r.GetOrdinal("server_version")) ? null : r.GetString(r.GetOrdinal("server_version")),
        BlobName = r.GetString(r.GetOrdinal("blob_name")),
        SizeBytes = r.IsDBNull(r.GetOrdinal("size_bytes")) ? null : r.GetInt64(r.GetOrdinal("size_bytes")),
        Sha256 = r.IsDBNull(r.GetOrdinal("sha256")) ? null : r.GetString(r.GetOrdinal("sha256")),
        TableRows = r.IsDBNull(r.GetOrdinal("table_rows")) ? null : JsonSerializer.Deserialize<List<TableRows>>(r.GetString(r.GetOrdinal("table_rows")), Json),
        LargeObjects = r.IsDBNull(r.GetOrdinal("large_objects")) ? null : r.GetInt64(r.GetOrdinal("large_objects")),
        Status = r.GetString(r.GetOrdinal("status")),
        Kind = r.GetString(r.GetOrdinal("kind")),
        StartedAt = new DateTimeOffset(r.GetDateTime(r.GetOrdinal("started_at")), TimeSpan.Zero),
        FinishedAt = r.IsDBNull(r.GetOrdinal("finished_at")) ? null : new DateTimeOffset(r.GetDateTime(r.GetOrdinal("finished_at")), TimeSpan.Zero),
        ExpiresAt = r.IsDBNull(r.GetOrdinal("expires_at")) ? null : new DateTimeOffset(r.GetDateTime(r.GetOrdinal("expires_at")), TimeSpan.Zero),
        Error = r.IsDBNull(r.GetOrdinal("error")) ? null : r.GetString(r.GetOrdinal("error")),
    };
}
