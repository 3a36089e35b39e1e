using Npgsql;
using TenantDb.Functions.Catalog;

namespace TenantDb.Functions.Pools;

/// <summary>
/// The tenant's objects on a pool server: one seam, so the way they are made (today: roles + CREATE DATABASE;
/// later: a warm stock renamed) can change without touching allocation.
/// </summary>
public interface ITenantDdl
{
    /// <summary>A no-login owner role, a login role in it (SCRAM verifier, never clear text), and the database.</summary>
    Task CreateAsync(Pool pool, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct);

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
        // owner role, so a second login (rotation) sees them all.
        await ExecuteAsync(conn, $"""
            CREATE ROLE {owner} NOLOGIN;
            CREATE ROLE {login} LOGIN INHERIT PASSWORD '{scramVerifier}' IN ROLE {owner};
            ALTER ROLE {login} SET role = {owner};
            """, ct);
        // CREATE DATABASE cannot run in a transaction block. template0 takes no connections, so concurrent creates never collide on it.
        await ExecuteAsync(conn, $"CREATE DATABASE {db} OWNER {owner} TEMPLATE template0 ENCODING 'UTF8' CONNECTION LIMIT {connectionLimit}", ct);
        await ExecuteAsync(conn, $"""
            REVOKE ALL ON DATABASE {db} FROM PUBLIC;
            GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner};
            """, ct);
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
        await DisableAlternateLoginAsync(conn, names, ct);
        await using var terminate = new NpgsqlCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = @db AND pid <> pg_backend_pid()", conn);
        terminate.Parameters.AddWithValue("db", names.Database);
        await terminate.ExecuteScalarAsync(ct);
    }

    public async Task DropAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)", ct);
        await ExecuteAsync(conn, $"DROP ROLE IF EXISTS {Identifier.Quote(names.AlternateLoginRole)}", ct);
        await ExecuteAsync(conn, $"""
            DROP ROLE IF EXISTS {Identifier.Quote(names.LoginRole)};
            DROP ROLE IF EXISTS {Identifier.Quote(names.OwnerRole)};
            """, ct);
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
        var role = Identifier.Quote(EnsureLogin(names, login));
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        try
        {
            await ExecuteAsync(conn, $"ALTER ROLE {role} NOLOGIN", ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedObject)
        {
            // Never created: nothing logs in with it.
        }
    }

    // The second login exists only once the tenant rotated.
    private static async Task DisableAlternateLoginAsync(NpgsqlConnection conn, TenantNames names, CancellationToken ct)
    {
        try
        {
            await ExecuteAsync(conn, $"ALTER ROLE {Identifier.Quote(names.AlternateLoginRole)} NOLOGIN", ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedObject)
        {
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
