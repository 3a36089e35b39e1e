using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TenantDb.Functions.Tests.Allocation;

/// <summary>
/// The reserve statement's candidate search on a catalog of 200 shared pools (issue 15 item 3): the plan and what it costs, printed
/// for the report. A large-scale case: the pools' usage figures are written into the catalog directly, not collected.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class PlacementCostTests(PostgresFixture fixture, ITestOutputHelper output)
{
    [Theory]
    [InlineData(PlacementStrategy.FillFirst)]
    [InlineData(PlacementStrategy.Spread)]
    public async Task Placement_200PoolsWithUsage_CandidateSearchReadsAFewBuffersWithoutSort(PlacementStrategy strategy)
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.CatalogScalarAsync<object>("""
            INSERT INTO db_servers (name, host, port, server_type, status, health_status, current_instances, max_instances, priority,
                                    driver, admin_user, admin_password_encrypted)
            SELECT 'scale-' || g, '127.0.0.1', 5432, 'shared', CASE WHEN g % 10 = 0 THEN 'full' ELSE 'active' END,
                   CASE WHEN g % 13 = 0 THEN 'unhealthy' ELSE 'healthy' END,
                   CASE WHEN g % 10 = 0 THEN 50 ELSE (g * 31) % 50 END, 50, 100 + (g % 2) * 10, 'registered', 'postgres', 'x'
            FROM generate_series(1, 200) g
            """);
        await app.CatalogScalarAsync<object>("""
            UPDATE db_servers SET stored_bytes = ((id * 7919) % 120)::bigint << 30, storage_budget_bytes = 100::bigint << 30,
                open_connections = (id * 13) % 100, max_connections = 100, usage_at = now();
            """);
        // The figures' update leaves dead index entries behind (the score is indexed); measured as autovacuum leaves the table.
        await app.CatalogScalarAsync<object>("VACUUM ANALYZE db_servers");

        var plan = await app.Get<TenantStore>().ExplainPlacementAsync(strategy, analyze: true, CancellationToken.None);
        output.WriteLine(plan);

        Assert.Contains("Index Scan using", plan, StringComparison.Ordinal);
        Assert.DoesNotContain("Sort", plan, StringComparison.Ordinal);
    }
}
