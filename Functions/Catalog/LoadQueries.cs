using System.Data.Common;
using Npgsql;
using NpgsqlTypes;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A pool's figures behind its load score (migration 0013); nulls where nothing was measured yet.</summary>
public sealed record PoolFigures(
    long Id, string Name, ServerType ServerType, PoolStatus Status, HealthStatus HealthStatus, int CurrentInstances, int MaxInstances,
    long? StoredBytes, long? StorageBudgetBytes, int? OpenConnections, int? MaxConnections, DateTimeOffset? MeasuredAt);

/// <summary>A tenant row with its latest usage figures (null before its pool's first collection).</summary>
public sealed record TenantUsageRow(
    long Id, Guid InstanceId, Guid CustomerId, string PlanTier, long PoolId, string PoolName, TenantDatabaseStatus Status,
    long? SizeBytes, int? Connections, DateTimeOffset? CollectedAt, string QuotaState, DateTimeOffset CreatedAt);

/// <summary>How the tenant list is ordered: largest first, most connections first, or newest first.</summary>
public enum TenantSort { Created, Size, Connections }

/// <summary>The tenant list's filters (null: any); without a status the dropped rows are left out.</summary>
public sealed record TenantFilter(long? PoolId, TenantDatabaseStatus? Status, string? Tier, Guid? CustomerId, bool? OverQuota);

/// <summary>
/// Read models of load (DESIGN.md §11): tenants with their usage (the operators' list, a pool's largest), a pool's figures and
/// what a rebalance plans from. Nothing here writes.
/// </summary>
public sealed class LoadQueries(NpgsqlDataSource catalog)
{
    private const string TenantColumns = """
        t.id, t.instance_id, t.customer_id, t.plan_tier, t.db_server_id, s.name AS pool_name, t.status, u.size_bytes, u.connections,
        u.collected_at, t.quota_state, t.created_at
        """;

    private const string PoolColumns = """
        id, name, server_type, status, health_status, current_instances, max_instances, stored_bytes, storage_budget_bytes,
        open_connections, max_connections, usage_at
        """;

    /// <summary>One page of tenants matching the filter in the given order, and how many match in all.</summary>
    public async Task<(IReadOnlyList<TenantUsageRow> Tenants, long Total)> ListTenantsAsync(TenantFilter filter, TenantSort sort, int offset, int limit,
        CancellationToken ct)
    {
        var from = $"""
            FROM tenant_databases t
            JOIN db_servers s ON s.id = t.db_server_id
            LEFT JOIN tenant_usage u ON u.tenant_id = t.id
            WHERE (CASE WHEN @status::text IS NULL THEN t.status <> '{Words.Dropped}' ELSE t.status = @status END)
              AND (@pool::bigint IS NULL OR t.db_server_id = @pool)
              AND (@tier::text IS NULL OR t.plan_tier = @tier)
              AND (@customer::uuid IS NULL OR t.customer_id = @customer)
              AND (@over_quota::boolean IS NULL OR (t.quota_state <> 'ok') = @over_quota)
            """;
        var order = sort switch
        {
            TenantSort.Size => "u.size_bytes DESC NULLS LAST, t.id",
            TenantSort.Connections => "u.connections DESC NULLS LAST, t.id",
            _ => "t.created_at DESC, t.id DESC",
        };
        await using var batch = catalog.CreateBatch();
        NpgsqlBatchCommand[] commands = [new($"SELECT count(*) {from}"), new($"SELECT {TenantColumns} {from} ORDER BY {order} OFFSET @offset LIMIT @limit")];
        foreach (var command in commands)
        {
            batch.BatchCommands.Add(command);
            var p = command.Parameters;
            p.AddWithValue("status", NpgsqlDbType.Text, (object?)filter.Status?.ToSql() ?? DBNull.Value);
            p.AddWithValue("pool", NpgsqlDbType.Bigint, (object?)filter.PoolId ?? DBNull.Value);
            p.AddWithValue("tier", NpgsqlDbType.Text, (object?)filter.Tier ?? DBNull.Value);
            p.AddWithValue("customer", NpgsqlDbType.Uuid, (object?)filter.CustomerId ?? DBNull.Value);
            p.AddWithValue("over_quota", NpgsqlDbType.Boolean, (object?)filter.OverQuota ?? DBNull.Value);
            p.AddWithValue("offset", offset);
            p.AddWithValue("limit", limit);
        }

        await using var reader = await batch.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var total = reader.GetInt64(0);
        await reader.NextResultAsync(ct);
        return (await ReadTenantsAsync(reader, ct), total);
    }

    /// <summary>The pool's live tenants with the most stored bytes, largest first.</summary>
    public async Task<IReadOnlyList<TenantUsageRow>> LargestTenantsAsync(long poolId, int count, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT {TenantColumns}
            FROM tenant_databases t
            JOIN db_servers s ON s.id = t.db_server_id
            JOIN tenant_usage u ON u.tenant_id = t.id
            WHERE t.db_server_id = @pool AND t.status IN {LiveStatuses.Sql}
            ORDER BY u.size_bytes DESC, t.id
            LIMIT @count
            """);
        cmd.Parameters.AddWithValue("pool", poolId);
        cmd.Parameters.AddWithValue("count", count);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await ReadTenantsAsync(reader, ct);
    }

    /// <summary>The tenants a move could take off the pool now (ready or released, no move in flight), largest first.</summary>
    public async Task<IReadOnlyList<TenantUsageRow>> MovableTenantsAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT {TenantColumns}
            FROM tenant_databases t
            JOIN db_servers s ON s.id = t.db_server_id
            LEFT JOIN tenant_usage u ON u.tenant_id = t.id
            WHERE t.db_server_id = @pool AND t.status IN ('{Words.Ready}', '{Words.Released}')
              AND NOT EXISTS (SELECT 1 FROM tenant_moves m WHERE m.tenant_id = t.id AND m.status IN ('{TenantMove.Moving}', '{TenantMove.Switched}'))
            ORDER BY u.size_bytes DESC NULLS LAST, t.id
            """);
        cmd.Parameters.AddWithValue("pool", poolId);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await ReadTenantsAsync(reader, ct);
    }

    /// <summary>One pool's figures, or null when there is no such pool.</summary>
    public async Task<PoolFigures?> PoolFiguresAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"SELECT {PoolColumns} FROM db_servers WHERE id = @id");
        cmd.Parameters.AddWithValue("id", poolId);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadPool(reader) : null;
    }

    /// <summary>Every shared pool not retired, with its figures, by id.</summary>
    public async Task<IReadOnlyList<PoolFigures>> SharedPoolFiguresAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT {PoolColumns} FROM db_servers
            WHERE server_type = '{Words.Shared}' AND status <> '{Words.Deleted}'
            ORDER BY id
            """);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var pools = new List<PoolFigures>();
        while (await reader.ReadAsync(ct))
        {
            pools.Add(ReadPool(reader));
        }

        return pools;
    }

    private static PoolFigures ReadPool(DbDataReader r) => new(
        r.GetInt64(0), r.GetString(1), Vocabulary.Parse<ServerType>(r.GetString(2)), Vocabulary.Parse<PoolStatus>(r.GetString(3)),
        Vocabulary.Parse<HealthStatus>(r.GetString(4)), r.GetInt32(5), r.GetInt32(6),
        r.IsDBNull(7) ? null : r.GetInt64(7), r.IsDBNull(8) ? null : r.GetInt64(8), r.IsDBNull(9) ? null : r.GetInt32(9),
        r.IsDBNull(10) ? null : r.GetInt32(10), r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11));

    private static async Task<IReadOnlyList<TenantUsageRow>> ReadTenantsAsync(DbDataReader r, CancellationToken ct)
    {
        var rows = new List<TenantUsageRow>();
        while (await r.ReadAsync(ct))
        {
            rows.Add(new TenantUsageRow(r.GetInt64(0), r.GetGuid(1), r.GetGuid(2), r.GetString(3), r.GetInt64(4), r.GetString(5),
                Vocabulary.Parse<TenantDatabaseStatus>(r.GetString(6)), r.IsDBNull(7) ? null : r.GetInt64(7), r.IsDBNull(8) ? null : r.GetInt32(8),
                r.IsDBNull(9) ? null : r.GetFieldValue<DateTimeOffset>(9), r.GetString(10), r.GetFieldValue<DateTimeOffset>(11)));
        }

        return rows;
    }
}
