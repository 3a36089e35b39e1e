using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>
/// One cached <see cref="NpgsqlDataSource"/> per pool server, built from the catalog row with the admin password
/// decrypted at use. Rebuilt when the pool's endpoint or credentials change; disposed when the pool is retired.
/// </summary>
public sealed class PoolConnections(PoolAdminPasswords passwords, IOptions<PoolsOptions> options) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<long, (string Fingerprint, NpgsqlDataSource Source)> _sources = new();

    public NpgsqlDataSource For(Pool pool)
    {
        var fingerprint = $"{pool.Host}|{pool.Port}|{pool.AdminUser}|{pool.AdminPasswordEncrypted}";
        if (_sources.TryGetValue(pool.Id, out var cached) && cached.Fingerprint == fingerprint)
        {
            return cached.Source;
        }

        var created = Build(pool.Host, pool.Port, pool.AdminUser, passwords.Reveal(pool), "postgres");
        var entry = _sources.AddOrUpdate(pool.Id, (fingerprint, created), (_id, old) =>
        {
            if (old.Fingerprint == fingerprint)
            {
                return old;
            }

            _ = old.Source.DisposeAsync();
            return (fingerprint, created);
        });
        if (!ReferenceEquals(entry.Source, created))
        {
            _ = created.DisposeAsync();
        }

        return entry.Source;
    }

    /// <summary>A one-off admin connection (not pooled) to another database of the pool's server, e.g. to undo what a tenant left there.</summary>
    public async Task<NpgsqlConnection> OpenDatabaseAsync(Pool pool, string database, CancellationToken ct)
    {
        var builder = Settings(pool.Host, pool.Port, pool.AdminUser, passwords.Reveal(pool), database);
        builder.Pooling = false;
        var conn = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await conn.OpenAsync(ct);
            return conn;
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    /// <summary>A data source for a server not (yet) in the catalog, e.g. while provisioning or registering.</summary>
    public NpgsqlDataSource Build(string host, int port, string user, string password, string database) =>
        NpgsqlDataSource.Create(Settings(host, port, user, password, database));

    private NpgsqlConnectionStringBuilder Settings(string host, int port, string user, string password, string database) =>
        new()
        {
            Host = host,
            Port = port,
            Username = user,
            Password = password,
            Database = database,
            Timeout = options.Value.ConnectTimeoutSeconds,
            CommandTimeout = 60,
            MaxPoolSize = options.Value.MaxAdminConnections,
            ApplicationName = "tenantdb-allocator",
            // Broken connections to a restarted server are dropped instead of handed out again.
            ConnectionLifetime = 300,
        };

    public async ValueTask ForgetAsync(long poolId)
    {
        if (_sources.TryRemove(poolId, out var entry))
        {
            await entry.Source.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _sources.Keys)
        {
            await ForgetAsync(id);
        }
    }
}
