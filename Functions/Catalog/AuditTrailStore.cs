using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// The audit trail (<c>pool_events</c>) as the platform's status history: pages of one pool's or one instance's events,
/// newest first, and the retention purge. The table is append-only (migration 0004): <see cref="PurgeAsync"/> is the
/// only way an event leaves it.
/// </summary>
public sealed class AuditTrailStore(NpgsqlDataSource catalog)
{
    /// <summary>Up to <paramref name="limit"/> events of the pool, with ids below <paramref name="before"/> (all: null), newest first.</summary>
    public Task<IReadOnlyList<PoolEvent>> PoolPageAsync(long poolId, long? before, int limit, CancellationToken ct) =>
        PageAsync("db_server_id = @key", poolId, before, limit, ct);

    /// <summary>Up to <paramref name="limit"/> events of the instance, with ids below <paramref name="before"/> (all: null), newest first.</summary>
    public Task<IReadOnlyList<PoolEvent>> InstancePageAsync(Guid instanceId, long? before, int limit, CancellationToken ct) =>
        PageAsync("instance_id = @key", instanceId, before, limit, ct);

    /// <summary>Whether the catalog knows the instance: a tenant database row (of any status) or an event names it.</summary>
    public async Task<bool> InstanceKnownAsync(Guid instanceId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT EXISTS (SELECT 1 FROM tenant_databases WHERE instance_id = @id)
                OR EXISTS (SELECT 1 FROM pool_events WHERE instance_id = @id)
            """);
        cmd.Parameters.AddWithValue("id", instanceId);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Removes at most <paramref name="batch"/> events older than <paramref name="cutoff"/>, oldest first; returns how many.</summary>
    public async Task<int> PurgeAsync(DateTimeOffset cutoff, int batch, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT purge_pool_events(@cutoff, @batch)");
        cmd.Parameters.AddWithValue("cutoff", cutoff);
        cmd.Parameters.AddWithValue("batch", batch);
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private async Task<IReadOnlyList<PoolEvent>> PageAsync<TKey>(string filter, TKey key, long? before, int limit, CancellationToken ct)
        where TKey : notnull
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT * FROM pool_events
            WHERE {filter} AND (@before::bigint IS NULL OR id < @before)
            ORDER BY id DESC LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("key", key);
        cmd.Parameters.AddWithValue("before", NpgsqlTypes.NpgsqlDbType.Bigint, (object?)before ?? DBNull.Value);
        cmd.Parameters.AddWithValue("limit", limit);
        var events = new List<PoolEvent>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            events.Add(reader.ToPoolEvent());
        }

        return events;
    }
}
