using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>A tenant's limits on its pool server, where the tenant has no privilege (its login roles): what a tier change sets.</summary>
public sealed class TenantLimits(PoolConnections connections)
{
    /// <summary>
    /// Sets <paramref name="connectionLimit"/> on every login of the tenant that exists (the second login exists only once the tenant
    /// rotated), in one statement. New sessions count against it; sessions already open stay.
    /// </summary>
    public async Task SetConnectionLimitAsync(Pool pool, TenantNames names, int connectionLimit, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        var logins = new List<string>();
        await using (var find = new NpgsqlCommand("SELECT rolname FROM pg_roles WHERE rolname = ANY(@logins) ORDER BY rolname", conn))
        {
            find.Parameters.AddWithValue("logins", names.LoginRoles.ToArray());
            await using var reader = await find.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                logins.Add(reader.GetString(0));
            }
        }

        if (logins.Count == 0)
        {
            return;
        }

        await using var alter = new NpgsqlCommand(
            string.Join("\n", logins.Select(l => $"ALTER ROLE {Identifier.Quote(l)} CONNECTION LIMIT {connectionLimit};")), conn);
        await alter.ExecuteNonQueryAsync(ct);
    }
}
