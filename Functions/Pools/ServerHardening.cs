using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>What a new pool server gets before it takes tenants: tenants connect only to their own database and to
/// <c>postgres</c>, <c>template1</c> is nobody's business, and nobody creates in <c>postgres</c>'s public schema.</summary>
public sealed class ServerHardening(PoolConnections connections)
{
    /// <summary>Hardens the server and returns its version (<c>server_version</c>). Idempotent: an activity may run twice.</summary>
    public async Task<string?> HardenAsync(Pool pool, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var harden = new NpgsqlCommand("""
            REVOKE ALL ON DATABASE template1 FROM PUBLIC;
            REVOKE CREATE ON SCHEMA public FROM PUBLIC;
            SELECT current_setting('server_version');
            """, conn);
        return (string?)await harden.ExecuteScalarAsync(ct);
    }
}
