using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A pool's admin password ciphertext as the catalog holds it.</summary>
public sealed record StoredAdminPassword(long PoolId, string PoolName, string Ciphertext)
{
    public override string ToString() => $"StoredAdminPassword {{ PoolId = {PoolId}, PoolName = {PoolName} }}";
}

/// <summary>The ciphertext column <c>db_servers.admin_password_encrypted</c>, for re-wrapping it under a new key.</summary>
public sealed class AdminPasswordStore(NpgsqlDataSource catalog)
{
    public const string RewrappedEvent = PoolEventNames.AdminPasswordRewrapped;

    /// <summary>Pools (deleted ones too) whose ciphertext does not begin with <paramref name="currentPrefix"/>, by id after <paramref name="afterId"/>.</summary>
    public async Task<IReadOnlyList<StoredAdminPassword>> ListNotUnderAsync(string currentPrefix, long afterId, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            SELECT id, name, admin_password_encrypted FROM db_servers
            WHERE id > @after_id AND left(admin_password_encrypted, length(@prefix)) <> @prefix
            ORDER BY id LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("after_id", afterId);
        cmd.Parameters.AddWithValue("prefix", currentPrefix);
        cmd.Parameters.AddWithValue("limit", limit);
        var rows = new List<StoredAdminPassword>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(new StoredAdminPassword(reader.GetInt64(0), reader.GetString(1), reader.GetString(2)));
        }

        return rows;
    }

    public async Task<int> CountNotUnderAsync(string currentPrefix, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            "SELECT count(*)::int FROM db_servers WHERE left(admin_password_encrypted, length(@prefix)) <> @prefix");
        cmd.Parameters.AddWithValue("prefix", currentPrefix);
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Replaces the ciphertext only while the row still holds <paramref name="expected"/> (compare and set), so a concurrent
    /// writer's new password is never overwritten with an old one; records an event. False when the row changed meanwhile.
    /// </summary>
    public async Task<bool> ReplaceAsync(long poolId, string expected, string replacement, string keyId, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("""
            WITH changed AS (
                UPDATE db_servers SET admin_password_encrypted = @replacement
                WHERE id = @id AND admin_password_encrypted = @expected
                RETURNING id
            ), event AS (
                INSERT INTO pool_events (db_server_id, event, reason, actor)
                SELECT id, @event, 'now under key ' || @key_id, @actor FROM changed
            )
            SELECT count(*)::int FROM changed
            """);
        cmd.Parameters.AddWithValue("id", poolId);
        cmd.Parameters.AddWithValue("expected", expected);
        cmd.Parameters.AddWithValue("replacement", replacement);
        cmd.Parameters.AddWithValue("event", RewrappedEvent);
        cmd.Parameters.AddWithValue("key_id", keyId);
        cmd.Parameters.AddWithValue("actor", actor);
        return (int)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }
}
