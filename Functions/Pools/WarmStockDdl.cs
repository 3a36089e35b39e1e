using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>A stock name found on a server: which of its two objects exist, and whether this catalog's marker is on them.</summary>
public sealed record ServerStock(string Name, bool HasDatabase, bool HasOwner, bool Marked);

/// <summary>
/// The warm stock's objects on a pool server (DESIGN.md §9): an owner role and a database from template0, closed to
/// everyone (no connections allowed, CONNECT revoked from PUBLIC), marked with this catalog's identity so only this
/// catalog ever treats them as its leftovers. Claiming one for a tenant is <see cref="ITenantDdl.CreateFromStockAsync"/>.
/// </summary>
public sealed class WarmStockDdl(PoolConnections connections)
{
    /// <summary>The comment every stock object of this catalog carries (DESIGN.md §8.2: servers and their objects name their catalog).</summary>
    public static string Marker(Guid catalogId) => $"tenantdb warm stock of catalog {catalogId:D}";

    public async Task CreateAsync(Pool pool, string name, Guid catalogId, CancellationToken ct)
    {
        var db = Identifier.Quote(StockNames.Ensure(name));
        var owner = Identifier.Quote(StockNames.OwnerRole(name));
        var marker = Marker(catalogId);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"CREATE ROLE {owner} NOLOGIN; COMMENT ON ROLE {owner} IS '{marker}';", ct);
        // CREATE DATABASE cannot run in a transaction block; born closed, so even a crash right after it leaves nothing enterable.
        await ExecuteAsync(conn, $"CREATE DATABASE {db} OWNER {owner} TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS false", ct);
        await ExecuteAsync(conn, $"""
            REVOKE ALL ON DATABASE {db} FROM PUBLIC;
            GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner};
            COMMENT ON DATABASE {db} IS '{marker}';
            """, ct);
    }

    /// <summary>Drops the stock's database and owner role; succeeds when they are already gone.</summary>
    public async Task DropAsync(Pool pool, string name, CancellationToken ct)
    {
        var db = Identifier.Quote(StockNames.Ensure(name));
        var owner = Identifier.Quote(StockNames.OwnerRole(name));
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)", ct);
        await ExecuteAsync(conn, $"DROP ROLE IF EXISTS {owner}", ct);
    }

    /// <summary>
    /// Every stock name on the server (database or owner role), and whether this catalog's marker is on either: a make that
    /// stopped between <c>CREATE DATABASE</c> and its comment left the database unmarked under a marked owner role.
    /// </summary>
    public async Task<IReadOnlyList<ServerStock>> ListAsync(Pool pool, Guid catalogId, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("""
            WITH found AS (
                SELECT datname AS name, true AS is_db, shobj_description(oid, 'pg_database') AS note
                FROM pg_database WHERE datname ~ '^tenantdb_stock_[0-9a-f]{20}$'
                UNION ALL
                SELECT left(rolname, -6), false, shobj_description(oid, 'pg_authid')
                FROM pg_roles WHERE rolname ~ '^tenantdb_stock_[0-9a-f]{20}_owner$'
            )
            SELECT name, bool_or(is_db), bool_or(NOT is_db), bool_or(note IS NOT DISTINCT FROM @marker)
            FROM found GROUP BY name ORDER BY name
            """, conn);
        cmd.Parameters.AddWithValue("marker", Marker(catalogId));
        var found = new List<ServerStock>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            found.Add(new ServerStock(reader.GetString(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3)));
        }

        return found;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
