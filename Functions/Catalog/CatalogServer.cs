using Npgsql;

namespace TenantDb.Functions.Catalog;

/// <summary>The PostgreSQL server the catalog lives on: its endpoint and its system identifier (the same for every database of that cluster).</summary>
public sealed class CatalogServer(NpgsqlDataSource catalog, CatalogOptions options)
{
    public string Host { get; } = new NpgsqlConnectionStringBuilder(options.ConnectionString).Host ?? "";

    public int Port { get; } = new NpgsqlConnectionStringBuilder(options.ConnectionString).Port;

    /// <summary><c>pg_control_system()</c>'s identifier; null where the catalog's role may not read it.</summary>
    public async Task<long?> SystemIdentifierAsync(CancellationToken ct)
    {
        try
        {
            await using var cmd = catalog.CreateCommand("SELECT system_identifier FROM pg_control_system()");
            return await cmd.ExecuteScalarAsync(ct) is long id ? id : null;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            return null;
        }
    }
}
