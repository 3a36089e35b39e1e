using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>
/// The tenant's objects on a pool server: one seam, so the way they are made (today: roles + CREATE DATABASE;
/// later: a warm stock renamed) can change without touching allocation.
/// </summary>
public interface ITenantDdl
{
    /// <summary>A no-login owner role, a login role in it (SCRAM verifier, never clear text), and the database.</summary>
    Task CreateAsync(Pool pool, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct);

    /// <summary>
    /// The tenant's objects from a warm-stock database of the pool (DESIGN.md §9), in one transaction: the stock database and
    /// its owner renamed to the tenant's names, the login role made in the owner role (SCRAM verifier), connections allowed.
    /// False, with nothing changed, when the stock's objects are not on the server (the caller creates instead).
    /// </summary>
    Task<bool> CreateFromStockAsync(Pool pool, string stockName, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct);

    /// <summary>Logins refused and sessions ended; the data stays.</summary>
    Task ReleaseAsync(Pool pool, TenantNames names, CancellationToken ct);

    /// <summary>Drops the database (forcing sessions out) and both roles; succeeds when they are already gone.</summary>
    Task DropAsync(Pool pool, TenantNames names, CancellationToken ct);

    /// <summary>
    /// Sets a password (SCRAM verifier) on one of the tenant's two logins and lets it log in, creating that login (in the
    /// owner role, with the tier's connection limit) when it does not exist yet. The other login is not touched. False
    /// (and the login refused again) when the tenant's database is closed: a release ran meanwhile.
    /// </summary>
    Task<bool> SetLoginPasswordAsync(Pool pool, TenantNames names, string login, string scramVerifier, int connectionLimit, CancellationToken ct);

    /// <summary>One login refused from now on (NOLOGIN); succeeds when the role does not exist.</summary>
    Task DisableLoginAsync(Pool pool, TenantNames names, string login, CancellationToken ct);
}

public sealed class TenantDdl(PoolConnections connections) : ITenantDdl
{
    public async Task CreateAsync(Pool pool, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct)
    {
        EnsureVerifier(scramVerifier);
        var db = Identifier.Quote(names.Database);
        var login = Identifier.Quote(names.LoginRole);
        var owner = Identifier.Quote(names.OwnerRole);

        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        // Roles first, atomically: one command is one implicit transaction (a single Sync), so either both roles exist
        // or neither does, without the extra round trip of an explicit COMMIT. Objects the login creates belong to the
        // owner role, so a second login (rotation) sees them all. The tier's connection limit sits on the login role, where
        // the tenant has no privilege (it owns its database, so a limit there it could lift); a role's limit also counts its
        // sessions on the postgres maintenance database.
        await ExecuteAsync(conn, $"""
            CREATE ROLE {owner} NOLOGIN;
            CREATE ROLE {login} LOGIN INHERIT CONNECTION LIMIT {connectionLimit} PASSWORD '{scramVerifier}' IN ROLE {owner};
            ALTER ROLE {login} SET role = {owner};
            """, ct);
        // CREATE DATABASE cannot run in a transaction block. template0 takes no connections, so concurrent creates never collide
        // on it. The database is born closed: until CONNECT is revoked from PUBLIC no role can enter it, even after a crash here.
        await ExecuteAsync(conn, $"CREATE DATABASE {db} OWNER {owner} TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS false", ct);
        await ExecuteAsync(conn, $"""
            REVOKE ALL ON DATABASE {db} FROM PUBLIC;
            GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner};
            ALTER DATABASE {db} ALLOW_CONNECTIONS true;
            """, ct);
    }

    public async Task<bool> CreateFromStockAsync(Pool pool, string stockName, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct)
    {
        EnsureVerifier(scramVerifier);
        var stock = Identifier.Quote(StockNames.Ensure(stockName));
        var stockOwner = Identifier.Quote(StockNames.OwnerRole(stockName));
        var db = Identifier.Quote(names.Database);
        var login = Identifier.Quote(names.LoginRole);
        var owner = Identifier.Quote(names.OwnerRole);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        try
        {
            // One command, one implicit transaction, one round trip: renamed and opened entirely, or not at all. The stock
            // database takes no connections, so the rename never waits for sessions; CONNECT was granted to the owner role
            // when the stock was made, and the new login is that role's only member.
            await ExecuteAsync(conn, $"""
                ALTER DATABASE {stock} RENAME TO {db};
                ALTER ROLE {stockOwner} RENAME TO {owner};
                COMMENT ON DATABASE {db} IS NULL;
                COMMENT ON ROLE {owner} IS NULL;
                CREATE ROLE {login} LOGIN INHERIT CONNECTION LIMIT {connectionLimit} PASSWORD '{scramVerifier}' IN ROLE {owner};
                ALTER ROLE {login} SET role = {owner};
                ALTER DATABASE {db} ALLOW_CONNECTIONS true;
                """, ct);
            return true;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.UndefinedObject)
        {
            // The stock database or its owner is gone (dropped by hand, a restored server): nothing was changed.
            return false;
        }
    }

    public async Task ReleaseAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        var login = Identifier.Quote(names.LoginRole);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"""
            ALTER DATABASE {db} ALLOW_CONNECTIONS false;
            ALTER ROLE {login} NOLOGIN;
            """, ct);
        await DisableLoginAsync(conn, names.AlternateLoginRole, ct);
        await using var terminate = new NpgsqlCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = @db AND pid <> pg_backend_pid()", conn);
        terminate.Parameters.AddWithValue("db", names.Database);
        await terminate.ExecuteScalarAsync(ct);
    }

    public async Task DropAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        var roles = names.Roles.ToArray();
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        // A tenant can mark its own database a template, which DROP DATABASE refuses (42809): undo it first.
        await using (var template = new NpgsqlCommand("SELECT datistemplate FROM pg_database WHERE datname = @db", conn))
        {
            template.Parameters.AddWithValue("db", names.Database);
            if (await template.ExecuteScalarAsync(ct) is true)
            {
                await ExecuteAsync(conn, $"ALTER DATABASE {db} IS_TEMPLATE false", ct);
            }
        }

        await ExecuteAsync(conn, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)", ct);
        // What the tenant left elsewhere (a large object in postgres, a grant another tenant gave it) would block DROP ROLE (2BP01):
        // in every database still holding something of the roles, its objects pass to the admin and its privileges go. Nothing
        // of anyone else is dropped.
        foreach (var (database, allowsConnections) in await DatabasesDependingOnAsync(conn, roles, ct))
        {
            // A database closed to connections (a released tenant's, or one its owner closed to block this purge) is opened
            // for the admin's moment here and closed again; CONNECT stays revoked from everyone else meanwhile.
            var reopen = !allowsConnections && database != conn.Database;
            if (reopen)
            {
                await ExecuteAsync(conn, $"ALTER DATABASE {Identifier.QuoteAny(database)} ALLOW_CONNECTIONS true", ct);
            }

            try
            {
                await using var other = database == conn.Database ? null : await connections.OpenDatabaseAsync(pool, database, ct);
                var target = other ?? conn;
                var owned = string.Join(", ", await ExistingRolesAsync(target, roles, ct));
                if (owned.Length > 0)
                {
                    await ExecuteAsync(target, $"REASSIGN OWNED BY {owned} TO CURRENT_USER; DROP OWNED BY {owned};", ct);
                }
            }
            finally
            {
                if (reopen)
                {
                    await ExecuteAsync(conn, $"ALTER DATABASE {Identifier.QuoteAny(database)} ALLOW_CONNECTIONS false", CancellationToken.None);
                }
            }
        }

        await ExecuteAsync(conn, string.Join("\n", roles.Select(r => $"DROP ROLE IF EXISTS {Identifier.Quote(r)};")), ct);
    }

    private static async Task<IReadOnlyList<(string Name, bool AllowsConnections)>> DatabasesDependingOnAsync(NpgsqlConnection conn, string[] roles, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT DISTINCT d.datname, d.datallowconn FROM pg_shdepend s
            JOIN pg_roles r ON r.oid = s.refobjid AND s.refclassid = 'pg_authid'::regclass
            JOIN pg_database d ON d.oid = s.dbid
            WHERE r.rolname = ANY(@roles)
            """, conn);
        cmd.Parameters.AddWithValue("roles", roles);
        var databases = new List<(string, bool)>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            databases.Add((reader.GetString(0), reader.GetBoolean(1)));
        }

        return databases;
    }

    private static async Task<IReadOnlyList<string>> ExistingRolesAsync(NpgsqlConnection conn, string[] roles, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT rolname FROM pg_roles WHERE rolname = ANY(@roles) ORDER BY rolname", conn);
        cmd.Parameters.AddWithValue("roles", roles);
        var existing = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            existing.Add(Identifier.Quote(reader.GetString(0)));
        }

        return existing;
    }

    public async Task<bool> SetLoginPasswordAsync(Pool pool, TenantNames names, string login, string scramVerifier, int connectionLimit, CancellationToken ct)
    {
        EnsureVerifier(scramVerifier);
        var role = Identifier.Quote(EnsureLogin(names, login));
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        try
        {
            await ExecuteAsync(conn, $"ALTER ROLE {role} WITH LOGIN PASSWORD '{scramVerifier}'", ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedObject)
        {
            // The first rotation of this tenant: its second login, made like the first (one implicit transaction).
            var owner = Identifier.Quote(names.OwnerRole);
            await ExecuteAsync(conn, $"""
                CREATE ROLE {role} LOGIN INHERIT PASSWORD '{scramVerifier}' CONNECTION LIMIT {connectionLimit} IN ROLE {owner};
                ALTER ROLE {role} SET role = {owner};
                """, ct);
        }

        // A release closes the database before it refuses the logins; seen closed here, this LOGIN may have come after
        // the release's NOLOGIN, so it is undone. Seen open, the release's NOLOGIN is still to come.
        await using var open = new NpgsqlCommand("SELECT datallowconn FROM pg_database WHERE datname = @db", conn);
        open.Parameters.AddWithValue("db", names.Database);
        if (await open.ExecuteScalarAsync(ct) is true)
        {
            return true;
        }

        await ExecuteAsync(conn, $"ALTER ROLE {role} NOLOGIN", ct);
        return false;
    }

    public async Task DisableLoginAsync(Pool pool, TenantNames names, string login, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await DisableLoginAsync(conn, EnsureLogin(names, login), ct);
    }

    // The second login exists only once the tenant rotated: one never created is refused already.
    private static async Task DisableLoginAsync(NpgsqlConnection conn, string login, CancellationToken ct)
    {
        try
        {
            await ExecuteAsync(conn, $"ALTER ROLE {Identifier.Quote(login)} NOLOGIN", ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedObject)
        {
            // Never created: nothing logs in with it.
        }
    }

    private static string EnsureLogin(TenantNames names, string login) =>
        names.LoginRoles.Contains(login) ? login : throw new ArgumentException("Not one of the tenant's logins.", nameof(login));

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    // The verifier is inlined (DDL takes no parameters): allow only its own alphabet.
    private static void EnsureVerifier(string verifier)
    {
        if (!verifier.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal)
            || !verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '$' or ':' or '+' or '/' or '=' or '-'))
        {
            throw new ArgumentException("Not a SCRAM-SHA-256 verifier.", nameof(verifier));
        }
    }
}
