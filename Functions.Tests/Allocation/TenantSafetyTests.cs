using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Allocation;

/// <summary>
/// DESIGN §8.1 and §8.6 against real servers: nothing drops a live tenant's objects (leftover cleanup, abandoned-allocation
/// recovery, lost replies), a new database is never open to others, limits sit where the tenant has no privilege, and a
/// tenant cannot make its own (or another tenant's) purge fail.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class TenantSafetyTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static AllocationRequest Request(Guid instance, string tier = "standard") => new(instance.ToString(), Guid.NewGuid().ToString(), tier);

    private static string Login(Pool pool, string database, string user, string password) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = pool.Port, Database = database, Username = user, Password = password, Pooling = false, Timeout = 15 }.ConnectionString;

    private static async Task<object?> RunAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    private static string LoginOf(AllocationOutcome.Allocated a, string? database = null) =>
        Login(a.Pool, database ?? a.Tenant.DbName, a.Tenant.DbUser, a.Password!.Reveal());

    [Fact]
    [Trait("Issue9", "1")]
    public async Task Cleanup_FailedLeftoverOnPoolOfLiveTenant_KeepsLiveData()
    {
        var server = await fixture.StartServerAsync($"flaky-{Guid.NewGuid():N}"[..14], null);
        await using var app = await TestApp.StartAsync(fixture);
        var pool = await app.AddPoolAsync(server, 10);
        var instance = Guid.NewGuid();
        var request = Request(instance);
        try
        {
            // The pool is down: the allocation fails and its leftovers cannot be confirmed gone.
            await server.StopImmediatelyAsync();
            Assert.IsNotType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(request, None));
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases WHERE status = 'failed' AND cleaned_at IS NULL"));

            // The pool comes back, and the same instance is allocated on it and stores its data.
            await server.StartAsync();
            await app.CatalogScalarAsync<int>("UPDATE db_servers SET health_status = 'healthy', consecutive_health_failures = 0 WHERE id = @id", ("id", pool.Id));
            var live = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(request, None));
            Assert.Equal(pool.Id, live.Pool.Id);
            await RunAsync(LoginOf(live), "CREATE TABLE orders(id int); INSERT INTO orders VALUES (42)");

            await app.LeftoverCleanup.CleanFailedAsync(None);

            Assert.Equal(42, await RunAsync(LoginOf(live), "SELECT id FROM orders"));
            Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases WHERE status = 'failed' AND cleaned_at IS NULL"));
            Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'leftover_settled' AND instance_id = @i", ("i", instance)));
        }
        finally
        {
            await server.StopImmediatelyAsync();
        }
    }

    [Fact]
    [Trait("Issue9", "1")]
    public async Task Cleanup_FailedLeftoverWithoutLiveTenant_IsDropped()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        var names = app.Allocation.NamesFor(instance);
        var live = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), None));
        // As if an allocation had failed with its server unreachable: the row failed, its objects still there.
        await app.CatalogScalarAsync<int>("UPDATE tenant_databases SET status = 'failed', cleaned_at = NULL WHERE id = @id", ("id", live.Tenant.Id));

        Assert.Equal(new CleanResult(1, 0), await app.LeftoverCleanup.CleanFailedAsync(None));

        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{names.Database}'"));
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{names.Database}%'"));
    }

    [Fact]
    [Trait("Issue9", "3")]
    public async Task Allocate_ReadyReplyLost_RowReadyAndDatabaseKept()
    {
        await using var proxy = new TcpProxy(fixture.Catalog.Port);
        await using var app = await TestApp.StartAsync(fixture, catalogPort: proxy.Port);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        // The catalog marks the row ready, and the reply to that statement is lost on the wire.
        proxy.CutReplyTo("UPDATE tenant_databases SET status = 'ready'");

        var outcome = await app.Allocation.AllocateAsync(Request(instance), None);

        Assert.Equal(1, proxy.Cuts);
        var row = await app.Allocation.FindAsync(instance, None);
        Assert.NotNull(row);
        Assert.Equal(TenantDatabaseStatus.Ready, row.Tenant.Status);
        Assert.Equal(1L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{row.Tenant.DbName}'"));
        // The allocation did succeed: whoever gets the password can log in with it.
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(outcome);
        Assert.Equal(1, await RunAsync(LoginOf(allocated), "SELECT 1"));
    }

    [Fact]
    [Trait("Issue9", "3")]
    public async Task RecoverAbandoned_SlowAllocationStillRunning_IsLeftAlone()
    {
        var gate = new SlowDdl.Gate();
        await using var app = await TestApp.StartAsync(fixture, configure: s => SlowDdl.Install(s, gate));
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();

        var allocating = app.Allocation.AllocateAsync(Request(instance), None);
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // The allocation is slow (a CREATE DATABASE waiting on a checkpoint): its row looks abandoned by age alone.
        await app.CatalogScalarAsync<int>("UPDATE tenant_databases SET created_at = now() - interval '1 hour'");

        Assert.Equal(0, await app.Recovery.RecoverAbandonedAsync(None));
        gate.Release.SetResult();
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await allocating);

        Assert.Equal(TenantDatabaseStatus.Ready, (await app.Allocation.FindAsync(instance, None))!.Tenant.Status);
        Assert.Equal(1, await RunAsync(LoginOf(allocated), "SELECT 1"));
    }

    [Fact]
    [Trait("Issue9", "11")]
    public async Task Allocate_TenantRemovesDatabaseLimit_LoginLimitStillHoldsAlsoOnPostgresDatabase()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:Tiers:standard:ConnectionLimit"] = "2" });
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(Guid.NewGuid()), None));
        await RunAsync(LoginOf(allocated), $"ALTER DATABASE \"{allocated.Tenant.DbName}\" CONNECTION LIMIT -1");
        // The server counts a closed session until its backend has exited, which a loaded machine delays (CI saw 53300 on the
        // second connection): wait until the tenant's login has no session left.
        for (var waited = 0; await fixture.Pools[2].ScalarAsync<long>(
                 $"SELECT count(*) FROM pg_stat_activity WHERE usename = '{allocated.Tenant.DbUser}'") > 0 && waited < 100; waited++)
        {
            await Task.Delay(100);
        }

        var held = new List<NpgsqlConnection>();
        try
        {
            foreach (var database in new[] { allocated.Tenant.DbName, "postgres" })
            {
                var conn = new NpgsqlConnection(LoginOf(allocated, database));
                await conn.OpenAsync();
                held.Add(conn);
            }

            await using var third = new NpgsqlConnection(LoginOf(allocated, "postgres"));
            var refused = await Assert.ThrowsAsync<PostgresException>(() => third.OpenAsync());
            Assert.Equal(PostgresErrorCodes.TooManyConnections, refused.SqlState);
        }
        finally
        {
            foreach (var conn in held)
            {
                await conn.DisposeAsync();
            }
        }
    }

    [Fact]
    [Trait("Issue9", "12")]
    public async Task Allocate_CrashRightAfterCreateDatabase_DatabaseIsClosedToEveryone()
    {
        await using var proxy = new TcpProxy(fixture.Pools[2].Port);
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Allocation:MaxPlacementAttempts"] = "1" });
        await app.AddPoolAsync($"proxied-{Guid.NewGuid():N}"[..16], "127.0.0.1", proxy.Port, TestServer.Superuser, fixture.Pools[2].Password, "registered", 10);
        var instance = Guid.NewGuid();
        var names = app.Allocation.NamesFor(instance);
        (bool AllowsConnections, string? Acl)? atCrash = null;
        // The allocator dies the moment CREATE DATABASE is done: what is on the server then is what a crash leaves.
        proxy.CutReplyTo("CREATE DATABASE", async () =>
        {
            await using var conn = new NpgsqlConnection(fixture.Pools[2].ConnectionString());
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT datallowconn, datacl::text FROM pg_database WHERE datname = @db", conn);
            cmd.Parameters.AddWithValue("db", names.Database);
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            atCrash = (reader.GetBoolean(0), reader.IsDBNull(1) ? null : reader.GetString(1));
        });

        await app.Allocation.AllocateAsync(Request(instance), None);

        Assert.NotNull(atCrash);
        // Its ACL is still the default (CONNECT for PUBLIC) at that moment, so only a closed database keeps everyone out.
        Assert.False(atCrash.Value.AllowsConnections, "a new database must be created closed");
        // Once made, it is open to its tenant only.
        await app.CatalogScalarAsync<int>("UPDATE db_servers SET health_status = 'healthy', consecutive_health_failures = 0");
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), None));
        Assert.True(await fixture.Pools[2].ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{names.Database}'"));
        Assert.False(await fixture.Pools[2].ScalarAsync<bool>($"SELECT has_database_privilege('public', '{names.Database}', 'CONNECT')"));
        Assert.Equal(1, await RunAsync(Login(allocated.Pool, names.Database, allocated.Tenant.DbUser, allocated.Password!.Reveal()), "SELECT 1"));
    }

    [Fact]
    [Trait("Issue9", "13")]
    public async Task Purge_TenantLeftLargeObjectInPostgresAndMarkedItselfTemplate_StillPurged()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), None));
        await RunAsync(LoginOf(allocated, "postgres"), "SELECT lo_create(0)");
        await RunAsync(LoginOf(allocated), $"ALTER DATABASE \"{allocated.Tenant.DbName}\" IS_TEMPLATE true");
        await app.Allocation.ReleaseAsync(instance, "test", None);

        var purged = (await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None)).Purged;

        Assert.Equal(1, purged);
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{allocated.Tenant.DbName}'"));
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{allocated.Tenant.DbName}%'"));
        Assert.Equal("dropped", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_databases WHERE id = @id", ("id", allocated.Tenant.Id)));
    }

    [Fact]
    [Trait("Issue9", "13")]
    public async Task Purge_AnotherTenantGrantedToTheVictim_VictimPurgedAndGrantorDataKept()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var grantor = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(Guid.NewGuid()), None));
        var victimId = Guid.NewGuid();
        var victim = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(victimId), None));
        var victimOwner = app.Allocation.NamesFor(victimId).OwnerRole;
        await RunAsync(LoginOf(grantor), $"CREATE TABLE shared(x int); INSERT INTO shared VALUES (7); GRANT SELECT ON shared TO \"{victimOwner}\"");
        await app.Allocation.ReleaseAsync(victimId, "test", None);

        var purged = (await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None)).Purged;

        Assert.Equal(1, purged);
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{victim.Tenant.DbName}%'"));
        Assert.Equal(7, await RunAsync(LoginOf(grantor), "SELECT x FROM shared"));
    }

    [Fact]
    [Trait("Issue9", "13")]
    public async Task Purge_GrantorClosedItsDatabaseToBlockIt_VictimStillPurgedAndGrantorClosedAgain()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var grantor = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(Guid.NewGuid()), None));
        var victimId = Guid.NewGuid();
        var victim = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(victimId), None));
        var victimOwner = app.Allocation.NamesFor(victimId).OwnerRole;
        await RunAsync(LoginOf(grantor), $"CREATE TABLE shared(x int); GRANT SELECT ON shared TO \"{victimOwner}\"");
        await RunAsync(LoginOf(grantor, "postgres"), $"ALTER DATABASE \"{grantor.Tenant.DbName}\" ALLOW_CONNECTIONS false");
        await app.Allocation.ReleaseAsync(victimId, "test", None);

        var purge = await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);

        Assert.Equal(new PurgeResult(1, 0), purge);
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{victim.Tenant.DbName}%'"));
        Assert.False(await fixture.Pools[2].ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{grantor.Tenant.DbName}'"));
    }

    [Fact]
    [Trait("Issue9", "13")]
    public async Task Cleanup_PurgeThatFails_IsCountedAndRecorded()
    {
        var server = await fixture.StartServerAsync($"purge-{Guid.NewGuid():N}"[..14], null);
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Allocation:ReleaseRetention"] = "00:00:00" });
        await app.AddPoolAsync(server, 10);
        var instance = Guid.NewGuid();
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), None));
        await app.Allocation.ReleaseAsync(instance, "test", None);
        await server.StopImmediatelyAsync();

        var summary = await app.Get<CleanupService>().RunAsync(None);

        Assert.Equal(0, summary.TenantsPurged);
        Assert.True(summary.Errors >= 1, $"errors: {summary.Errors}");
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = 'purge_failed' AND instance_id = @i", ("i", instance)));
        Assert.Equal("released", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
    }
}

/// <summary>A tenant DDL that holds <see cref="ITenantDdl.CreateAsync"/> (and the warm-stock form) at a gate: an allocation that is slow, not dead.</summary>
internal sealed class SlowDdl(ITenantDdl inner, SlowDdl.Gate gate) : ITenantDdl
{
    public sealed class Gate
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public static void Install(IServiceCollection services, Gate gate)
    {
        services.AddSingleton<TenantDdl>();
        services.AddSingleton<ITenantDdl>(sp => new SlowDdl(sp.GetRequiredService<TenantDdl>(), gate));
    }

    public async Task CreateAsync(Pool pool, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct)
    {
        gate.Entered.TrySetResult();
        await gate.Release.Task.WaitAsync(ct);
        await inner.CreateAsync(pool, names, scramVerifier, connectionLimit, ct);
    }

    public async Task<bool> CreateFromStockAsync(Pool pool, string stockName, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct)
    {
        gate.Entered.TrySetResult();
        await gate.Release.Task.WaitAsync(ct);
        return await inner.CreateFromStockAsync(pool, stockName, names, scramVerifier, connectionLimit, ct);
    }

    public Task ReleaseAsync(Pool pool, TenantNames names, CancellationToken ct) => inner.ReleaseAsync(pool, names, ct);
    public Task DropAsync(Pool pool, TenantNames names, CancellationToken ct) => inner.DropAsync(pool, names, ct);
    public Task<bool> SetLoginPasswordAsync(Pool pool, TenantNames names, string login, string scramVerifier, int connectionLimit, CancellationToken ct) =>
        inner.SetLoginPasswordAsync(pool, names, login, scramVerifier, connectionLimit, ct);
    public Task DisableLoginAsync(Pool pool, TenantNames names, string login, CancellationToken ct) => inner.DisableLoginAsync(pool, names, login, ct);
}
