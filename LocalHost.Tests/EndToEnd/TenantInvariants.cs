using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// The check every fault test ends with (issue 11): the catalog and the pool servers agree. Live rows = the tenant
/// databases on the servers (none missing, no orphan database or role), every pool's counter = its live rows, and every
/// password a client claimed still logs in to its database (a released tenant's login is refused, as release promises).
/// </summary>
public static class TenantInvariants
{
    private const string Live = "('creating', 'ready', 'released')";

    /// <summary>What the check found; <see cref="Held"/> when nothing is wrong.</summary>
    public sealed record Report(int LiveRows, int Databases, int Lost, IReadOnlyList<string> Problems)
    {
        public bool Held => Problems.Count == 0;

        /// <summary>
        /// Writes the fault proof's line (<c>proof faults: injected=1 survived=1 lost=0</c>; the lines of all fault tests
        /// merge into one) and fails the test when the check did not hold. <paramref name="fault"/> names it in the message.
        /// </summary>
        public void AssertSurvived(string fault)
        {
            ProofReport.Write($"proof faults: injected=1 survived={(Held ? 1 : 0)} lost={Lost}");
            Assert.True(Held, $"after the fault '{fault}': {this}");
        }

        public override string ToString() =>
            $"live rows {LiveRows}, tenant databases {Databases}: " + (Held ? "held" : string.Join("; ", Problems));
    }

    /// <summary>
    /// Waits (bounded) until no allocation is mid-way (<c>creating</c>), then compares the catalog with every pool server
    /// in service and logs in with each claimed password. <paramref name="claimed"/> maps instance ids to the credentials
    /// JSON of their last claim.
    /// </summary>
    public static async Task<Report> CheckAsync(AllocatorHost host, IReadOnlyDictionary<Guid, JsonElement> claimed, TimeSpan? settle = null)
    {
        var problems = new List<string>();
        await using var catalog = new NpgsqlConnection(host.CatalogConnectionString + ";Pooling=false");
        await catalog.OpenAsync();
        var deadline = DateTimeOffset.UtcNow + (settle ?? TimeSpan.FromSeconds(90));
        while (await ScalarAsync(catalog, "SELECT count(*) FROM tenant_databases WHERE status = 'creating'") > 0
               && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(500);
        }

        // Leftovers of allocations that failed while their server was down are settled by the cleanup (when the test runs it).
        while (await ScalarAsync(catalog, "SELECT count(*) FROM tenant_databases WHERE status = 'failed' AND cleaned_at IS NULL") > 0
               && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(500);
        }

        var creating = await ScalarAsync(catalog, "SELECT count(*) FROM tenant_databases WHERE status = 'creating'");
        if (creating > 0)
        {
            problems.Add($"{creating} allocation(s) still creating");
        }

        var drift = await ScalarAsync(catalog, $"""
            SELECT count(*) FROM db_servers s
            WHERE s.status <> 'deleted'
              AND s.current_instances <> (SELECT count(*) FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status IN {Live})
            """);
        if (drift > 0)
        {
            problems.Add($"{drift} pool(s) whose current_instances differs from their live rows");
        }

        var stranded = await ScalarAsync(catalog, $"""
            SELECT count(*) FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE t.status IN {Live} AND s.status IN ('deleting', 'deleted')
            """);
        if (stranded > 0)
        {
            problems.Add($"{stranded} live row(s) on a deleted pool");
        }

        var prefix = host.Settings.GetValueOrDefault("Allocation__DatabasePrefix") ?? "odoo_";
        var secrets = Protector(host);
        var liveRows = 0;
        var databases = 0;
        var lost = 0;
        foreach (var pool in await PoolsAsync(catalog))
        {
            var live = await LiveNamesAsync(catalog, pool.Id);
            liveRows += live.Count;
            var password = secrets.Unprotect(pool.AdminPasswordEncrypted, PoolAdminPasswords.Purpose(pool.Name));
            await using var server = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
            {
                Host = pool.Host, Port = pool.Port, Username = pool.AdminUser, Password = password, Database = "postgres",
                Pooling = false, Timeout = 10,
            }.ConnectionString);
            try
            {
                await server.OpenAsync();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                problems.Add($"pool {pool.Name} ({pool.Status}) unreachable: {e.GetType().Name}");
                continue;
            }

            var onServer = await NamesAsync(server, $"SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}')");
            var roles = await NamesAsync(server, $"SELECT rolname FROM pg_roles WHERE starts_with(rolname, '{prefix}')");
            databases += onServer.Count;
            var missing = live.Except(onServer).ToList();
            var orphans = onServer.Except(live).ToList();
            var orphanRoles = roles.Where(r => !live.Contains(Stem(r))).ToList();
            lost += missing.Count;
            if (missing.Count > 0)
            {
                problems.Add($"pool {pool.Name}: {missing.Count} live row(s) without a database");
            }

            if (orphans.Count > 0)
            {
                problems.Add($"pool {pool.Name}: {orphans.Count} orphan database(s) without a live row");
            }

            if (orphanRoles.Count > 0)
            {
                problems.Add($"pool {pool.Name}: {orphanRoles.Count} orphan role(s) without a live row");
            }
        }

        var known = (await NamesAsync(catalog, "SELECT DISTINCT instance_id::text FROM tenant_databases")).ToHashSet();
        var readyNow = (await NamesAsync(catalog, "SELECT instance_id::text FROM tenant_databases WHERE status = 'ready'")).ToHashSet();
        var refused = 0;
        foreach (var (instance, credentials) in claimed)
        {
            var id = instance.ToString("D");
            if (readyNow.Contains(id) && !await CanLogInAsync(credentials))
            {
                refused++;
            }
            else if (!known.Contains(id))
            {
                problems.Add($"claimed instance {id} has no row");
            }
        }

        lost += refused;
        if (refused > 0)
        {
            problems.Add($"{refused} claimed password(s) of ready tenants refused");
        }

        return new Report(liveRows, databases, lost, problems);
    }

    /// <summary>Whether the tenant's database takes its claimed credentials.</summary>
    public static async Task<bool> CanLogInAsync(JsonElement credentials)
    {
        await using var conn = new NpgsqlConnection(ConnectionString(credentials));
        try
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT 1", conn);
            return (int)(await cmd.ExecuteScalarAsync())! == 1;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>A tenant login from a claim's credentials JSON (unpooled, 10 s timeout); <paramref name="user"/> and
    /// <paramref name="password"/> replace the claimed ones.</summary>
    public static string ConnectionString(JsonElement credentials, string? user = null, string? password = null) =>
        new NpgsqlConnectionStringBuilder
        {
            Host = credentials.GetProperty("db_host").GetString(),
            Port = credentials.GetProperty("db_port").GetInt32(),
            Database = credentials.GetProperty("db_name").GetString(),
            Username = user ?? credentials.GetProperty("db_user").GetString(),
            Password = password ?? credentials.GetProperty("db_password").GetString(),
            Pooling = false,
            Timeout = 10,
        }.ConnectionString;

    /// <summary>A role's tenant stem: the login, its alternate (<c>_b</c>) and the owner (<c>_owner</c>) share it.</summary>
    private static string Stem(string role) =>
        role.EndsWith("_owner", StringComparison.Ordinal) ? role[..^"_owner".Length]
        : role.EndsWith("_b", StringComparison.Ordinal) ? role[..^"_b".Length]
        : role;

    private static SecretProtector Protector(AllocatorHost host)
    {
        var options = new SecretsOptions
        {
            Key = host.Settings.GetValueOrDefault("Secrets__Key") ?? "",
            CurrentKeyId = host.Settings.GetValueOrDefault("Secrets__CurrentKeyId"),
        };
        foreach (var (name, value) in host.Settings.Where(s => s.Key.StartsWith("Secrets__Keys__", StringComparison.Ordinal)))
        {
            options.Keys[name["Secrets__Keys__".Length..]] = value;
        }

        return new SecretProtector(Options.Create(options));
    }

    private sealed record PoolRow(long Id, string Name, string Status, string Host, int Port, string AdminUser, string AdminPasswordEncrypted);

    private static async Task<List<PoolRow>> PoolsAsync(NpgsqlConnection catalog)
    {
        var pools = new List<PoolRow>();
        await using var cmd = new NpgsqlCommand("""
            SELECT id, name, status, host, port, admin_user, admin_password_encrypted FROM db_servers
            WHERE status NOT IN ('deleted', 'provisioning', 'error') AND host IS NOT NULL ORDER BY id
            """, catalog);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            pools.Add(new PoolRow(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4),
                reader.GetString(5), reader.GetString(6)));
        }

        return pools;
    }

    private static async Task<HashSet<string>> LiveNamesAsync(NpgsqlConnection catalog, long poolId) =>
        (await NamesAsync(catalog, $"SELECT db_name FROM tenant_databases WHERE db_server_id = {poolId.ToString(CultureInfo.InvariantCulture)} AND status IN {Live}")).ToHashSet();

    private static async Task<List<string>> NamesAsync(NpgsqlConnection conn, string sql)
    {
        var names = new List<string>();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private static async Task<long> ScalarAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }
}
