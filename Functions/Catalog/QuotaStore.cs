using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A ready tenant with its latest measured size on its pool (null: not measured there yet) and its quota state.</summary>
public sealed record TenantQuota(TenantDatabase Tenant, long? SizeBytes, string QuotaState);

/// <summary>A live tenant's latest usage figures (nulls: not measured yet) and its quota state, for <c>GET …/usage</c>.</summary>
public sealed record TenantQuotaUsage(
    Guid InstanceId, string PlanTier, TenantDatabaseStatus Status, string QuotaState, DateTimeOffset? QuotaChangedAt,
    long? SizeBytes, int? Connections, DateTimeOffset? CollectedAt);

/// <summary>Quota states in the catalog (DESIGN.md §11): what enforcement reads per pool, and each change with its event.</summary>
public sealed class QuotaStore(NpgsqlDataSource catalog)
{
    /// <summary>The pool's ready tenants with their latest size measured on this pool (released tenants are not enforced).</summary>
    public async Task<IReadOnlyList<TenantQuota>> ListReadyAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT {TenantStore.TenantColumns}, u.size_bytes AS size_bytes, t.quota_state AS quota_state
            FROM tenant_databases t LEFT JOIN tenant_usage u ON u.tenant_id = t.id AND u.db_server_id = t.db_server_id
            WHERE t.db_server_id = @pool AND t.status = '{Words.Ready}'
            ORDER BY t.id
            """);
        cmd.Parameters.AddWithValue("pool", poolId);
        return await ReadAsync(cmd, ct);
    }

    /// <summary>One ready tenant as <see cref="ListReadyAsync"/> reads it, or null.</summary>
    public async Task<TenantQuota?> FindReadyAsync(long tenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT {TenantStore.TenantColumns}, u.size_bytes AS size_bytes, t.quota_state AS quota_state
            FROM tenant_databases t LEFT JOIN tenant_usage u ON u.tenant_id = t.id AND u.db_server_id = t.db_server_id
            WHERE t.id = @id AND t.status = '{Words.Ready}'
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        return (await ReadAsync(cmd, ct)).SingleOrDefault();
    }

    /// <summary>
    /// Moves the tenant's quota state from <paramref name="from"/> to <paramref name="to"/>, with a <paramref name="eventName"/> line
    /// (none when null) in the same statement. False when the state was no longer <paramref name="from"/> (a concurrent sweep).
    /// </summary>
    public async Task<bool> ChangeAsync(long tenantId, string from, string to, string? eventName, string reason, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH t AS (
                UPDATE tenant_databases SET quota_state = @to, quota_changed_at = now()
                WHERE id = @id AND quota_state = @from RETURNING db_server_id, instance_id
            ), e AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT db_server_id, instance_id, @event, @from, @to, @reason, @actor FROM t WHERE @event::text IS NOT NULL
            )
            SELECT count(*)::int FROM t
            """);
        var p = cmd.Parameters;
        p.AddWithValue("id", tenantId);
        p.AddWithValue("from", from);
        p.AddWithValue("to", to);
        p.AddWithValue("event", NpgsqlTypes.NpgsqlDbType.Text, (object?)eventName ?? DBNull.Value);
        p.AddWithValue("reason", reason);
        p.AddWithValue("actor", actor);
        return (int)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    /// <summary>The instance's live row's usage figures and quota state, or null when it has no live database.</summary>
    public async Task<TenantQuotaUsage?> UsageOfAsync(Guid instanceId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT t.instance_id, t.plan_tier, t.status, t.quota_state, t.quota_changed_at, u.size_bytes, u.connections, u.collected_at
            FROM tenant_databases t LEFT JOIN tenant_usage u ON u.tenant_id = t.id
            WHERE t.instance_id = @instance_id AND t.status IN {LiveStatuses.Sql}
            """);
        cmd.Parameters.AddWithValue("instance_id", instanceId);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        return new TenantQuotaUsage(
            reader.GetGuid(0), reader.GetString(1), Vocabulary.Parse<TenantDatabaseStatus>(reader.GetString(2)), reader.GetString(3),
            reader.IsDBNull(4) ? null : reader.GetFieldValue<DateTimeOffset>(4),
            reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.IsDBNull(6) ? null : reader.GetInt32(6),
            reader.IsDBNull(7) ? null : reader.GetFieldValue<DateTimeOffset>(7));
    }

    private static async Task<IReadOnlyList<TenantQuota>> ReadAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var rows = new List<TenantQuota>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var size = reader.GetOrdinal("size_bytes");
        var state = reader.GetOrdinal("quota_state");
        while (await reader.ReadAsync(ct))
        {
            rows.Add(new TenantQuota(reader.ToTenant("t_"), reader.IsDBNull(size) ? null : reader.GetInt64(size), reader.GetString(state)));
        }

        return rows;
    }
}
