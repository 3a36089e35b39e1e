using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Api;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Audit;

/// <summary>
/// The audit trail as the platform's status history, on a real catalog: append-only for the app (UPDATE, DELETE and
/// TRUNCATE refused; the retention purge the one way out), every event names who acted (the key's name for HTTP calls),
/// and the two history routes page newest first and refuse bad paging.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class AuditTrailTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private const string AppendOnly = "42501"; // insufficient_privilege, raised by the trigger of migration 0004

    [Theory]
    [InlineData("UPDATE pool_events SET actor = 'someone-else'")]
    [InlineData("UPDATE pool_events SET at = now() - interval '10 years'")]
    [InlineData("DELETE FROM pool_events")]
    [InlineData("TRUNCATE pool_events")]
    public async Task AuditTrail_RewriteOrRemove_IsRefusedAndNothingChanges(string sql)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        await AuditActor.RunAsync(Actors.Key("ops"), () => app.Get<PoolStore>().AppendEventAsync(pool.Id, null, "note", "kept", AuditActor.Current, None));
        var before = await TrailAsync(app);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => app.CatalogScalarAsync<object>(sql));

        Assert.Equal(AppendOnly, refused.SqlState);
        Assert.Equal(before, await TrailAsync(app));
    }

    [Fact]
    public async Task Purge_RemovesOnlyEventsPastRetention_AndTheDailyCleanupRunsIt()
    {
        await using var app = await TestApp.StartAsync(fixture, Admin.AdminTestKit.IsolatedDrivers(("Cleanup:EventRetention", "30.00:00:00")));
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        // Old history arrives the way it always does (INSERT is allowed), just dated long ago.
        for (var i = 0; i < 3; i++)
        {
            await app.CatalogScalarAsync<int>("""
                INSERT INTO pool_events (db_server_id, event, reason, actor, at) VALUES (@id, 'old', 'aged', 'key:ops', now() - interval '90 days')
                """, ("id", pool.Id));
        }

        await app.CatalogScalarAsync<int>("""
            INSERT INTO pool_events (db_server_id, event, reason, actor, at) VALUES (@id, 'recent', 'within', 'key:ops', now() - interval '29 days')
            """, ("id", pool.Id));
        var total = await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events");

        // The purge's own function refuses to go past its cutoff: a row newer than it stays even inside the purge.
        Assert.Equal(0, await app.Get<AuditTrailStore>().PurgeAsync(DateTimeOffset.UtcNow.AddDays(-100), 100, None));
        var summary = await AuditActor.RunAsync(Actors.Timer("DailyCleanup"), () => app.Get<CleanupService>().RunAsync(None));

        Assert.Equal(3, summary.EventsPurged);
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'old'"));
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'recent'"));
        Assert.Equal(total - 3, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events"));
        // Outside the purge the old way is closed again: the announcement lives only inside the purge's statement.
        var refused = await Assert.ThrowsAsync<PostgresException>(() => app.CatalogScalarAsync<object>("DELETE FROM pool_events WHERE event = 'recent'"));
        Assert.Equal(AppendOnly, refused.SqlState);
    }

    [Fact]
    public async Task AllocateThroughHttp_EveryEventNamesTheKey_NeverItsValue()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Allocation:InlinePassword"] = "true" });
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
        var trail = ActivatorUtilities.CreateInstance<AuditTrailFunctions>(app.Services);
        var instance = Guid.NewGuid();
        var body = Http.Json(new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        const string KeyValue = "value-of-the-instance-service-key";

        var allocate = KeyedRequest("POST", "/api/database/allocate", "instance-service", KeyValue, body);
        var (status, _, answer) = await ThroughMiddleware.CallAsync(app.Services, allocate, () => functions.AllocateDatabase(allocate, engine.Client, None));
        Assert.True(status == 200, $"allocate answered {status}: {(status == 200 ? "" : answer)}");
        var release = KeyedRequest("DELETE", $"/api/database/allocations/{instance}", "platform-ops", "another-key-value");
        Assert.Equal(200, (await ThroughMiddleware.CallAsync(app.Services, release, () => functions.ReleaseAllocation(release, instance.ToString(), engine.Client, None))).Status);

        var read = KeyedRequest("GET", $"/api/database/allocations/{instance}/events", "instance-service", KeyValue);
        var (readStatus, _, events) = await ThroughMiddleware.CallAsync(app.Services, read, () => trail.GetAllocationEvents(read, instance.ToString(), None));

        Assert.Equal(200, readStatus);
        var page = ThroughMiddleware.Json(events).GetProperty("events").EnumerateArray().ToList();
        Assert.Equal(["released:key:platform-ops", "ready:key:instance-service", "creating:key:instance-service"],
            page.Select(e => $"{e.GetProperty("to_status").GetString()}:{e.GetProperty("actor").GetString()}"));
        Assert.All(page, e => Assert.Equal(pool.Id, e.GetProperty("pool_id").GetInt64()));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE actor LIKE '%key-value%' OR actor = @v", ("v", KeyValue)));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE actor = @u", ("u", Actors.Unattributed)));
    }

    [Fact]
    public async Task CallWithoutKeyName_IsRecordedAsTheFunction_NotAsAFixedName()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        var request = Http.Request("POST", $"/api/database/admin/pools/{pool.Id}/drain");
        var admin = ActivatorUtilities.CreateInstance<AdminFunctions>(app.Services);

        Assert.Equal(200, (await ThroughMiddleware.CallAsync(app.Services, request, () => admin.DrainPool(request, pool.Id.ToString(), None))).Status);

        Assert.Equal("http:test", await app.CatalogScalarAsync<string>(
            "SELECT actor FROM pool_events WHERE db_server_id = @id AND to_status = 'draining'", ("id", pool.Id)));
    }

    [Fact]
    public async Task PoolEvents_PagesNewestFirst_UntilTheEnd()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        for (var i = 0; i < 6; i++)
        {
            await app.Get<PoolStore>().AppendEventAsync(pool.Id, null, "note", $"n{i}", Actors.Key("ops"), None);
        }

        var all = await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE db_server_id = @id", ("id", pool.Id));
        var trail = ActivatorUtilities.CreateInstance<AuditTrailFunctions>(app.Services);
        var seen = new List<long>();
        string? before = null;
        var pages = 0;
        do
        {
            var query = before is null ? "?limit=3" : $"?limit=3&before={before}";
            var (status, _, body) = await GetPoolEventsAsync(app, trail, pool.Id.ToString(), query);
            Assert.Equal(200, status);
            var page = ThroughMiddleware.Json(body);
            var ids = page.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()).ToList();
            Assert.InRange(ids.Count, 1, 3);
            Assert.Equal(3, page.GetProperty("limit").GetInt32());
            seen.AddRange(ids);
            before = page.TryGetProperty("next_before", out var next) ? next.GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
            pages++;
        }
        while (before is not null && pages < 10);

        Assert.Equal(all, seen.Count);
        Assert.Equal(seen.OrderByDescending(id => id), seen);
        Assert.Equal(seen.Distinct(), seen);
        Assert.Equal((int)Math.Ceiling(all / 3.0), pages);
        var first = ThroughMiddleware.Json((await GetPoolEventsAsync(app, trail, pool.Id.ToString(), "")).Body).GetProperty("events")[0];
        Assert.Equal("n5", first.GetProperty("reason").GetString());
        Assert.Equal("key:ops", first.GetProperty("actor").GetString());
        Assert.True(first.TryGetProperty("at", out _));
    }

    [Theory]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=201", "limit")]
    [InlineData("?limit=abc", "limit")]
    [InlineData("?limit=-1", "limit")]
    [InlineData("?before=0", "before")]
    [InlineData("?before=-5", "before")]
    [InlineData("?before=1.5", "before")]
    [InlineData("?before=99999999999999999999", "before")]
    public async Task PoolEvents_BadPaging_400ProblemNamingTheField(string query, string field)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 5);
        var trail = ActivatorUtilities.CreateInstance<AuditTrailFunctions>(app.Services);

        var (status, headers, body) = await GetPoolEventsAsync(app, trail, pool.Id.ToString(), query);

        Assert.Equal(400, status);
        Assert.StartsWith("application/problem+json", headers.ContentType.ToString());
        Assert.True(ThroughMiddleware.Json(body).GetProperty("errors").TryGetProperty(field, out _));
    }

    [Fact]
    public async Task Events_UnknownOrMalformedIds_404And400Problems()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var trail = ActivatorUtilities.CreateInstance<AuditTrailFunctions>(app.Services);

        var (unknownPool, poolHeaders, _) = await GetPoolEventsAsync(app, trail, "987654", "");
        var (badPool, _, _) = await GetPoolEventsAsync(app, trail, "x1", "");
        var unknown = Guid.NewGuid();
        var request = Http.Request("GET", $"/api/database/allocations/{unknown}/events");
        var (unknownInstance, instanceHeaders, _) = await ThroughMiddleware.CallAsync(app.Services, request, () => trail.GetAllocationEvents(request, unknown.ToString(), None));
        var bad = Http.Request("GET", "/api/database/allocations/nope/events");
        var (badInstance, _, _) = await ThroughMiddleware.CallAsync(app.Services, bad, () => trail.GetAllocationEvents(bad, "nope", None));

        Assert.Equal((404, 400, 404, 400), (unknownPool, badPool, unknownInstance, badInstance));
        Assert.StartsWith("application/problem+json", poolHeaders.ContentType.ToString());
        Assert.StartsWith("application/problem+json", instanceHeaders.ContentType.ToString());
    }

    private static Task<(int Status, IHeaderDictionary Headers, string Body)> GetPoolEventsAsync(TestApp app, AuditTrailFunctions trail, string id, string query)
    {
        var request = KeyedRequest("GET", $"/api/database/admin/pools/{id}/events", "_master", "master-key-value");
        request.QueryString = new QueryString(query.Length == 0 ? null : query);
        return ThroughMiddleware.CallAsync(app.Services, request, () => trail.GetPoolEvents(request, id, None));
    }

    /// <summary>A request as the Functions host hands it over after its key check: the key's level and name as claims.</summary>
    private static HttpRequest KeyedRequest(string method, string path, string keyName, string keyValue, string? body = null)
    {
        var request = Http.Request(method, path, body, keyValue);
        request.HttpContext.User = new ClaimsPrincipal(new ClaimsIdentity(
            [new Claim(CallerKey.AuthLevelClaim, keyName == "_master" ? "Admin" : "Function"), new Claim(CallerKey.KeyIdClaim, keyName)],
            CallerKey.AuthenticationType));
        return request;
    }

    private static Task<string?> TrailAsync(TestApp app) =>
        app.CatalogScalarAsync<string>("SELECT string_agg(id || ':' || event || ':' || actor || ':' || at, ',' ORDER BY id) FROM pool_events");
}
