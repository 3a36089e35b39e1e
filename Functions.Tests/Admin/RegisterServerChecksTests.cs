using Npgsql;
using TenantDb.Functions.Api;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;

namespace TenantDb.Functions.Tests.Admin;

/// <summary>
/// Registering an existing server checks it first: the admin's rights, that it is not the catalog's own server, and
/// which databases every role may connect to. Each test gets a server of its own (it changes server-wide grants).
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class RegisterServerChecksTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static string Body(int port, string user, string password, bool? close = null, string host = "127.0.0.1") => Http.Json(new Dictionary<string, object?>
    {
        ["name"] = "existing-server", ["host"] = host, ["port"] = port, ["admin_user"] = user, ["admin_password"] = password,
        ["max_instances"] = 5, ["close_public_databases"] = close,
    }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value));

    private async Task<TestServer> ServerWithLegacyAsync()
    {
        var server = await fixture.StartServerAsync($"registered-{Guid.NewGuid().ToString("N")[..8]}", null);
        await using var conn = new NpgsqlConnection(server.ConnectionString());
        await conn.OpenAsync();
        foreach (var sql in new[] { "CREATE ROLE legacy_app LOGIN PASSWORD 'legacy-app-password'", "CREATE DATABASE legacy OWNER legacy_app" })
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            await cmd.ExecuteNonQueryAsync();
        }

        return server;
    }

    private static async Task<bool> PublicMayConnectAsync(TestServer server, string database) =>
        await server.ScalarAsync<bool>($"SELECT has_database_privilege('public', '{database}', 'CONNECT')");

    private static async Task<PostgresException?> ConnectErrorAsync(int port, string user, string password, string database)
    {
        try
        {
            await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1", Port = port, Username = user, Password = password, Database = database, Pooling = false, Timeout = 15,
            }.ConnectionString);
            await conn.OpenAsync();
            return null;
        }
        catch (PostgresException e)
        {
            return e;
        }
    }

    [Fact]
    [Trait("Issue9", "14")]
    public async Task RegisterPool_ForeignDatabaseOpenToPublic_Is422ListingItAndChangesNothing()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await ServerWithLegacyAsync();
        try
        {
            var (status, contentType, problem) = Http.Read(await AdminApi(app).RegisterPool(
                Send("POST", "/api/database/admin/pools/register", Body(server.Port, TestServer.Superuser, server.Password)), None));

            Assert.Equal(422, status);
            Assert.Equal(Problems.ContentType, contentType);
            Assert.Equal(Problems.TypePrefix + "databases-open-to-public", problem.GetProperty("type").GetString());
            Assert.Contains("legacy", problem.GetProperty("detail").GetString());
            Assert.Contains("close_public_databases", problem.GetProperty("detail").GetString());
            Assert.Equal(new[] { "legacy" }, problem.GetProperty("databases").EnumerateArray().Select(d => d.GetString()!).ToArray());
            Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
            Assert.True(await PublicMayConnectAsync(server, "legacy"));
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue9", "14")]
    public async Task RegisterPool_CloseFlag_TenantLoginCannotReachLegacyButItsOwnerCan()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await ServerWithLegacyAsync();
        try
        {
            var (status, _, pool) = Http.Read(await AdminApi(app).RegisterPool(
                Send("POST", "/api/database/admin/pools/register", Body(server.Port, TestServer.Superuser, server.Password, close: true)), None));
            Assert.True(status == 201, $"{status} {pool}");
            Assert.Equal("active", pool.GetProperty("status").GetString());

            var tenant = await AllocateOkAsync(app);
            var password = tenant.Password!.Reveal();

            Assert.False(await PublicMayConnectAsync(server, "legacy"));
            Assert.False(await PublicMayConnectAsync(server, "template1"));
            Assert.True(await PublicMayConnectAsync(server, "postgres"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, (await ConnectErrorAsync(server.Port, tenant.Tenant.DbUser, password, "legacy"))?.SqlState);
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, (await ConnectErrorAsync(server.Port, tenant.Tenant.DbUser, password, "template1"))?.SqlState);
            Assert.Null(await ConnectErrorAsync(server.Port, tenant.Tenant.DbUser, password, "postgres"));
            Assert.Null(await ConnectErrorAsync(server.Port, tenant.Tenant.DbUser, password, tenant.Tenant.DbName));
            Assert.Null(await ConnectErrorAsync(server.Port, "legacy_app", "legacy-app-password", "legacy"));
            var trail = await app.CatalogScalarAsync<string>("SELECT string_agg(reason, ' | ') FROM pool_events WHERE event = 'hardened'");
            Assert.Contains("legacy", trail);
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue9", "14")]
    public async Task RegisterPool_AdminWithoutCreateRole_Is422AndNothingStored()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await fixture.StartServerAsync($"registered-{Guid.NewGuid().ToString("N")[..8]}", null);
        try
        {
            await server.ScalarAsync<int>("CREATE ROLE weak_admin LOGIN CREATEDB PASSWORD 'weak-admin-password'; SELECT 1");

            var (status, _, problem) = Http.Read(await AdminApi(app).RegisterPool(
                Send("POST", "/api/database/admin/pools/register", Body(server.Port, "weak_admin", "weak-admin-password")), None));

            Assert.Equal(422, status);
            Assert.Equal(Problems.TypePrefix + "admin-lacks-rights", problem.GetProperty("type").GetString());
            Assert.Contains("CREATEROLE", problem.GetProperty("detail").GetString());
            Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
            Assert.True(await PublicMayConnectAsync(server, "template1"));
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Theory]
    [Trait("Issue9", "14")]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task RegisterPool_TheCatalogsOwnServer_Is422AndNothingStored(string host)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var catalog = fixture.Catalog;

        var (status, _, problem) = Http.Read(await AdminApi(app).RegisterPool(
            Send("POST", "/api/database/admin/pools/register", Body(catalog.Port, TestServer.Superuser, catalog.Password, close: true, host: host)), None));

        Assert.Equal(422, status);
        Assert.Equal(Problems.TypePrefix + "catalog-server", problem.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
    }
}
