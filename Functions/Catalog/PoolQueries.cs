using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// Read models over <c>db_servers</c>, <c>tenant_databases</c> and <c>pool_events</c>: the operators' pages, counts and
/// trail, and the lists the daily cleanup works from. Nothing here writes.
/// </summary>
public sealed class PoolQueries(NpgsqlDataSource catalog)
{
    /// <summary>
    /// One page of pools matching the filters (null: any), by id, and how many match in all. Without a status filter
    /// retired (<c>deleted</c>) pools are left out; ask for <c>status=deleted</c> to see them.
    /// </summary>
    public async Task<(IReadOnlyList<Pool> Pools, long Total)> ListPageAsync(PoolStatus? status, ServerType? serverType, HealthStatus? health,
        int offset, int limit, CancellationToken ct)
    {
        var filter = $"""
            FROM db_servers
            WHERE (CASE WHEN @status::text IS NULL THEN status <> '{Words.Deleted}' ELSE status = @status END)
              AND (@server_type::text IS NULL OR server_type = @server_type)
              AND (@health::text IS NULL OR health_status = @health)
            """;
        await using var batch = catalog.CreateBatch();
        NpgsqlBatchCommand[] commands = [new($"SELECT count(*) {filter}"), new($"SELECT * {filter} ORDER BY id OFFSET @offset LIMIT @limit")];
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
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"""
            SELECT status, server_type, health_status, count(*)::int, sum(max_instances)::int, sum(current_instances)::int,
                sum(CASE WHEN {Placement.InService} AND {Placement.HasRoom}
                    THEN max_instances - current_instances ELSE 0 END)::int
            FROM db_servers WHERE status <> '{Words.Deleted}'
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

    /// <summary>
    /// Pools the cleanup deprovisions: provisioning since before <paramref name="provisioningBefore"/>, in error since
    /// before <paramref name="errorBefore"/> (when they entered error, from the trail), or left half-retired in deleting.
    /// </summary>
    public async Task<IReadOnlyList<Pool>> ListStaleAsync(DateTimeOffset provisioningBefore, DateTimeOffset errorBefore, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT * FROM db_servers s
            WHERE (s.status = '{Words.Provisioning}' AND s.created_at < @provisioning_before)
               OR (s.status = '{Words.Deleting}' AND s.updated_at < @provisioning_before)
               OR (s.status = '{Words.Error}' AND COALESCE(
                    (SELECT max(e.at) FROM pool_events e
                     WHERE e.db_server_id = s.id AND e.event IN ('{PoolEventNames.StatusChanged}', '{PoolEventNames.PoolCreated}')
                       AND e.to_status = '{Words.Error}'),
                    s.updated_at) < @error_before)
            ORDER BY s.id
            """);
        cmd.Parameters.AddWithValue("provisioning_before", provisioningBefore);
        cmd.Parameters.AddWithValue("error_before", errorBefore);
        return await PoolStore.ReadPoolsAsync(cmd, ct);
    }

    /// <summary>
    /// Dedicated servers whose tenants are all gone: no live tenant row and no move in flight or keeping a copy there, and at
    /// least one tenant dropped there or moved off with its copy purged (so a new dedicated server still waiting for its first
    /// tenant is never among them). Retiring one re-checks under the pool's lock.
    /// </summary>
    public async Task<IReadOnlyList<Pool>> ListReclaimableDedicatedAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT * FROM db_servers s
            WHERE s.server_type = '{Words.Dedicated}' AND s.status IN ('{Words.Active}', '{Words.Full}', '{Words.Draining}', '{Words.Error}')
              AND NOT EXISTS (SELECT 1 FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status IN {LiveStatuses.Sql})
              AND NOT EXISTS (SELECT 1 FROM tenant_moves m WHERE s.id IN (m.source_pool_id, m.target_pool_id)
                              AND m.status IN ('moving', 'switched', 'moved'))
              AND (EXISTS (SELECT 1 FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status = '{Words.Dropped}')
                   OR EXISTS (SELECT 1 FROM tenant_moves m WHERE m.source_pool_id = s.id AND m.status = 'source_purged'))
            ORDER BY s.id
            """);
        return await PoolStore.ReadPoolsAsync(cmd, ct);
    }

    /// <summary>The names of every pool not yet retired: servers by these names are never orphans.</summary>
    public async Task<IReadOnlySet<string>> LiveNamesAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"SELECT name FROM db_servers WHERE status <> '{Words.Deleted}'");
        var names = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }
}

/// <summary>Pools of one (status, type, health) group: how many, their capacity, slots used, and free slots in placement.</summary>
public sealed record PoolGroupCount(PoolStatus Status, ServerType ServerType, HealthStatus Health, int Pools, int Capacity, int Used, int Available);

public sealed record CatalogCounts(IReadOnlyList<PoolGroupCount> Pools, IReadOnlyDictionary<TenantDatabaseStatus, int> Tenants);
