using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// Un-release (DESIGN.md §10) on <c>tenant_databases</c>: a released row back to ready, and the way back when the un-release
/// could not hand a password over. Each change writes its status event in the same statement.
/// </summary>
public sealed class ReleaseStore(NpgsqlDataSource catalog)
{
    /// <summary>
    /// The released row, released at <paramref name="releasedAt"/>, becomes ready again (<c>released_at</c> cleared). Null when
    /// it is no longer that released row.
    /// </summary>
    public Task<TenantDatabase?> UnreleaseAsync(long tenantId, DateTimeOffset releasedAt, string reason, string actor, CancellationToken ct) =>
        SetAsync($"""
            UPDATE tenant_databases SET status = '{Words.Ready}', released_at = NULL, updated_at = now()
            WHERE id = @id AND status = '{Words.Released}' AND released_at = @released_at
            RETURNING *
            """, Words.Released, Words.Ready, tenantId, releasedAt, reason, actor, ct);

    /// <summary>
    /// An un-release undone: the row, ready again since <see cref="UnreleaseAsync"/>, is released as it was before, with its
    /// original <c>released_at</c> (its retention does not start over).
    /// </summary>
    public Task<TenantDatabase?> ReleaseAgainAsync(long tenantId, DateTimeOffset releasedAt, string reason, string actor, CancellationToken ct) =>
        SetAsync($"""
            UPDATE tenant_databases SET status = '{Words.Released}', released_at = @released_at, updated_at = now()
            WHERE id = @id AND status = '{Words.Ready}'
            RETURNING *
            """, Words.Ready, Words.Released, tenantId, releasedAt, reason, actor, ct);

    private async Task<TenantDatabase?> SetAsync(string update, string from, string to, long tenantId, DateTimeOffset releasedAt, string reason,
        string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                {update}
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantStatusChanged}', '{from}', '{to}', @reason, @actor FROM t
                UNION ALL
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantUnreleased}', NULL, NULL, @reason, @actor FROM t WHERE '{to}' = '{Words.Ready}'
            )
            SELECT * FROM t
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("released_at", releasedAt);
        cmd.Parameters.AddWithValue("reason", reason);
        cmd.Parameters.AddWithValue("actor", actor);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? reader.ToTenant() : null;
    }
}
