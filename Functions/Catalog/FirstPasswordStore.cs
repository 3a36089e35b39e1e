using Npgsql;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// <c>tenant_databases.first_password_encrypted</c> (DESIGN.md §5): the durable copy of a new tenant's first password, sealed
/// for its handoff, written by <see cref="TenantStore.MarkReadyAsync"/>. A claim that finds no deposit in the handoff entity
/// (its signal lost with a host, or its answer lost with a catalog fault) re-deposits it; the first claim clears it.
/// </summary>
public sealed class FirstPasswordStore(NpgsqlDataSource catalog)
{
    /// <summary>The copy of a ready tenant's first password, or null when it was claimed, rotated, released or expired.</summary>
    public async Task<string?> FindAsync(long tenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            $"SELECT first_password_encrypted FROM tenant_databases WHERE id = @id AND status = '{Words.Ready}'");
        cmd.Parameters.AddWithValue("id", tenantId);
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>The first password was handed over: its copy goes.</summary>
    public async Task ClearAsync(long tenantId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            "UPDATE tenant_databases SET first_password_encrypted = NULL WHERE id = @id AND first_password_encrypted IS NOT NULL");
        cmd.Parameters.AddWithValue("id", tenantId);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Clears the copies of tenants ready before <paramref name="readyBefore"/> (their handoff expired); returns how many.</summary>
    public async Task<int> ClearExpiredAsync(DateTimeOffset readyBefore, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            "UPDATE tenant_databases SET first_password_encrypted = NULL WHERE first_password_encrypted IS NOT NULL AND ready_at < @before");
        cmd.Parameters.AddWithValue("before", readyBefore);
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
