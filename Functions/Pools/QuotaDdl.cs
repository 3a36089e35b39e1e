using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>
/// A tenant database read-only for its tenant, and writable again (DESIGN.md §11, a tenant past its tier's size limit), in a way
/// the tenant cannot undo. <c>default_transaction_read_only</c> alone is a default the tenant's session may turn off
/// (<c>SET default_transaction_read_only = off</c>, <c>SET TRANSACTION READ WRITE</c>), and as the database's owner it could
/// <c>ALTER DATABASE ... RESET</c> it. So the privileges go instead:
/// <list type="bullet">
/// <item>the logins leave the owner role (no <c>SET ROLE</c> to it, no owner rights on the database or its objects) and lose their
/// <c>role</c> setting; they get <c>CONNECT</c> on the database, <c>USAGE</c> on its schemas and <c>SELECT</c> on its tables and
/// sequences: reads work;</item>
/// <item>what a login could still write with is taken away inside the database: objects a login owns pass to the owner role;
/// write privileges on tables, sequences, schemas (<c>CREATE</c>) and the database (<c>CREATE</c>, <c>TEMPORARY</c>) held by
/// <c>PUBLIC</c> or a login are revoked; <c>EXECUTE</c> on the owner's <c>SECURITY DEFINER</c> routines (which would run as the owner)
/// and on the large-object constructors (<c>lo_creat</c>, <c>lo_create</c>, <c>lo_from_bytea</c>, which need no privilege) is
/// revoked from <c>PUBLIC</c> and the logins; <c>UPDATE</c> on large objects likewise;</item>
/// <item><c>default_transaction_read_only</c> on the logins as a clear error message for ordinary clients, and the tenant's
/// sessions ended, so none keeps running as the owner.</item>
/// </list>
/// Nothing is lost by the revocations: only the tenant's logins can connect to its database, and once writable again they hold
/// the owner's privileges by membership. Lifting gives the membership and the <c>role</c> setting back, puts <c>EXECUTE</c> on the
/// large-object constructors back for <c>PUBLIC</c> (their default), takes the direct read grants away and ends the sessions
/// (they would keep the read-only default they started with). Both directions are idempotent. The statements inside the
/// database need an admin that may act for the tenant's roles (a superuser, as on the pool servers this allocator makes).
/// </summary>
public sealed class QuotaDdl(PoolConnections connections)
{
    /// <summary>
    /// False for an adopted tenant whose login itself owns the database (no owner role apart from it): its privileges cannot be
    /// taken from it, so it cannot be made read-only this way.
    /// </summary>
    public static bool CanMakeReadOnly(TenantNames names) => !names.LoginRoles.Contains(names.OwnerRole);

    private const string LargeObjectConstructors = "lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea)";

    /// <summary>
    /// Makes the database read-only for the tenant (see the class). Sessions are ended only when a login was still in the owner
    /// role or lacked its own CONNECT (the first time, or after a move, a rotation or a restore in place made a login or the
    /// database anew); the statements inside the database run every time, so grants a restore brought back go again and its
    /// tables are readable. Returns the number of sessions ended.
    /// </summary>
    public async Task<int> MakeReadOnlyAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        var owner = Identifier.Quote(names.OwnerRole);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        var logins = await ExistingLoginsAsync(conn, names, ct);
        if (logins.Count == 0)
        {
            return 0;
        }

        var ended = 0;
        if (await AnyMemberAsync(conn, logins, names.OwnerRole, ct) || !await AllMayConnectAsync(conn, logins, names.Database, ct))
        {
            // One command, one implicit transaction: every login out of the owner role together.
            await ExecuteAsync(conn, string.Join("\n", logins.Select(l =>
            {
                var login = Identifier.Quote(l);
                return $"""
                    REVOKE {owner} FROM {login};
                    ALTER ROLE {login} RESET role;
                    ALTER ROLE {login} SET default_transaction_read_only = on;
                    GRANT CONNECT ON DATABASE {db} TO {login};
                    """;
            })), ct);
            if (await AnyMemberAsync(conn, logins, names.OwnerRole, ct))
            {
                // A membership granted by another grantor than the admin stays: refuse rather than report a read-only tenant that is not.
                throw new InvalidOperationException("A login of the tenant is still a member of its owner role after the revocation.");
            }

            // A session that started as the owner (its role setting) stays the owner until it ends.
            ended = await TerminateAsync(conn, logins, ct);
        }

        var quoted = string.Join(", ", logins.Select(Identifier.Quote));
        await using (var inside = await connections.OpenDatabaseAsync(pool, names.Database, ct))
        {
            await ExecuteAsync(inside, $"""
                REASSIGN OWNED BY {quoted} TO {owner};
                REVOKE CREATE, TEMPORARY ON DATABASE {db} FROM PUBLIC, {quoted};
                REVOKE EXECUTE ON FUNCTION {LargeObjectConstructors} FROM PUBLIC, {quoted};
                DO $quota$
                DECLARE
                    s text;
                    r regprocedure;
                    o oid;
                BEGIN
                    FOR s IN SELECT nspname FROM pg_namespace
                             WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
                    LOOP
                        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC, {quoted}', s);
                        EXECUTE format('GRANT USAGE ON SCHEMA %I TO {quoted}', s);
                        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA %I FROM PUBLIC, {quoted}', s);
                        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {quoted}', s);
                        EXECUTE format('REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC, {quoted}', s);
                        EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO {quoted}', s);
                    END LOOP;
                    FOR r IN SELECT p.oid FROM pg_proc p WHERE p.prosecdef AND p.proowner = '{owner}'::regrole LOOP
                        EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC, {quoted}', r);
                    END LOOP;
                    FOR o IN SELECT m.oid FROM pg_largeobject_metadata m WHERE m.lomacl IS NOT NULL LOOP
                        EXECUTE format('REVOKE UPDATE ON LARGE OBJECT %s FROM PUBLIC, {quoted}', o);
                    END LOOP;
                END
                $quota$;
                """, ct);
        }

        return ended;
    }

    /// <summary>Makes the database writable for the tenant again (see the class); returns the number of sessions ended.</summary>
    public async Task<int> MakeWritableAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        var owner = Identifier.Quote(names.OwnerRole);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        var logins = await ExistingLoginsAsync(conn, names, ct);
        if (logins.Count == 0)
        {
            return 0;
        }

        var quoted = string.Join(", ", logins.Select(Identifier.Quote));
        await using (var inside = await connections.OpenDatabaseAsync(pool, names.Database, ct))
        {
            await ExecuteAsync(inside, $"""
                GRANT EXECUTE ON FUNCTION {LargeObjectConstructors} TO PUBLIC;
                DO $quota$
                DECLARE
                    s text;
                BEGIN
                    FOR s IN SELECT nspname FROM pg_namespace
                             WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
                    LOOP
                        EXECUTE format('REVOKE SELECT ON ALL TABLES IN SCHEMA %I FROM {quoted}', s);
                        EXECUTE format('REVOKE SELECT ON ALL SEQUENCES IN SCHEMA %I FROM {quoted}', s);
                        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {quoted}', s);
                    END LOOP;
                END
                $quota$;
                """, ct);
        }

        await ExecuteAsync(conn, string.Join("\n", logins.Select(l =>
        {
            var login = Identifier.Quote(l);
            return $"""
                GRANT {owner} TO {login};
                ALTER ROLE {login} SET role = {owner};
                ALTER ROLE {login} RESET default_transaction_read_only;
                REVOKE CONNECT ON DATABASE {db} FROM {login};
                """;
        })), ct);
        // Sessions opened while read-only keep its default and their own identity: they end, the next ones are the owner again.
        return await TerminateAsync(conn, logins, ct);
    }

    // The second login exists only once the tenant rotated.
    private static async Task<IReadOnlyList<string>> ExistingLoginsAsync(NpgsqlConnection conn, TenantNames names, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT rolname FROM pg_roles WHERE rolname = ANY(@logins) ORDER BY rolname", conn);
        cmd.Parameters.AddWithValue("logins", names.LoginRoles.ToArray());
        var logins = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            logins.Add(reader.GetString(0));
        }

        return logins;
    }

    private static async Task<bool> AnyMemberAsync(NpgsqlConnection conn, IReadOnlyList<string> logins, string owner, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT coalesce(bool_or(pg_has_role(l.oid, o.oid, 'MEMBER')), false)
            FROM pg_roles l JOIN pg_roles o ON o.rolname = @owner
            WHERE l.rolname = ANY(@logins)
            """, conn);
        cmd.Parameters.AddWithValue("logins", logins.ToArray());
        cmd.Parameters.AddWithValue("owner", owner);
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    // The tenant's sessions only (wherever they are): an admin's own work on the database (a move's dump) goes on. The call sits in
    // the select list, so it runs on the filtered rows only (in WHERE the planner may evaluate it first, on every session).
    // A restore in place swaps in a new database: the logins' own CONNECT on the old one went with it.
    private static async Task<bool> AllMayConnectAsync(NpgsqlConnection conn, IReadOnlyList<string> logins, string database, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT coalesce(bool_and(has_database_privilege(l.oid, d.oid, 'CONNECT')), true)
            FROM pg_roles l JOIN pg_database d ON d.datname = @db
            WHERE l.rolname = ANY(@logins)
            """, conn);
        cmd.Parameters.AddWithValue("logins", logins.ToArray());
        cmd.Parameters.AddWithValue("db", database);
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    private static async Task<int> TerminateAsync(NpgsqlConnection conn, IReadOnlyList<string> logins, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT coalesce(sum(pg_terminate_backend(pid)::int), 0)::int FROM pg_stat_activity
            WHERE usename = ANY(@logins) AND pid <> pg_backend_pid() AND backend_type = 'client backend'
            """, conn);
        cmd.Parameters.AddWithValue("logins", logins.ToArray());
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
