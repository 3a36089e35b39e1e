using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>What <see cref="TierChangeStore.ChangeAsync"/> came to.</summary>
public enum TierChangeResult { Changed, Superseded }

/// <summary>
/// A ready tenant's <c>plan_tier</c> changed together with the pool's limits: the row is locked (as every login change of the
/// tenant locks it, so a rotation never makes a login meanwhile), the pool's DDL runs, then the row and a <c>tier_changed</c> event
/// are written and committed.
/// </summary>
public sealed class TierChangeStore(NpgsqlDataSource catalog)
{
    /// <summary>
    /// Runs <paramref name="onPool"/> while the tenant's row is locked and still ready in <paramref name="fromTier"/>, then records
    /// <paramref name="toTier"/>. <see cref="TierChangeResult.Superseded"/> (nothing done) when the row changed meanwhile.
    /// </summary>
    public async Task<TierChangeResult> ChangeAsync(long tenantId, string fromTier, string toTier, Func<Task> onPool, string actor, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockRow = new NpgsqlCommand(
            $"SELECT 1 FROM tenant_databases WHERE id = @id AND status = '{Words.Ready}' AND plan_tier = @from FOR UPDATE", conn, tx))
        {
            lockRow.Parameters.AddWithValue("id", tenantId);
            lockRow.Parameters.AddWithValue("from", fromTier);
            if (await lockRow.ExecuteScalarAsync(ct) is null)
            {
                return TierChangeResult.Superseded;
            }
        }

        await onPool();
        await using var update = new NpgsqlCommand($"""
            WITH t AS (
                UPDATE tenant_databases SET plan_tier = @to, updated_at = now() WHERE id = @id RETURNING db_server_id, instance_id
            )
            INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
            SELECT db_server_id, instance_id, '{PoolEventNames.TierChanged}', 'plan_tier ' || @from || ' -> ' || @to, @actor FROM t
            """, conn, tx);
        update.Parameters.AddWithValue("id", tenantId);
        update.Parameters.AddWithValue("from", fromTier);
        update.Parameters.AddWithValue("to", toTier);
        update.Parameters.AddWithValue("actor", actor);
        await update.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return TierChangeResult.Changed;
    }

    /// <summary>The tenant's recorded tier now (null: no such row): tells a commit that happened from one that did not when its answer was lost.</summary>
    public async Task<string?> TierOfAsync(long tenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT plan_tier FROM tenant_databases WHERE id = @id");
        cmd.Parameters.AddWithValue("id", tenantId);
        return await cmd.ExecuteScalarAsync(ct) as string;
    }
}
