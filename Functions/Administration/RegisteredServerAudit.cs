using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>What registering an existing server found, or why it must be refused (a clear text, never a driver's message).</summary>
public abstract record RegistrationCheck
{
    /// <summary>The server may be a pool; <see cref="Closed"/> lists the databases whose PUBLIC CONNECT was revoked.</summary>
    public sealed record Passed(IReadOnlyList<string> Closed) : RegistrationCheck;

    public sealed record Refused(string Type, string Detail, IReadOnlyList<string>? Databases = null) : RegistrationCheck;
}

/// <summary>
/// Checks a server before it is registered as a pool, as its admin: the admin may create databases and roles; it is not
/// the catalog's own server; no database but <c>postgres</c> (which tenants use, DESIGN §4) is open to every role.
/// <c>template1</c> is closed as provisioning closes it; any other open database (e.g. a <c>legacy</c> one) is closed
/// only when the operator asks (<c>close_public_databases</c>), else the registration is refused, listing them.
/// </summary>
public sealed class RegisteredServerAudit(PoolConnections connections, CatalogServer catalog, IOptions<PoolsOptions> pools)
{
    public const string MaintenanceDatabase = "postgres";
    public const string Template = "template1";

    public async Task<RegistrationCheck> CheckAsync(string host, int port, string user, string password, bool closePublicDatabases, CancellationToken ct)
    {
        await using var admin = connections.Build(host, port, user, password, MaintenanceDatabase);
        ServerFacts facts;
        try
        {
            facts = await ReadFactsAsync(admin, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            return new RegistrationCheck.Refused("server-unreachable", Describe(e, host, port));
        }

        var missing = new List<string>();
        if (!facts.Superuser && !facts.CreateDb)
        {
            missing.Add("CREATEDB");
        }

        if (!facts.Superuser && !facts.CreateRole)
        {
            missing.Add("CREATEROLE");
        }

        if (missing.Count > 0)
        {
            return new RegistrationCheck.Refused("admin-lacks-rights",
                $"The admin role {user} must be a superuser or have CREATEDB and CREATEROLE to make tenants; it lacks {string.Join(" and ", missing)}.");
        }

        if (await IsCatalogServerAsync(host, port, facts.SystemIdentifier, ct))
        {
            return new RegistrationCheck.Refused("catalog-server",
                "This is the PostgreSQL server the catalog lives on; tenants never share a server with the catalog.");
        }

        var foreign = facts.OpenDatabases.Where(d => d != Template).ToList();
        if (foreign.Count > 0 && !closePublicDatabases)
        {
            return new RegistrationCheck.Refused("databases-open-to-public",
                $"These databases accept connections from every role, so tenant logins could connect to them: {string.Join(", ", foreign)}. "
                + "Revoke CONNECT from PUBLIC on them (granting it to the roles that use them), or register again with "
                + "\"close_public_databases\": true to let the allocator revoke it (their owners and explicit grants keep working).",
                foreign);
        }

        var stillOpen = await CloseAsync(admin, facts.OpenDatabases, ct);
        if (stillOpen.Count > 0)
        {
            return new RegistrationCheck.Refused("databases-open-to-public",
                $"The admin role {user} could not revoke CONNECT from PUBLIC on: {string.Join(", ", stillOpen)} (only their owner or a "
                + "superuser can). Revoke it there, then register again.", stillOpen);
        }

        return new RegistrationCheck.Passed(facts.OpenDatabases);
    }

    private sealed record ServerFacts(long? SystemIdentifier, bool Superuser, bool CreateDb, bool CreateRole, IReadOnlyList<string> OpenDatabases);

    private static async Task<ServerFacts> ReadFactsAsync(NpgsqlDataSource admin, CancellationToken ct)
    {
        await using var cmd = admin.CreateCommand("""
            SELECT (SELECT system_identifier FROM pg_control_system()), r.rolsuper, r.rolcreatedb, r.rolcreaterole,
                   ARRAY(SELECT d.datname::text FROM pg_database d
                         WHERE d.datallowconn AND d.datname <> @maintenance AND has_database_privilege('public', d.oid, 'CONNECT')
                         ORDER BY d.datname)
            FROM pg_roles r WHERE r.rolname = current_user
            """);
        cmd.Parameters.AddWithValue("maintenance", MaintenanceDatabase);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new ServerFacts(reader.IsDBNull(0) ? null : reader.GetInt64(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3),
            reader.GetFieldValue<string[]>(4));
    }

    /// <summary>Revokes CONNECT from PUBLIC on each database (a no-op with a warning where the admin is not its owner); returns those still open.</summary>
    private static async Task<IReadOnlyList<string>> CloseAsync(NpgsqlDataSource admin, IReadOnlyList<string> databases, CancellationToken ct)
    {
        if (databases.Count == 0)
        {
            return [];
        }

        await using var conn = await admin.OpenConnectionAsync(ct);
        foreach (var database in databases)
        {
            // Names come from pg_database, not from the caller, and are always quoted.
            await using var revoke = new NpgsqlCommand($"REVOKE CONNECT ON DATABASE {new NpgsqlCommandBuilder().QuoteIdentifier(database)} FROM PUBLIC", conn);
            await revoke.ExecuteNonQueryAsync(ct);
        }

        await using var check = new NpgsqlCommand(
            "SELECT coalesce(array_agg(datname::text ORDER BY datname), '{}') FROM pg_database WHERE datname = ANY(@names) AND has_database_privilege('public', oid, 'CONNECT')", conn);
        check.Parameters.AddWithValue("names", databases.ToArray());
        return (string[])(await check.ExecuteScalarAsync(ct))!;
    }

    private async Task<bool> IsCatalogServerAsync(string host, int port, long? systemIdentifier, CancellationToken ct)
    {
        if (port == catalog.Port && string.Equals(host, catalog.Host, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return systemIdentifier is { } id && await catalog.SystemIdentifierAsync(ct) == id;
    }

    private string Describe(Exception e, string host, int port) => e switch
    {
        PostgresException { SqlState: PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification } =>
            $"The server {host}:{port} refused the admin credentials (wrong user or password, or pg_hba.conf does not let this client in).",
        PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName } =>
            $"The server {host}:{port} has no '{MaintenanceDatabase}' database for the admin to connect to.",
        PostgresException pg => $"The server {host}:{port} refused the admin connection (SQLSTATE {pg.SqlState}).",
        _ => $"The server {host}:{port} did not answer a PostgreSQL connection within {pools.Value.ConnectTimeoutSeconds} seconds.",
    };
}
