using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TenantDb.Functions.Api;
using TenantDb.Functions.Orchestrations;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Api;

/// <summary>The instance-service's routes called directly with ASP.NET Core request contexts, against the real catalog and pools.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class AllocationFunctionsTests(PostgresFixture fixture)
{
    private static readonly Dictionary<string, string?> Inline = new() { ["Allocation:InlinePassword"] = "true" };

    private static string Body(Guid? instance = null, Guid? customer = null, string tier = "standard") =>
        Http.Json(new { instance_id = (instance ?? Guid.NewGuid()).ToString(), customer_id = (customer ?? Guid.NewGuid()).ToString(), plan_tier = tier });

    private static async Task<(TestApp App, AllocationFunctions Functions, DurableTaskTestHost Engine)> StartAsync(PostgresFixture fixture)
    {
        var app = await TestApp.StartAsync(fixture, Inline);
        var engine = await InMemoryEngine.StartAsync(_ => { });
        return (app, ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services), engine);
    }

    [Fact]
    public async Task Allocate_PoolWithRoom_200WithConnectionDetailsThatWork()
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;
        await app.AddPoolAsync(fixture.Pools[1], 10);

        var (status, _, body) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", Body()), engine.Client, default));

        Assert.Equal(200, status);
        Assert.Equal("allocated", body.GetProperty("status").GetString());
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = body.GetProperty("db_host").GetString(), Port = body.GetProperty("db_port").GetInt32(),
            Database = body.GetProperty("db_name").GetString(), Username = body.GetProperty("db_user").GetString(),
            Password = body.GetProperty("db_password").GetString(), Pooling = false,
        }.ConnectionString);
        await conn.OpenAsync();
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[]")]
    [InlineData("{\"instance_id\": 5}")]
    [InlineData("{\"instance_id\":\"x\",\"customer_id\":\"y\",\"plan_tier\":\"z\"}")]
    [InlineData("{}")]
    [InlineData("null")]
    [InlineData("")]
    public async Task Allocate_BadBody_400ProblemJsonAndNothingCreated(string body)
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;
        await app.AddPoolAsync(fixture.Pools[1], 10);

        var (status, contentType, problem) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", body), engine.Client, default));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.StartsWith(Problems.TypePrefix, problem.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
    }

    [Fact]
    public async Task Allocate_SameInstanceAnotherCustomer_409()
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", Body(instance)), engine.Client, default);

        var (status, _, problem) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", Body(instance)), engine.Client, default));

        Assert.Equal(409, status);
        Assert.Equal(Problems.TypePrefix + "instance-conflict", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Allocate_NoCapacity_202WithStatusUrlsAndOneProvisioningRun()
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;
        var instance = Guid.NewGuid();
        var customer = Guid.NewGuid();

        var first = Http.Request("POST", "/api/database/allocate", Body(instance, customer));
        var client = FunctionsBinding.Client(engine.Client);
        var (status, _, body) = Http.Read(await functions.AllocateDatabase(first, client, default));
        var (againStatus, _, again) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", Body(instance, customer)), client, default));

        Assert.Equal(202, status);
        Assert.Equal("provisioning", body.GetProperty("status").GetString());
        Assert.True(body.GetProperty("retry_after").GetInt32() > 0);
        var statusUri = body.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;
        Assert.StartsWith("http://127.0.0.1:7071/runtime/webhooks/durabletask/instances/allocate-", statusUri);
        Assert.Equal(statusUri, first.HttpContext.Response.Headers.Location.ToString());
        Assert.Equal(202, againStatus);
        Assert.Equal(statusUri, again.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString());
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE status = 'provisioning'"));
        Assert.NotNull(await engine.Client.GetInstanceAsync(AllocateWhenReady.InstanceIdFor(instance)));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
    }

    [Fact]
    public async Task GetAllocation_AfterAllocate_200WithoutPassword_Unknown404_Invalid400()
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", Body(instance)), engine.Client, default);

        var (status, _, body) = Http.Read(await functions.GetAllocation(Http.Request("GET", "/x"), instance.ToString(), engine.Client, default));
        var (unknown, _, _) = Http.Read(await functions.GetAllocation(Http.Request("GET", "/x"), Guid.NewGuid().ToString(), engine.Client, default));
        var (invalid, _, _) = Http.Read(await functions.GetAllocation(Http.Request("GET", "/x"), "1 OR 1=1", engine.Client, default));

        Assert.Equal(200, status);
        Assert.False(body.TryGetProperty("db_password", out _));
        Assert.Equal(instance.ToString(), body.GetProperty("instance_id").GetString());
        Assert.Equal(404, unknown);
        Assert.Equal(400, invalid);
    }

    [Fact]
    public async Task ReleaseAllocation_Ready_200ThenGetShowsReleased_Unknown404()
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", Body(instance)), engine.Client, default);

        var (status, _, body) = Http.Read(await functions.ReleaseAllocation(Http.Request("DELETE", "/x"), instance.ToString(), engine.Client, default));
        var (_, _, after) = Http.Read(await functions.GetAllocation(Http.Request("GET", "/x"), instance.ToString(), engine.Client, default));
        var (unknown, _, _) = Http.Read(await functions.ReleaseAllocation(Http.Request("DELETE", "/x"), Guid.NewGuid().ToString(), engine.Client, default));

        Assert.Equal(200, status);
        Assert.Equal("released", body.GetProperty("status").GetString());
        Assert.True(body.TryGetProperty("purge_after", out _));
        Assert.Equal("released", after.GetProperty("status").GetString());
        Assert.Equal(404, unknown);
    }

    [Fact]
    public async Task ProvisionDedicated_SharedTier_400_DedicatedTier_202()
    {
        var (app, functions, engine) = await StartAsync(fixture);
        await using var appScope = app;
        await using var engineScope = engine;

        var (shared, _, _) = Http.Read(await functions.ProvisionDedicatedDatabase(Http.Request("POST", "/x", Body(tier: "standard")), engine.Client, default));
        var (dedicated, _, body) = Http.Read(await functions.ProvisionDedicatedDatabase(Http.Request("POST", "/x", Body(tier: "premium")), FunctionsBinding.Client(engine.Client), default));

        Assert.Equal(400, shared);
        Assert.Equal(202, dedicated);
        Assert.Equal("provisioning", body.GetProperty("status").GetString());
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE server_type = 'dedicated' AND status = 'provisioning'"));
    }
}

/// <summary>The instance-service's routes refusing a body before any catalog or engine work: no database, no engine.</summary>
[Trait("Category", Tier.Unit)]
public sealed class AllocationFunctionsInputTests
{
    [Fact]
    public async Task Allocate_HugeBody_400()
    {
        await using var app = OfflineApp.Start();
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);

        // No Durable client: a refused body never reaches the engine.
        var huge = Http.Json(new { instance_id = new string('a', 200_000) });
        var (status, _, _) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", huge), null!, default));

        Assert.Equal(400, status);
    }
}
