using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Usage;

/// <summary>Real usage for the load tests: tenants allocated on fixture servers, data written as the tenant, the real health check.</summary>
internal static class UsageData
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>Allocates a tenant through the real allocation; its database is noted for <see cref="DropAsync"/>.</summary>
    internal static async Task<AllocationOutcome.Allocated> AllocateAsync(TestApp app, List<(TestServer, string)> made, string tier = "standard",
        Guid? customer = null)
    {
        var placed = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), (customer ?? Guid.NewGuid()).ToString(), tier), None));
        if (app.Fixture.Pools.FirstOrDefault(s => s.Port == placed.Pool.Port) is { } shared)
        {
            made.Add((shared, placed.Tenant.DbName));
        }

        return placed;
    }

    /// <summary>The real health check of each pool, which collects its usage.</summary>
    internal static async Task CheckAsync(TestApp app, params long[] pools)
    {
        foreach (var pool in pools)
        {
            var report = Assert.IsType<AdminOutcome<PoolHealthReport>.Done>(await app.Get<HealthService>().CheckAsync(pool, None)).Value;
            Assert.NotNull(report.Usage);
        }
    }

    internal static async Task<NpgsqlConnection> TenantConnectionAsync(TestServer server, AllocationOutcome.Allocated tenant)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = server.Port, Database = tenant.Tenant.DbName, Username = tenant.Tenant.DbUser,
            Password = tenant.Password!.Reveal(), Pooling = false, Timeout = 5,
        }.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    /// <summary>Writes about <paramref name="bytes"/> into the tenant's database as the tenant (1 KB rows).</summary>
    internal static async Task FillAsync(TestServer server, AllocationOutcome.Allocated tenant, long bytes)
    {
        await using var conn = await TenantConnectionAsync(server, tenant);
        await using var fill = new NpgsqlCommand(
            "CREATE TABLE blobs AS SELECT g AS id, repeat(md5(g::text), 32) AS body FROM generate_series(1, @rows) g", conn);
        fill.Parameters.AddWithValue("rows", (int)(bytes / 1024));
        await fill.ExecuteNonQueryAsync();
    }

    /// <summary>The tenant databases this test made go again, so the shared servers' sizes stay as other tests expect.</summary>
    internal static async Task DropAsync(List<(TestServer Server, string Database)> made)
    {
        foreach (var (server, database) in made)
        {
            await using var conn = new NpgsqlConnection(server.ConnectionString());
            await conn.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)", conn);
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>
    /// Servers of the test's own (a load score measures everything on a server: the run's shared servers carry what tests running
    /// at the same time store and hold open, which made these tests fail in a full run); stopped when disposed.
    /// </summary>
    internal static async Task<OwnServers> StartOwnServersAsync(PostgresFixture fixture, int count)
    {
        var servers = new OwnServers();
        for (var i = 0; i < count; i++)
        {
            servers.Add(await fixture.StartServerAsync($"usage-{Guid.NewGuid().ToString("N")[..8]}", null));
        }

        return servers;
    }

    internal sealed class OwnServers : List<TestServer>, IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var server in this)
            {
                await server.StopImmediatelyAsync();
            }
        }
    }
}
