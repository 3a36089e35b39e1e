using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A row of <c>tenant_moves</c>.</summary>
public sealed record TenantMove(Guid Id, long TenantId, Guid InstanceId, long SourcePoolId, long TargetPoolId, string Status,
    IReadOnlyList<string> FrozenLogins, bool SourceOpen)
{
    public const string Moving = "moving";
    public const string Switched = "switched";
    public const string Moved = "moved";
    public const string Failed = "failed";
    public const string SourcePurged = "source_purged";
}

/// <summary>What beginning a move came to: the target's slot reserved, or why there is none.</summary>
public abstract record MoveBegin
{
    public sealed record Begun(TenantMove Move, Pool Target) : MoveBegin;
    public sealed record NoTarget(string Detail) : MoveBegin;
    public sealed record InFlight : MoveBegin;
}

/// <summary>A kept source copy whose retention ended: the pool it is on and the tenant's names there.</summary>
public sealed record SourceCopy(Guid MoveId, Guid InstanceId, Pool Pool, string DbName, string? OwnerRole, string? LoginRole);

/// <summary>
/// The catalog side of moves (DESIGN.md §10, <c>tenant_moves</c>): the target's slot reserved with the move's row, the switch of
/// the tenant row (pool, generation) in the transaction that holds the row, the failure that gives the slot back.
/// </summary>
public sealed class MoveStore(NpgsqlDataSource catalog)
{
    /// <summary>
    /// One statement: the target (the given pool, or the in-service pool of the tenant's kind with the most free slots) locked
    /// and a slot taken there (flipping it to full at the limit), the move's row inserted as <c>moving</c>, the events. A
    /// target is never the source; a pool still keeping a copy of this tenant from an earlier move may be (the move drops that copy).
    /// </summary>
    public async Task<MoveBegin> BeginAsync(Guid moveId, TenantDatabase tenant, long? targetPoolId, bool dedicated, string reason, string actor,
        CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH candidate AS (
                SELECT s.id FROM db_servers s
                WHERE {Placement.Target(dedicated)} AND {Placement.InService}
                  AND s.current_instances < s.max_instances AND s.id <> @source
                  AND (@target::bigint IS NULL OR s.id = @target)
                  AND NOT EXISTS (SELECT 1 FROM tenant_moves m WHERE m.tenant_id = @tenant_id AND m.status IN ('{TenantMove.Moving}', '{TenantMove.Switched}'))
                ORDER BY s.max_instances - s.current_instances DESC, s.priority, s.id
                LIMIT 1
                FOR UPDATE
            ), reserved AS (
                UPDATE db_servers s
                SET current_instances = s.current_instances + 1,
                    status = CASE WHEN s.current_instances + 1 >= s.max_instances THEN '{Words.Full}' ELSE s.status END,
                    updated_at = now()
                FROM candidate c WHERE s.id = c.id
                RETURNING s.*
            ), m AS (
                INSERT INTO tenant_moves (id, tenant_id, instance_id, source_pool_id, target_pool_id, status, reason)
                SELECT @id, @tenant_id, @instance_id, @source, id, '{TenantMove.Moving}', @reason FROM reserved
                RETURNING target_pool_id
            ), events AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT target_pool_id, @instance_id, '{PoolEventNames.TenantMoveStarted}', @reason, @actor FROM m
            ), full_event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT id, @instance_id, '{PoolEventNames.StatusChanged}', '{Words.Active}', '{Words.Full}', 'capacity reached', @actor
                FROM reserved WHERE status = '{Words.Full}'
            )
            SELECT * FROM reserved
            """);
        cmd.Parameters.AddWithValue("id", moveId);
        cmd.Parameters.AddWithValue("tenant_id", tenant.Id);
        cmd.Parameters.AddWithValue("instance_id", tenant.InstanceId);
        cmd.Parameters.AddWithValue("source", tenant.DbServerId);
        cmd.Parameters.Add(new NpgsqlParameter<long?>("target", NpgsqlTypes.NpgsqlDbType.Bigint) { TypedValue = targetPoolId });
        cmd.Parameters.AddWithValue("reason", reason);
        cmd.Parameters.AddWithValue("actor", actor);
        try
        {
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct))
            {
                var target = reader.ToPool();
                return new MoveBegin.Begun(new TenantMove(moveId, tenant.Id, tenant.InstanceId, tenant.DbServerId, target.Id, TenantMove.Moving, [], true), target);
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return new MoveBegin.InFlight();
        }

        if (await FindInFlightAsync(tenant.Id, ct) is not null)
        {
            return new MoveBegin.InFlight();
        }

        return new MoveBegin.NoTarget(targetPoolId is null
            ? "No other in-service pool of this tenant's kind has a free slot."
            : "The target pool is not an in-service pool of this tenant's kind with a free slot.");
    }

    /// <summary>This tenant's move in flight (<c>moving</c> or <c>switched</c>), if any.</summary>
    public Task<TenantMove?> FindInFlightAsync(long tenantId, CancellationToken ct) =>
        FindAsync($"tenant_id = @key AND status IN ('{TenantMove.Moving}', '{TenantMove.Switched}')", tenantId, ct);

    public Task<TenantMove?> FindAsync(Guid moveId, CancellationToken ct) => FindAsync("id = @key", moveId, ct);

    /// <summary>A transaction holding the tenant row (ready or released): no rotation, release or restore meanwhile. Null when the row is in neither state.</summary>
    public async Task<(NpgsqlConnection Conn, NpgsqlTransaction Tx)?> LockTenantAsync(long tenantId, CancellationToken ct)
    {
        var conn = await catalog.OpenConnectionAsync(ct);
        try
        {
            var tx = await conn.BeginTransactionAsync(ct);
            await using var find = new NpgsqlCommand(
                $"SELECT 1 FROM tenant_databases WHERE id = @id AND status IN ('{Words.Ready}', '{Words.Released}') FOR UPDATE", conn, tx);
            find.Parameters.AddWithValue("id", tenantId);
            if (await find.ExecuteScalarAsync(ct) is not null)
            {
                return (conn, tx);
            }

            await tx.DisposeAsync();
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }

        await conn.DisposeAsync();
        return null;
    }

    /// <summary>
    /// The switch, in the transaction that holds the tenant row: the row points at the target (generation + 1), the source's
    /// slot goes back (full → active), the move is <c>switched</c> with the logins to open there, the events.
    /// </summary>
    public static async Task SwitchAsync(NpgsqlConnection conn, NpgsqlTransaction tx, TenantMove move, IReadOnlyList<string> frozen, bool sourceOpen,
        string summary, string actor, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"""
            WITH mv AS (
                UPDATE tenant_moves SET status = '{TenantMove.Switched}', frozen_logins = @frozen, source_open = @source_open
                WHERE id = @move_id AND status = '{TenantMove.Moving}'
                RETURNING tenant_id, source_pool_id, target_pool_id
            ), t AS (
                UPDATE tenant_databases d SET db_server_id = mv.target_pool_id, generation = d.generation + 1, updated_at = now()
                FROM mv WHERE d.id = mv.tenant_id AND d.db_server_id = mv.source_pool_id
                RETURNING mv.source_pool_id AS db_server_id, d.instance_id, mv.target_pool_id
            ), {TenantStore.SlotBackSql}, events AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantMovedOut}', NULL, NULL, @summary, @actor FROM t
                UNION ALL
                SELECT target_pool_id, instance_id, '{PoolEventNames.TenantMovedIn}', NULL, NULL, @summary, @actor FROM t
                UNION ALL
                {TenantStore.SlotBackEventSql("'capacity released'")}
            )
            SELECT count(*) FROM t
            """, conn, tx);
        cmd.Parameters.AddWithValue("move_id", move.Id);
        cmd.Parameters.AddWithValue("frozen", frozen.ToArray());
        cmd.Parameters.AddWithValue("source_open", sourceOpen);
        cmd.Parameters.AddWithValue("summary", summary);
        cmd.Parameters.AddWithValue("actor", actor);
        if ((long)(await cmd.ExecuteScalarAsync(ct))! != 1)
        {
            throw new InvalidOperationException("The move's row or the tenant row changed meanwhile; nothing was switched.");
        }
    }

    /// <summary>Open on the target: the move is done, its downtime recorded, the source copy kept until <paramref name="purgeAfter"/>.</summary>
    public async Task MarkMovedAsync(Guid moveId, double downtimeMs, int tables, long rows, DateTimeOffset purgeAfter, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH mv AS (
                UPDATE tenant_moves SET status = '{TenantMove.Moved}', finished_at = now(), downtime_ms = @downtime, tables = @tables, rows = @rows,
                    source_purge_after = @purge_after
                WHERE id = @id AND status = '{TenantMove.Switched}'
                RETURNING target_pool_id, instance_id
            )
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT target_pool_id, instance_id, '{PoolEventNames.TenantMoveCompleted}',
                   format('downtime %s ms (freeze to unfreeze); %s tables, %s rows verified', round(@downtime::numeric), @tables, @rows), @actor
            FROM mv
            """);
        cmd.Parameters.AddWithValue("id", moveId);
        cmd.Parameters.AddWithValue("downtime", downtimeMs);
        cmd.Parameters.AddWithValue("tables", tables);
        cmd.Parameters.AddWithValue("rows", rows);
        cmd.Parameters.AddWithValue("purge_after", purgeAfter);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>A move rolled back before its switch: <c>failed</c>, the target's slot back (full → active), the event.</summary>
    public async Task<bool> FailAsync(Guid moveId, string error, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                UPDATE tenant_moves SET status = '{TenantMove.Failed}', finished_at = now(), error = @error
                WHERE id = @id AND status = '{TenantMove.Moving}'
                RETURNING target_pool_id AS db_server_id, instance_id, source_pool_id
            ), {TenantStore.SlotBackSql}, events AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT source_pool_id, instance_id, '{PoolEventNames.TenantMoveFailed}', NULL, NULL, @error, @actor FROM t
                UNION ALL
                {TenantStore.SlotBackEventSql("'capacity released'")}
            )
            SELECT count(*) FROM t
            """);
        cmd.Parameters.AddWithValue("id", moveId);
        cmd.Parameters.AddWithValue("error", error);
        cmd.Parameters.AddWithValue("actor", actor);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>Kept source copies past their retention, on pools where no live row of their instance is (never a live tenant's database).</summary>
    public async Task<IReadOnlyList<SourceCopy>> ListSourceCopiesDueAsync(DateTimeOffset now, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT m.id AS move_id, m.instance_id AS move_instance_id, t.db_name AS move_db_name, t.owner_role AS move_owner_role,
                   t.login_role AS move_login_role, s.*
            FROM tenant_moves m JOIN db_servers s ON s.id = m.source_pool_id JOIN tenant_databases t ON t.id = m.tenant_id
            WHERE m.status = '{TenantMove.Moved}' AND m.source_purge_after < @now AND s.status <> '{Words.Deleted}'
              AND NOT EXISTS (SELECT 1 FROM tenant_databases t WHERE t.instance_id = m.instance_id AND t.db_server_id = m.source_pool_id
                              AND t.status IN {LiveStatuses.Sql})
            ORDER BY m.source_purge_after LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("now", now);
        cmd.Parameters.AddWithValue("limit", limit);
        var copies = new List<SourceCopy>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            copies.Add(new SourceCopy(reader.GetGuid(reader.GetOrdinal("move_id")), reader.GetGuid(reader.GetOrdinal("move_instance_id")), reader.ToPool(),
                reader.GetString(reader.GetOrdinal("move_db_name")), NullableString(reader, "move_owner_role"), NullableString(reader, "move_login_role")));
        }

        return copies;
    }

    public async Task MarkSourcePurgedAsync(Guid moveId, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH mv AS (
                UPDATE tenant_moves SET status = '{TenantMove.SourcePurged}' WHERE id = @id AND status = '{TenantMove.Moved}'
                RETURNING source_pool_id, instance_id
            )
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT source_pool_id, instance_id, '{PoolEventNames.MovedCopyPurged}', 'the copy kept by a move: its retention ended', @actor FROM mv
            """);
        cmd.Parameters.AddWithValue("id", moveId);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The copy an earlier move of the instance kept on <paramref name="poolId"/> was dropped (a move back to that pool).</summary>
    public async Task MarkCopiesPurgedAsync(Guid instanceId, long poolId, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH mv AS (
                UPDATE tenant_moves SET status = '{TenantMove.SourcePurged}'
                WHERE instance_id = @instance_id AND source_pool_id = @pool AND status = '{TenantMove.Moved}'
                RETURNING source_pool_id, instance_id
            )
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT source_pool_id, instance_id, '{PoolEventNames.MovedCopyPurged}', 'the copy kept by a move: the tenant moves back here', @actor FROM mv
            """);
        cmd.Parameters.AddWithValue("instance_id", instanceId);
        cmd.Parameters.AddWithValue("pool", poolId);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The instance's own dedicated server when it is in service with a free slot, else null.</summary>
    public async Task<Pool?> FindDedicatedTargetAsync(Guid instanceId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT * FROM db_servers
            WHERE {Placement.Target(dedicated: true)} AND {Placement.InService} AND current_instances < max_instances
            ORDER BY id LIMIT 1
            """);
        cmd.Parameters.AddWithValue("instance_id", instanceId);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? reader.ToPool() : null;
    }

    /// <summary>Moves in flight (<c>moving</c> or <c>switched</c>) started before <paramref name="startedBefore"/>, oldest first.</summary>
    public async Task<IReadOnlyList<TenantMove>> ListInFlightAsync(DateTimeOffset startedBefore, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT id, tenant_id, instance_id, source_pool_id, target_pool_id, status, coalesce(frozen_logins, ARRAY[]::text[]), coalesce(source_open, true)
            FROM tenant_moves WHERE status IN ('{TenantMove.Moving}', '{TenantMove.Switched}') AND started_at < @before
            ORDER BY started_at LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("before", startedBefore);
        cmd.Parameters.AddWithValue("limit", limit);
        var found = new List<TenantMove>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            found.Add(new TenantMove(reader.GetGuid(0), reader.GetInt64(1), reader.GetGuid(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5),
                reader.GetFieldValue<string[]>(6), reader.GetBoolean(7)));
        }

        return found;
    }

    /// <summary>The instances with a ready or released database on the pool and no move in flight: what an evacuation moves.</summary>
    public async Task<IReadOnlyList<Guid>> ListMovableAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT t.instance_id FROM tenant_databases t
            WHERE t.db_server_id = @pool AND t.status IN ('{Words.Ready}', '{Words.Released}')
            ORDER BY t.id
            """);
        cmd.Parameters.AddWithValue("pool", poolId);
        var instances = new List<Guid>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            instances.Add(reader.GetGuid(0));
        }

        return instances;
    }

    private static string? NullableString(NpgsqlDataReader reader, string column) =>
        reader.IsDBNull(reader.GetOrdinal(column)) ? null : reader.GetString(reader.GetOrdinal(column));

    // The conditions are this class's own constants; the key travels as a parameter.
    private async Task<TenantMove?> FindAsync<TKey>(string condition, TKey key, CancellationToken ct) where TKey : notnull
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT id, tenant_id, instance_id, source_pool_id, target_pool_id, status, coalesce(frozen_logins, ARRAY[]::text[]), coalesce(source_open, true)
            FROM tenant_moves WHERE {condition}
            """);
        cmd.Parameters.AddWithValue("key", key);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new TenantMove(reader.GetGuid(0), reader.GetInt64(1), reader.GetGuid(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5),
                reader.GetFieldValue<string[]>(6), reader.GetBoolean(7))
            : null;
    }
}
