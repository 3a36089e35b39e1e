using Npgsql;
using NpgsqlTypes;

namespace TenantDb.Functions.Catalog;

/// <summary>One database of a pool server as the usage probe read it; a null size where the admin may not read it.</summary>
public sealed record DatabaseUsage(string Database, long? SizeBytes, int Connections);

/// <summary>What one usage probe of a pool server read: its databases, its sessions and its <c>max_connections</c>.</summary>
public sealed record PoolUsageSample(IReadOnlyList<DatabaseUsage> Databases, int OpenConnections, int MaxConnections, DateTimeOffset At)
{
    /// <summary>Bytes stored on the server: every database the probe could size (tenants, stock, maintenance).</summary>
    public long StoredBytes => Databases.Sum(d => d.SizeBytes ?? 0);
}

/// <summary>
/// Usage figures in the catalog (DESIGN.md §11): one probe of a pool recorded in one statement (the pool's totals, each
/// live tenant's latest figures matched by database name, the hourly rollup), and the rollup's retention.
/// </summary>
public sealed class UsageStore(NpgsqlDataSource catalog)
{
    /// <summary>
    /// Records a pool's sample; returns how many tenants of the pool it gave figures to. Nothing for a pool that is gone. A shared
    /// pool's figures are recorded with its <paramref name="storageBudgetBytes"/>: its load score (migration 0013) follows both.
    /// </summary>
    public async Task<int> RecordAsync(long poolId, PoolUsageSample sample, long storageBudgetBytes, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH sample AS (
                SELECT * FROM unnest(@names::text[], @sizes::bigint[], @connections::int[]) AS s(db_name, size_bytes, connections)
            ), pool AS (
                UPDATE db_servers SET stored_bytes = @stored, open_connections = @open, max_connections = @max, usage_at = @at,
                    storage_budget_bytes = CASE WHEN server_type = '{Words.Shared}' THEN @budget END
                WHERE id = @pool RETURNING id
            ), tenants AS (
                INSERT INTO tenant_usage AS u (tenant_id, db_server_id, size_bytes, connections, collected_at)
                SELECT t.id, p.id, s.size_bytes, s.connections, @at
                FROM sample s
                JOIN pool p ON true
                JOIN tenant_databases t ON t.db_server_id = p.id AND t.db_name = s.db_name
                    AND t.status IN ('{Words.Creating}', '{Words.Ready}', '{Words.Released}')
                WHERE s.size_bytes IS NOT NULL
                ON CONFLICT (tenant_id) DO UPDATE SET db_server_id = EXCLUDED.db_server_id, size_bytes = EXCLUDED.size_bytes,
                    connections = EXCLUDED.connections, collected_at = EXCLUDED.collected_at
                RETURNING u.tenant_id, u.size_bytes, u.connections
            ), hourly AS (
                INSERT INTO usage_hourly AS h (hour, db_server_id, tenant_id, size_bytes, connections, samples)
                SELECT date_trunc('hour', @at), p.id, f.tenant_id, f.size_bytes, f.connections, 1
                FROM pool p CROSS JOIN LATERAL (
                    SELECT tenant_id, size_bytes, connections FROM tenants
                    UNION ALL SELECT 0, @stored, @open) f
                ON CONFLICT (hour, db_server_id, tenant_id) DO UPDATE SET
                    size_bytes = greatest(h.size_bytes, EXCLUDED.size_bytes),
                    connections = greatest(h.connections, EXCLUDED.connections),
                    samples = h.samples + 1
            )
            SELECT count(*)::int FROM tenants
            """);
        var p = cmd.Parameters;
        p.AddWithValue("pool", poolId);
        p.AddWithValue("names", sample.Databases.Select(d => d.Database).ToArray());
        p.AddWithValue("sizes", NpgsqlDbType.Array | NpgsqlDbType.Bigint, sample.Databases.Select(d => d.SizeBytes).ToArray());
        p.AddWithValue("connections", sample.Databases.Select(d => d.Connections).ToArray());
        p.AddWithValue("stored", sample.StoredBytes);
        p.AddWithValue("open", sample.OpenConnections);
        p.AddWithValue("max", sample.MaxConnections);
        p.AddWithValue("at", sample.At);
        p.AddWithValue("budget", storageBudgetBytes);
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Deletes the hourly rollup older than <paramref name="before"/>; returns how many rows went.</summary>
    public async Task<int> PruneHistoryAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("DELETE FROM usage_hourly WHERE hour < @before");
        cmd.Parameters.AddWithValue("before", before);
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
