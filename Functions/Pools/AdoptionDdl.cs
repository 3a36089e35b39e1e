using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>What a pool server says about a database someone asks to adopt, and about its login (read as the pool's admin).</summary>
public sealed record AdoptionFacts
{
    public required string Database { get; init; }
    public required string DbUser { get; init; }
    public bool Exists { get; init; }
    public bool IsTemplate { get; init; }
    public bool AllowsConnections { get; init; }
    public string? Owner { get; init; }
    public bool UserExists { get; init; }

    /// <summary>Attributes that let a role lift its own limits or reach every database (SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS).</summary>
    public IReadOnlyList<string> UserPowers { get; init; } = [];
    public bool UserCanLogin { get; init; }
    public bool UserCreatesDatabases { get; init; }
    public int UserConnectionLimit { get; init; } = -1;
    public bool UserInOwner { get; init; }
    public bool OwnerCanLogin { get; init; }
    public IReadOnlyList<string> OwnerPowers { get; init; } = [];
    public bool AlternateExists { get; init; }

    /// <summary>Roles the login belongs to besides the owner: through them it reaches beyond its database.</summary>
    public IReadOnlyList<string> UserMemberships { get; init; } = [];

    /// <summary>Roles (other than the tenant's and the admin) that are members of the owner: they act as the tenant.</summary>
    public IReadOnlyList<string> OwnerMembers { get; init; } = [];

    /// <summary>Other databases that the tenant's roles own, own objects in, or hold grants on.</summary>
    public IReadOnlyList<string> Elsewhere { get; init; } = [];
    public bool PublicConnect { get; init; }
    public bool PublicTemporary { get; init; }
    public bool PublicCreate { get; init; }

    /// <summary>The role the layout is built around: the login itself when it owns the database, else the database's owner.</summary>
    public string OwnerRole => Owner ?? DbUser;
}

/// <summary>
/// Making an existing database a tenant (issue 14 item 7) without touching its data: CONNECT (and TEMPORARY, CREATE) revoked
/// from PUBLIC and granted to the owner role, the tier's connection limit on the login (where the tenant has no privilege), and
/// CREATEDB taken from the login (a tenant makes no databases outside the catalog's capacity). The database, its objects, their
/// owners and the login's password are not changed; <see cref="UndoAsync"/> puts back what <see cref="ApplyAsync"/> changed.
/// </summary>
public sealed class AdoptionDdl(PoolConnections connections)
{
    /// <summary>The server's system identifier (null where the admin may not read it), to tell the catalog's own server.</summary>
    public async Task<long?> SystemIdentifierAsync(Pool pool, CancellationToken ct)
    {
        try
        {
            await using var cmd = connections.For(pool).CreateCommand("SELECT system_identifier FROM pg_control_system()");
            return await cmd.ExecuteScalarAsync(ct) is long id ? id : null;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            return null;
        }
    }

    /// <summary>Reads the facts of each (database, login) pair; nothing is changed.</summary>
    public async Task<IReadOnlyList<AdoptionFacts>> InspectAsync(Pool pool, IReadOnlyList<(string Database, string DbUser)> candidates, CancellationToken ct)
    {
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        var facts = new List<AdoptionFacts>(candidates.Count);
        foreach (var (database, dbUser) in candidates)
        {
            facts.Add(await InspectAsync(conn, pool.AdminUser, database, dbUser, ct));
        }

        return facts;
    }

    private static async Task<AdoptionFacts> InspectAsync(NpgsqlConnection conn, string admin, string database, string dbUser, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            WITH d AS (
                SELECT oid, datistemplate, datallowconn, datdba FROM pg_database WHERE datname = @db
            ), u AS (
                SELECT oid, rolname, rolsuper, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolcreatedb, rolconnlimit
                FROM pg_roles WHERE rolname = @user
            ), o AS (
                SELECT r.oid, r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolreplication, r.rolbypassrls
                FROM pg_roles r JOIN d ON r.oid = d.datdba
            ), tenant_roles AS (
                SELECT oid FROM u UNION SELECT oid FROM o
            )
            SELECT
                (SELECT count(*) FROM d) = 1 AS db_exists,
                coalesce((SELECT datistemplate FROM d), false) AS is_template,
                coalesce((SELECT datallowconn FROM d), false) AS allows_connections,
                (SELECT rolname::text FROM o) AS owner,
                (SELECT count(*) FROM u) = 1 AS user_exists,
                ARRAY(SELECT p FROM u, LATERAL (VALUES ('SUPERUSER', u.rolsuper), ('CREATEROLE', u.rolcreaterole),
                      ('REPLICATION', u.rolreplication), ('BYPASSRLS', u.rolbypassrls)) v(p, has) WHERE has) AS user_powers,
                coalesce((SELECT rolcanlogin FROM u), false) AS user_can_login,
                coalesce((SELECT rolcreatedb FROM u), false) AS user_creates_databases,
                coalesce((SELECT rolconnlimit FROM u), -1) AS user_connection_limit,
                coalesce((SELECT pg_has_role(u.oid, o.oid, 'USAGE') FROM u, o), false) AS user_in_owner,
                coalesce((SELECT rolcanlogin FROM o), false) AS owner_can_login,
                ARRAY(SELECT p FROM o, LATERAL (VALUES ('SUPERUSER', o.rolsuper), ('CREATEROLE', o.rolcreaterole),
                      ('REPLICATION', o.rolreplication), ('BYPASSRLS', o.rolbypassrls)) v(p, has) WHERE has) AS owner_powers,
                EXISTS (SELECT FROM pg_roles WHERE rolname = @alternate) AS alternate_exists,
                ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN u ON m.member = u.oid JOIN pg_roles g ON g.oid = m.roleid
                      WHERE g.oid NOT IN (SELECT oid FROM o) ORDER BY 1) AS user_memberships,
                ARRAY(SELECT r.rolname::text FROM pg_auth_members m JOIN o ON m.roleid = o.oid JOIN pg_roles r ON r.oid = m.member
                      WHERE r.rolname NOT IN (@user, @alternate, @admin) ORDER BY 1) AS owner_members,
                ARRAY(SELECT x.datname::text FROM (
                          SELECT db.datname FROM pg_shdepend s JOIN pg_database db ON db.oid = s.dbid
                          WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid IN (SELECT oid FROM tenant_roles)
                          UNION
                          SELECT db.datname FROM pg_shdepend s JOIN pg_database db ON s.classid = 'pg_database'::regclass AND db.oid = s.objid
                          WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid IN (SELECT oid FROM tenant_roles)
                          UNION
                          SELECT db.datname FROM pg_database db WHERE db.datdba IN (SELECT oid FROM tenant_roles)
                      ) x WHERE x.datname <> @db ORDER BY 1) AS elsewhere,
                coalesce((SELECT has_database_privilege('public', oid, 'CONNECT') FROM d), false) AS public_connect,
                coalesce((SELECT has_database_privilege('public', oid, 'TEMPORARY') FROM d), false) AS public_temporary,
                coalesce((SELECT has_database_privilege('public', oid, 'CREATE') FROM d), false) AS public_create
            """, conn);
        cmd.Parameters.AddWithValue("db", database);
        cmd.Parameters.AddWithValue("user", dbUser);
        cmd.Parameters.AddWithValue("alternate", dbUser + "_b");
        cmd.Parameters.AddWithValue("admin", admin);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new AdoptionFacts
        {
            Database = database,
            DbUser = dbUser,
            Exists = r.GetBoolean(0),
            IsTemplate = r.GetBoolean(1),
            AllowsConnections = r.GetBoolean(2),
            Owner = r.IsDBNull(3) ? null : r.GetString(3),
            UserExists = r.GetBoolean(4),
            UserPowers = r.GetFieldValue<string[]>(5),
            UserCanLogin = r.GetBoolean(6),
            UserCreatesDatabases = r.GetBoolean(7),
            UserConnectionLimit = r.GetInt32(8),
            UserInOwner = r.GetBoolean(9),
            OwnerCanLogin = r.GetBoolean(10),
            OwnerPowers = r.GetFieldValue<string[]>(11),
            AlternateExists = r.GetBoolean(12),
            UserMemberships = r.GetFieldValue<string[]>(13),
            OwnerMembers = r.GetFieldValue<string[]>(14),
            Elsewhere = r.GetFieldValue<string[]>(15),
            PublicConnect = r.GetBoolean(16),
            PublicTemporary = r.GetBoolean(17),
            PublicCreate = r.GetBoolean(18),
        };
    }

    /// <summary>Closes the database to PUBLIC, sets the login's limit and takes its CREATEDB, in one transaction.</summary>
    public async Task ApplyAsync(Pool pool, AdoptionFacts facts, int connectionLimit, CancellationToken ct)
    {
        var db = Identifier.Quote(facts.Database);
        var owner = Identifier.Quote(facts.OwnerRole);
        var login = Identifier.Quote(facts.DbUser);
        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"""
            REVOKE ALL ON DATABASE {db} FROM PUBLIC;
            GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner};
            ALTER ROLE {login} NOCREATEDB CONNECTION LIMIT {connectionLimit};
            """, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Puts back what <see cref="ApplyAsync"/> changed, from the facts read before it (PUBLIC's rights, the login's limit and CREATEDB).</summary>
    public async Task UndoAsync(Pool pool, AdoptionFacts facts, CancellationToken ct)
    {
        var db = Identifier.Quote(facts.Database);
        var login = Identifier.Quote(facts.DbUser);
        var rights = new[] { (facts.PublicConnect, "CONNECT"), (facts.PublicTemporary, "TEMPORARY"), (facts.PublicCreate, "CREATE") }
            .Where(p => p.Item1).Select(p => p.Item2).ToList();
        var sql = $"ALTER ROLE {login} {(facts.UserCreatesDatabases ? "CREATEDB" : "NOCREATEDB")} CONNECTION LIMIT {facts.UserConnectionLimit};";
        if (rights.Count > 0)
        {
            sql += $"\nGRANT {string.Join(", ", rights)} ON DATABASE {db} TO PUBLIC;";
        }

        await using var conn = await connections.For(pool).OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
