using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A server of this catalog that no pool knows, stopped at <see cref="StoppedAt"/>.</summary>
public sealed record StoppedOrphan(string Driver, string Name, string? ResourceId, DateTimeOffset StoppedAt);

/// <summary>
/// The <c>orphan_servers</c> table: servers this catalog made that no pool row knows, stopped first and deleted only after a
/// grace period (DESIGN §8.2). Each act is checked against <c>db_servers</c> in the transaction that records it, under the
/// lock that provisioning takes to reserve a pool, so a pool made meanwhile never loses its server.
/// </summary>
public sealed class OrphanStore(NpgsqlDataSource catalog)
{
    public async Task<IReadOnlyDictionary<string, StoppedOrphan>> ListAsync(string driver, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("SELECT driver, name, resource_id, stopped_at FROM orphan_servers WHERE driver = @driver");
        cmd.Parameters.AddWithValue("driver", driver);
        var rows = new Dictionary<string, StoppedOrphan>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var row = new StoppedOrphan(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                reader.GetFieldValue<DateTimeOffset>(3));
            rows[row.Name] = row;
        }

        return rows;
    }

    /// <summary>
    /// Runs <paramref name="act"/> (stop or delete the server) only if no live pool is named <paramref name="name"/>, and records it
    /// with its event in the same transaction. False when a pool knows the server (nothing done, any stale record removed).
    /// </summary>
    public async Task<bool> ActAsync(string driver, string name, string? resourceId, OrphanAct kind, string actor,
        Func<CancellationToken, Task> act, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await ProvisioningStore.TakeProvisioningLockAsync(conn, tx, ct);

        await using (var known = new NpgsqlCommand($"SELECT count(*) FROM db_servers WHERE name = @name AND status <> '{Words.Deleted}'", conn, tx))
        {
            known.Parameters.AddWithValue("name", name);
            if ((long)(await known.ExecuteScalarAsync(ct))! > 0)
            {
                await ExecuteAsync(conn, tx, "DELETE FROM orphan_servers WHERE driver = @driver AND name = @name", driver, name, resourceId, actor, ct);
                await tx.CommitAsync(ct);
                return false;
            }
        }

        await act(ct);
        await ExecuteAsync(conn, tx, kind == OrphanAct.Stop
            ? $"""
              INSERT INTO orphan_servers (driver, name, resource_id) VALUES (@driver, @name, @resource_id) ON CONFLICT DO NOTHING;
              INSERT INTO pool_events (event, reason, actor)
              VALUES ('{PoolEventNames.OrphanServerStopped}', @driver || ' server ' || @name || ' (' || coalesce(@resource_id, '') || '): no pool of this catalog knows it; deleted after the grace period', @actor);
              """
            : $"""
              DELETE FROM orphan_servers WHERE driver = @driver AND name = @name;
              INSERT INTO pool_events (event, reason, actor)
              VALUES ('{PoolEventNames.OrphanServerRemoved}', @driver || ' server ' || @name || ' (' || coalesce(@resource_id, '') || '): stopped orphan past its grace period', @actor);
              """, driver, name, resourceId, actor, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>A pool knows the server again (e.g. a catalog restored): it is no orphan.</summary>
    public async Task ForgetAsync(string driver, string name, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("DELETE FROM orphan_servers WHERE driver = @driver AND name = @name");
        cmd.Parameters.AddWithValue("driver", driver);
        cmd.Parameters.AddWithValue("name", name);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, string driver, string name, string? resourceId,
        string actor, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.Parameters.AddWithValue("driver", driver);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.Add(new NpgsqlParameter("resource_id", NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)resourceId ?? DBNull.Value });
        cmd.Parameters.AddWithValue("actor", actor);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}

public enum OrphanAct { Stop, Delete }
