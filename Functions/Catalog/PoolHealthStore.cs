using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// A pool's health and capacity counter as the sweep keeps them: which pools to probe, one probe's result recorded in
/// one statement, and <c>current_instances</c> reconciled with the live tenant rows (capacity drift).
/// </summary>
public sealed class PoolHealthStore(NpgsqlDataSource catalog)
{
    /// <summary>Pools the health sweep probes: every one that is not provisioning, deleting or deleted.</summary>
    public async Task<IReadOnlyList<Pool>> ListCheckableAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            $"SELECT * FROM db_servers WHERE status NOT IN ('{Words.Provisioning}', '{Words.Deleting}', '{Words.Deleted}') ORDER BY id");
        return await PoolStore.ReadPoolsAsync(cmd, ct);
    }

    /// <summary>
    /// Records one health probe in one statement: a success resets the failure count and makes the pool healthy; a
    /// failure counts, and the <paramref name="unhealthyAfter"/>-th in a row makes it unhealthy (out of placement).
    /// A change of health is a <c>health_changed</c> event. Null when the pool does not exist.
    /// </summary>
    public async Task<HealthRecord?> RecordHealthAsync(long id, bool ok, int? responseMs, int? databaseCount, string? version, string? error,
        int unhealthyAfter, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH before AS (
                SELECT id, health_status FROM db_servers WHERE id = @id FOR UPDATE
            ), changed AS (
                UPDATE db_servers s SET
                    last_health_check = now(),
                    last_response_ms = CASE WHEN @ok THEN @response_ms END,
                    database_count = CASE WHEN @ok THEN @database_count ELSE s.database_count END,
                    postgres_version = COALESCE(@version, s.postgres_version),
                    consecutive_health_failures = CASE WHEN @ok THEN 0 ELSE s.consecutive_health_failures + 1 END,
                    health_status = CASE
                        WHEN @ok THEN '{Words.Healthy}'
                        WHEN s.consecutive_health_failures + 1 >= @unhealthy_after THEN '{Words.Unhealthy}'
                        ELSE s.health_status END,
                    last_error = CASE WHEN @ok THEN s.last_error ELSE @error END
                FROM before b WHERE s.id = b.id
                RETURNING s.*
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT c.id, '{PoolEventNames.HealthChanged}', b.health_status, c.health_status, @reason, @actor
                FROM changed c JOIN before b ON b.id = c.id WHERE c.health_status <> b.health_status
            )
            SELECT c.*, b.health_status AS previous_health_status FROM changed c JOIN before b ON b.id = c.id
            """);
        var p = cmd.Parameters;
        p.AddWithValue("id", id);
        p.AddWithValue("ok", ok);
        p.AddWithValue("response_ms", NpgsqlTypes.NpgsqlDbType.Integer, (object?)responseMs ?? DBNull.Value);
        p.AddWithValue("database_count", NpgsqlTypes.NpgsqlDbType.Integer, (object?)databaseCount ?? DBNull.Value);
        p.AddWithValue("version", NpgsqlTypes.NpgsqlDbType.Text, (object?)version ?? DBNull.Value);
        p.AddWithValue("error", NpgsqlTypes.NpgsqlDbType.Text, (object?)error ?? DBNull.Value);
        p.AddWithValue("reason", ok ? $"health probe answered in {responseMs} ms" : error ?? "health probe failed");
        p.AddWithValue("unhealthy_after", unhealthyAfter);
        p.AddWithValue("actor", actor);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new HealthRecord(reader.ToPool(), Vocabulary.Parse<HealthStatus>(reader.GetString(reader.GetOrdinal("previous_health_status"))))
            : null;
    }

    /// <summary>
    /// Sets <c>current_instances</c> to the pool's live tenant rows (creating, ready, released), counted under the pool's
    /// row lock so no allocation is half-counted, flipping active ⇄ full to match, and records the drift as a
    /// <c>capacity_reconciled</c> event. Null when there was nothing to fix (or no such pool).
    /// </summary>
    public async Task<CapacityDrift?> ReconcileCapacityAsync(long id, string actor, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
        if (await PoolStore.LockAsync(conn, tx, id, ct) is not { } locked)
        {
            return null;
        }

        var live = await PoolStore.CountLiveTenantsAsync(conn, tx, id, ct);
        if (live == locked.CurrentInstances)
        {
            return null;
        }

        var corrected = Math.Min(live, locked.MaxInstances);
        var status = locked.Status switch
        {
            PoolStatus.Active when corrected >= locked.MaxInstances => PoolStatus.Full,
            PoolStatus.Full when corrected < locked.MaxInstances => PoolStatus.Active,
            var unchanged => unchanged,
        };
        var reason = $"current_instances {locked.CurrentInstances} -> {corrected} (live tenant databases: {live})";
        await using var cmd = new NpgsqlCommand($"""
            WITH changed AS (
                UPDATE db_servers SET current_instances = @corrected, status = @status, updated_at = now() WHERE id = @id RETURNING id
            )
            INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
            SELECT id, '{PoolEventNames.CapacityReconciled}', NULL, NULL, @reason, @actor FROM changed
            UNION ALL
            SELECT id, '{PoolEventNames.StatusChanged}', @from_status, @status, 'capacity reconciled', @actor FROM changed WHERE @from_status <> @status
            """, conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("corrected", corrected);
        cmd.Parameters.AddWithValue("status", status.ToSql());
        cmd.Parameters.AddWithValue("from_status", locked.Status.ToSql());
        cmd.Parameters.AddWithValue("reason", reason);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return new CapacityDrift(locked.CurrentInstances, corrected, live, locked.Status, status);
    }
}

/// <summary>A pool after a health probe was recorded, and its health before.</summary>
public sealed record HealthRecord(Pool Pool, HealthStatus PreviousHealth);

/// <summary>A corrected capacity counter: what it said, what it says now, the live tenant rows counted, and the status flip if any.</summary>
public sealed record CapacityDrift(int Recorded, int Corrected, int LiveTenants, PoolStatus FromStatus, PoolStatus ToStatus);
