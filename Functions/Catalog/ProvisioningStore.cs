using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A pool reserved for provisioning, or the one already being provisioned for the same need.</summary>
public sealed record ReservedPool(long PoolId, string Name, string ProvisioningInstanceId, bool Joined);

/// <summary>What to provision: a shared pool, or a dedicated server for one instance.</summary>
public sealed record PoolReservationRequest(
    ServerType ServerType, int MaxInstances, decimal? Cpu, string? Memory, string AdminUser,
    Guid? DedicatedToInstanceId, Guid? DedicatedToCustomerId, string Driver, string Actor, string Reason);

/// <summary>A pool provisioning run the catalog believes in flight (its pool provisioning or initializing).</summary>
public sealed record InFlightRun(long PoolId, string Name, PoolStatus Status, string RunId);

/// <summary>Limits on what provisioning may make; 0 turns a limit off.</summary>
public sealed record ProvisioningLimits(int MaxServers, int MaxDedicatedFailures, int MaxSharedFailures = int.MaxValue);

/// <summary>No new server was reserved: a limit was reached (recorded as a pool event). <see cref="Type"/> names the problem.</summary>
public sealed class ProvisioningRefusedException(string type, string detail) : Exception(detail)
{
    public const string ServerLimit = "server-limit-reached";
    public const string DedicatedFailures = "dedicated-provisioning-failed";
    public const string SharedFailures = "shared-provisioning-failing";
    public string Type { get; } = type;
}

/// <summary>
/// The catalog side of provisioning. Allocation runs under a transaction-scoped advisory lock, so two callers that
/// both see "no pool is being provisioned" can never both start one: the second joins the first.
/// </summary>
public sealed class ProvisioningStore(NpgsqlDataSource catalog)
{
    internal const long ProvisioningLockKey = 0x7465_6e61_6e74_6462; // "tenantdb"

    // A refusal repeated by every waiting tenant's poll is recorded once in this period, not once per poll.
    private static readonly TimeSpan RefusalEventQuietPeriod = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Reserves a new pool row, or finds the one already being provisioned for the same need, and calls
    /// <paramref name="start"/> for it while still holding the lock, so its run is started exactly once; if starting
    /// fails, the reservation is rolled back.
    /// </summary>
    /// <exception cref="ProvisioningRefusedException">A new server is needed but <paramref name="limits"/> forbid it.</exception>
    public async Task<ReservedPool> ReserveAsync(PoolReservationRequest request, Func<string, string> encryptAdminPassword,
        Func<ReservedPool, Task> start, CancellationToken ct, ProvisioningLimits? limits = null, bool joinPoolWithRoom = false)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await TakeProvisioningLockAsync(conn, tx, ct);

        await using (var find = new NpgsqlCommand(request.ServerType == ServerType.Dedicated
            ? $"SELECT id, name, provisioning_instance_id FROM db_servers WHERE dedicated_to_instance_id = @instance AND status NOT IN ('{Words.Error}', '{Words.Deleting}', '{Words.Deleted}') LIMIT 1"
            // A shared pool that turned active with room since the caller saw none also answers the need (no second server).
            : $"""
              SELECT id, name, provisioning_instance_id FROM db_servers WHERE server_type = '{Words.Shared}'
                AND ((status IN ('{Words.Provisioning}', '{Words.Initializing}') AND provisioning_instance_id IS NOT NULL)
                  OR (@join_room AND {Placement.InService} AND {Placement.HasRoom}))
              ORDER BY id LIMIT 1
              """,
            conn, tx))
        {
            find.Parameters.AddWithValue("instance", (object?)request.DedicatedToInstanceId ?? DBNull.Value);
            find.Parameters.AddWithValue("join_room", joinPoolWithRoom);
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

        if (limits is not null && await RefusalAsync(conn, tx, request, limits, ct) is { } refusal)
        {
            await tx.CommitAsync(ct);
            throw refusal;
        }

        string name;
        await using (var next = new NpgsqlCommand("SELECT nextval('pool_name_seq')", conn, tx))
        {
            var number = (long)(await next.ExecuteScalarAsync(ct))!;
            name = $"{(request.ServerType == ServerType.Dedicated ? ServerType.Dedicated : ServerType.Shared).ToSql()}-{number:D4}";
        }

        var instanceId = $"provision-{name}";
        await using (var insert = new NpgsqlCommand($"""
            WITH inserted AS (
                INSERT INTO db_servers (name, server_type, status, max_instances, cpu_limit, memory_limit, driver,
                    provisioning_instance_id, dedicated_to_customer_id, dedicated_to_instance_id, admin_user, admin_password_encrypted)
                VALUES (@name, @server_type, '{Words.Provisioning}', @max, @cpu, @memory, @driver, @run, @customer, @instance, @admin_user, @admin_password)
                RETURNING id, dedicated_to_instance_id
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, to_status, reason, actor)
                SELECT id, dedicated_to_instance_id, '{PoolEventNames.PoolCreated}', '{Words.Provisioning}', @reason, @actor FROM inserted
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

    /// <summary>The provisioning lock, held until <paramref name="tx"/> ends: reservations, their waiters and orphan acts take it.</summary>
    internal static async Task TakeProvisioningLockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", conn, tx);
        lockCmd.Parameters.AddWithValue("key", ProvisioningLockKey);
        await lockCmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Waits until no reservation holds the lock. A run is started under the reservation's lock, before its commit, so the
    /// run's first activity can look for its pool before the row is visible; after this wait it is committed (or rolled back).
    /// </summary>
    public async Task AwaitReservationsAsync(CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await TakeProvisioningLockAsync(conn, tx, ct);

        await tx.CommitAsync(ct);
    }

    /// <summary>
    /// Under the reservation lock: the servers the catalog has (every pool not deleted) against <see cref="ProvisioningLimits.MaxServers"/>,
    /// a dedicated instance's failed servers (pools in error) against <see cref="ProvisioningLimits.MaxDedicatedFailures"/>, and the
    /// failed shared pools against <see cref="ProvisioningLimits.MaxSharedFailures"/> (a driver that always fails makes that many, not
    /// one per waiting allocation's poll until the failed pools fill <see cref="ProvisioningLimits.MaxServers"/>).
    /// A refusal is recorded as a pool event (at most once per quiet period and kind).
    /// </summary>
    private static async Task<ProvisioningRefusedException?> RefusalAsync(NpgsqlConnection conn, NpgsqlTransaction tx, PoolReservationRequest request,
        ProvisioningLimits limits, CancellationToken ct)
    {
        int servers, failures, sharedFailures;
        await using (var count = new NpgsqlCommand($"""
            SELECT count(*) FILTER (WHERE status <> '{Words.Deleted}')::int,
                count(*) FILTER (WHERE dedicated_to_instance_id = @instance AND status = '{Words.Error}')::int,
                count(*) FILTER (WHERE server_type = '{Words.Shared}' AND status = '{Words.Error}')::int
            FROM db_servers
            """, conn, tx))
        {
            count.Parameters.AddWithValue("instance", NpgsqlTypes.NpgsqlDbType.Uuid, (object?)request.DedicatedToInstanceId ?? DBNull.Value);
            await using var reader = await count.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            (servers, failures, sharedFailures) = (reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2));
        }

        ProvisioningRefusedException? refusal = null;
        if (request.ServerType == ServerType.Dedicated && limits.MaxDedicatedFailures > 0 && failures >= limits.MaxDedicatedFailures)
        {
            refusal = new ProvisioningRefusedException(ProvisioningRefusedException.DedicatedFailures,
                $"Provisioning a dedicated server for this instance failed {failures} times; no further attempt is made until an operator " +
                "has looked at the pool events and retired the failed dedicated pools.");
        }
        else if (request.ServerType == ServerType.Shared && sharedFailures >= limits.MaxSharedFailures)
        {
            refusal = new ProvisioningRefusedException(ProvisioningRefusedException.SharedFailures,
                $"{sharedFailures} shared pools are in error, the limit set by Provisioning:MaxSharedFailedPools; no new shared pool is " +
                "provisioned until an operator has looked at their pool events and retired them (DELETE admin/pools/{id}), or the daily " +
                "cleanup removes them.");
        }
        else if (limits.MaxServers > 0 && servers >= limits.MaxServers)
        {
            refusal = new ProvisioningRefusedException(ProvisioningRefusedException.ServerLimit,
                $"The catalog has {servers} servers, the limit set by Provisioning:MaxServers ({limits.MaxServers}); no new server is made. " +
                "Capacity returns when tenants are purged or pools retired, or when the limit is raised.");
        }

        if (refusal is null)
        {
            return null;
        }

        await using var record = new NpgsqlCommand("""
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT NULL, @instance, @event, @reason, @actor
            WHERE NOT EXISTS (
                SELECT 1 FROM pool_events WHERE event = @event AND at > now() - @quiet
                  AND instance_id IS NOT DISTINCT FROM @instance)
            """, conn, tx);
        record.Parameters.AddWithValue("instance", NpgsqlTypes.NpgsqlDbType.Uuid, (object?)request.DedicatedToInstanceId ?? DBNull.Value);
        record.Parameters.AddWithValue("event", refusal.Type);
        record.Parameters.AddWithValue("reason", $"{refusal.Message} (asked: {request.Reason})");
        record.Parameters.AddWithValue("actor", request.Actor);
        record.Parameters.AddWithValue("quiet", RefusalEventQuietPeriod);
        await record.ExecuteNonQueryAsync(ct);
        return refusal;
    }

    /// <summary>
    /// Pools whose provisioning run the catalog believes in flight: shared ones, or the dedicated ones of one instance.
    /// </summary>
    public async Task<IReadOnlyList<InFlightRun>> ListInFlightAsync(Guid? dedicatedToInstanceId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT id, name, status, provisioning_instance_id FROM db_servers
            WHERE status IN ('{Words.Provisioning}', '{Words.Initializing}') AND provisioning_instance_id IS NOT NULL
              AND (CASE WHEN @instance::uuid IS NULL THEN server_type = '{Words.Shared}' ELSE dedicated_to_instance_id = @instance END)
            ORDER BY id
            """);
        cmd.Parameters.AddWithValue("instance", NpgsqlTypes.NpgsqlDbType.Uuid, (object?)dedicatedToInstanceId ?? DBNull.Value);
        var runs = new List<InFlightRun>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            runs.Add(new InFlightRun(reader.GetInt64(0), reader.GetString(1), Vocabulary.Parse<PoolStatus>(reader.GetString(2)), reader.GetString(3)));
        }

        return runs;
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
        await using var cmd = catalog.CreateCommand($"""
            UPDATE db_servers SET postgres_version = @version, health_status = '{Words.Healthy}', last_health_check = now(),
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
        await using var cmd = catalog.CreateCommand($"""
            SELECT
                coalesce(sum(max_instances - current_instances) FILTER (WHERE {Placement.InService} AND {Placement.HasRoom}), 0)::int,
                count(*) FILTER (WHERE status IN ('{Words.Provisioning}', '{Words.Initializing}')) > 0
            FROM db_servers WHERE server_type = '{Words.Shared}'
            """);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt32(0), reader.GetBoolean(1));
    }
}
