using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// Read models of what is going on across all pools, for the operators' dashboard: the latest lines of the audit trail, the
/// pools still being made, and live tenants per pool. Nothing here writes.
/// </summary>
public sealed class ActivityQueries(NpgsqlDataSource catalog)
{
    /// <summary>The newest <paramref name="limit"/> lines of <c>pool_events</c> (all pools), newest first, with their pool's name.</summary>
    public async Task<IReadOnlyList<(PoolEvent Event, string? PoolName)>> RecentEventsAsync(int limit, CancellationToken ct)
    {
        // By id (the primary key's order is the order of insertion): no sort of the whole trail.
        await using var cmd = catalog.CreateCommand("""
            SELECT e.*, s.name AS pool_name
            FROM (SELECT * FROM pool_events ORDER BY id DESC LIMIT @limit) e
            LEFT JOIN db_servers s ON s.id = e.db_server_id
            ORDER BY e.id DESC
            """);
        cmd.Parameters.AddWithValue("limit", limit);
        var events = new List<(PoolEvent, string?)>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var poolName = reader.GetOrdinal("pool_name");
        while (await reader.ReadAsync(ct))
        {
            events.Add((reader.ToPoolEvent(), reader.IsDBNull(poolName) ? null : reader.GetString(poolName)));
        }

        return events;
    }

    /// <summary>Pools a provisioning run is still making (<c>provisioning</c> or <c>initializing</c>), by id.</summary>
    public async Task<IReadOnlyList<Pool>> PoolsBeingMadeAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            $"SELECT * FROM db_servers WHERE status IN ('{Words.Provisioning}', '{Words.Initializing}') ORDER BY id");
        return await PoolStore.ReadPoolsAsync(cmd, ct);
    }

    /// <summary>Live tenant rows (creating, ready, released) of every pool not retired, by pool id and status.</summary>
    public async Task<IReadOnlyDictionary<long, IReadOnlyDictionary<TenantDatabaseStatus, int>>> LiveTenantsByPoolAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT t.db_server_id, t.status, count(*)::int
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE t.status IN {LiveStatuses.Sql} AND s.status <> '{Words.Deleted}'
            GROUP BY t.db_server_id, t.status
            """);
        var counts = new Dictionary<long, Dictionary<TenantDatabaseStatus, int>>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var pool = reader.GetInt64(0);
            if (!counts.TryGetValue(pool, out var byStatus))
            {
                counts[pool] = byStatus = [];
            }

            byStatus[Vocabulary.Parse<TenantDatabaseStatus>(reader.GetString(1))] = reader.GetInt32(2);
        }

        return counts.ToDictionary(c => c.Key, c => (IReadOnlyDictionary<TenantDatabaseStatus, int>)c.Value);
    }
}
