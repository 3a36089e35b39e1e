using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Api;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;

namespace TenantDb.Functions.Tests.Api;

/// <summary>Bodies are read strictly: JSON declared as JSON, each key once, numbers as numbers; refusals never echo driver text.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class InputStrictnessTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private string Register(int port, string password, string maxInstances = "3") =>
        "{\"name\":\"strict-pool\",\"host\":\"127.0.0.1\",\"port\":" + port + ",\"admin_user\":\"postgres\",\"admin_password\":\""
        + password + "\",\"max_instances\":" + maxInstances + "}";

    [Theory]
    [Trait("Issue9", "21")]
    [InlineData("\"5\"")]
    [InlineData("\"3\",\"max_instances\":3")]
    [InlineData("3,\"max_instances\":4")]
    [InlineData("3,\"MAX_INSTANCES\":4")]
    public async Task RegisterPool_NumberAsStringOrDuplicateKey_IsBadRequestAndNothingStored(string maxInstances)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = fixture.Pools[2];

        var (status, contentType, problem) = Http.Read(await AdminApi(app).RegisterPool(
            Send("POST", "/api/database/admin/pools/register", Register(server.Port, server.Password, maxInstances)), None));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal(Problems.TypePrefix + "malformed-json", problem.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
    }

    [Theory]
    [Trait("Issue9", "21")]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/json; charset=latin1")]
    [InlineData(null)]
    public async Task RegisterPool_BodyNotDeclaredJson_Is415AndNothingStored(string? contentType)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = fixture.Pools[2];
        var req = Send("POST", "/api/database/admin/pools/register", Register(server.Port, server.Password));
        req.ContentType = contentType;

        var (status, problemType, problem) = Http.Read(await AdminApi(app).RegisterPool(req, None));

        Assert.Equal(415, status);
        Assert.Equal(Problems.ContentType, problemType);
        Assert.Equal(Problems.TypePrefix + "unsupported-media-type", problem.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers"));
    }

    [Fact]
    [Trait("Issue9", "21")]
    public async Task Allocate_DuplicateKeyOrTextBody_IsRefusedAndNothingCreated()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
        var (a, b, customer) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        var duplicate = $"{{\"instance_id\":\"{a}\",\"customer_id\":\"{customer}\",\"plan_tier\":\"standard\",\"instance_id\":\"{b}\"}}";
        var text = Http.Request("POST", "/api/database/allocate", $"{{\"instance_id\":\"{a}\",\"customer_id\":\"{customer}\",\"plan_tier\":\"standard\"}}");
        text.ContentType = "text/plain";

        var (duplicateStatus, _, _) = Http.Read(await functions.AllocateDatabase(Http.Request("POST", "/api/database/allocate", duplicate), engine.Client, None));
        var (textStatus, _, _) = Http.Read(await functions.AllocateDatabase(text, engine.Client, None));

        Assert.Equal(400, duplicateStatus);
        Assert.Equal(415, textStatus);
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
    }

    [Fact]
    [Trait("Issue9", "21")]
    public async Task RegisterPool_WrongPassword_422DetailCarriesNoDriverText()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = fixture.Pools[2];

        var (status, _, problem) = Http.Read(await AdminApi(app).RegisterPool(
            Send("POST", "/api/database/admin/pools/register", Register(server.Port, "not-the-password")), None));

        Assert.Equal(422, status);
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("refused the admin credentials", detail);
        Assert.DoesNotContain("28P01", detail);
        Assert.DoesNotContain("password authentication failed", detail);
        Assert.DoesNotContain("\"postgres\"", detail);
    }

    [Theory]
    [InlineData("01")]
    [InlineData("00000000000000000000000000001")]
    [InlineData("+1")]
    [InlineData("0")]
    public async Task DrainPool_IdNotWrittenCanonically_Is400AndThePoolIsUntouched(string id)
    {
        // Found by the hostile-input proof: "000…1" parsed as pool 1 and drained the real pool.
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(fixture.Pools[2], 5);

        var (status, contentType, problem) = Http.Read(await AdminApi(app).DrainPool(Send("POST", $"/api/database/admin/pools/{id}/drain", null), id, None));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal(Problems.TypePrefix + "invalid-pool-id", problem.GetProperty("type").GetString());
        Assert.Equal("active", await app.CatalogScalarAsync<string>("SELECT status FROM db_servers WHERE id = @id", ("id", pool.Id)));
        Assert.Equal(1L, pool.Id);
    }
}

/// <summary>Which declared content types count as JSON: the media type alone decides, parameters and case aside.</summary>
[Trait("Category", Tier.Unit)]
public sealed class JsonMediaTypeTests
{
    [Theory]
    [Trait("Issue9", "21")]
    [InlineData("application/json")]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("Application/JSON; charset=\"UTF-8\"")]
    [InlineData("application/merge-patch+json")]
    public void IsJson_JsonMediaTypes_AreAccepted(string contentType) => Assert.True(ApiJson.IsJson(contentType));
}
