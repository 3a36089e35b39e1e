using System.Text.Json;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Admin;

/// <summary>The operators' pool routes, called as the host calls them, against a real catalog and real pool servers.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class AdminFunctionsTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task ListPools_FiltersAndPaging_ReturnMatchingPageWithTotal()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var api = AdminApi(app);
        var server = fixture.Pools[1];
        for (var i = 0; i < 5; i++)
        {
            await app.AddPoolAsync(server, 10, name: $"shared-{i}");
        }

        await app.AddPoolAsync(server, 1, name: "dedicated-0", type: ServerType.Dedicated, dedicatedTo: Guid.NewGuid());
        await app.AddPoolAsync(server, 10, name: "draining-0", status: PoolStatus.Draining);
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET health_status = 'unhealthy' WHERE name = 'shared-4'");

        var (status, _, page) = Http.Read(await api.ListPools(Get("/api/database/admin/pools", "?server_type=shared&status=active&page=2&page_size=2"), None));
        Assert.Equal(200, status);
        Assert.Equal(5, page.GetProperty("total").GetInt64());
        Assert.Equal(2, page.GetProperty("page").GetInt32());
        Assert.Equal(2, page.GetProperty("page_size").GetInt32());
        Assert.Equal(3, page.GetProperty("total_pages").GetInt64());
        Assert.Equal(["shared-2", "shared-3"], Strings(page.GetProperty("pools"), "name"));

        var (_, _, all) = Http.Read(await api.ListPools(Get("/api/database/admin/pools"), None));
        Assert.Equal(7, all.GetProperty("total").GetInt64());
        var (_, _, unhealthy) = Http.Read(await api.ListPools(Get("/api/database/admin/pools", "?health_status=unhealthy"), None));
        Assert.Equal(["shared-4"], Strings(unhealthy.GetProperty("pools"), "name"));
        var (_, _, dedicated) = Http.Read(await api.ListPools(Get("/api/database/admin/pools", "?server_type=dedicated"), None));
        Assert.Equal(["dedicated-0"], Strings(dedicated.GetProperty("pools"), "name"));
        var (_, _, beyond) = Http.Read(await api.ListPools(Get("/api/database/admin/pools", "?page=9"), None));
        Assert.Equal(0, beyond.GetProperty("pools").GetArrayLength());
        Assert.Equal(7, beyond.GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task GetPool_WithTenantsAndDrain_ShowsCountsAndRecentEventsButNoSecret()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var api = AdminApi(app);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        await AllocateOkAsync(app);
        var released = await AllocateOkAsync(app);
        await app.Allocation.ReleaseAsync(released.Tenant.InstanceId, "test", None);
        await api.DrainPool(Send("POST", $"/api/database/admin/pools/{pool.Id}/drain"), pool.Id.ToString(), None);

        var result = await api.GetPool(Get($"/api/database/admin/pools/{pool.Id}"), pool.Id.ToString(), None);
        var (status, _, body) = Http.Read(result);

        Assert.Equal(200, status);
        Assert.Equal(pool.Name, body.GetProperty("pool").GetProperty("name").GetString());
        Assert.Equal("draining", body.GetProperty("pool").GetProperty("status").GetString());
        Assert.Equal(20.0, body.GetProperty("pool").GetProperty("utilization_percent").GetDouble());
        Assert.Equal(2, body.GetProperty("live_tenants").GetInt32());
        Assert.Equal(1, body.GetProperty("tenant_counts").GetProperty("ready").GetInt32());
        Assert.Equal(1, body.GetProperty("tenant_counts").GetProperty("released").GetInt32());
        Assert.Equal(0, body.GetProperty("tenant_counts").GetProperty("failed").GetInt32());
        var events = body.GetProperty("recent_events");
        Assert.Equal("status_changed", events[0].GetProperty("event").GetString());
        Assert.Equal("draining", events[0].GetProperty("to_status").GetString());
        Assert.Contains("pool_created", Strings(events, "event"));
        Assert.Contains("tenant_status_changed", Strings(events, "event"));
        var json = JsonSerializer.Serialize(((Microsoft.AspNetCore.Mvc.JsonResult)result).Value, ApiJson.Options);
        Assert.DoesNotContain("password", json);
        Assert.DoesNotContain(pool.AdminPasswordEncrypted, json);
        Assert.DoesNotContain(fixture.Pools[1].Password, json);
    }

    [Theory]
    [InlineData("424242", 404)]
    public async Task PoolRoutes_UnknownId_AreProblemsNever500(string id, int expected)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var api = AdminApi(app);
        var path = $"/api/database/admin/pools/{id}";

        var results = new[]
        {
            await api.GetPool(Get(path), id, None),
            await api.DrainPool(Send("POST", path + "/drain", id: id), id, None),
            await api.ActivatePool(Send("POST", path + "/activate", id: id), id, None),
            await api.RetirePool(Send("DELETE", path, id: id), id, None),
            await api.CheckPoolHealth(Send("POST", path + "/health-check", id: id), id, None),
        };

        Assert.All(results, r =>
        {
            var (status, contentType, body) = Http.Read(r);
            Assert.Equal(expected, status);
            Assert.Equal(Problems.ContentType, contentType);
            Assert.StartsWith("urn:tenantdb:problem:", body.GetProperty("type").GetString());
        });
    }

    [Fact]
    public async Task GetStats_MixedPools_TotalsMatchTheCatalog()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[1], 10, priority: 1);
        await app.AddPoolAsync(fixture.Pools[2], 4, priority: 2);
        await app.AddPoolAsync(fixture.Pools[2], 6, status: PoolStatus.Draining);
        await app.AddPoolAsync(fixture.Pools[2], 1, type: ServerType.Dedicated, dedicatedTo: Guid.NewGuid());
        await app.AddPoolAsync(fixture.Pools[2], 5, status: PoolStatus.Deleted);
        for (var i = 0; i < 3; i++)
        {
            await AllocateOkAsync(app);
        }

        var (status, _, stats) = Http.Read(await AdminApi(app).GetStats(Get("/api/database/admin/stats"), None));

        Assert.Equal(200, status);
        Assert.Equal(4, stats.GetProperty("total_pools").GetInt32());
        Assert.Equal(3, stats.GetProperty("total_tenants").GetInt32());
        Assert.Equal(21, stats.GetProperty("total_capacity").GetInt32());
        Assert.Equal(3, stats.GetProperty("used_capacity").GetInt32());
        Assert.Equal(12, stats.GetProperty("available_capacity").GetInt32()); // active pools only: (10 - 3) + 4 + 1
        Assert.Equal(14.3, stats.GetProperty("utilization_percent").GetDouble());
        Assert.Equal(3, stats.GetProperty("pools_by_status").GetProperty("active").GetInt32());
        Assert.Equal(1, stats.GetProperty("pools_by_status").GetProperty("draining").GetInt32());
        Assert.False(stats.GetProperty("pools_by_status").TryGetProperty("deleted", out _));
        Assert.Equal(4, stats.GetProperty("pools_by_health").GetProperty("unknown").GetInt32());
        Assert.Equal(3, stats.GetProperty("tenants_by_status").GetProperty("ready").GetInt32());
        var shared = stats.GetProperty("by_server_type").GetProperty("shared");
        Assert.Equal(3, shared.GetProperty("pools").GetInt32());
        Assert.Equal(20, shared.GetProperty("capacity").GetInt32());
        Assert.Equal(15.0, shared.GetProperty("utilization_percent").GetDouble());
        Assert.Equal(1, stats.GetProperty("by_server_type").GetProperty("dedicated").GetProperty("pools").GetInt32());
    }

    [Fact]
    public async Task DrainThenActivate_TakesPoolOutOfPlacementAndBack()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var api = AdminApi(app);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 2);
        var id = pool.Id.ToString();

        var (drained, _, drainBody) = Http.Read(await api.DrainPool(Send("POST", $"/api/database/admin/pools/{id}/drain", id: id), id, None));
        var (again, _, _) = Http.Read(await api.DrainPool(Send("POST", $"/api/database/admin/pools/{id}/drain", id: id), id, None));
        var noRoom = await app.Allocation.AllocateAsync(Tenant(), None);

        Assert.Equal(200, drained);
        Assert.Equal("draining", drainBody.GetProperty("status").GetString());
        Assert.Equal(200, again);
        Assert.IsType<AllocationOutcome.NoCapacity>(noRoom);

        var (activated, _, activeBody) = Http.Read(await api.ActivatePool(Send("POST", $"/api/database/admin/pools/{id}/activate", id: id), id, None));
        Assert.Equal(200, activated);
        Assert.Equal("active", activeBody.GetProperty("status").GetString());
        Assert.Equal(pool.Id, (await AllocateOkAsync(app)).Pool.Id);
        await AllocateOkAsync(app);

        // At capacity a drained pool comes back full, not active.
        await api.DrainPool(Send("POST", $"/api/database/admin/pools/{id}/drain", id: id), id, None);
        var (_, _, fullBody) = Http.Read(await api.ActivatePool(Send("POST", $"/api/database/admin/pools/{id}/activate", id: id), id, None));
        Assert.Equal("full", fullBody.GetProperty("status").GetString());
    }

    [Fact]
    public async Task DrainAndActivate_WrongStatus_AreConflicts()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var api = AdminApi(app);
        var provisioning = (await app.AddPoolAsync(fixture.Pools[1], 2, status: PoolStatus.Provisioning)).Id.ToString();
        var deleted = (await app.AddPoolAsync(fixture.Pools[1], 2, status: PoolStatus.Deleted)).Id.ToString();

        var (drain, _, body) = Http.Read(await api.DrainPool(Send("POST", "/drain", id: provisioning), provisioning, None));
        var (activate, _, _) = Http.Read(await api.ActivatePool(Send("POST", "/activate", id: deleted), deleted, None));

        Assert.Equal(409, drain);
        Assert.Equal("urn:tenantdb:problem:pool-status", body.GetProperty("type").GetString());
        Assert.Equal(409, activate);
    }

    [Fact]
    public async Task RetirePool_WithTenants_IsConflictAndKeepsPool()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        var tenant = await AllocateOkAsync(app);
        await app.Allocation.ReleaseAsync(tenant.Tenant.InstanceId, "test", None); // released still counts: its data is kept
        var id = pool.Id.ToString();

        var (status, _, body) = Http.Read(await AdminApi(app).RetirePool(Send("DELETE", $"/api/database/admin/pools/{id}", id: id), id, None));

        Assert.Equal(409, status);
        Assert.Equal("urn:tenantdb:problem:pool-has-tenants", body.GetProperty("type").GetString());
        Assert.Equal("active", await app.CatalogScalarAsync<string>("SELECT status FROM db_servers WHERE id = @id", ("id", pool.Id)));
    }

    [Fact]
    public async Task RetirePool_EmptyProcessPool_RemovesServerAndMarksDeleted()
    {
        await using var app = await TestApp.StartAsync(fixture, IsolatedDrivers());
        var (spec, endpoint) = await CreateProcessServerAsync(app, "retire");
        var driver = app.Get<PoolProvisioners>().For("process");
        var pool = await app.AddPoolAsync(spec.Name, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword, "process", 5, resourceId: endpoint.ResourceId);
        var id = pool.Id.ToString();
        var api = AdminApi(app);

        var (status, _, body) = Http.Read(await api.RetirePool(Send("DELETE", $"/api/database/admin/pools/{id}", id: id), id, None));
        var (again, _, _) = Http.Read(await api.RetirePool(Send("DELETE", $"/api/database/admin/pools/{id}", id: id), id, None));

        Assert.Equal(200, status);
        Assert.Equal("deleted", body.GetProperty("status").GetString());
        Assert.Equal(200, again);
        Assert.Equal(ServerPresence.Missing, (await driver.InspectAsync(RefOf(spec, endpoint), None)).Presence);
        Assert.False(Directory.Exists(endpoint.ResourceId));
        var trail = await app.CatalogScalarAsync<string>(
            "SELECT string_agg(to_status, ',' ORDER BY id) FROM pool_events WHERE db_server_id = @id AND event = 'status_changed'", ("id", pool.Id));
        Assert.Equal("deleting,deleted", trail);
    }

    [Fact]
    public async Task RegisterPool_ExistingServer_IsActiveHealthyAndTakesAllocations()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = fixture.Pools[2];
        var api = AdminApi(app);
        var body = Http.Json(new
        {
            name = "legacy-postgres2", host = "127.0.0.1", port = server.Port, admin_user = TestServer.Superuser, admin_password = server.Password,
            max_instances = 3, priority = 5, server_type = "shared",
        });

        var result = await api.RegisterPool(Send("POST", "/api/database/admin/pools/register", body), None);
        var (status, _, pool) = Http.Read(result);

        Assert.Equal(201, status);
        Assert.Equal("legacy-postgres2", pool.GetProperty("name").GetString());
        Assert.Equal("registered", pool.GetProperty("driver").GetString());
        Assert.Equal("active", pool.GetProperty("status").GetString());
        Assert.Equal("healthy", pool.GetProperty("health_status").GetString());
        Assert.StartsWith("15", pool.GetProperty("postgres_version").GetString());
        var json = JsonSerializer.Serialize(((Microsoft.AspNetCore.Mvc.JsonResult)result).Value, ApiJson.Options);
        Assert.DoesNotContain(server.Password, json);
        Assert.DoesNotContain("password", json);
        var stored = await app.CatalogScalarAsync<string>("SELECT admin_password_encrypted FROM db_servers WHERE name = 'legacy-postgres2'");
        Assert.StartsWith(app.Get<TenantDb.Functions.Secrets.SecretProtector>().CurrentPrefix, stored); // v2:<key id>:
        Assert.DoesNotContain(server.Password, stored!);

        var allocated = await AllocateOkAsync(app);
        Assert.Equal("legacy-postgres2", allocated.Pool.Name);
    }

    [Fact]
    public async Task RegisterPool_DuplicateName_IsConflict()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = fixture.Pools[2];
        await app.AddPoolAsync(server, 5, name: "taken");
        var body = Http.Json(new { name = "taken", host = "127.0.0.1", port = server.Port, admin_user = "postgres", admin_password = server.Password, max_instances = 3 });

        var (status, _, problem) = Http.Read(await AdminApi(app).RegisterPool(Send("POST", "/register", body), None));

        Assert.Equal(409, status);
        Assert.Equal("urn:tenantdb:problem:pool-name-taken", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task RegisterPool_WrongPasswordOrNoServer_IsUnprocessableAndNothingStored()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = fixture.Pools[2];
        var api = AdminApi(app);
        var wrong = Http.Json(new { name = "wrong-pw", host = "127.0.0.1", port = server.Port, admin_user = "postgres", admin_password = "not-the-password", max_instances = 3 });
        var nobody = Http.Json(new { name = "no-server", host = "127.0.0.1", port = LocalPostgresPort(), admin_user = "postgres", admin_password = "x", max_instances = 3 });

        var (status, contentType, problem) = Http.Read(await api.RegisterPool(Send("POST", "/register", wrong), None));
        var (unreachable, _, _) = Http.Read(await api.RegisterPool(Send("POST", "/register", nobody), None));

        Assert.Equal(422, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal("urn:tenantdb:problem:server-unreachable", problem.GetProperty("type").GetString());
        Assert.DoesNotContain("not-the-password", problem.ToString());
        Assert.Equal(422, unreachable);
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
    }

    public static TheoryData<string> GarbageBodies() => new()
    {
        "",
        "not json",
        "[]",
        "null",
        "{}",
        "{\"name\": 5}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":\"abc\",\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":70000,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":99999999999,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"Bad Name\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"x'; DROP TABLE db_servers; --\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1;Password=x\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"a b\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":0}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3,\"server_type\":\"platform\"}",
        "{\"name\":\"ok-name\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3,\"priority\":-1}",
        "{\"name\":\"" + new string('a', 64) + "\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        // Found by the hostile-input proof: an unspecified address ("0" is 0.0.0.0) made the connection throw, a 500.
        "{\"name\":\"ok-name\",\"host\":\"0\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"0.0.0.0\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
        "{\"name\":\"ok-name\",\"host\":\"0::0\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":3}",
    };

    [Theory]
    [MemberData(nameof(GarbageBodies))]
    public async Task RegisterPool_GarbageBody_IsBadRequestProblem(string body)
    {
        await using var app = await TestApp.StartAsync(fixture);

        var (status, contentType, problem) = Http.Read(await AdminApi(app).RegisterPool(Send("POST", "/register", body.Length == 0 ? null : body), None));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.StartsWith("urn:tenantdb:problem:", problem.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
    }

    private static int LocalPostgresPort() => LocalPostgres.FreeLoopbackPort();
}

/// <summary>The operators' pool routes refusing a bad query or id before any catalog work: no database behind them.</summary>
[Trait("Category", Tier.Unit)]
public sealed class AdminInputTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Theory]
    [InlineData("?status=bogus", "status")]
    [InlineData("?status=Active", "status")]
    [InlineData("?server_type=platforms", "server_type")]
    [InlineData("?health_status=1", "health_status")]
    [InlineData("?page=0", "page")]
    [InlineData("?page=-1", "page")]
    [InlineData("?page=abc", "page")]
    [InlineData("?page_size=201", "page_size")]
    [InlineData("?page_size=99999999999999999999", "page_size")]
    [InlineData("?status=active&status=full", "status")]
    public async Task ListPools_InvalidFilter_IsValidationProblem(string query, string field)
    {
        await using var app = OfflineApp.Start();

        var (status, contentType, body) = Http.Read(await AdminApi(app).ListPools(Get("/api/database/admin/pools", query), None));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal("urn:tenantdb:problem:validation", body.GetProperty("type").GetString());
        Assert.True(body.GetProperty("errors").TryGetProperty(field, out _));
    }

    [Theory]
    [InlineData("abc", 400)]
    [InlineData("1.5", 400)]
    [InlineData("-3", 400)]
    [InlineData("99999999999999999999999", 400)]
    public async Task PoolRoutes_BadId_AreProblemsNever500(string id, int expected)
    {
        await using var app = OfflineApp.Start();
        var api = AdminApi(app);
        var path = $"/api/database/admin/pools/{id}";

        var results = new[]
        {
            await api.GetPool(Get(path), id, None),
            await api.DrainPool(Send("POST", path + "/drain", id: id), id, None),
            await api.ActivatePool(Send("POST", path + "/activate", id: id), id, None),
            await api.RetirePool(Send("DELETE", path, id: id), id, None),
            await api.CheckPoolHealth(Send("POST", path + "/health-check", id: id), id, None),
        };

        Assert.All(results, r =>
        {
            var (status, contentType, body) = Http.Read(r);
            Assert.Equal(expected, status);
            Assert.Equal(Problems.ContentType, contentType);
            Assert.StartsWith("urn:tenantdb:problem:", body.GetProperty("type").GetString());
        });
    }
}
