using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Backups;

/// <summary>
/// The pool side of a restore in place: a scratch database the backup is restored into (closed to the tenant), the freeze
/// (logins refused, sessions ended), the swap of names in one transaction, the unfreeze, and the counts that verify it.
/// </summary>
public sealed class TenantRestoreDdl(PoolConnections connections)
{
    /// <summary>Marks a login refused by a restore's freeze (a comment on the role, set with NOLOGIN in the same transaction),
    /// so a restore that died mid-freeze is undone by the next one.</summary>
    public const string FrozenMark = "tenantdb:frozen-for-restore";

    private const int SwapAttempts = 5;

    public static string ScratchName(TenantNames names) => names.Database + "_rs_new";

    public static string ReplacedName(TenantNames names) => names.Database + "_rs_old";

    /// <summary>
    /// The login pg_restore connects as: a member of the tenant's owner role and nothing more, alive only while the scratch is
    /// filled. Never the admin: an archive runs the tenant's own code (a CHECK constraint calling its function, evaluated
    /// while rows are copied), and that code may RESET ROLE, which in an admin session would make it a superuser.
    /// </summary>
    public static string RestoreLoginName(TenantNames names) => names.Database + "_rs_login";

    /// <summary>
    /// The row count of every table whose data a dump holds (ordinary and unlogged tables outside the system schemas and
    /// extensions), and the number of large objects, in the connection's current snapshot.
    /// </summary>
    public static async Task<(IReadOnlyList<TableRows> Tables, long LargeObjects)> CountAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, CancellationToken ct)
    {
        var tables = new List<(string Schema, string Table, uint Oid)>();
        await using (var list = new NpgsqlCommand("""
            SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND c.relpersistence <> 't'
              AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            ORDER BY 1, 2
            """, conn, tx))
        {
            await using var reader = await list.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                tables.Add((reader.GetString(0), reader.GetString(1), reader.GetFieldValue<uint>(2)));
            }
        }

        var counts = new List<TableRows>(tables.Count);
        foreach (var (schema, table, oid) in tables)
        {
            // Names read from the server's catalog, quoted (embedded quotes doubled): never from a request.
            // No command timeout: a large table takes as long as it takes (the caller's token bounds it).
            await using var count = new NpgsqlCommand($"SELECT count(*) FROM {Identifier.QuoteAny(schema)}.{Identifier.QuoteAny(table)}", conn, tx)
            {
                CommandTimeout = 0,
            };
            counts.Add(new TableRows(schema, table, (long)(await count.ExecuteScalarAsync(ct))!, oid));
        }

        await using var largeObjects = new NpgsqlCommand("SELECT count(*) FROM pg_largeobject_metadata", conn, tx);
        return (counts, (long)(await largeObjects.ExecuteScalarAsync(ct))!);
    }

    /// <summary>The server's <c>server_version_num</c> and <c>server_version</c>.</summary>
    public async Task<(int Number, string Text)> ServerVersionAsync(Pool pool, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT current_setting('server_version_num')::int, current_setting('server_version')", conn);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt32(0), reader.GetString(1));
    }

    /// <summary>
    /// Lets the admin connect to a database a release closed (<c>ALLOW_CONNECTIONS</c>), for a final backup's dump: the tenant's
    /// logins stay refused and CONNECT stays revoked from PUBLIC, so nobody else enters. True when it was closed and is now open
    /// (the caller closes it again with <see cref="CloseAsync"/>).
    /// </summary>
    public async Task<bool> OpenForAdminAsync(Pool pool, string database, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var open = new NpgsqlCommand("SELECT datallowconn FROM pg_database WHERE datname = @db", conn);
        open.Parameters.AddWithValue("db", database);
        if (await open.ExecuteScalarAsync(ct) is not false)
        {
            return false;
        }

        await ExecuteAsync(conn, $"ALTER DATABASE {Identifier.Quote(database)} ALLOW_CONNECTIONS true", ct);
        return true;
    }

    /// <summary>Closes a database again (<c>ALLOW_CONNECTIONS false</c>) after <see cref="OpenForAdminAsync"/>; the dump's session has ended.</summary>
    public async Task CloseAsync(Pool pool, string database, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"ALTER DATABASE {Identifier.Quote(database)} ALLOW_CONNECTIONS false", ct);
    }

    /// <summary>A one-off admin connection to one of the pool's databases.</summary>
    public Task<NpgsqlConnection> OpenAsync(Pool pool, string database, CancellationToken ct) => connections.OpenDatabaseAsync(pool, database, ct);

    /// <summary>
    /// A fresh scratch database owned by the tenant's owner role (so the restore's objects are the tenant's), that nobody but
    /// the admin and the restore login can enter: CONNECT revoked from PUBLIC and from the owner until the swap. The restore
    /// login (<see cref="RestoreLoginName"/>, in the owner role, SCRAM verifier) gets CONNECT on it alone. Leftovers of an
    /// earlier restore under the same names are dropped first (only restores make these names, under the instance's lock).
    /// </summary>
    public async Task CreateScratchAsync(Pool pool, TenantNames names, string restoreLoginVerifier, CancellationToken ct)
    {
        var scratch = Identifier.Quote(ScratchName(names));
        var owner = Identifier.Quote(names.OwnerRole);
        var login = Identifier.Quote(RestoreLoginName(names));
        if (!restoreLoginVerifier.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal) || restoreLoginVerifier.Contains('\'', StringComparison.Ordinal))
        {
            throw new ArgumentException("Not a SCRAM-SHA-256 verifier.", nameof(restoreLoginVerifier));
        }

        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await DropLeftoversAsync(conn, names, ct);
        await ExecuteAsync(conn, $"CREATE DATABASE {scratch} OWNER {owner} TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS false", ct);
        await ExecuteAsync(conn, $"""
            CREATE ROLE {login} LOGIN NOINHERIT CONNECTION LIMIT 2 PASSWORD '{restoreLoginVerifier}' IN ROLE {owner};
            REVOKE ALL ON DATABASE {scratch} FROM PUBLIC;
            REVOKE CONNECT ON DATABASE {scratch} FROM {owner};
            GRANT CONNECT ON DATABASE {scratch} TO {login};
            ALTER DATABASE {scratch} ALLOW_CONNECTIONS true;
            """, ct);
    }

    /// <summary>
    /// The restore login (<see cref="RestoreLoginName"/>, in the owner role, SCRAM verifier) with CONNECT on one database of the
    /// tenant that is not in use yet: a new instance's database being filled before its row turns ready.
    /// </summary>
    public async Task CreateRestoreLoginAsync(Pool pool, TenantNames names, string database, string restoreLoginVerifier, CancellationToken ct)
    {
        if (!restoreLoginVerifier.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal) || restoreLoginVerifier.Contains('\'', StringComparison.Ordinal))
        {
            throw new ArgumentException("Not a SCRAM-SHA-256 verifier.", nameof(restoreLoginVerifier));
        }

        var login = Identifier.Quote(RestoreLoginName(names));
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await ExecuteAsync(conn, $"DROP ROLE IF EXISTS {login}", ct);
        await ExecuteAsync(conn, $"""
            CREATE ROLE {login} LOGIN NOINHERIT CONNECTION LIMIT 2 PASSWORD '{restoreLoginVerifier}' IN ROLE {Identifier.Quote(names.OwnerRole)};
            GRANT CONNECT ON DATABASE {Identifier.Quote(database)} TO {login};
            """, ct);
    }

    /// <summary>
    /// The restore login's end, before the swap: its sessions ended, whatever it came to own in the scratch (or in
    /// <paramref name="database"/>) passed to the owner role, its privileges gone, the role dropped.
    /// </summary>
    public async Task DropRestoreLoginAsync(Pool pool, TenantNames names, CancellationToken ct, string? database = null)
    {
        var filled = database ?? ScratchName(names);
        var login = Identifier.Quote(RestoreLoginName(names));
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using (var exists = new NpgsqlCommand("SELECT count(*) FROM pg_roles WHERE rolname = @login", conn))
        {
            exists.Parameters.AddWithValue("login", RestoreLoginName(names));
            if ((long)(await exists.ExecuteScalarAsync(ct))! == 0)
            {
                return;
            }
        }

        await ExecuteAsync(conn, $"ALTER ROLE {login} NOLOGIN", ct);
        await using (var terminate = new NpgsqlCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = @login", conn))
        {
            terminate.Parameters.AddWithValue("login", RestoreLoginName(names));
            await terminate.ExecuteScalarAsync(ct);
        }

        await using (var scratchExists = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = @db", conn))
        {
            scratchExists.Parameters.AddWithValue("db", filled);
            if ((long)(await scratchExists.ExecuteScalarAsync(ct))! == 1)
            {
                await using var scratch = await connections.OpenDatabaseAsync(pool, filled, ct);
                await ExecuteAsync(scratch, $"REASSIGN OWNED BY {login} TO {Identifier.Quote(names.OwnerRole)}; DROP OWNED BY {login};", ct);
            }
        }

        if (database is not null)
        {
            await ExecuteAsync(conn, $"REVOKE ALL ON DATABASE {Identifier.Quote(database)} FROM {login}", ct);
        }

        await ExecuteAsync(conn, $"DROP ROLE IF EXISTS {login}", ct);
    }

    /// <summary>Drops the scratch and replaced databases of this tenant's restores, if any (sessions forced out).</summary>
    public async Task DropScratchAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await DropLeftoversAsync(conn, names, ct);
    }

    /// <summary>Logins marked frozen by a restore that did not finish: their LOGIN back (unless the database was closed since).</summary>
    public async Task<IReadOnlyList<string>> FrozenLoginsAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("""
            SELECT r.rolname FROM pg_roles r
            JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
            WHERE r.rolname = ANY(@logins) AND d.description = @mark
            ORDER BY 1
            """, conn);
        cmd.Parameters.AddWithValue("logins", names.LoginRoles.ToArray());
        cmd.Parameters.AddWithValue("mark", FrozenMark);
        var frozen = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            frozen.Add(reader.GetString(0));
        }

        return frozen;
    }

    /// <summary>
    /// The freeze: every login of the tenant that may log in now is refused (and marked), then the sessions on its database
    /// and on the scratch end. Returns the logins it refused, for <see cref="UnfreezeAsync"/>.
    /// </summary>
    public async Task<IReadOnlyList<string>> FreezeAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        var frozen = new List<string>();
        await using (var cmd = new NpgsqlCommand("SELECT rolname FROM pg_roles WHERE rolname = ANY(@logins) AND rolcanlogin ORDER BY 1", conn))
        {
            cmd.Parameters.AddWithValue("logins", names.LoginRoles.ToArray());
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                frozen.Add(reader.GetString(0));
            }
        }

        foreach (var login in frozen)
        {
            var role = Identifier.Quote(login);
            await ExecuteAsync(conn, $"ALTER ROLE {role} NOLOGIN; COMMENT ON ROLE {role} IS '{FrozenMark}';", ct);
        }

        await TerminateAsync(conn, [names.Database, ScratchName(names)], ct);
        return frozen;
    }

    /// <summary>
    /// The swap, in one transaction: the tenant's database becomes the replaced copy and the scratch takes its name, CONNECT
    /// granted to the owner as allocation grants it. A database a release closed meanwhile stays closed under its new content.
    /// Sessions that slipped in are ended and the swap tried again, a few times.
    /// </summary>
    public async Task SwapAsync(Pool pool, TenantNames names, CancellationToken ct)
    {
        var db = Identifier.Quote(names.Database);
        var scratch = Identifier.Quote(ScratchName(names));
        var replaced = Identifier.Quote(ReplacedName(names));
        var owner = Identifier.Quote(names.OwnerRole);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var tx = await conn.BeginTransactionAsync(ct);
                await ExecuteAsync(conn, $"""
                    ALTER DATABASE {db} RENAME TO {replaced};
                    ALTER DATABASE {scratch} RENAME TO {db};
                    GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner};
                    """, ct, tx);
                await using (var open = new NpgsqlCommand("SELECT datallowconn FROM pg_database WHERE datname = @replaced", conn, tx))
                {
                    open.Parameters.AddWithValue("replaced", ReplacedName(names));
                    if (await open.ExecuteScalarAsync(ct) is false)
                    {
                        await ExecuteAsync(conn, $"ALTER DATABASE {db} ALLOW_CONNECTIONS false", ct, tx);
                    }
                }

                await tx.CommitAsync(ct);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < SwapAttempts)
            {
                await TerminateAsync(conn, [names.Database, ScratchName(names)], ct);
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), ct);
            }
        }
    }

    /// <summary>
    /// The unfreeze: the logins the freeze refused may log in again, their marks gone. As a login rotation does, the database
    /// is checked after: closed (a release ran meanwhile) means the logins are refused again.
    /// </summary>
    public async Task UnfreezeAsync(Pool pool, TenantNames names, IReadOnlyList<string> frozen, CancellationToken ct)
    {
        if (frozen.Count == 0)
        {
            return;
        }

        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        foreach (var login in frozen.Where(names.LoginRoles.Contains))
        {
            var role = Identifier.Quote(login);
            await ExecuteAsync(conn, $"ALTER ROLE {role} LOGIN; COMMENT ON ROLE {role} IS NULL;", ct);
        }

        await using var open = new NpgsqlCommand("SELECT datallowconn FROM pg_database WHERE datname = @db", conn);
        open.Parameters.AddWithValue("db", names.Database);
        if (await open.ExecuteScalarAsync(ct) is not true)
        {
            foreach (var login in frozen.Where(names.LoginRoles.Contains))
            {
                await ExecuteAsync(conn, $"ALTER ROLE {Identifier.Quote(login)} NOLOGIN", ct);
            }
        }
    }

    private static async Task DropLeftoversAsync(NpgsqlConnection conn, TenantNames names, CancellationToken ct)
    {
        foreach (var name in (string[])[ScratchName(names), ReplacedName(names)])
        {
            var quoted = Identifier.Quote(name);
            // The tenant may have marked its (now replaced) database a template, which DROP DATABASE refuses.
            await using (var template = new NpgsqlCommand("SELECT datistemplate FROM pg_database WHERE datname = @db", conn))
            {
                template.Parameters.AddWithValue("db", name);
                if (await template.ExecuteScalarAsync(ct) is true)
                {
                    await ExecuteAsync(conn, $"ALTER DATABASE {quoted} IS_TEMPLATE false", ct);
                }
            }

            await ExecuteAsync(conn, $"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", ct);
        }

        // With the scratch gone, the restore login holds nothing (it only ever had CONNECT on the scratch).
        await ExecuteAsync(conn, $"DROP ROLE IF EXISTS {Identifier.Quote(RestoreLoginName(names))}", ct);
    }

    private static async Task TerminateAsync(NpgsqlConnection conn, string[] databases, CancellationToken ct)
    {
        await using var terminate = new NpgsqlCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = ANY(@dbs) AND pid <> pg_backend_pid()", conn);
        terminate.Parameters.AddWithValue("dbs", databases);
        await terminate.ExecuteScalarAsync(ct);
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql, CancellationToken ct, NpgsqlTransaction? tx = null)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
