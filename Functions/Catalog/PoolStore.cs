using Npgsql;

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
    public const string Actor = "allocator";

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
    /// A pool server refused work on the request path: out of placement (degraded) until a health check sees it well again.
    /// </summary>
    public async Task RecordFailureAsync(long id, string error, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH before AS (SELECT id, health_status FROM db_servers WHERE id = @id FOR UPDATE),
            changed AS (
                UPDATE db_servers s SET health_status = CASE WHEN s.health_status = 'unhealthy' THEN 'unhealthy' ELSE 'degraded' END,
                    consecutive_health_failures = s.consecutive_health_failures + 1, last_error = @error, updated_at = now()
                FROM before b WHERE s.id = b.id
                RETURNING s.id, s.health_status
            )
            INSERT INTO pool_events (db_server_id, event, from_status, to_status, reason, actor)
            SELECT c.id, 'health_changed', b.health_status, c.health_status, @error, @actor
            FROM changed c JOIN before b ON b.id = c.id
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("error", error);
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
}
