using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TenantDb.Functions.Api;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Api;

/// <summary>
/// <c>GET /api/healthz</c> (issue 12, item 5): 200 when the catalog and the task hub answer; 503 problem+json with
/// Retry-After naming the part that does not, and never a connection detail.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class HealthzTests(PostgresFixture fixture)
{
    private static Task<(int Status, Microsoft.AspNetCore.Http.IHeaderDictionary Headers, string Body)> CallAsync(
        TestApp app, Microsoft.DurableTask.Client.DurableTaskClient client)
    {
        var functions = ActivatorUtilities.CreateInstance<HealthFunctions>(app.Services);
        var request = Http.Request("GET", "/api/healthz", functionKey: null);
        return ThroughMiddleware.CallAsync(app.Services, request, () => functions.Healthz(request, client, default));
    }

    [Fact]
    public async Task Healthz_CatalogAndTaskHubUp_200Healthy()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });

        var answer = await CallAsync(app, engine.Client);

        Assert.Equal(200, answer.Status);
        Assert.Equal("no-store", answer.Headers.CacheControl.ToString());
        var body = ThroughMiddleware.Json(answer.Body);
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("ok", body.GetProperty("checks").GetProperty("catalog").GetString());
        Assert.Equal("ok", body.GetProperty("checks").GetProperty("task_hub").GetString());
    }

    [Fact]
    public async Task Healthz_CatalogServerStopped_503NamingCatalog()
    {
        var catalog = await fixture.StartServerAsync($"healthz-catalog-{Guid.NewGuid().ToString("N")[..8]}", null);
        try
        {
            await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
            {
                ["ConnectionStrings:Catalog"] = new NpgsqlConnectionStringBuilder(catalog.ConnectionString("tenantdb_catalog")) { Pooling = true }.ConnectionString,
                ["Healthz:Timeout"] = "00:00:02",
            });
            await using var engine = await InMemoryEngine.StartAsync(_ => { });
            Assert.Equal(200, (await CallAsync(app, engine.Client)).Status);
            await catalog.StopImmediatelyAsync();

            var started = System.Diagnostics.Stopwatch.StartNew();
            var answer = await CallAsync(app, engine.Client);

            Assert.Equal(503, answer.Status);
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"healthz took {started.Elapsed}");
            Assert.Equal("10", answer.Headers.RetryAfter.ToString());
            Assert.Equal("no-store", answer.Headers.CacheControl.ToString());
            Assert.Equal(Problems.ContentType, answer.Headers.ContentType.ToString());
            var problem = ThroughMiddleware.Json(answer.Body);
            Assert.Equal(Problems.TypePrefix + "unhealthy", problem.GetProperty("type").GetString());
            Assert.Equal("unavailable", problem.GetProperty("checks").GetProperty("catalog").GetString());
            Assert.Equal("ok", problem.GetProperty("checks").GetProperty("task_hub").GetString());
            Assert.Contains("catalog", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            foreach (var leak in new[] { catalog.Password, "Host=", "127.0.0.1", catalog.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "Exception", "tenantdb_catalog" })
            {
                Assert.DoesNotContain(leak, answer.Body, StringComparison.Ordinal);
            }
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
    public async Task Healthz_TaskHubGone_503NamingTaskHub()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Healthz:Timeout"] = "00:00:02" });
        var engine = await InMemoryEngine.StartAsync(_ => { });
        var client = engine.Client;
        await engine.DisposeAsync();

        var answer = await CallAsync(app, client);

        Assert.Equal(503, answer.Status);
        var problem = ThroughMiddleware.Json(answer.Body);
        Assert.Equal("ok", problem.GetProperty("checks").GetProperty("catalog").GetString());
        Assert.Equal("unavailable", problem.GetProperty("checks").GetProperty("task_hub").GetString());
        Assert.Contains("task_hub", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
