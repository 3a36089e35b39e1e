using System.Text.Json;
using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Api;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;

namespace TenantDb.Functions.Tests.Admin;

/// <summary>
/// Issue 14 item 7: existing databases of a registered server (the platform's old shared server) become tenants of the catalog
/// without their data being touched, and then live like any other tenant (rotated, released, purged). Each test gets a server of
/// its own with "legacy" databases made the way the old platform made them.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class AdoptionTests(PostgresFixture fixture, Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private const string LegacyPassword = "legacyAppPassword0123456789abcdef";
    private const string ShopPassword = "shopAppPassword0123456789abcdefgh";

    /// <summary>
    /// A server holding: <c>legacy_one</c> owned by its login <c>legacy_app</c> (CREATEDB, as the old platform made Odoo users), with
    /// 3 rows; <c>shop</c> owned by a NOLOGIN <c>shop_owner</c> whose member <c>shop_app</c> logs in, with 2 rows; and <c>shared_a</c> /
    /// <c>shared_b</c>, both owned by one login <c>shared_app</c>.
    /// </summary>
    private async Task<TestServer> LegacyServerAsync()
    {
        var server = await fixture.StartServerAsync($"adopt-{Guid.NewGuid().ToString("N")[..8]}", null);
        await ExecuteAsync(server.ConnectionString(),
            $"CREATE ROLE legacy_app LOGIN CREATEDB PASSWORD '{LegacyPassword}'",
            "CREATE DATABASE legacy_one OWNER legacy_app",
            "CREATE ROLE shop_owner NOLOGIN",
            $"CREATE ROLE shop_app LOGIN PASSWORD '{ShopPassword}' IN ROLE shop_owner",
            "CREATE DATABASE shop OWNER shop_owner",
            "CREATE ROLE shared_app LOGIN PASSWORD 'sharedAppPassword0123456789abcdefg'",
            "CREATE DATABASE shared_a OWNER shared_app",
            "CREATE DATABASE shared_b OWNER shared_app");
        await ExecuteAsync(Login(server.Port, "legacy_app", LegacyPassword, "legacy_one"),
            "CREATE TABLE orders (id int PRIMARY KEY, item text)", "INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c')");
        await ExecuteAsync(Login(server.Port, "shop_app", ShopPassword, "shop"),
            "SET ROLE shop_owner", "CREATE TABLE carts (id int)", "INSERT INTO carts VALUES (1), (2)");
        return server;
    }

    private static string Login(int port, string user, string password, string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = port, Username = user, Password = password, Database = database, Pooling = false, Timeout = 15,
    }.ConnectionString;

    private static async Task ExecuteAsync(string connectionString, params string[] statements)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        foreach (var sql in statements)
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    private static async Task<long> CountAsync(string connectionString, string table)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table}", conn);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<string?> LoginErrorAsync(string connectionString)
    {
        try
        {
            await using var conn = new NpgsqlConnection(connectionString);
            await conn.OpenAsync();
            return null;
        }
        catch (PostgresException e)
        {
            return e.SqlState;
        }
    }

    private static async Task<long> RegisterAsync(TestApp app, TestServer server, int maxInstances = 5)
    {
        var (status, _, pool) = Http.Read(await AdminApi(app).RegisterPool(Send("POST", "/api/database/admin/pools/register", Http.Json(new Dictionary<string, object?>
        {
            ["name"] = $"old-shared-{Guid.NewGuid().ToString("N")[..6]}", ["host"] = "127.0.0.1", ["port"] = server.Port,
            ["admin_user"] = TestServer.Superuser, ["admin_password"] = server.Password, ["max_instances"] = maxInstances,
            ["close_public_databases"] = true,
        })), None));
        Assert.Equal(201, status);
        return pool.GetProperty("id").GetInt64();
    }

    private static object Item(Guid instance, string tier, string db, string user) => new Dictionary<string, object?>
    {
        ["instance_id"] = instance.ToString(), ["customer_id"] = Guid.NewGuid().ToString(), ["plan_tier"] = tier, ["db_name"] = db, ["db_user"] = user,
    };

    private static async Task<(int Status, string? ContentType, JsonElement Body)> AdoptAsync(TestApp app, long poolId, params object[] items) =>
        await AdoptRawAsync(app, poolId.ToString(System.Globalization.CultureInfo.InvariantCulture), Http.Json(new { databases = items }));

    private static async Task<(int Status, string? ContentType, JsonElement Body)> AdoptRawAsync(TestApp app, string poolId, string body) =>
        Http.Read(await new AdoptionFunctions(app.Get<TenantAdoptionService>()).AdoptDatabases(
            Send("POST", $"/api/database/admin/pools/{poolId}/adopt", body, poolId), poolId, None));

    [Fact]
    [Trait("Issue", "14")]
    public async Task Adopt_OwnerLoginAndMemberLogin_ReadyTenantsDataAndPasswordsIntactThenRotatedReleasedPurged()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await LegacyServerAsync();
        try
        {
            var poolId = await RegisterAsync(app, server);
            Guid legacy = Guid.NewGuid(), shop = Guid.NewGuid();

            var (status, _, body) = await AdoptAsync(app, poolId, Item(legacy, "standard", "legacy_one", "legacy_app"), Item(shop, "starter", "shop", "shop_app"));

            Assert.True(status == 200, body.ToString());
            Assert.Equal(2, body.GetProperty("adopted").GetInt32());
            Assert.Equal(new[] { "legacy_one", "shop" }, Strings(body.GetProperty("databases"), "db_name"));
            Assert.Equal(new[] { "legacy_app", "shop_app" }, Strings(body.GetProperty("databases"), "db_user"));
            Assert.DoesNotContain(body.GetProperty("databases").EnumerateArray(), d => d.TryGetProperty("credentials", out _) || d.TryGetProperty("db_password", out _));
            // Catalog: ready rows with their own names, counted in the pool, one event each.
            Assert.Equal(2, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", poolId)));
            Assert.Equal("legacy_app|legacy_app|ready", await app.CatalogScalarAsync<string>(
                "SELECT owner_role || '|' || login_role || '|' || status FROM tenant_databases WHERE instance_id = @i", ("i", legacy)));
            Assert.Equal("shop_owner|shop_app|ready", await app.CatalogScalarAsync<string>(
                "SELECT owner_role || '|' || login_role || '|' || status FROM tenant_databases WHERE instance_id = @i", ("i", shop)));
            Assert.Equal(2L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id AND event = @e",
                ("id", poolId), ("e", PoolEventNames.TenantAdopted)));
            // Pool: closed to PUBLIC, the tiers' limits on the logins, no CREATEDB; the data and both old passwords as they were.
            Assert.False(await server.ScalarAsync<bool>("SELECT has_database_privilege('public', 'legacy_one', 'CONNECT')"));
            Assert.False(await server.ScalarAsync<bool>("SELECT has_database_privilege('public', 'shop', 'CONNECT')"));
            Assert.Equal("40|false", await server.ScalarAsync<string>("SELECT rolconnlimit || '|' || rolcreatedb FROM pg_roles WHERE rolname = 'legacy_app'"));
            Assert.Equal(20, await server.ScalarAsync<int>("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'shop_app'"));
            Assert.Equal(3L, await CountAsync(Login(server.Port, "legacy_app", LegacyPassword, "legacy_one"), "orders"));
            Assert.Equal(2L, await CountAsync(Login(server.Port, "shop_app", ShopPassword, "shop"), "carts"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await LoginErrorAsync(Login(server.Port, "shop_app", ShopPassword, "legacy_one")));

            // Rotated like any tenant: the new password on legacy_app_b (in the owner, acting as it), then the old login retired.
            var rotation = app.Get<PasswordRotation>();
            var changed = Assert.IsType<PasswordChange.Changed>(await rotation.ChangePasswordAsync(legacy, None));
            Assert.Equal("legacy_app_b", changed.Login);
            var rotated = Login(server.Port, "legacy_app_b", changed.Password.Reveal(), "legacy_one");
            await ExecuteAsync(rotated, "INSERT INTO orders VALUES (4, 'd')");
            Assert.Equal(4L, await CountAsync(rotated, "orders"));
            var live = (await app.Get<TenantStore>().FindLiveAsync(legacy, None))!;
            Assert.True(await rotation.CommitAsync(live.Pool, live.Tenant.Id, TenantNames.Of(live.Tenant, "odoo_"), changed.RotationId, changed.Login, "test", None));
            Assert.Equal(PostgresErrorCodes.InvalidAuthorizationSpecification, await LoginErrorAsync(Login(server.Port, "legacy_app", LegacyPassword, "legacy_one")));
            Assert.Equal("legacy_app_b", await app.CatalogScalarAsync<string>("SELECT db_user FROM tenant_databases WHERE instance_id = @i", ("i", legacy)));
            Assert.Equal(4L, await CountAsync(rotated, "orders"));

            // Released (logins refused, data kept), then purged: its database and roles gone, its slot back; the other tenant untouched.
            Assert.IsType<Allocations.ReleaseOutcome.Released>(await app.Allocation.ReleaseAsync(legacy, "test", None));
            Assert.NotNull(await LoginErrorAsync(rotated));
            var purged = await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);
            Assert.Equal(1, purged.Purged);
            Assert.Equal(0L, await server.ScalarAsync<long>("SELECT count(*) FROM pg_database WHERE datname = 'legacy_one'"));
            Assert.Equal(0L, await server.ScalarAsync<long>("SELECT count(*) FROM pg_roles WHERE rolname IN ('legacy_app', 'legacy_app_b')"));
            Assert.Equal(1, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", poolId)));
            Assert.Equal(2L, await CountAsync(Login(server.Port, "shop_app", ShopPassword, "shop"), "carts"));
            Assert.Equal(1L, await server.ScalarAsync<long>("SELECT count(*) FROM pg_roles WHERE rolname = 'shop_owner'"));
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Adopt_OneBadItemAmongGood_422PerItemAndNothingChanged()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await LegacyServerAsync();
        try
        {
            var poolId = await RegisterAsync(app, server, maxInstances: 10);
            var first = Guid.NewGuid();
            Assert.Equal(200, (await AdoptAsync(app, poolId, Item(first, "standard", "shop", "shop_app"))).Status);
            var connLimit = await server.ScalarAsync<int>("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'legacy_app'");
            await ExecuteAsync(server.ConnectionString(), "GRANT CONNECT ON DATABASE legacy_one TO PUBLIC");

            var (status, contentType, problem) = await AdoptAsync(app, poolId,
                Item(Guid.NewGuid(), "standard", "legacy_one", "legacy_app"),   // fine on its own
                Item(Guid.NewGuid(), "standard", "no_such_db", "nobody_app"),   // does not exist
                Item(Guid.NewGuid(), "standard", "shop", "shop_app"),           // already a tenant
                Item(first, "standard", "shared_a", "shared_app"),               // instance already live; shared_app also owns shared_b
                Item(Guid.NewGuid(), "premium", "other_db", "other_app"));      // a dedicated tier on a shared pool

            Assert.Equal(422, status);
            Assert.Equal(Problems.ContentType, contentType);
            Assert.Equal(Problems.TypePrefix + "adoption-refused", problem.GetProperty("type").GetString());
            var errors = problem.GetProperty("errors");
            Assert.False(errors.TryGetProperty("databases[0]", out _));
            Assert.Contains("no database no_such_db", errors.GetProperty("databases[1]")[0].GetString());
            Assert.Contains(errors.GetProperty("databases[2]").EnumerateArray(), e => e.GetString()!.Contains("already a tenant", StringComparison.Ordinal));
            Assert.Contains(errors.GetProperty("databases[3]").EnumerateArray(), e => e.GetString()!.Contains("live database", StringComparison.Ordinal));
            Assert.Contains(errors.GetProperty("databases[3]").EnumerateArray(), e => e.GetString()!.Contains("shared_b", StringComparison.Ordinal));
            Assert.Contains(errors.GetProperty("databases[4]").EnumerateArray(), e => e.GetString()!.Contains("dedicated", StringComparison.Ordinal));

            // Nothing changed: no rows, no slots, legacy_one still as it was.
            Assert.Equal(1, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", poolId)));
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
            Assert.True(await server.ScalarAsync<bool>("SELECT has_database_privilege('public', 'legacy_one', 'CONNECT')"));
            Assert.Equal(connLimit, await server.ScalarAsync<int>("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'legacy_app'"));
            Assert.True(await server.ScalarAsync<bool>("SELECT rolcreatedb FROM pg_roles WHERE rolname = 'legacy_app'"));

            // The pool's admin as db_user: refused too.
            var (adminStatus, _, adminProblem) = await AdoptAsync(app, poolId, Item(Guid.NewGuid(), "standard", "legacy_one", "postgres"));
            Assert.Equal(422, adminStatus);
            Assert.Contains("admin", adminProblem.GetProperty("detail").GetString());
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Adopt_BadShapesNamesAndPools_4xxProblemsWithoutDdl()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await LegacyServerAsync();
        try
        {
            var poolId = await RegisterAsync(app, server, maxInstances: 1);
            var processPool = await app.AddPoolAsync($"made-{Guid.NewGuid().ToString("N")[..6]}", "127.0.0.1", fixture.Pools[0].Port, TestServer.Superuser,
                fixture.Pools[0].Password, DriverNames.Process, 10);

            // 400: shapes and names, per item.
            var (status, _, problem) = await AdoptAsync(app, poolId,
                Item(Guid.NewGuid(), "gold", "Legacy-One", "legacy_app"),
                Item(Guid.NewGuid(), "standard", "template1", "x\"; DROP ROLE postgres; --"),
                Item(Guid.NewGuid(), "standard", "odoo_0123456789abcdef01234567", "legacy_app"));
            Assert.Equal(400, status);
            var errors = problem.GetProperty("errors");
            Assert.Equal(2, errors.GetProperty("databases[0]").GetArrayLength());
            Assert.Equal(2, errors.GetProperty("databases[1]").GetArrayLength());
            Assert.Contains("allocator makes", errors.GetProperty("databases[2]")[0].GetString());
            Assert.Equal(400, (await AdoptRawAsync(app, poolId.ToString(System.Globalization.CultureInfo.InvariantCulture), "{\"databases\":[]}")).Status);
            Assert.Equal(400, (await AdoptRawAsync(app, poolId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Http.Json(new { databases = Enumerable.Range(0, TenantAdoptionService.MaxDatabases + 1).Select(_ => Item(Guid.NewGuid(), "standard", "a", "b")) }))).Status);
            Assert.Equal(400, (await AdoptRawAsync(app, "0", Http.Json(new { databases = new[] { Item(Guid.NewGuid(), "standard", "shop", "shop_app") } }))).Status);

            // 404 / 409: no such pool, a pool the allocator made, more than the pool's room.
            Assert.Equal(404, (await AdoptAsync(app, 999_999, Item(Guid.NewGuid(), "standard", "shop", "shop_app"))).Status);
            var (notRegistered, _, notRegisteredProblem) = await AdoptAsync(app, processPool.Id, Item(Guid.NewGuid(), "standard", "shop", "shop_app"));
            Assert.Equal(409, notRegistered);
            Assert.Equal(Problems.TypePrefix + "pool-not-adoptable", notRegisteredProblem.GetProperty("type").GetString());
            var (full, _, fullProblem) = await AdoptAsync(app, poolId, Item(Guid.NewGuid(), "standard", "shop", "shop_app"), Item(Guid.NewGuid(), "standard", "legacy_one", "legacy_app"));
            Assert.Equal(409, full);
            Assert.Equal(Problems.TypePrefix + "pool-capacity", fullProblem.GetProperty("type").GetString());
            // A drained registered pool is not adoptable either.
            await app.RewriteHistoryAsync("UPDATE db_servers SET status = 'draining' WHERE id = @id", ("id", poolId));
            Assert.Equal(409, (await AdoptAsync(app, poolId, Item(Guid.NewGuid(), "standard", "shop", "shop_app"))).Status);

            Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
            Assert.Equal(-1, await server.ScalarAsync<int>("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'shop_app'"));
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Adopted_BackupDropTableRestoreInPlace_TableBackAndTheOldPasswordStillLogsIn()
    {
        var container = $"test-adopt-backups-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true", ["Backups:Container"] = container, ["Pools:WarmStock"] = "0",
        });
        var server = await LegacyServerAsync();
        try
        {
            var poolId = await RegisterAsync(app, server);
            var legacy = Guid.NewGuid();
            Assert.Equal(200, (await AdoptAsync(app, poolId, Item(legacy, "standard", "legacy_one", "legacy_app"))).Status);
            var started = Assert.IsType<BackupStart.Started>(await app.Get<BackupService>().RecordAsync(legacy, None));
            var backup = await app.Get<BackupService>().RunAsync(started.Backup.Id, None);
            Assert.Equal(BackupStatus.Completed, backup.Status);
            var login = Login(server.Port, "legacy_app", LegacyPassword, "legacy_one");
            await ExecuteAsync(login, "DROP TABLE orders");

            var restored = await app.Get<RestoreService>().RunAsync(new RestoreRunInput(legacy, backup.BackupId), None);

            Assert.True(restored.Status == RestoreResult.Restored, restored.Error);
            Assert.Equal(3L, await CountAsync(login, "orders"));
            await ExecuteAsync(login, "INSERT INTO orders VALUES (4, 'd')");
            Assert.Equal("legacy_app", await server.ScalarAsync<string>("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'legacy_one'"));
            Assert.False(await server.ScalarAsync<bool>("SELECT has_database_privilege('public', 'legacy_one', 'CONNECT')"));
            Assert.Equal(2L, await CountAsync(Login(server.Port, "shop_app", ShopPassword, "shop"), "carts"));
        }
        finally
        {
            await server.StopImmediatelyAsync();
            await new Azure.Storage.Blobs.BlobServiceClient("UseDevelopmentStorage=true").GetBlobContainerClient(container).DeleteIfExistsAsync();
        }
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Adopt_TheLargestRequest_AllReadyCountedAndClosedInOneGo()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await fixture.StartServerAsync($"adopt-many-{Guid.NewGuid().ToString("N")[..8]}", null);
        try
        {
            const int Count = TenantAdoptionService.MaxDatabases;
            var statements = Enumerable.Range(0, Count).SelectMany(i => new[]
            {
                $"CREATE ROLE app_{i:D3} LOGIN PASSWORD 'appPassword0123456789abcdef{i:D3}'", $"CREATE DATABASE shop_{i:D3} OWNER app_{i:D3}",
            }).ToArray();
            await ExecuteAsync(server.ConnectionString(), statements);
            var poolId = await RegisterAsync(app, server, maxInstances: Count);
            var items = Enumerable.Range(0, Count).Select(i => Item(Guid.NewGuid(), "starter", $"shop_{i:D3}", $"app_{i:D3}")).ToArray();

            var watch = System.Diagnostics.Stopwatch.StartNew();
            var (status, _, body) = await AdoptAsync(app, poolId, items);
            watch.Stop();

            Assert.True(status == 200, body.ToString());
            Assert.Equal(Count, body.GetProperty("adopted").GetInt32());
            Assert.Equal("full", await app.CatalogScalarAsync<string>("SELECT status || '' FROM db_servers WHERE id = @id", ("id", poolId)));
            Assert.Equal(Count, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", poolId)));
            Assert.Equal(0L, await server.ScalarAsync<long>(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'shop_%' AND has_database_privilege('public', oid, 'CONNECT')"));
            Assert.Equal((long)Count, await server.ScalarAsync<long>("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'app_%' AND rolconnlimit = 20"));
            Assert.Equal(1L, await CountAsync(Login(server.Port, "app_042", "appPassword0123456789abcdef042", "shop_042"), "pg_database WHERE datname = 'shop_042'"));
            output.WriteLine($"adopt: {Count} databases in one request in {watch.Elapsed.TotalMilliseconds:0} ms ({watch.Elapsed.TotalMilliseconds / Count:0.0} ms each)");
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Adopt_PoolOnTheCatalogsOwnServer_422CatalogServer()
    {
        await using var app = await TestApp.StartAsync(fixture);
        // The catalog's server entered as a registered pool by hand (registration itself refuses it): adoption refuses it again.
        var pool = await app.AddPoolAsync("catalog-server", "127.0.0.1", fixture.Catalog.Port, TestServer.Superuser, fixture.Catalog.Password, DriverNames.Registered, 10);

        var (status, _, problem) = await AdoptAsync(app, pool.Id, Item(Guid.NewGuid(), "standard", "some_db", "some_user"));

        Assert.Equal(422, status);
        Assert.Equal(Problems.TypePrefix + "catalog-server", problem.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
    }
}
