using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Usage;

/// <summary>Usage collection (issue 15 item 1) on a real pool server: sizes and sessions as PostgreSQL reports them, recorded per tenant, per pool and per hour.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class UsageCollectionTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task HealthCheck_TenantWith8MbAndAnOpenSession_RecordsItsSizeSessionsThePoolsTotalsAndTheHour()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:WarmStock"] = "0" });
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        var big = Assert.IsType<AllocationOutcome.Allocated>(
            await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None));
        var small = Assert.IsType<AllocationOutcome.Allocated>(
            await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None));
        await using var session = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = pool.Port, Database = big.Tenant.DbName, Username = big.Tenant.DbUser,
            Password = big.Password!.Reveal(), Pooling = false, Timeout = 15,
        }.ConnectionString);
        await session.OpenAsync();
        await using (var fill = new NpgsqlCommand("CREATE TABLE blobs AS SELECT g AS id, repeat(md5(g::text), 32) AS body FROM generate_series(1, 8000) g", session))
        {
            await fill.ExecuteNonQueryAsync();
        }

        var health = app.Get<HealthService>();
        var report = Assert.IsType<AdminOutcome<PoolHealthReport>.Done>(await health.CheckAsync(pool.Id, None)).Value;

        Assert.NotNull(report.Usage);
        Assert.Equal(2, report.Usage.TenantsMeasured);
        var bigSize = await app.CatalogScalarAsync<long>("SELECT size_bytes FROM tenant_usage WHERE tenant_id = @id", ("id", big.Tenant.Id));
        var smallSize = await app.CatalogScalarAsync<long>("SELECT size_bytes FROM tenant_usage WHERE tenant_id = @id", ("id", small.Tenant.Id));
        Assert.InRange(bigSize - smallSize, 8_000L * 1024, 16_000L * 1024);
        Assert.Equal(1, await app.CatalogScalarAsync<int>("SELECT connections FROM tenant_usage WHERE tenant_id = @id", ("id", big.Tenant.Id)));
        Assert.Equal(0, await app.CatalogScalarAsync<int>("SELECT connections FROM tenant_usage WHERE tenant_id = @id", ("id", small.Tenant.Id)));
        await using (var setting = new NpgsqlCommand("SELECT current_setting('max_connections')::int", session))
        {
            var max = (int)(await setting.ExecuteScalarAsync())!;
            Assert.Equal(max, await app.CatalogScalarAsync<int>("SELECT max_connections FROM db_servers WHERE id = @id", ("id", pool.Id)));
        }

        var stored = await app.CatalogScalarAsync<long>("SELECT stored_bytes FROM db_servers WHERE id = @id", ("id", pool.Id));
        Assert.True(stored >= bigSize + smallSize, $"pool stores {stored} bytes, its tenants {bigSize + smallSize}");
        Assert.True(await app.CatalogScalarAsync<int>("SELECT open_connections FROM db_servers WHERE id = @id", ("id", pool.Id)) >= 1);

        // A second check in the same hour keeps one rollup row per tenant and one for the pool, the hour's largest figures.
        await using (var more = new NpgsqlCommand("INSERT INTO blobs SELECT g, repeat(md5(g::text), 32) FROM generate_series(8001, 12000) g", session))
        {
            await more.ExecuteNonQueryAsync();
        }

        await health.CheckAsync(pool.Id, None);
        var grown = await app.CatalogScalarAsync<long>("SELECT size_bytes FROM tenant_usage WHERE tenant_id = @id", ("id", big.Tenant.Id));
        Assert.True(grown > bigSize, $"{grown} after growing, {bigSize} before");
        Assert.Equal(3L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM usage_hourly WHERE db_server_id = @id", ("id", pool.Id)));
        Assert.Equal(grown, await app.CatalogScalarAsync<long>(
            "SELECT size_bytes FROM usage_hourly WHERE db_server_id = @pool AND tenant_id = @id AND samples = 2", ("pool", pool.Id), ("id", big.Tenant.Id)));
    }
}
