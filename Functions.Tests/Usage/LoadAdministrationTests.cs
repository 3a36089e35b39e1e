using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Usage;

/// <summary>
/// The operators' side of load (issue 15 items 4 and 5) on real servers and real data collected by the real health check: the
/// tenant list (filters, order, paging), a pool's load and largest tenants, and the read-only rebalance suggestion.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class LoadAdministrationTests(PostgresFixture fixture)
{
    private const long Mb = 1L << 20;
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task TenantList_RealUsage_FiltersSortsPagesAndRefusesBadValues()
    {
        var made = new List<(TestServer Server, string Database)>();
        await using var own = await UsageData.StartOwnServersAsync(fixture, 3);
        try
        {
            await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:WarmStock"] = "0" });
            var a = await app.AddPoolAsync(own[1], 2, priority: 10);
            var b = await app.AddPoolAsync(own[2], 10, priority: 20);
            var shared = Guid.NewGuid();
            var t1 = await UsageData.AllocateAsync(app, made, "standard");
            var t2 = await UsageData.AllocateAsync(app, made, "starter", shared);
            var t3 = await UsageData.AllocateAsync(app, made, "standard", shared);
            Assert.Equal([a.Id, a.Id, b.Id], new[] { t1.Pool.Id, t2.Pool.Id, t3.Pool.Id });
            await UsageData.FillAsync(own[1], t2, 8 * Mb);
            await using var session = await UsageData.TenantConnectionAsync(own[2], t3);
            await UsageData.CheckAsync(app, a.Id, b.Id);
            // The quota state is the quota feature's; written here directly (only its filter is under test).
            await app.CatalogScalarAsync<object>("UPDATE tenant_databases SET quota_state = 'warning' WHERE id = @id", ("id", t1.Tenant.Id));
            var load = app.Get<LoadService>();

            async Task<TenantPage> ListAsync(params (string Key, string Value)[] query) => Assert.IsType<AdminOutcome<TenantPage>.Done>(
                await load.ListTenantsAsync(query.ToDictionary(q => q.Key, q => (string?)q.Value), None)).Value;
            Guid[] Ids(TenantPage page) => page.Tenants.Select(t => t.InstanceId).ToArray();

            var bySize = await ListAsync(("sort", "size"));
            Assert.Equal(3, bySize.Total);
            Assert.Equal(t2.Tenant.InstanceId, bySize.Tenants[0].InstanceId);
            Assert.True(bySize.Tenants[0].SizeBytes > bySize.Tenants[1].SizeBytes + 6 * Mb, $"{bySize.Tenants[0].SizeBytes} vs {bySize.Tenants[1].SizeBytes}");
            Assert.All(bySize.Tenants, t => Assert.NotNull(t.CollectedAt));
            var top = bySize.Tenants[0];
            Assert.Equal((shared, "starter", a.Id, a.Name, TenantDatabaseStatus.Ready, "ok"), (top.CustomerId, top.PlanTier, top.PoolId, top.PoolName, top.Status, top.QuotaState));
            var byConnections = await ListAsync(("sort", "connections"));
            Assert.Equal(t3.Tenant.InstanceId, byConnections.Tenants[0].InstanceId);
            Assert.Equal(1, byConnections.Tenants[0].Connections);
            Assert.Equal([t3.Tenant.InstanceId, t2.Tenant.InstanceId, t1.Tenant.InstanceId], Ids(await ListAsync()));

            Assert.Equal([t3.Tenant.InstanceId], Ids(await ListAsync(("pool", b.Id.ToString()))));
            Assert.Equal([t2.Tenant.InstanceId], Ids(await ListAsync(("tier", "starter"))));
            Assert.Equal([t2.Tenant.InstanceId, t3.Tenant.InstanceId], Ids(await ListAsync(("customer", shared.ToString()), ("sort", "size"))));
            Assert.Equal(3, (await ListAsync(("status", "ready"))).Total);
            Assert.Equal(0, (await ListAsync(("status", "released"))).Total);
            Assert.Equal([t1.Tenant.InstanceId], Ids(await ListAsync(("over_quota", "true"))));
            Assert.Equal(2, (await ListAsync(("over_quota", "false"))).Total);
            var second = await ListAsync(("sort", "size"), ("page", "2"), ("page_size", "1"));
            Assert.Equal((3L, 2, 1, 3L), (second.Total, second.Page, second.PageSize, second.TotalPages));
            Assert.Equal(bySize.Tenants[1].InstanceId, Assert.Single(second.Tenants).InstanceId);

            var invalid = Assert.IsType<AdminOutcome<TenantPage>.Invalid>(await load.ListTenantsAsync(new Dictionary<string, string?>
            {
                ["pool"] = "0", ["status"] = "gone", ["tier"] = "gold", ["customer"] = "someone", ["over_quota"] = "yes", ["sort"] = "name",
                ["page"] = "0", ["page_size"] = "501",
            }, None));
            Assert.Equal(["customer", "over_quota", "page", "page_size", "pool", "sort", "status", "tier"], invalid.Errors.Keys.Order().ToArray());

            // The pool detail: its load per dimension (two tenants of two: full by count) and its largest tenants.
            var detail = Assert.IsType<AdminOutcome<PoolDetail>.Done>(await app.Get<PoolReadService>().GetAsync(a.Id, None)).Value;
            Assert.NotNull(detail.Load);
            Assert.Equal((1.0, 1.0), (detail.Load.Score, detail.Load.Tenants));
            Assert.InRange(detail.Load.Storage, 1e-6, 0.01);
            Assert.True(detail.Load.Connections > 0);
            Assert.Equal(100L << 30, detail.Load.StorageBudgetBytes);
            Assert.Equal([t2.Tenant.InstanceId, t1.Tenant.InstanceId], detail.TopTenants!.Select(t => t.InstanceId).ToArray());
        }
        finally
        {
            await UsageData.DropAsync(made);
        }
    }

    [Fact]
    public async Task Rebalance_FullPoolWithMeasuredTenants_SuggestsLargestFirstOntoSharedPoolsInServiceAndMovesNothing()
    {
        var made = new List<(TestServer Server, string Database)>();
        await using var own = await UsageData.StartOwnServersAsync(fixture, 3);
        try
        {
            await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:WarmStock"] = "0" });
            var loaded = await app.AddPoolAsync(own[1], 3, priority: 10);
            var some = await app.AddPoolAsync(own[2], 4, priority: 20);
            var room = await app.AddPoolAsync(own[0], 10, priority: 30);
            // Emptier than any: a dedicated server, a draining pool, an unhealthy one. None may be suggested.
            var dedicated = await app.AddPoolAsync(own[0], 100, type: ServerType.Dedicated, dedicatedTo: Guid.NewGuid(), priority: 40);
            var draining = await app.AddPoolAsync(own[0], 100, status: PoolStatus.Draining, priority: 40);
            var sick = await app.AddPoolAsync(own[0], 100, priority: 40);
            await app.CatalogScalarAsync<object>("UPDATE db_servers SET health_status = 'unhealthy' WHERE id = @id", ("id", sick.Id));

            var small = await UsageData.AllocateAsync(app, made);
            var large = await UsageData.AllocateAsync(app, made);
            var medium = await UsageData.AllocateAsync(app, made);
            var elsewhere = await UsageData.AllocateAsync(app, made);
            Assert.Equal([loaded.Id, loaded.Id, loaded.Id, some.Id], new[] { small.Pool.Id, large.Pool.Id, medium.Pool.Id, elsewhere.Pool.Id });
            await UsageData.FillAsync(own[1], large, 20 * Mb);
            await UsageData.FillAsync(own[1], medium, 5 * Mb);
            await UsageData.CheckAsync(app, loaded.Id, some.Id, room.Id);
            var size = await app.CatalogScalarAsync<long>("SELECT size_bytes FROM tenant_usage WHERE tenant_id = @id", ("id", large.Tenant.Id));
            var load = app.Get<LoadService>();

            // 0.7: the full pool (3 of 3) gives up its largest tenant, to the pool where it leaves the lowest score (1 of 10).
            var plan = await SuggestAsync(load, "0.7");
            Assert.Equal((loaded.Id, 1.0, 0.6667, true), (plan.Pool!.Id, plan.Pool.ScoreBefore, plan.Pool.ScoreAfter, plan.Balanced));
            var move = Assert.Single(plan.Moves);
            Assert.Equal((large.Tenant.InstanceId, loaded.Id, loaded.Name, room.Id, room.Name, size), (move.InstanceId, move.FromPoolId, move.FromPool, move.ToPoolId, move.ToPool, move.Bytes));
            Assert.True(size > 20 * Mb, $"{size} bytes");
            Assert.Equal(0.1, move.ToPoolScoreAfter, 3);

            // 0.3: all three, largest first; 0.1: the one pool in service with room under it takes one, and the plan says it falls short.
            var lower = await SuggestAsync(load, "0.3");
            Assert.Equal([large.Tenant.InstanceId, medium.Tenant.InstanceId, small.Tenant.InstanceId], lower.Moves.Select(m => m.InstanceId).ToArray());
            // Emptied by count; what is left is the server's own storage and the allocator's sessions.
            Assert.True(lower.Balanced && lower.Pool!.ScoreAfter < 0.1, $"{lower.Pool!.ScoreAfter}");
            Assert.All(lower.Moves, m => Assert.Contains(m.ToPoolId, new[] { some.Id, room.Id }));
            var strict = await SuggestAsync(load, "0.1");
            Assert.Equal((room.Id, false), (Assert.Single(strict.Moves).ToPoolId, strict.Balanced));
            Assert.DoesNotContain(new[] { plan, lower, strict }.SelectMany(p => p.Moves), m => m.ToPoolId == dedicated.Id || m.ToPoolId == draining.Id || m.ToPoolId == sick.Id);

            // Balanced at 1: no moves. Bad targets are refused. And nothing was moved by any of it.
            var balanced = await SuggestAsync(load, "1");
            Assert.Equal((true, 0), (balanced.Balanced, balanced.Moves.Count));
            foreach (var bad in new[] { "0", "1.5", "-0.2", "abc", "NaN", "0,7" })
            {
                Assert.IsType<AdminOutcome<RebalancePlan>.Invalid>(await load.SuggestRebalanceAsync(bad, None));
            }

            Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_moves"));
            Assert.Equal(3, await app.CatalogScalarAsync<int>("SELECT count(*)::int FROM tenant_databases WHERE db_server_id = @id", ("id", loaded.Id)));
        }
        finally
        {
            await UsageData.DropAsync(made);
        }
    }

    private static async Task<RebalancePlan> SuggestAsync(LoadService load, string target) =>
        Assert.IsType<AdminOutcome<RebalancePlan>.Done>(await load.SuggestRebalanceAsync(target, None)).Value;
}
