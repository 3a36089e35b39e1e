using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Allocation;

/// <summary>
/// Placement at scale (issue 13): the pool a reservation takes is found through the partial index of its strategy (migration
/// 0006), not by sorting every eligible pool, so the reserve statement's cost does not grow with the number of pools.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class PlacementIndexTests(PostgresFixture fixture)
{
    [Theory]
    [InlineData(PlacementStrategy.FillFirst, "ix_db_servers_placement_fill_first")]
    [InlineData(PlacementStrategy.Spread, "ix_db_servers_placement_spread")]
    public async Task Placement_ThousandsOfPools_CandidateComesFromItsStrategysIndexWithoutSort(PlacementStrategy strategy, string index)
    {
        await using var app = await TestApp.StartAsync(fixture);
        // 4,000 pools: a third in placement at assorted fill levels and priorities, the rest full, draining or unhealthy.
        await app.CatalogScalarAsync<object>("""
            INSERT INTO db_servers (name, host, port, server_type, status, health_status, current_instances, max_instances, priority,
                                    driver, admin_user, admin_password_encrypted)
            SELECT 'scale-' || g, '127.0.0.1', 5432, 'shared',
                   (ARRAY['active', 'full', 'draining'])[g % 3 + 1], CASE WHEN g % 7 = 0 THEN 'unhealthy' ELSE 'healthy' END,
                   CASE WHEN g % 3 = 1 THEN 50 ELSE (g * 31) % 50 END, 50, 100 + (g % 4) * 10, 'registered', 'postgres', 'x'
            FROM generate_series(1, 4000) g
            """);
        await app.CatalogScalarAsync<object>("ANALYZE db_servers");

        var plan = await app.Get<TenantStore>().ExplainPlacementAsync(strategy, analyze: true, CancellationToken.None);

        Assert.Contains($"Index Scan using {index} on db_servers", plan, StringComparison.Ordinal);
        Assert.DoesNotContain("Sort", plan, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Placement_WithIndexes_StillTakesTheStrategysPool()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.CatalogScalarAsync<object>("""
            INSERT INTO db_servers (name, host, port, server_type, status, health_status, current_instances, max_instances, priority,
                                    driver, admin_user, admin_password_encrypted)
            VALUES ('fuller', '127.0.0.1', 5432, 'shared', 'active', 'healthy', 40, 50, 100, 'registered', 'postgres', 'x'),
                   ('emptier', '127.0.0.1', 5432, 'shared', 'active', 'unknown', 10, 50, 100, 'registered', 'postgres', 'x'),
                   ('fullest-but-sick', '127.0.0.1', 5432, 'shared', 'active', 'unhealthy', 49, 50, 100, 'registered', 'postgres', 'x'),
                   ('no-room', '127.0.0.1', 5432, 'shared', 'active', 'healthy', 0, 0, 100, 'registered', 'postgres', 'x'),
                   ('less-preferred', '127.0.0.1', 5432, 'shared', 'active', 'healthy', 0, 50, 200, 'registered', 'postgres', 'x')
            """);
        var tenants = app.Get<TenantStore>();

        var fillFirst = await ReserveAsync(tenants, PlacementStrategy.FillFirst);
        var spread = await ReserveAsync(tenants, PlacementStrategy.Spread);

        Assert.Equal("fuller", fillFirst);
        Assert.Equal("emptier", spread);
    }

    private static async Task<string?> ReserveAsync(TenantStore tenants, PlacementStrategy strategy)
    {
        var instance = Guid.NewGuid();
        var name = $"odoo_{instance:N}"[..30];
        var reserved = await tenants.ReserveAsync(new ValidAllocationRequest(instance, Guid.NewGuid(), "standard", new PlanTier()), name, name,
            dedicated: false, strategy, skipLocked: true, CancellationToken.None);
        return reserved?.Pool.Name;
    }
}
