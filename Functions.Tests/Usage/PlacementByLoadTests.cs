using System.Globalization;
using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Usage;

/// <summary>
/// Placement by load (issue 15 item 3) on real pool servers: a tenant's data written into its real database, collected by the
/// real health check, and the next allocations placed by the pools' load scores (tenants, stored bytes against
/// <c>Pools:Shared:StorageBudgetGb</c>, connections).
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class PlacementByLoadTests(PostgresFixture fixture)
{
    private const long Mb = 1L << 20;
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Spread_EqualCountsOnePoolHoldingALargeTenant_NextTenantsGoToTheOther()
    {
        var made = new List<(TestServer Server, string Database)>();
        await using var own = await UsageData.StartOwnServersAsync(fixture, 3);
        try
        {
            await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
            {
                ["Pools:WarmStock"] = "0", ["Allocation:Strategy"] = "Spread", ["Pools:Shared:StorageBudgetGb"] = "0.5",
            });
            // The loaded pool on the server that stores more already (earlier tests leave databases behind), so 40 MB more
            // set it apart whatever they left.
            var (heavy, light) = await StoredAsync(own[1]) >= await StoredAsync(own[2])
                ? (own[1], own[2]) : (own[2], own[1]);
            var loaded = await app.AddPoolAsync(heavy, 100, priority: 100);
            var other = await app.AddPoolAsync(light, 100, priority: 100);
            // One tenant each (spread takes the emptier pool, then the other: equal counts), 40 MB into the loaded pool's.
            var first = await UsageData.AllocateAsync(app, made);
            var second = await UsageData.AllocateAsync(app, made);
            Assert.Equal(new[] { loaded.Id, other.Id }.Order(), new[] { first.Pool.Id, second.Pool.Id }.Order());
            var big = first.Pool.Id == loaded.Id ? first : second;
            await UsageData.FillAsync(heavy, big, 40 * Mb);

            await UsageData.CheckAsync(app, loaded.Id, other.Id);
            var (loadedScore, otherScore) = (await ScoreAsync(app, loaded.Id), await ScoreAsync(app, other.Id));
            Assert.True(loadedScore > otherScore + 0.05, $"measured scores: {loadedScore:F3} (40 MB tenant) vs {otherScore:F3}");

            // Three more: the count alone (2 of 100 each) ties, the stored bytes send every one to the other pool.
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(other.Id, (await UsageData.AllocateAsync(app, made)).Pool.Id);
            }

            Assert.Equal(1, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", loaded.Id)));
        }
        finally
        {
            await UsageData.DropAsync(made);
        }
    }

    [Fact]
    public async Task FillFirst_PoolPastItsStorageBudget_TakesNoTenantAndNoHeadroomUntilItShrinks()
    {
        var made = new List<(TestServer Server, string Database)>();
        await using var own = await UsageData.StartOwnServersAsync(fixture, 3);
        try
        {
            // A tiny budget above what either server stores now (every database on it, whatever earlier tests left) plus four
            // empty tenants and a margin; the loaded pool's tenant is then filled past it.
            var empty = await own[2].ScalarAsync<long>("SELECT pg_database_size('template1')");
            var baseOther = await StoredAsync(own[2]);
            var baseLoaded = await StoredAsync(own[1]);
            var budget = Math.Max(baseOther, baseLoaded) + 4 * empty + 16 * Mb;
            var fill = Math.Max(24 * Mb, budget - baseLoaded - empty + 16 * Mb);
            await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
            {
                ["Pools:WarmStock"] = "0", ["Allocation:Strategy"] = "FillFirst",
                ["Pools:Shared:StorageBudgetGb"] = ((decimal)budget / (1L << 30)).ToString("0.000000000", CultureInfo.InvariantCulture),
            });
            // The loaded pool is preferred (a lower priority) and would have the higher score: fill-first takes it while it has room.
            var loaded = await app.AddPoolAsync(own[1], 10, priority: 50);
            var other = await app.AddPoolAsync(own[2], 10, priority: 100);
            var first = await UsageData.AllocateAsync(app, made);
            Assert.Equal(loaded.Id, first.Pool.Id);
            await UsageData.FillAsync(own[1], first, fill);
            await UsageData.CheckAsync(app, loaded.Id, other.Id);
            Assert.True(await ScoreAsync(app, loaded.Id) >= 1, $"loaded pool's score {await ScoreAsync(app, loaded.Id):F3}");
            Assert.True(await ScoreAsync(app, other.Id) < 1, $"other pool's score {await ScoreAsync(app, other.Id):F3}");

            // Past its budget the loaded pool takes nothing, although it has 9 free slots and the higher score.
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(other.Id, (await UsageData.AllocateAsync(app, made)).Pool.Id);
            }

            // Headroom counts only the other pool's free slots; the statistics' available capacity agrees.
            var (free, _) = await app.Get<ProvisioningStore>().SharedHeadroomAsync(None);
            Assert.Equal(10 - 3, free);
            Assert.Equal(10 - 3, (await app.Get<PoolReadService>().StatsAsync(None)).AvailableCapacity);

            // The data shrinks, the next check measures it: the pool is back in placement and, preferred, takes the next tenant.
            await using (var conn = await UsageData.TenantConnectionAsync(own[1], first))
            await using (var drop = new NpgsqlCommand("DROP TABLE blobs", conn))
            {
                await drop.ExecuteNonQueryAsync();
            }

            await UsageData.CheckAsync(app, loaded.Id, other.Id);
            Assert.True(await ScoreAsync(app, loaded.Id) < 1);
            Assert.Equal(10 - 3 + 9, (await app.Get<ProvisioningStore>().SharedHeadroomAsync(None)).FreeSlots);
            Assert.Equal(loaded.Id, (await UsageData.AllocateAsync(app, made)).Pool.Id);
        }
        finally
        {
            await UsageData.DropAsync(made);
        }
    }

    private static async Task<double> ScoreAsync(TestApp app, long pool) =>
        await app.CatalogScalarAsync<double>("SELECT load_score FROM db_servers WHERE id = @id", ("id", pool));

    private static async Task<long> StoredAsync(TestServer server) =>
        await server.ScalarAsync<long>("SELECT coalesce(sum(pg_database_size(oid)), 0)::bigint FROM pg_database WHERE NOT datistemplate");
}
