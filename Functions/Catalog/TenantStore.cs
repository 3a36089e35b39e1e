using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>The <c>tenant_databases</c> table and the capacity counters that move with it.</summary>
public sealed class TenantStore(NpgsqlDataSource catalog)
{
    public const string LiveInstanceIndex = "ux_tenant_databases_live_instance";

    /// <summary>The tenant row's columns prefixed <c>t_</c>, to read next to a pool's with <c>ToTenant("t_")</c>.</summary>
    internal const string TenantColumns = """
        t.id AS t_id, t.instance_id AS t_instance_id, t.customer_id AS t_customer_id, t.plan_tier AS t_plan_tier,
        t.db_server_id AS t_db_server_id, t.db_name AS t_db_name, t.db_user AS t_db_user, t.status AS t_status,
        t.last_error AS t_last_error, t.created_at AS t_created_at, t.ready_at AS t_ready_at, t.released_at AS t_released_at, t.stock_name AS t_stock_name,
        t.generation AS t_generation, t.owner_role AS t_owner_role, t.login_role AS t_login_role, t.adopted_at AS t_adopted_at, t.callback_url AS t_callback_url,
        t.quota_state AS t_quota_state
        """;

    /// <summary>A connection for the instance's <see cref="InstanceLock"/>; nothing is locked yet.</summary>
    public Task<InstanceLock> OpenInstanceLockAsync(Guid instanceId, CancellationToken ct) => InstanceLock.OpenAsync(catalog, instanceId, ct);

    /// <summary>The instance's live row (creating, ready or released) with its pool, if any.</summary>
    public async Task<Allocation?> FindLiveAsync(Guid instanceId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT s.*, {TenantColumns}
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE t.instance_id = @instance_id AND t.status IN {LiveStatuses.Sql}
            """);
        cmd.Parameters.AddWithValue("instance_id", instanceId);
        return (await ReadAsync(cmd, ct)).SingleOrDefault();
    }

    /// <summary>
    /// One statement, one transaction: lock an eligible pool, take a slot (flipping it to full at the limit), insert the
    /// tenant row as creating. With <paramref name="skipLocked"/> a pool locked by another allocation is passed over;
    /// without it the statement waits for the lock, so "nothing returned" then means no eligible pool has room.
    /// </summary>
    /// <exception cref="PostgresException">23505 on <see cref="LiveInstanceIndex"/> when the instance already has a live row.</exception>
    public Task<Allocation?> ReserveAsync(ValidAllocationRequest request, string dbName, string dbUser, bool dedicated,
        PlacementStrategy strategy, bool skipLocked, CancellationToken ct) =>
        ReserveAsync(request, dbName, dbUser, dedicated, strategy, skipLocked, instanceLock: null, ct);

    /// <summary>
    /// <see cref="ReserveAsync(ValidAllocationRequest, string, string, bool, PlacementStrategy, bool, CancellationToken)"/> that
    /// first try-locks the instance on <paramref name="instanceLock"/>'s connection, in the same statement: nothing is reserved
    /// unless the lock is held (<see cref="InstanceLock.Held"/> says which), so only one worker at a time makes an instance's objects.
    /// </summary>
    public Task<Allocation?> ReserveAsync(ValidAllocationRequest request, string dbName, string dbUser, bool dedicated,
        PlacementStrategy strategy, bool skipLocked, InstanceLock? instanceLock, CancellationToken ct, IReadOnlyCollection<long>? avoid = null) =>
        Placement.ReserveAsync(catalog, request, dbName, dbUser, dedicated, strategy, skipLocked, instanceLock, avoid, ct);

    /// <summary>How PostgreSQL finds the shared pool a reservation takes under <paramref name="strategy"/>: its <c>EXPLAIN</c> text.</summary>
    public Task<string> ExplainPlacementAsync(PlacementStrategy strategy, bool analyze, CancellationToken ct) =>
        Placement.ExplainCandidateAsync(catalog, strategy, analyze, ct);

    /// <summary>
    /// The row is ready; on <paramref name="instanceLock"/>'s connection, the same round trip also releases the instance lock.
    /// Null when the row had already left <c>creating</c>. <paramref name="firstPasswordCiphertext"/> (the first password sealed
    /// for the handoff; null: none kept) is recorded by the same statement, so a ready row always has its password somewhere durable.
    /// </summary>
    public async Task<TenantDatabase?> MarkReadyAsync(long tenantId, string? firstPasswordCiphertext, InstanceLock instanceLock, CancellationToken ct)
    {
        await using var cmd = instanceLock.Command(MarkReadySql + ";\n" + InstanceLock.UnlockSql);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("first_password", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = firstPasswordCiphertext });
        cmd.Parameters.AddWithValue("actor", AuditActor.Current);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var ready = await reader.ReadAsync(ct) ? reader.ToTenant() : null;
        await reader.NextResultAsync(ct);
        instanceLock.Held = false;
        return ready;
    }

    private static readonly string MarkReadySql = $"""
        WITH t AS (
            UPDATE tenant_databases SET status = '{Words.Ready}', ready_at = now(), updated_at = now(), first_password_encrypted = @first_password
            WHERE id = @id AND status = '{Words.Creating}'
            RETURNING *
        ), event AS (
            INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, actor)
            SELECT db_server_id, instance_id, '{PoolEventNames.TenantStatusChanged}', '{Words.Creating}', '{Words.Ready}', @actor FROM t
        )
        SELECT * FROM t
        """;

    /// <summary>
    /// Undoes a reservation whose DDL failed: the row becomes failed, the pool gets its slot back (full → active),
    /// and the pool's trail records why. True when this call moved the row out of <c>creating</c>: only then may the caller
    /// drop the objects (a row that turned ready meanwhile owns them), and mark them gone with <see cref="MarkCleanedAsync"/>.
    /// </summary>
    public async Task<bool> CompensateAsync(long tenantId, string reason, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                UPDATE tenant_databases SET status = '{Words.Failed}', last_error = @reason, updated_at = now()
                WHERE id = @id AND status = '{Words.Creating}'
                RETURNING db_server_id, instance_id
            ), {SlotBack}, events AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT t.db_server_id, t.instance_id, '{PoolEventNames.AllocationCompensated}', '{Words.Creating}', '{Words.Failed}', @reason, @actor FROM t
                UNION ALL
                {SlotBackEvent("'capacity released'")}
            )
            SELECT count(*) FROM t
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("reason", reason);
        cmd.Parameters.AddWithValue("actor", AuditActor.Current);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>
    /// The row released, only while it is ready on <paramref name="poolId"/> (the pool whose logins the caller refused): null when
    /// it is not (released already, or moved to another pool meanwhile).
    /// </summary>
    public async Task<TenantDatabase?> MarkReleasedAsync(long tenantId, long poolId, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                UPDATE tenant_databases SET status = '{Words.Released}', released_at = now(), updated_at = now(), first_password_encrypted = NULL
                WHERE id = @id AND status = '{Words.Ready}' AND db_server_id = @pool
                RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantStatusChanged}', '{Words.Ready}', '{Words.Released}', @actor FROM t
            )
            SELECT * FROM t
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("pool", poolId);
        cmd.Parameters.AddWithValue("actor", actor);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? reader.ToTenant() : null;
    }

    /// <summary>The released tenant's database is gone: the row becomes dropped and the pool gets its slot back.</summary>
    public async Task MarkDroppedAsync(long tenantId, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                UPDATE tenant_databases SET status = '{Words.Dropped}', dropped_at = now(), cleaned_at = now(), updated_at = now()
                WHERE id = @id AND status = '{Words.Released}'
                RETURNING db_server_id, instance_id
            ), {SlotBack}, events AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT t.db_server_id, t.instance_id, '{PoolEventNames.TenantStatusChanged}', '{Words.Released}', '{Words.Dropped}', NULL, @actor FROM t
                UNION ALL
                {SlotBackEvent("NULL")}
            )
            SELECT count(*) FROM t
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteScalarAsync(ct);
    }

    /// <summary>Released tenants whose retention ended, with their pools.</summary>
    public Task<IReadOnlyList<Allocation>> ListPurgeableAsync(DateTimeOffset releasedBefore, int limit, CancellationToken ct) =>
        ListAsync($"t.status = '{Words.Released}' AND t.released_at < @before", "t.released_at", releasedBefore, limit, ct);

    /// <summary>Allocations still <c>creating</c> long after they began: the allocator stopped mid-way (a crash, a kill).</summary>
    public Task<IReadOnlyList<Allocation>> ListStaleCreatingAsync(DateTimeOffset createdBefore, int limit, CancellationToken ct) =>
        ListAsync($"t.status = '{Words.Creating}' AND t.created_at < @before", "t.created_at", createdBefore, limit, ct);

    /// <summary>Failed allocations whose objects on the server could not be confirmed gone (the server was down).</summary>
    public Task<IReadOnlyList<Allocation>> ListUncleanedFailuresAsync(int limit, CancellationToken ct) =>
        ListAsync($"t.status = '{Words.Failed}' AND t.cleaned_at IS NULL", "t.updated_at", null, limit, ct);

    /// <summary>The failed allocation's objects are known gone from its server.</summary>
    public async Task MarkCleanedAsync(long tenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"UPDATE tenant_databases SET cleaned_at = now() WHERE id = @id AND status = '{Words.Failed}'");
        cmd.Parameters.AddWithValue("id", tenantId);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Settles a failed allocation's leftover when a live row of the same instance now lives on the same server: the objects
    /// of that name are the live tenant's, so nothing is dropped. Checked and recorded in one statement; false when there is
    /// no such live row (the leftover is garbage and may be dropped, under the instance's lock).
    /// </summary>
    public async Task<bool> SettleLeftoverOfLiveTenantAsync(long failedTenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH f AS (
                UPDATE tenant_databases f SET cleaned_at = now(), updated_at = now()
                WHERE f.id = @id AND f.status = '{Words.Failed}' AND f.cleaned_at IS NULL
                  AND EXISTS (SELECT 1 FROM tenant_databases l
                              WHERE l.instance_id = f.instance_id AND l.db_server_id = f.db_server_id AND l.status IN {LiveStatuses.Sql})
                RETURNING f.db_server_id, f.instance_id
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.LeftoverSettled}', 'the objects of that name belong to the live tenant; nothing dropped', @actor FROM f
            )
            SELECT count(*) FROM f
            """);
        cmd.Parameters.AddWithValue("id", failedTenantId);
        cmd.Parameters.AddWithValue("actor", AuditActor.Current);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>
    /// "Give the slot back", as CTEs after a CTE <c>t</c> that returns the freed row's <c>db_server_id</c>: <c>before</c> holds the
    /// pool's status, <c>p</c> takes one off <c>current_instances</c> and moves full → active. Pair with <see cref="SlotBackEvent"/>.
    /// </summary>
    internal static string SlotBackSql => SlotBack;

    internal static string SlotBackEventSql(string reasonSql) => SlotBackEvent(reasonSql);

    private static readonly string SlotBack = $"""
        before AS (
                SELECT s.id, s.status FROM db_servers s JOIN t ON t.db_server_id = s.id
            ), p AS (
                UPDATE db_servers s SET current_instances = s.current_instances - 1,
                    status = CASE WHEN s.status = '{Words.Full}' THEN '{Words.Active}' ELSE s.status END, updated_at = now()
                FROM t WHERE s.id = t.db_server_id
                RETURNING s.id, s.status
            )
        """;

    /// <summary>The <c>status_changed</c> rows (for <c>pool_events</c>) of a pool that <see cref="SlotBack"/> moved out of full.</summary>
    private static string SlotBackEvent(string reasonSql) => $"""
        SELECT p.id, NULL, '{PoolEventNames.StatusChanged}', b.status, p.status, {reasonSql}, @actor
                        FROM p JOIN before b ON b.id = p.id WHERE b.status <> p.status
        """;

    // The conditions are this class's own constants; values travel only as parameters.
    private async Task<IReadOnlyList<Allocation>> ListAsync(string condition, string orderBy, DateTimeOffset? before, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT s.*, {TenantColumns}
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE {condition}
            ORDER BY {orderBy} LIMIT @limit
            """);
        if (before is { } cutoff)
        {
            cmd.Parameters.AddWithValue("before", cutoff);
        }

        cmd.Parameters.AddWithValue("limit", limit);
        return await ReadAsync(cmd, ct);
    }

    private static async Task<IReadOnlyList<Allocation>> ReadAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var rows = new List<Allocation>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(new Allocation(reader.ToPool(), reader.ToTenant("t_")));
        }

        return rows;
    }
}
