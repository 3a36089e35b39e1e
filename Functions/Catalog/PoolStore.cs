using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// The <c>db_servers</c> table's rows and their lifecycle: insert, look-up, status transitions (with their audit events)
/// and the request path's failure count. Health probes and the capacity counter: <see cref="PoolHealthStore"/>; pages,
/// counts and lists for operators and the cleanup: <see cref="PoolQueries"/>.
/// </summary>
public sealed class PoolStore(NpgsqlDataSource catalog)
{

    /// <exception cref="PostgresException">SqlState 23505 when the name is taken.</exception>
    public async Task<Pool> InsertAsync(NewPool pool, string actor, CancellationToken ct)
    {
        var columns = pool.Columns();
        await using var cmd = catalog.CreateCommand($"""
            WITH inserted AS (
                INSERT INTO db_servers ({string.Join(", ", columns.Select(c => c.Column))})
                VALUES ({string.Join(", ", columns.Select(c => "@" + c.Column))})
                RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, to_status, actor)
                SELECT id, dedicated_to_instance_id, '{PoolEventNames.PoolCreated}', status, @actor FROM inserted
            )
            SELECT * FROM inserted
            """);
        foreach (var (column, value) in columns)
        {
            cmd.Parameters.AddWithValue(column, value);
        }

        cmd.Parameters.AddWithValue("actor", actor);
        return (await ReadPoolsAsync(cmd, ct)).Single();
    }

    public async Task<Pool?> GetAsync(long id, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT * FROM db_servers WHERE id = @id");
        cmd.Parameters.AddWithValue("id", id);
        return (await ReadPoolsAsync(cmd, ct)).SingleOrDefault();
    }

    public async Task<Pool?> GetByNameAsync(string name, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT * FROM db_servers WHERE name = @name");
        cmd.Parameters.AddWithValue("name", name);
        return (await ReadPoolsAsync(cmd, ct)).SingleOrDefault();
    }

    /// <summary>Every pool that is not deleted, for the sweep and for placement diagnostics.</summary>
    public async Task<IReadOnlyList<Pool>> ListLiveAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"SELECT * FROM db_servers WHERE status <> '{Words.Deleted}' ORDER BY id");
        return await ReadPoolsAsync(cmd, ct);
    }

    /// <summary>
    /// Moves a pool to <paramref name="to"/> when it is in one of <paramref name="from"/> (any when empty) and records the change.
    /// Returns the pool after the change, or null when it was not in an expected status.
    /// </summary>
    public async Task<Pool?> TransitionAsync(long id, IReadOnlyCollection<PoolStatus> from, PoolStatus to, string? reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH before AS (
                SELECT id, status FROM db_servers WHERE id = @id AND (cardinality(@from) = 0 OR status = ANY(@from)) FOR UPDATE
            ), changed AS (
                UPDATE db_servers s SET status = @to, updated_at = now(),
                    last_error = CASE WHEN @to = '{Words.Error}' THEN @reason ELSE s.last_error END
                FROM before b WHERE s.id = b.id
                RETURNING s.*
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT b.id, '{PoolEventNames.StatusChanged}', b.status, @to, @reason, @actor FROM before b WHERE b.status <> @to
            )
            SELECT * FROM changed
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("from", from.Select(s => s.ToSql()).ToArray());
        cmd.Parameters.AddWithValue("to", to.ToSql());
        cmd.Parameters.AddWithValue("reason", (object?)reason ?? DBNull.Value);
        cmd.Parameters.AddWithValue("actor", actor);
        return (await ReadPoolsAsync(cmd, ct)).SingleOrDefault();
    }

    /// <summary>
    /// Back into placement: <c>active</c>, or <c>full</c> when the pool is at capacity, from one of <paramref name="from"/>.
    /// Only a pool with a known endpoint. Null when the pool was not in an expected status.
    /// </summary>
    public async Task<Pool?> ActivateAsync(long id, IReadOnlyCollection<PoolStatus> from, string? reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH before AS (
                SELECT id, status FROM db_servers WHERE id = @id AND status = ANY(@from) AND host IS NOT NULL AND port IS NOT NULL FOR UPDATE
            ), changed AS (
                UPDATE db_servers s SET status = CASE WHEN s.current_instances >= s.max_instances THEN '{Words.Full}' ELSE '{Words.Active}' END,
                    updated_at = now()
                FROM before b WHERE s.id = b.id
                RETURNING s.*
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT c.id, '{PoolEventNames.StatusChanged}', b.status, c.status, @reason, @actor FROM changed c JOIN before b ON b.id = c.id
                WHERE b.status <> c.status
            )
            SELECT * FROM changed
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("from", from.Select(s => s.ToSql()).ToArray());
        cmd.Parameters.AddWithValue("reason", NpgsqlTypes.NpgsqlDbType.Text, (object?)reason ?? DBNull.Value);
        cmd.Parameters.AddWithValue("actor", actor);
        return (await ReadPoolsAsync(cmd, ct)).SingleOrDefault();
    }

    /// <summary>
    /// Takes a pool out of service for deletion: under the pool's row lock (which every allocation takes before it adds a
    /// tenant), counts its live tenant rows afresh and moves it to <c>deleting</c> only when there are none.
    /// </summary>
    public async Task<RetireGate> BeginRetireAsync(long id, IReadOnlyCollection<PoolStatus> from, string? reason, string actor, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
        if (await LockAsync(conn, tx, id, ct) is not { } locked)
        {
            return new RetireGate.NotFound();
        }

        // A new statement, a new snapshot: it sees every allocation that committed before this transaction got the lock.
        var live = await CountLiveTenantsAsync(conn, tx, id, ct);
        if (live > 0)
        {
            return new RetireGate.HasTenants(live);
        }

        if (!from.Contains(locked.Status))
        {
            return new RetireGate.InStatus(locked.Status);
        }

        await using var cmd = new NpgsqlCommand($"""
            WITH changed AS (
                UPDATE db_servers SET status = '{Words.Deleting}', updated_at = now() WHERE id = @id RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT id, '{PoolEventNames.StatusChanged}', @from_status, '{Words.Deleting}', @reason, @actor FROM changed
                WHERE @from_status <> '{Words.Deleting}'
            )
            SELECT * FROM changed
            """, conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("from_status", locked.Status.ToSql());
        cmd.Parameters.AddWithValue("reason", NpgsqlTypes.NpgsqlDbType.Text, (object?)reason ?? DBNull.Value);
        cmd.Parameters.AddWithValue("actor", actor);
        var pool = (await ReadPoolsAsync(cmd, ct)).Single();
        await tx.CommitAsync(ct);
        return new RetireGate.Started(pool);
    }

    /// <summary>
    /// A pool server refused work on the request path: counted with the health probes' failures. One failure leaves the
    /// pool in placement (a <c>pool_failure</c> event); the <paramref name="unhealthyAfter"/>-th in a row makes it
    /// unhealthy (out of placement) until a health check sees it well again.
    /// </summary>
    public async Task RecordFailureAsync(long id, string error, int unhealthyAfter, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH before AS (SELECT id, health_status FROM db_servers WHERE id = @id FOR UPDATE),
            changed AS (
                UPDATE db_servers s SET
                    health_status = CASE WHEN s.consecutive_health_failures + 1 >= @unhealthy_after THEN '{Words.Unhealthy}' ELSE s.health_status END,
                    consecutive_health_failures = s.consecutive_health_failures + 1, last_error = @error, updated_at = now()
                FROM before b WHERE s.id = b.id
                RETURNING s.id, s.health_status, s.consecutive_health_failures
            )
            INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
            SELECT c.id, CASE WHEN c.health_status <> b.health_status THEN '{PoolEventNames.HealthChanged}' ELSE '{PoolEventNames.PoolFailure}' END,
                b.health_status, c.health_status, format('%s (failure %s of %s in a row)', @error, c.consecutive_health_failures, @unhealthy_after), @actor
            FROM changed c JOIN before b ON b.id = c.id
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("error", error);
        cmd.Parameters.AddWithValue("unhealthy_after", unhealthyAfter);
        cmd.Parameters.AddWithValue("actor", AuditActor.Current);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task AppendEventAsync(long? poolId, Guid? instanceId, string @event, string? reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor) VALUES (@pool, @instance, @event, @reason, @actor)
            """);
        cmd.Parameters.AddWithValue("pool", (object?)poolId ?? DBNull.Value);
        cmd.Parameters.AddWithValue("instance", (object?)instanceId ?? DBNull.Value);
        cmd.Parameters.AddWithValue("event", @event);
        cmd.Parameters.AddWithValue("reason", (object?)reason ?? DBNull.Value);
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    internal static async Task<IReadOnlyList<Pool>> ReadPoolsAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var pools = new List<Pool>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            pools.Add(reader.ToPool());
        }

        return pools;
    }

    /// <summary>Takes the pool's row lock (the one every allocation takes before it adds a tenant) in <paramref name="tx"/>.</summary>
    internal static async Task<(PoolStatus Status, int CurrentInstances, int MaxInstances)?> LockAsync(NpgsqlConnection conn, NpgsqlTransaction tx,
        long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT status, current_instances, max_instances FROM db_servers WHERE id = @id FOR UPDATE", conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? (Vocabulary.Parse<PoolStatus>(reader.GetString(0)), reader.GetInt32(1), reader.GetInt32(2))
            : null;
    }

    /// <summary>The pool's live tenant rows (creating, ready, released) and the moves in flight to it, counted in <paramref name="tx"/>.</summary>
    internal static async Task<int> CountLiveTenantsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"""
            SELECT (SELECT count(*)::int FROM tenant_databases WHERE db_server_id = @id AND status IN {LiveStatuses.Sql})
                 + (SELECT count(*)::int FROM tenant_moves WHERE target_pool_id = @id AND status = 'moving')
            """, conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }
}

/// <summary>Whether a pool could be taken out of service for deletion.</summary>
public abstract record RetireGate
{
    public sealed record Started(Pool Pool) : RetireGate;
    public sealed record NotFound : RetireGate;
    public sealed record HasTenants(int LiveTenants) : RetireGate;
    public sealed record InStatus(PoolStatus Status) : RetireGate;
}
