using System.Diagnostics;
using System.Text.Json;
using Npgsql;
using TenantDb.Functions.Drivers;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 14 item 7 through a real LocalHost: an existing server with a legacy database is registered, its database adopted over
/// HTTP, and then the tenant behaves like any other: its claim answers 404 at once (no first password: the platform holds it),
/// a rotation hands a new password through the handoff that logs in and sees the legacy rows, and the old password keeps working
/// until that claim.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class AdoptionEndToEndTests
{
    private const string LegacyPassword = "legacyOdooPassword0123456789abcd";

    private static string Login(int port, string user, string password, string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = port, Username = user, Password = password, Database = database, Pooling = false, Timeout = 15,
    }.ConnectionString;

    private static async Task<long> ExecuteAsync(string connectionString, params string[] statements)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        long last = 0;
        foreach (var sql in statements)
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            last = await cmd.ExecuteScalarAsync() is long n ? n : 0;
        }

        return last;
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task AdoptLegacyDatabase_ClaimIs404_RotationHandsOverANewPasswordThatSeesTheLegacyRows()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>());
        var postgres = new LocalPostgres(LocalPostgres.FindBinDir(null));
        var dataDir = Path.Combine(Path.GetDirectoryName(host.PoolsRoot)!, "legacy-server");
        var port = LocalPostgres.FreeLoopbackPort();
        var admin = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24)).Replace('/', 'x').Replace('+', 'y');
        await postgres.InitAsync(dataDir, port, "postgres", admin, null, CancellationToken.None);
        await postgres.StartAsync(dataDir, CancellationToken.None);
        try
        {
            await ExecuteAsync(Login(port, "postgres", admin, "postgres"),
                $"CREATE ROLE legacy_odoo LOGIN CREATEDB PASSWORD '{LegacyPassword}'", "CREATE DATABASE legacy_odoo OWNER legacy_odoo");
            await ExecuteAsync(Login(port, "legacy_odoo", LegacyPassword, "legacy_odoo"),
                "CREATE TABLE res_partner (id int PRIMARY KEY, name text)", "INSERT INTO res_partner SELECT g, 'p' || g FROM generate_series(1, 25) g");

            using var register = await host.Client.SendAsync(host.Request(HttpMethod.Post, "/api/database/admin/pools/register", AllocatorHost.MasterKey, new
            {
                name = "legacy-shared", host = "127.0.0.1", port, admin_user = "postgres", admin_password = admin, max_instances = 5, close_public_databases = true,
            }));
            Assert.Equal(201, (int)register.StatusCode);
            var poolId = JsonDocument.Parse(await register.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetInt64();

            var instance = Guid.NewGuid();
            var adoptWatch = Stopwatch.StartNew();
            using var adopt = await host.Client.SendAsync(host.Request(HttpMethod.Post, $"/api/database/admin/pools/{poolId}/adopt", AllocatorHost.MasterKey, new
            {
                databases = new[] { new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard", db_name = "legacy_odoo", db_user = "legacy_odoo" } },
            }));
            adoptWatch.Stop();
            var adoptText = await adopt.Content.ReadAsStringAsync();
            Assert.True((int)adopt.StatusCode == 200, adoptText);
            var adopted = JsonDocument.Parse(adoptText).RootElement.GetProperty("databases")[0];
            Assert.Equal("legacy_odoo", adopted.GetProperty("db_user").GetString());
            Assert.Equal(port, adopted.GetProperty("db_port").GetInt32());

            // GET shows it; the claim has nothing to hand over and says so at once (no wait for a deposit).
            using var lookup = await host.Client.SendAsync(host.Request(HttpMethod.Get, $"/api/database/allocations/{instance}"));
            Assert.Equal(200, (int)lookup.StatusCode);
            var claimWatch = Stopwatch.StartNew();
            using var claim = await host.Client.SendAsync(host.Request(HttpMethod.Post, $"/api/database/credentials/{instance}/claim"));
            claimWatch.Stop();
            Assert.Equal(404, (int)claim.StatusCode);
            Assert.True(claimWatch.Elapsed < TimeSpan.FromSeconds(5), $"the claim took {claimWatch.Elapsed}");
            Assert.Equal(25L, await ExecuteAsync(Login(port, "legacy_odoo", LegacyPassword, "legacy_odoo"), "SELECT count(*) FROM res_partner"));

            // Rotate, then claim the new password: it is on legacy_odoo_b, acts as the owner, and sees the legacy rows.
            using var rotate = await host.Client.SendAsync(host.Request(HttpMethod.Post, $"/api/database/credentials/{instance}/rotate"));
            Assert.Equal(200, (int)rotate.StatusCode);
            using var claimed = await host.Client.SendAsync(host.Request(HttpMethod.Post, $"/api/database/credentials/{instance}/claim"));
            Assert.Equal(200, (int)claimed.StatusCode);
            var credentials = JsonDocument.Parse(await claimed.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("legacy_odoo_b", credentials.GetProperty("db_user").GetString());
            var rotated = Login(port, "legacy_odoo_b", credentials.GetProperty("db_password").GetString()!, "legacy_odoo");
            Assert.Equal(26L, await ExecuteAsync(rotated, "INSERT INTO res_partner VALUES (26, 'new')", "SELECT count(*) FROM res_partner"));

            Console.WriteLine($"adopt: 1 database in {adoptWatch.Elapsed.TotalMilliseconds:0} ms over HTTP; claim 404 in {claimWatch.Elapsed.TotalMilliseconds:0} ms");
        }
        finally
        {
            await postgres.StopAsync(dataDir, CancellationToken.None, immediate: true);
        }
    }
}
