using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// Placement: which pools may take a tenant now, in which order a <see cref="PlacementStrategy"/> tries them, and the one
/// statement that reserves a slot on the first (<see cref="TenantStore.ReserveAsync(ValidAllocationRequest, string, string, bool, PlacementStrategy, bool, InstanceLock?, CancellationToken, IReadOnlyCollection{long}?)"/>).
/// </summary>
internal static class Placement
{
    /// <summary>A pool in placement: active, and healthy or not yet probed.</summary>
    public static readonly string InService = $"status = '{Words.Active}' AND health_status IN ('{Words.Healthy}', '{Words.Unknown}')";

    /// <summary>
    /// A pool with room: a free slot, and a load score (migration 0013: the largest of its tenant, storage and connection
    /// shares) below 1, so a pool is full on whichever dimension fills first.
    /// </summary>
    public const string HasRoom = "current_instances < max_instances AND load_score < 1";

    /// <summary>The pools a tenant may go to: its own dedicated server, or the shared pools.</summary>
    public static string Target(bool dedicated) => dedicated
        ? "server_type = 'dedicated' AND dedicated_to_instance_id = @instance_id"
        : "server_type = 'shared'";

    /// <summary>
    /// The strategy as an ORDER BY over the eligible pools: lower priority first, then the highest load score below full
    /// (fill-first) or the lowest (spread). Each is the key of a partial index (migration 0013) whose predicate is
    /// <see cref="Target"/> (shared), <see cref="InService"/> and <see cref="HasRoom"/>: change them together.
    /// </summary>
    public static string OrderBy(PlacementStrategy strategy) => strategy switch
    {
        PlacementStrategy.Spread => "priority, load_score, id",
        _ => "priority, load_score DESC, id",
    };

    /// <summary>
    /// One statement, one transaction: (try-lock the instance,) lock an eligible pool, take a slot (flipping it to full at the
    /// limit), claim one of its warm-stock databases if it has one (the stock row goes, its name moves onto the tenant row),
    /// insert the tenant row as creating, and record the flip.
    /// </summary>
    public static async Task<Allocation?> ReserveAsync(NpgsqlDataSource catalog, ValidAllocationRequest request, string dbName, string dbUser,
        bool dedicated, PlacementStrategy strategy, bool skipLocked, InstanceLock? instanceLock, IReadOnlyCollection<long>? avoid, CancellationToken ct)
    {
        var locked = instanceLock is null ? "true" : "(SELECT held FROM instance_lock)";
        var sql = $"""
            WITH instance_lock AS MATERIALIZED (
                SELECT {(instanceLock is null ? "true" : InstanceLock.TryLockSql)} AS held
            ), candidate AS (
                SELECT id FROM db_servers
                WHERE {locked} AND {Target(dedicated)} AND {InService}
                  AND {HasRoom} AND NOT (id = ANY(@avoid))
                ORDER BY {OrderBy(strategy)}
                LIMIT 1
                FOR UPDATE {(skipLocked ? "SKIP LOCKED" : "")}
            ), reserved AS (
                UPDATE db_servers s
                SET current_instances = s.current_instances + 1,
                    status = CASE WHEN s.current_instances + 1 >= s.max_instances THEN '{Words.Full}' ELSE s.status END,
                    updated_at = now()
                FROM candidate c WHERE s.id = c.id
                RETURNING s.*
            ), stock AS (
                SELECT w.id FROM warm_stock w JOIN candidate c ON w.db_server_id = c.id
                WHERE w.status = '{WarmStockStore.Ready}'
                ORDER BY w.id
                LIMIT 1
                FOR UPDATE OF w SKIP LOCKED
            ), claimed AS (
                DELETE FROM warm_stock w USING stock s WHERE w.id = s.id
                RETURNING w.name
            ), t AS (
                INSERT INTO tenant_databases (instance_id, customer_id, plan_tier, db_server_id, db_name, db_user, status, stock_name, callback_url)
                SELECT @instance_id, @customer_id, @plan_tier, id, @db_name, @db_user, '{Words.Creating}', (SELECT name FROM claimed), @callback_url
                FROM reserved
                RETURNING *
            ), created_event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, to_status, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantStatusChanged}', '{Words.Creating}', @actor FROM t
            ), full_event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT id, @instance_id, '{PoolEventNames.StatusChanged}', '{Words.Active}', '{Words.Full}', 'capacity reached', @actor FROM reserved WHERE status = '{Words.Full}'
            )
            SELECT l.held AS instance_locked, r.* FROM instance_lock l LEFT JOIN (SELECT s.*, {TenantStore.TenantColumns} FROM reserved s, t) r ON true
            """;
        await using var cmd = instanceLock?.Command(sql) ?? catalog.CreateCommand(sql);
        cmd.Parameters.AddWithValue("instance_id", request.InstanceId);
        cmd.Parameters.AddWithValue("customer_id", request.CustomerId);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("callback_url", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = request.CallbackUrl });
        cmd.Parameters.AddWithValue("plan_tier", request.PlanTier);
        cmd.Parameters.AddWithValue("db_name", dbName);
        cmd.Parameters.AddWithValue("db_user", dbUser);
        cmd.Parameters.AddWithValue("actor", AuditActor.Current);
        cmd.Parameters.AddWithValue("avoid", (avoid ?? []).ToArray());
        var heldBefore = instanceLock?.Held ?? false;
        if (instanceLock is not null)
        {
            // Until the answer says otherwise the lock may be held (a failing statement still keeps a session lock it took).
            instanceLock.Held = true;
        }

        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        if (instanceLock is not null)
        {
            instanceLock.Held = heldBefore || reader.GetBoolean(reader.GetOrdinal("instance_locked"));
        }

        return reader.IsDBNull(reader.GetOrdinal("id")) ? null : new Allocation(reader.ToPool(), reader.ToTenant("t_"));
    }

    /// <summary>
    /// The plan PostgreSQL chooses for the candidate pool of the reserve statement above (its WHERE and ORDER BY, shared
    /// pools, nothing avoided), as <c>EXPLAIN</c> text; with <paramref name="analyze"/> it runs, in a transaction rolled back.
    /// </summary>
    public static async Task<string> ExplainCandidateAsync(NpgsqlDataSource catalog, PlacementStrategy strategy, bool analyze, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var cmd = new NpgsqlCommand($"""
            EXPLAIN ({(analyze ? "ANALYZE, BUFFERS, " : "")}COSTS false)
            SELECT id FROM db_servers
            WHERE {Target(dedicated: false)} AND {InService}
              AND {HasRoom} AND NOT (id = ANY(@avoid))
            ORDER BY {OrderBy(strategy)}
            LIMIT 1
            FOR UPDATE SKIP LOCKED
            """, conn, tx);
        cmd.Parameters.AddWithValue("avoid", Array.Empty<long>());
        var plan = new List<string>();
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                plan.Add(reader.GetString(0));
            }
        }

        await tx.RollbackAsync(ct);
        return string.Join('\n', plan);
    }
}
