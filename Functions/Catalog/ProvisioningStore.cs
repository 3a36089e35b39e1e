using Npgsql;

namespace TenantDb.Functions.Catalog;

/// <summary>A pool reserved for provisioning, or the one already being provisioned for the same need.</summary>
public sealed record ReservedPool(long PoolId, string Name, string ProvisioningInstanceId, bool Joined);

/// <summary>What to provision: a shared pool, or a dedicated server for one instance.</summary>
public sealed record PoolReservationRequest(
    ServerType ServerType, int MaxInstances, decimal? Cpu, string? Memory, string AdminUser,
    Guid? DedicatedToInstanceId, Guid? DedicatedToCustomerId, string Driver, string Actor, string Reason);

/// <summary>
/// The catalog side of provisioning. Reservation runs under a transaction-scoped advisory lock, so two callers that
/// both see "no pool is being provisioned" can never both start one: the second joins the first.
/// </summary>
public sealed class ProvisioningStore(NpgsqlDataSource catalog)
{
    internal const long ProvisioningLockKey = 0x7465_6e61_6e74_6462; // "tenantdb"

    /// <summary>
    /// Reserves a new pool row, or finds the one already being provisioned for the same need, and calls
    /// <paramref name="start"/> for it while still holding the lock, so its run is started exactly once; if starting
    /// fails, the reservation is rolled back.
    /// </summary>
    public async Task<ReservedPool> ReserveAsync(PoolReservationRequest request, Func<string, string> encryptAdminPassword,
        Func<ReservedPool, Task> start, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", conn, tx))
        {
            lockCmd.Parameters.AddWithValue("key", ProvisioningLockKey);
            await lockCmd.ExecuteNonQueryAsync(ct);
        }

        await using (var find = new NpgsqlCommand(request.ServerType == ServerType.Dedicated
            ? "SELECT id, name, provisioning_instance_id FROM db_servers WHERE dedicated_to_instance_id = @instance AND status NOT IN ('error', 'deleting', 'deleted') LIMIT 1"
            : "SELECT id, name, provisioning_instance_id FROM db_servers WHERE server_type = 'shared' AND status IN ('provisioning', 'initializing') AND provisioning_instance_id IS NOT NULL ORDER BY id LIMIT 1",
            conn, tx))
        {
            find.Parameters.AddWithValue("instance", (object?)request.DedicatedToInstanceId ?? DBNull.Value);
            await using var reader = await find.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct))
            {
                var joined = new ReservedPool(reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? "" : reader.GetString(2), Joined: true);
                await reader.DisposeAsync();
                await start(joined);
                await tx.CommitAsync(ct);
                return joined;
            }
        }

        string name;
        await using (var next = new NpgsqlCommand("SELECT nextval('pool_name_seq')", conn, tx))
        {
            var number = (long)(await next.ExecuteScalarAsync(ct))!;
            name = $"{(request.ServerType == ServerType.Dedicated ? "dedicated" : "shared")}-{number:D4}";
        }

        var instanceId = $"provision-{name}";
        await using (var insert = new NpgsqlCommand("""
            WITH inserted AS (
                INSERT INTO db_servers (name, server_type, status, max_instances, cpu_limit, memory_limit, driver,
                    provisioning_instance_id, dedicated_to_customer_id, dedicated_to_instance_id, admin_user, admin_password_encrypted)
                VALUES (@name, @server_type, 'provisioning', @max, @cpu, @memory, @driver, @run, @customer, @instance, @admin_user, @admin_password)
                RETURNING id, dedicated_to_instance_id
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, to_status, reason, actor)
                SELECT id, dedicated_to_instance_id, 'pool_created', 'provisioning', @reason, @actor FROM inserted
            )
            SELECT id FROM inserted
            """, conn, tx))
        {
            var p = insert.Parameters;
            p.AddWithValue("name", name);
            p.AddWithValue("server_type", request.ServerType.ToSql());
            p.AddWithValue("max", request.MaxInstances);
            p.AddWithValue("cpu", (object?)request.Cpu ?? DBNull.Value);
            p.AddWithValue("memory", (object?)request.Memory ?? DBNull.Value);
            p.AddWithValue("driver", request.Driver);
            p.AddWithValue("run", instanceId);
            p.AddWithValue("customer", (object?)request.DedicatedToCustomerId ?? DBNull.Value);
            p.AddWithValue("instance", (object?)request.DedicatedToInstanceId ?? DBNull.Value);
            p.AddWithValue("admin_user", request.AdminUser);
            p.AddWithValue("admin_password", encryptAdminPassword(name));
            p.AddWithValue("reason", request.Reason);
            p.AddWithValue("actor", request.Actor);
            var id = (long)(await insert.ExecuteScalarAsync(ct))!;
            var reserved = new ReservedPool(id, name, instanceId, Joined: false);
            await start(reserved);
            await tx.CommitAsync(ct);
            return reserved;
        }
    }

    public async Task SetEndpointAsync(long poolId, string host, int port, string resourceId, string? storagePath, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            UPDATE db_servers SET host = @host, port = @port, driver_resource_id = @resource, storage_path = @storage, updated_at = now()
            WHERE id = @id
            """);
        cmd.Parameters.AddWithValue("id", poolId);
        cmd.Parameters.AddWithValue("host", host);
        cmd.Parameters.AddWithValue("port", port);
        cmd.Parameters.AddWithValue("resource", resourceId);
        cmd.Parameters.AddWithValue("storage", (object?)storagePath ?? DBNull.Value);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task SetServerFactsAsync(long poolId, string? version, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            UPDATE db_servers SET postgres_version = @version, health_status = 'healthy', last_health_check = now(),
                consecutive_health_failures = 0, updated_at = now()
            WHERE id = @id
            """);
        cmd.Parameters.AddWithValue("id", poolId);
        cmd.Parameters.AddWithValue("version", (object?)version ?? DBNull.Value);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Free slots across shared pools that take tenants now, and whether a shared pool is being provisioned.</summary>
    public async Task<(int FreeSlots, bool Provisioning)> SharedHeadroomAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT
                coalesce(sum(max_instances - current_instances) FILTER (WHERE status = 'active' AND health_status IN ('healthy', 'unknown')), 0)::int,
                count(*) FILTER (WHERE status IN ('provisioning', 'initializing')) > 0
            FROM db_servers WHERE server_type = 'shared'
            """);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt32(0), reader.GetBoolean(1));
    }
}
