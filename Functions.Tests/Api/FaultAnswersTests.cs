using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TenantDb.Functions.Api;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Tests.Infrastructure;
using static TenantDb.Functions.Tests.Admin.AdminTestKit;

namespace TenantDb.Functions.Tests.Api;

/// <summary>
/// A pool server or the catalog down, or a claim run that never ends: the routes answer 503 problem+json with
/// Retry-After (never 500), and the answer carries no exception text.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class FaultAnswersTests(PostgresFixture fixture)
{
    private static string Path(Guid id, string action = "") => $"/api/database/{(action.Length == 0 ? "allocations" : "credentials")}/{id}{action}";

    private static void AssertUnavailable((int Status, Microsoft.AspNetCore.Http.IHeaderDictionary Headers, string Body) answer, string type, params string[] secrets)
    {
        Assert.Equal(503, answer.Status);
        Assert.Equal("10", answer.Headers.RetryAfter.ToString());
        Assert.Equal(Problems.ContentType, answer.Headers.ContentType.ToString());
        var problem = ThroughMiddleware.Json(answer.Body);
        Assert.Equal(Problems.TypePrefix + type, problem.GetProperty("type").GetString());
        Assert.Equal(10, problem.GetProperty("retry_after").GetInt32());
        foreach (var secret in secrets.Append("Host=").Append("127.0.0.1").Append("Exception"))
        {
            Assert.DoesNotContain(secret, answer.Body);
        }
    }

    [Fact]
    [Trait("Issue9", "18")]
    public async Task Release_PoolServerStopped_503WithRetryAfter_ThenReleasedWhenBack()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var server = await fixture.StartServerAsync($"fault-pool-{Guid.NewGuid().ToString("N")[..8]}", null);
        try
        {
            await app.AddPoolAsync(server, 5);
            var tenant = await AllocateOkAsync(app);
            var id = tenant.Tenant.InstanceId;
            var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
            await server.StopImmediatelyAsync();

            // Final backups are off in TestApp (no blob store): this release starts no run, so it needs no task hub.
            var down = await ThroughMiddleware.CallAsync(app.Services, Http.Request("DELETE", Path(id)),
                () => functions.ReleaseAllocation(Http.Request("DELETE", Path(id)), id.ToString(), null!, default));

            AssertUnavailable(down, "database-unavailable", server.Password, server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await server.StartAsync();
            var back = await ThroughMiddleware.CallAsync(app.Services, Http.Request("DELETE", Path(id)),
                () => functions.ReleaseAllocation(Http.Request("DELETE", Path(id)), id.ToString(), null!, default));
            Assert.Equal(200, back.Status);
            Assert.Equal("released", ThroughMiddleware.Json(back.Body).GetProperty("status").GetString());
        }
        finally
        {
            if (await server.IsRunningAsync())
            {
                await server.StopImmediatelyAsync();
            }
        }
    }

    [Fact]
    [Trait("Issue9", "18")]
    public async Task ReleaseRotateClaim_CatalogServerStopped_503WithRetryAfter()
    {
        var catalog = await fixture.StartServerAsync($"fault-catalog-{Guid.NewGuid().ToString("N")[..8]}", null);
        try
        {
            await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
            {
                ["ConnectionStrings:Catalog"] = new NpgsqlConnectionStringBuilder(catalog.ConnectionString("tenantdb_catalog")) { Pooling = true }.ConnectionString,
            });
            await using var engine = await InMemoryEngine.StartAsync(_ => { });
            await app.AddPoolAsync(fixture.Pools[1], 50);
            var id = (await AllocateOkAsync(app)).Tenant.InstanceId;
            var allocations = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
            var credentials = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);
            await catalog.StopImmediatelyAsync();

            var release = await ThroughMiddleware.CallAsync(app.Services, Http.Request("DELETE", Path(id)),
                () => allocations.ReleaseAllocation(Http.Request("DELETE", Path(id)), id.ToString(), engine.Client, default));
            var rotate = await ThroughMiddleware.CallAsync(app.Services, Http.Request("POST", Path(id, "/rotate")),
                () => credentials.RotateDatabaseCredentials(Http.Request("POST", Path(id, "/rotate")), id.ToString(), engine.Client, default));
            var claim = await ThroughMiddleware.CallAsync(app.Services, Http.Request("POST", Path(id, "/claim")),
                () => credentials.ClaimDatabaseCredentials(Http.Request("POST", Path(id, "/claim")), id.ToString(), engine.Client, default));

            AssertUnavailable(release, "database-unavailable", catalog.Password);
            AssertUnavailable(rotate, "database-unavailable", catalog.Password);
            AssertUnavailable(claim, "database-unavailable", catalog.Password);
        }
        finally
        {
            if (await catalog.IsRunningAsync())
            {
                await catalog.StopImmediatelyAsync();
            }
        }
    }

    [Fact]
    [Trait("Issue9", "18")]
    public async Task Claim_RunNeverFinishes_503TimeoutWithRetryAfter()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Handoff:ClaimTimeout"] = "00:00:01" });
        // A task hub that takes the claim run but never finishes it (a stalled store, a stuck worker).
        await using var engine = await InMemoryEngine.StartAsync(r => r.AddOrchestratorFunc<ClaimCredentialsInput, ClaimResult>(nameof(ClaimCredentials),
            async (context, _) =>
            {
                await context.CreateTimer(TimeSpan.FromHours(1), CancellationToken.None);
                return null!;
            }));
        await app.AddPoolAsync(fixture.Pools[1], 50);
        var id = (await AllocateOkAsync(app)).Tenant.InstanceId;
        var credentials = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);

        var claim = await ThroughMiddleware.CallAsync(app.Services, Http.Request("POST", Path(id, "/claim")),
            () => credentials.ClaimDatabaseCredentials(Http.Request("POST", Path(id, "/claim")), id.ToString(), engine.Client, default));

        AssertUnavailable(claim, "handoff-unavailable"); // the handoff answers its own 503 (issue 9, item 7) before the middleware sees a timeout
    }
}

/// <summary>The app's exception middleware on its own: an unexpected exception is a 500 problem that carries none of its text.</summary>
[Trait("Category", Tier.Unit)]
public sealed class ExceptionMiddlewareTests
{
    [Fact]
    [Trait("Issue9", "18")]
    public async Task UnexpectedException_Is500WithoutItsText()
    {
        await using var app = OfflineApp.Start();

        var answer = await ThroughMiddleware.CallAsync(app.Services, Http.Request("GET", "/api/x"),
            () => throw new InvalidOperationException("Host=10.0.0.1;Password=hunter2"));

        Assert.Equal(500, answer.Status);
        Assert.Equal(Problems.TypePrefix + "internal", ThroughMiddleware.Json(answer.Body).GetProperty("type").GetString());
        Assert.DoesNotContain("hunter2", answer.Body);
        Assert.False(answer.Headers.ContainsKey("Retry-After"));
    }
}
