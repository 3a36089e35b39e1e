using Npgsql;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Moves;

/// <summary>One login role of a tenant as its server has it: the stored verifier (never a clear password), the tier's limit.</summary>
public sealed record LoginRole(string Name, string? Verifier, int ConnectionLimit);

/// <summary>
/// The pool side of a move (DESIGN.md §10): the tenant's roles copied to the target with their stored SCRAM verifiers (so
/// the passwords in use keep working and none is ever read in clear), the copied database opened there under the tenant's
/// name, the source copy closed and marked. The scratch database, the restore login, the freeze and the counts are the
/// in-place restore's (<see cref="TenantRestoreDdl"/>).
/// </summary>
public sealed class MoveDdl(PoolConnections connections)
{
    /// <summary>The comment a kept source copy carries, with its move's id.</summary>
    public static string MovedCopyMark(Guid moveId) => $"tenantdb:moved-copy:{moveId:D}";

    /// <summary>The tenant's login roles on <paramref name="pool"/> with their verifiers (a superuser's read of <c>pg_authid</c>).</summary>
    public async Task<IReadOnlyList<LoginRole>> ReadLoginsAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT rolname, rolpassword, rolconnlimit FROM pg_authid WHERE rolname = ANY(@logins) ORDER BY rolname", conn);
        cmd.Parameters.AddWithValue("logins", names.LoginRoles.ToArray());
        var logins = new List<LoginRole>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            logins.Add(new LoginRole(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2)));
        }

        return logins.Count > 0 ? logins : throw new InvalidOperationException("The tenant has no login role on its source server.");
    }

    /// <summary>Whether the tenant's database on <paramref name="pool"/> takes connections (false: released).</summary>
    public async Task<bool> AllowsConnectionsAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT datallowconn FROM pg_database WHERE datname = @db", conn);
        cmd.Parameters.AddWithValue("db", names.Database);
        return await cmd.ExecuteScalarAsync(ct) switch
        {
            bool allows => allows,
            _ => throw new InvalidOperationException("The tenant's database is not on its source server."),
        };
    }

    /// <summary>Opens or closes the tenant's database to connections (the admin's copy of a released tenant needs it open a moment).</summary>
    public async Task SetAllowConnectionsAsync(Pool pool, TenantNames names, bool allow, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"ALTER DATABASE {Identifier.Quote(names.Database)} ALLOW_CONNECTIONS {(allow ? "true" : "false")}", ct);
    }

    /// <summary>
    /// The owner role and the login roles on the target, refused (NOLOGIN) until the move opens them, each with its source
    /// verifier and connection limit, in the owner role as allocation makes them. One implicit transaction: all or none.
    /// </summary>
    public async Task CreateRolesAsync(Pool target, TenantNames names, IReadOnlyList<LoginRole> logins, CancellationToken ct)
    {
        var owner = Identifier.Quote(names.OwnerRole);
        var sql = new List<string> { $"CREATE ROLE {owner} NOLOGIN;" };
        foreach (var login in logins.Where(l => names.LoginRoles.Contains(l.Name)))
        {
            var role = Identifier.Quote(login.Name);
            var password = login.Verifier is { } verifier ? $" PASSWORD '{EnsureVerifier(verifier)}'" : "";
            if (login.Name == names.OwnerRole)
            {
                // An adopted tenant whose owner is its first login: the owner role carries that login's password and limit.
                sql.Add($"ALTER ROLE {owner} CONNECTION LIMIT {login.ConnectionLimit}{password};");
                continue;
            }

            sql.Add($"CREATE ROLE {role} NOLOGIN INHERIT CONNECTION LIMIT {login.ConnectionLimit}{password} IN ROLE {owner};");
            sql.Add($"ALTER ROLE {role} SET role = {owner};");
        }

        await using var conn = await connections.For(target).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, string.Join("\n", sql), ct);
    }

    /// <summary>
    /// The copy opened on the target under the tenant's name, CONNECT granted to the owner as allocation grants it, the logins
    /// the source's freeze refused allowed again; closed to connections when the source was (a released tenant). Safe to run
    /// again: a rename already done is not repeated.
    /// </summary>
    public async Task OpenOnTargetAsync(Pool target, TenantNames names, IReadOnlyList<string> frozen, bool open, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        await using var conn = await connections.For(target).OpenConnectionAsync(ct);
        await using (var scratch = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = @scratch", conn))
        {
            scratch.Parameters.AddWithValue("scratch", TenantRestoreDdl.ScratchName(names));
            if ((long)(await scratch.ExecuteScalarAsync(ct))! == 1)
            {
                await ExecuteAsync(conn, $"ALTER DATABASE {Identifier.Quote(TenantRestoreDdl.ScratchName(names))} RENAME TO {db}", ct);
            }
        }

        var statements = new List<string> { $"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {Identifier.Quote(names.OwnerRole)};" };
        statements.Add($"ALTER DATABASE {db} ALLOW_CONNECTIONS {(open ? "true" : "false")};");
        if (open)
        {
            statements.AddRange(frozen.Where(names.LoginRoles.Contains).Select(l => $"ALTER ROLE {Identifier.Quote(l)} LOGIN;"));
        }

        await ExecuteAsync(conn, string.Join("\n", statements), ct);
    }

    /// <summary>
    /// The source copy kept after the switch: closed to connections and marked with its move; its logins stay refused (the
    /// freeze), their freeze marks replaced by the move's so no restore ever opens them again.
    /// </summary>
    public async Task CloseSourceCopyAsync(Pool source, TenantNames names, Guid moveId, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        var mark = MovedCopyMark(moveId);
        await using var conn = await connections.For(source).OpenConnectionAsync(ct);
        var statements = new List<string>
        {
            $"ALTER DATABASE {db} ALLOW_CONNECTIONS false;",
            $"COMMENT ON DATABASE {db} IS '{mark}';",
        };
        await using (var roles = new NpgsqlCommand("SELECT rolname FROM pg_roles WHERE rolname = ANY(@logins)", conn))
        {
            roles.Parameters.AddWithValue("logins", names.LoginRoles.ToArray());
            await using var reader = await roles.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var role = Identifier.Quote(reader.GetString(0));
                statements.Add($"ALTER ROLE {role} NOLOGIN;");
                statements.Add($"COMMENT ON ROLE {role} IS '{mark}';");
            }
        }

        await ExecuteAsync(conn, string.Join("\n", statements), ct);
        await using var terminate = new NpgsqlCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = @db AND pid <> pg_backend_pid()", conn);
        terminate.Parameters.AddWithValue("db", names.Database);
        await terminate.ExecuteScalarAsync(ct);
    }

    /// <summary>Whether the tenant's database on <paramref name="pool"/> carries <paramref name="moveId"/>'s mark (a copy this move kept).</summary>
    public async Task<bool> IsMovedCopyAsync(Pool pool, TenantNames names, Guid moveId, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("""
            SELECT count(*) FROM pg_database d JOIN pg_shdescription c ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass
            WHERE d.datname = @db AND c.description = @mark
            """, conn);
        cmd.Parameters.AddWithValue("db", names.Database);
        cmd.Parameters.AddWithValue("mark", MovedCopyMark(moveId));
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    // A verifier read from the server's own catalog: SCRAM (or a legacy md5 hash), never anything that could end the literal.
    private static string EnsureVerifier(string verifier) =>
        (verifier.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal) || verifier.StartsWith("md5", StringComparison.Ordinal))
        && !verifier.Contains('\'', StringComparison.Ordinal) && !verifier.Contains('\\', StringComparison.Ordinal)
            ? verifier
            : throw new InvalidOperationException("A login's stored password is not a SCRAM or md5 verifier; it cannot be carried over.");

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
