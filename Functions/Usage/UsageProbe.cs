using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Usage;

/// <summary>
/// Reads a pool server's usage in one round trip as its admin: every database's size (<c>pg_database_size</c>, where the
/// admin may read it: CONNECT on it or <c>pg_read_all_stats</c>) and client sessions, the server's sessions and its
/// <c>max_connections</c>. A thousand tenants cost one query, not a thousand.
/// </summary>
public sealed class UsageProbe(PoolConnections connections, TimeProvider time)
{
    public async Task<PoolUsageSample> ReadAsync(Pool pool, CancellationToken ct)
    {
        await using var cmd = connections.For(pool).CreateCommand("""
            WITH sessions AS (
                SELECT datid, count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY datid
            )
            SELECT d.datname::text,
                   CASE WHEN has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'USAGE')
                        THEN pg_database_size(d.oid) END,
                   coalesce(s.n, 0),
                   current_setting('max_connections')::int,
                   (SELECT coalesce(sum(n), 0)::int FROM sessions)
            FROM pg_database d LEFT JOIN sessions s ON s.datid = d.oid
            WHERE NOT d.datistemplate
            ORDER BY d.datname
            """);
        var databases = new List<DatabaseUsage>();
        int open = 0, max = 0;
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            databases.Add(new DatabaseUsage(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetInt32(2)));
            max = reader.GetInt32(3);
            open = reader.GetInt32(4);
        }

        return new PoolUsageSample(databases, open, max, time.GetUtcNow());
    }
}
