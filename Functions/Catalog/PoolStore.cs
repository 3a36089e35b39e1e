using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A pool to be recorded in the catalog.</summary>
public sealed record NewPool
{
    public required string Name { get; init; }
    public required string Host { get; init; }
    public required int Port { get; init; }
    public required ServerType ServerType { get; init; }
    public required PoolStatus Status { get; init; }
    public required int MaxInstances { get; init; }
    public required string Driver { get; init; }
    public required string AdminUser { get; init; }
    public required string AdminPasswordEncrypted { get; init; }
    public int Priority { get; init; } = 100;
    public string? PostgresVersion { get; init; }
    public decimal? CpuLimit { get; init; }
    public string? MemoryLimit { get; init; }
    public string? StoragePath { get; init; }
    public string? DriverResourceId { get; init; }
    public Guid? DedicatedToCustomerId { get; init; }
    public Guid? DedicatedToInstanceId { get; init; }
}

/// <summary>The <c>db_servers</c> table and its audit trail.</summary>
public sealed class PoolStore(NpgsqlDataSource catalog)
{
    public const string Actor = Actors.Allocator;

    /// <exception cref="PostgresException">SqlState 23505 when the name is taken.</exception>
    public async Task<Pool> InsertAsync(NewPool pool, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH inserted AS (
                INSERT INTO db_servers (name, host, port, server_type, status, max_instances, priority, postgres_version,
                    cpu_limit, memory_limit, storage_path, driver, driver_resource_id, dedicated_to_customer_id,
                    dedicated_to_instance_id, admin_user, admin_password_encrypted)
                VALUES (@name, @host, @port, @server_type, @status, @max_instances, @priority, @postgres_version,
                    @cpu_limit, @memory_limit, @storage_path, @driver, @driver_resource_id, @dedicated_to_customer_id,
                    @dedicated_to_instance_id, @admin_user, @admin_password_encrypted)
                RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, to_status, actor)
                SELECT id, dedicated_to_instance_id, 'pool_created', status, @actor FROM inserted
            )
            SELECT * FROM inserted
            """);
        var p = cmd.Parameters;
        p.AddWithValue("name", pool.Name);
        p.AddWithValue("host", pool.Host);
        p.AddWithValue("port", pool.Port);
        p.AddWithValue("server_type", pool.ServerType.ToSql());
        p.AddWithValue("status", pool.Status.ToSql());
        p.AddWithValue("max_instances", pool.MaxInstances);
        p.AddWithValue("priority", pool.Priority);
        p.AddWithValue("postgres_version", (object?)pool.PostgresVersion ?? DBNull.Value);
        p.AddWithValue("cpu_limit", (object?)pool.CpuLimit ?? DBNull.Value);
        p.AddWithValue("memory_limit", (object?)pool.MemoryLimit ?? DBNull.Value);
        p.AddWithValue("storage_path", (object?)pool.StoragePath ?? DBNull.Value);
        p.AddWithValue("driver", pool.Driver);
        p.AddWithValue("driver_resource_id", (object?)pool.DriverResourceId ?? DBNull.Value);
        p.AddWithValue("dedicated_to_customer_id", (object?)pool.DedicatedToCustomerId ?? DBNull.Value);
        p.AddWithValue("dedicated_to_instance_id", (object?)pool.DedicatedToInstanceId ?? DBNull.Value);
        p.AddWithValue("admin_user", pool.AdminUser);
        p.AddWithValue("admin_password_encrypted", pool.AdminPasswordEncrypted);
        p.AddWithValue("actor", actor);
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
        await using var cmd = catalog.CreateCommand("SELECT * FROM db_servers WHERE status <> 'deleted' ORDER BY id");
        return await ReadPoolsAsync(cmd, ct);
    }

    /// <summary>
    /// Moves a pool to <paramref name="to"/> when it is in one of <paramref name="from"/> (any when empty) and records the change.
    /// Returns the pool after the change, or null when it was not in an expected status.
    /// </summary>
    public async Task<Pool?> TransitionAsync(long id, IReadOnlyCollection<PoolStatus> from, PoolStatus to, string? reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH before AS (
                SELECT id, status FROM db_servers WHERE id = @id AND (cardinality(@from) = 0 OR status = ANY(@from)) FOR UPDATE
            ), changed AS (
                UPDATE db_servers s SET status = @to, updated_at = now(),
                    last_error = CASE WHEN @to = 'error' THEN @reason ELSE s.last_error END
                FROM before b WHERE s.id = b.id
                RETURNING s.*
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT b.id, 'status_changed', b.status, @to, @reason, @actor FROM before b WHERE b.status <> @to
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
    /// A pool server refused work on the request path: counted with the health probes' failures. One failure leaves the
    /// pool in placement (a <c>pool_failure</c> event); the <paramref name="unhealthyAfter"/>-th in a row makes it
    /// unhealthy (out of placement) until a health check sees it well again.
    /// </summary>
    public async Task RecordFailureAsync(long id, string error, int unhealthyAfter, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH before AS (SELECT id, health_status FROM db_servers WHERE id = @id FOR UPDATE),
            changed AS (
                UPDATE db_servers s SET
                    health_status = CASE WHEN s.consecutive_health_failures + 1 >= @unhealthy_after THEN 'unhealthy' ELSE s.health_status END,
                    consecutive_health_failures = s.consecutive_health_failures + 1, last_error = @error, updated_at = now()
                FROM before b WHERE s.id = b.id
                RETURNING s.id, s.health_status, s.consecutive_health_failures
            )
            INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
            SELECT c.id, CASE WHEN c.health_status <> b.health_status THEN 'health_changed' ELSE 'pool_failure' END, b.health_status,
                c.health_status, format('%s (failure %s of %s in a row)', @error, c.consecutive_health_failures, @unhealthy_after), @actor
            FROM changed c JOIN before b ON b.id = c.id
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("error", error);
        cmd.Parameters.AddWithValue("unhealthy_after", unhealthyAfter);
        cmd.Parameters.AddWithValue("actor", Actor);
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

    public async Task<IReadOnlyList<PoolEvent>> RecentEventsAsync(long poolId, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT * FROM pool_events WHERE db_server_id = @id ORDER BY at DESC, id DESC LIMIT @limit");
        cmd.Parameters.AddWithValue("id", poolId);
        cmd.Parameters.AddWithValue("limit", limit);
        var events = new List<PoolEvent>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            events.Add(reader.ToPoolEvent());
        }

        return events;
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

    // ---- Pool administration, the health sweep and the daily cleanup ----

    private const string LiveTenantStatuses = "('creating', 'ready', 'released')";

    /// <summary>
    /// One page of pools matching the filters (null: any), by id, and how many match in all. Without a status filter
    /// retired (<c>deleted</c>) pools are left out; ask for <c>status=deleted</c> to see them.
    /// </summary>
    public async Task<(IReadOnlyList<Pool> Pools, long Total)> ListPageAsync(PoolStatus? status, ServerType? serverType, HealthStatus? health,
        int offset, int limit, CancellationToken ct)
    {
        const string Filter = """
            FROM db_servers
            WHERE (CASE WHEN @status::text IS NULL THEN status <> 'deleted' ELSE status = @status END)
              AND (@server_type::text IS NULL OR server_type = @server_type)
              AND (@health::text IS NULL OR health_status = @health)
            """;
        await using var batch = catalog.CreateBatch();
        NpgsqlBatchCommand[] commands = [new($"SELECT count(*) {Filter}"), new($"SELECT * {Filter} ORDER BY id OFFSET @offset LIMIT @limit")];
        foreach (var command in commands)
        {
            batch.BatchCommands.Add(command);
            command.Parameters.AddWithValue("status", NpgsqlTypes.NpgsqlDbType.Text, (object?)status?.ToSql() ?? DBNull.Value);
            command.Parameters.AddWithValue("server_type", NpgsqlTypes.NpgsqlDbType.Text, (object?)serverType?.ToSql() ?? DBNull.Value);
            command.Parameters.AddWithValue("health", NpgsqlTypes.NpgsqlDbType.Text, (object?)health?.ToSql() ?? DBNull.Value);
            command.Parameters.AddWithValue("offset", offset);
            command.Parameters.AddWithValue("limit", limit);
        }

        await using var reader = await batch.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var total = reader.GetInt64(0);
        await reader.NextResultAsync(ct);
        var pools = new List<Pool>();
        while (await reader.ReadAsync(ct))
        {
            pools.Add(reader.ToPool());
        }

        return (pools, total);
    }

    /// <summary>How many tenant rows of the pool are in each status (statuses without rows are absent).</summary>
    public async Task<IReadOnlyDictionary<TenantDatabaseStatus, int>> TenantCountsAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT status, count(*)::int FROM tenant_databases WHERE db_server_id = @id GROUP BY status");
        cmd.Parameters.AddWithValue("id", poolId);
        var counts = new Dictionary<TenantDatabaseStatus, int>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            counts[Vocabulary.Parse<TenantDatabaseStatus>(reader.GetString(0))] = reader.GetInt32(1);
        }

        return counts;
    }

    /// <summary>The catalog in numbers: pools grouped by status, type and health (retired pools left out), tenants by status.</summary>
    public async Task<CatalogCounts> CountAsync(CancellationToken ct)
    {
        await using var batch = catalog.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT status, server_type, health_status, count(*)::int, sum(max_instances)::int, sum(current_instances)::int,
                sum(CASE WHEN status = 'active' AND health_status IN ('healthy', 'unknown') THEN max_instances - current_instances ELSE 0 END)::int
            FROM db_servers WHERE status <> 'deleted'
            GROUP BY status, server_type, health_status
            """));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT status, count(*)::int FROM tenant_databases GROUP BY status"));
        await using var reader = await batch.ExecuteReaderAsync(ct);
        var groups = new List<PoolGroupCount>();
        while (await reader.ReadAsync(ct))
        {
            groups.Add(new PoolGroupCount(
                Vocabulary.Parse<PoolStatus>(reader.GetString(0)), Vocabulary.Parse<ServerType>(reader.GetString(1)),
                Vocabulary.Parse<HealthStatus>(reader.GetString(2)), reader.GetInt32(3), reader.GetInt32(4), reader.GetInt32(5), reader.GetInt32(6)));
        }

        await reader.NextResultAsync(ct);
        var tenants = new Dictionary<TenantDatabaseStatus, int>();
        while (await reader.ReadAsync(ct))
        {
            tenants[Vocabulary.Parse<TenantDatabaseStatus>(reader.GetString(0))] = reader.GetInt32(1);
        }

        return new CatalogCounts(groups, tenants);
    }

    /// <summary>
    /// Back into placement: <c>active</c>, or <c>full</c> when the pool is at capacity, from one of <paramref name="from"/>.
    /// Only a pool with a known endpoint. Null when the pool was not in an expected status.
    /// </summary>
    public async Task<Pool?> ActivateAsync(long id, IReadOnlyCollection<PoolStatus> from, string? reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH before AS (
                SELECT id, status FROM db_servers WHERE id = @id AND status = ANY(@from) AND host IS NOT NULL AND port IS NOT NULL FOR UPDATE
            ), changed AS (
                UPDATE db_servers s SET status = CASE WHEN s.current_instances >= s.max_instances THEN 'full' ELSE 'active' END, updated_at = now()
                FROM before b WHERE s.id = b.id
                RETURNING s.*
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT c.id, 'status_changed', b.status, c.status, @reason, @actor FROM changed c JOIN before b ON b.id = c.id WHERE b.status <> c.status
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

        await using var cmd = new NpgsqlCommand("""
            WITH changed AS (
                UPDATE db_servers SET status = 'deleting', updated_at = now() WHERE id = @id RETURNING *
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT id, 'status_changed', @from_status, 'deleting', @reason, @actor FROM changed WHERE @from_status <> 'deleting'
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

    /// <summary>Pools the health sweep probes: every one that is not provisioning, deleting or deleted.</summary>
    public async Task<IReadOnlyList<Pool>> ListCheckableAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT * FROM db_servers WHERE status NOT IN ('provisioning', 'deleting', 'deleted') ORDER BY id");
        return await ReadPoolsAsync(cmd, ct);
    }

    /// <summary>
    /// Records one health probe in one statement: a success resets the failure count and makes the pool healthy; a
    /// failure counts, and the <paramref name="unhealthyAfter"/>-th in a row makes it unhealthy (out of placement).
    /// A change of health is a <c>health_changed</c> event. Null when the pool does not exist.
    /// </summary>
    public async Task<HealthRecord?> RecordHealthAsync(long id, bool ok, int? responseMs, int? databaseCount, string? version, string? error,
        int unhealthyAfter, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
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
                        WHEN @ok THEN 'healthy'
                        WHEN s.consecutive_health_failures + 1 >= @unhealthy_after THEN 'unhealthy'
                        ELSE s.health_status END,
                    last_error = CASE WHEN @ok THEN s.last_error ELSE @error END
                FROM before b WHERE s.id = b.id
                RETURNING s.*
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
                SELECT c.id, 'health_changed', b.health_status, c.health_status, @reason, @actor
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
        if (await LockAsync(conn, tx, id, ct) is not { } locked)
        {
            return null;
        }

        var live = await CountLiveTenantsAsync(conn, tx, id, ct);
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
        await using var cmd = new NpgsqlCommand("""
            WITH changed AS (
                UPDATE db_servers SET current_instances = @corrected, status = @status, updated_at = now() WHERE id = @id RETURNING id
            )
            INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
            SELECT id, 'capacity_reconciled', NULL, NULL, @reason, @actor FROM changed
            UNION ALL
            SELECT id, 'status_changed', @from_status, @status, 'capacity reconciled', @actor FROM changed WHERE @from_status <> @status
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

    /// <summary>
    /// Pools the cleanup deprovisions: provisioning since before <paramref name="provisioningBefore"/>, in error since
    /// before <paramref name="errorBefore"/> (when they entered error, from the trail), or left half-retired in deleting.
    /// </summary>
    public async Task<IReadOnlyList<Pool>> ListStaleAsync(DateTimeOffset provisioningBefore, DateTimeOffset errorBefore, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT * FROM db_servers s
            WHERE (s.status = 'provisioning' AND s.created_at < @provisioning_before)
               OR (s.status = 'deleting' AND s.updated_at < @provisioning_before)
               OR (s.status = 'error' AND COALESCE(
                    (SELECT max(e.at) FROM pool_events e
                     WHERE e.db_server_id = s.id AND e.event IN ('status_changed', 'pool_created') AND e.to_status = 'error'),
                    s.updated_at) < @error_before)
            ORDER BY s.id
            """);
        cmd.Parameters.AddWithValue("provisioning_before", provisioningBefore);
        cmd.Parameters.AddWithValue("error_before", errorBefore);
        return await ReadPoolsAsync(cmd, ct);
    }

    /// <summary>
    /// Dedicated servers whose tenants are all purged: no live tenant row, and at least one dropped one (so a new dedicated
    /// server still waiting for its first tenant is never among them). Retiring one re-checks under the pool's lock.
    /// </summary>
    public async Task<IReadOnlyList<Pool>> ListReclaimableDedicatedAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT * FROM db_servers s
            WHERE s.server_type = 'dedicated' AND s.status IN ('active', 'full', 'draining', 'error')
              AND NOT EXISTS (SELECT 1 FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status IN {LiveTenantStatuses})
              AND EXISTS (SELECT 1 FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status = 'dropped')
            ORDER BY s.id
            """);
        return await ReadPoolsAsync(cmd, ct);
    }

    /// <summary>The names of every pool not yet retired: servers by these names are never orphans.</summary>
    public async Task<IReadOnlySet<string>> LiveNamesAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT name FROM db_servers WHERE status <> 'deleted'");
        var names = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private static async Task<(PoolStatus Status, int CurrentInstances, int MaxInstances)?> LockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id,
        CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT status, current_instances, max_instances FROM db_servers WHERE id = @id FOR UPDATE", conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? (Vocabulary.Parse<PoolStatus>(reader.GetString(0)), reader.GetInt32(1), reader.GetInt32(2))
            : null;
    }

    private static async Task<int> CountLiveTenantsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"SELECT count(*)::int FROM tenant_databases WHERE db_server_id = @id AND status IN {LiveTenantStatuses}", conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }
}

/// <summary>Pools of one (status, type, health) group: how many, their capacity, slots used, and free slots in placement.</summary>
public sealed record PoolGroupCount(PoolStatus Status, ServerType ServerType, HealthStatus Health, int Pools, int Capacity, int Used, int Available);

public sealed record CatalogCounts(IReadOnlyList<PoolGroupCount> Pools, IReadOnlyDictionary<TenantDatabaseStatus, int> Tenants);

/// <summary>A pool after a health probe was recorded, and its health before.</summary>
public sealed record HealthRecord(Pool Pool, HealthStatus PreviousHealth);

/// <summary>A corrected capacity counter: what it said, what it says now, the live tenant rows counted, and the status flip if any.</summary>
public sealed record CapacityDrift(int Recorded, int Corrected, int LiveTenants, PoolStatus FromStatus, PoolStatus ToStatus);

/// <summary>Whether a pool could be taken out of service for deletion.</summary>
public abstract record RetireGate
{
    public sealed record Started(Pool Pool) : RetireGate;
    public sealed record NotFound : RetireGate;
    public sealed record HasTenants(int LiveTenants) : RetireGate;
    public sealed record InStatus(PoolStatus Status) : RetireGate;
}
