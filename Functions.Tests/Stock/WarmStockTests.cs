using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Stock;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Stock;

/// <summary>
/// The warm stock (DESIGN.md §9) on real servers: a tenant allocated from stock gets what the create path gives (login,
/// isolation, limits), stock nobody can enter, claims that never hand one stock database to two tenants, and a sweep that
/// repairs what a crash or an operator left.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class WarmStockTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static AllocationRequest Request(Guid? instance = null) => new((instance ?? Guid.NewGuid()).ToString(), Guid.NewGuid().ToString(), "standard");

    private Task<TestApp> StartAsync(int stock = 2, IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?> { ["Pools:WarmStock"] = stock.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return TestApp.StartAsync(fixture, settings);
    }

    private static async Task<AllocationOutcome.Allocated> AllocateOk(TestApp app, AllocationRequest request) =>
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(request, None));

    private static NpgsqlConnection TenantConnection(Pool pool, string database, string user, string password) =>
        new(new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = pool.Port, Database = database, Username = user, Password = password, Pooling = false, Timeout = 15 }.ConnectionString);

    private static async Task<long> StockRowsAsync(TestApp app, long poolId, string status = "ready") =>
        await app.CatalogScalarAsync<long>("SELECT count(*) FROM warm_stock WHERE db_server_id = @p AND status = @s", ("p", poolId), ("s", status));

    private static async Task<string[]> StockNamesAsync(TestApp app, long poolId) =>
        (await app.CatalogScalarAsync<string[]>("SELECT coalesce(array_agg(name ORDER BY id), '{}') FROM warm_stock WHERE db_server_id = @p", ("p", poolId)))!;

    private static async Task<bool> DatabaseExistsAsync(TestServer server, string name) =>
        await server.ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == 1;

    private static async Task<bool> RoleExistsAsync(TestServer server, string name) =>
        await server.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname = '{name}'") == 1;

    [Fact]
    public async Task Replenish_MakesClosedStock_UpToTheTargetAndNoMore()
    {
        await using var app = await StartAsync(stock: 2);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        var stock = app.Get<WarmStockService>();
        var tenant = await AllocateOk(app, Request());

        Assert.Equal(2, await stock.ReplenishAsync(None));
        Assert.Equal(0, await stock.ReplenishAsync(None));

        var names = await StockNamesAsync(app, pool.Id);
        Assert.Equal(2, names.Length);
        Assert.Equal(2L, await StockRowsAsync(app, pool.Id));
        foreach (var name in names)
        {
            // Closed to everyone: no connections allowed, no CONNECT for PUBLIC, the owner role cannot log in.
            Assert.False(await server.ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{name}'"));
            Assert.False(await server.ScalarAsync<bool>($"SELECT has_database_privilege('public', '{name}', 'CONNECT')"));
            Assert.False(await server.ScalarAsync<bool>($"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{name}_owner'"));
            // A tenant of the same server cannot enter it.
            await using var intruder = TenantConnection(pool, name, tenant.Tenant.DbUser, tenant.Password!.Reveal());
            var refused = await Assert.ThrowsAsync<PostgresException>(() => intruder.OpenAsync());
            Assert.Contains(refused.SqlState, new[] { PostgresErrorCodes.ObjectNotInPrerequisiteState, PostgresErrorCodes.InsufficientPrivilege });
        }

        // Stock is not a tenant: the tenant views count only the one tenant, and capacity counts only it.
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
        Assert.Equal(1, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.CurrentInstances);
        var listed = Assert.IsType<AdminOutcome<PoolPage>.Done>(await app.Get<PoolReadService>().ListAsync(null, null, null, null, null, None)).Value;
        Assert.Equal(2, Assert.Single(listed.Pools).WarmStock);
    }

    [Fact]
    public async Task Allocate_FromStock_LoginIsolationAndLimitsAreThoseOfTheCreatePath()
    {
        await using var app = await StartAsync(stock: 2);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        await app.Get<WarmStockService>().ReplenishAsync(None);
        var before = await StockNamesAsync(app, pool.Id);

        var fromStock = await AllocateOk(app, Request());
        var other = await AllocateOk(app, Request());

        Assert.Equal(before[0], fromStock.Tenant.StockName);
        Assert.Equal(before[1], other.Tenant.StockName);
        Assert.Equal(0L, await StockRowsAsync(app, pool.Id));
        Assert.False(await DatabaseExistsAsync(server, before[0]));
        Assert.False(await RoleExistsAsync(server, before[0] + "_owner"));

        // The login works and what it makes belongs to the owner role, as on the create path.
        await using (var conn = TenantConnection(pool, fromStock.Tenant.DbName, fromStock.Tenant.DbUser, fromStock.Password!.Reveal()))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE t(x int); INSERT INTO t VALUES (1); SELECT current_database() || ':' || (SELECT tableowner FROM pg_tables WHERE tablename = 't')", conn);
            Assert.Equal($"{fromStock.Tenant.DbName}:{fromStock.Tenant.DbUser}_owner", (string)(await cmd.ExecuteScalarAsync())!);
        }

        // Another tenant's login cannot enter it; PUBLIC has no CONNECT; the limit sits on the login role; no stock marker is left.
        await using (var intruder = TenantConnection(pool, fromStock.Tenant.DbName, other.Tenant.DbUser, other.Password!.Reveal()))
        {
            var refused = await Assert.ThrowsAsync<PostgresException>(() => intruder.OpenAsync());
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        }

        var db = fromStock.Tenant.DbName;
        Assert.False(await server.ScalarAsync<bool>($"SELECT has_database_privilege('public', '{db}', 'CONNECT')"));
        Assert.Equal(40, await server.ScalarAsync<int>($"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{fromStock.Tenant.DbUser}'"));
        Assert.Null(await server.ScalarAsync<string>($"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{db}'"));
        Assert.Equal($"{db}_owner", await server.ScalarAsync<string>($"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'"));

        // The same facts for a tenant made by the create path on the same server, so the two paths are compared, not assumed.
        await using var plain = await StartAsync(stock: 0);
        await plain.AddPoolAsync(server, 10);
        var created = await AllocateOk(plain, Request());
        Assert.Null(created.Tenant.StockName);
        var cdb = created.Tenant.DbName;
        Assert.Equal(
            await server.ScalarAsync<string>($"SELECT replace(datacl::text, '{cdb}', 'X') || datallowconn || datconnlimit || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '{cdb}'"),
            await server.ScalarAsync<string>($"SELECT replace(datacl::text, '{db}', 'X') || datallowconn || datconnlimit || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '{db}'"));
        Assert.Equal(
            await server.ScalarAsync<string>($"SELECT rolcanlogin::text || rolinherit || rolconnlimit || rolsuper || rolcreatedb || rolcreaterole || array_to_string(rolconfig, ',') FROM pg_roles WHERE rolname = '{created.Tenant.DbUser}'"),
            (await server.ScalarAsync<string>($"SELECT rolcanlogin::text || rolinherit || rolconnlimit || rolsuper || rolcreatedb || rolcreaterole || array_to_string(rolconfig, ',') FROM pg_roles WHERE rolname = '{fromStock.Tenant.DbUser}'"))!
                .Replace(db, cdb, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Allocate_StockEmpty_TakesTheCreatePath()
    {
        await using var app = await StartAsync(stock: 2);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);

        var allocated = await AllocateOk(app, Request());

        Assert.Null(allocated.Tenant.StockName);
        await using var conn = TenantConnection(pool, allocated.Tenant.DbName, allocated.Tenant.DbUser, allocated.Password!.Reveal());
        await conn.OpenAsync();
    }

    [Fact]
    public async Task Allocate_StockDroppedByHandBeforeTheClaim_FallsBackToCreating()
    {
        await using var app = await StartAsync(stock: 1);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        await app.Get<WarmStockService>().ReplenishAsync(None);
        var name = (await StockNamesAsync(app, pool.Id)).Single();
        await server.ScalarAsync<int>($"DROP DATABASE \"{name}\"");

        var allocated = await AllocateOk(app, Request());

        Assert.Equal(name, allocated.Tenant.StockName);
        await using var conn = TenantConnection(pool, allocated.Tenant.DbName, allocated.Tenant.DbUser, allocated.Password!.Reveal());
        await conn.OpenAsync();
    }

    [Fact]
    public async Task Allocate_TwentyInParallelWithStockTwo_AllSucceedAndNoStockIsAssignedTwice()
    {
        await using var app = await StartAsync(stock: 2);
        var server = fixture.Pools[2];
        var pool = await app.AddPoolAsync(server, 30);
        var stock = app.Get<WarmStockService>();
        await stock.ReplenishAsync(None);

        // Replenishing runs beside the allocations, as the background replenisher does under load.
        using var stop = new CancellationTokenSource();
        var refilling = Task.Run(async () =>
        {
            var made = 0;
            while (!stop.IsCancellationRequested)
            {
                made += await stock.ReplenishAsync(None);
            }

            return made;
        });
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => app.Allocation.AllocateAsync(Request(), None))));
        await stop.CancelAsync();
        await refilling;

        var allocated = outcomes.Select(o => Assert.IsType<AllocationOutcome.Allocated>(o)).ToList();
        Assert.Equal(20, allocated.Select(a => a.Tenant.DbName).Distinct().Count());
        var stockNames = allocated.Where(a => a.Tenant.StockName is not null).Select(a => a.Tenant.StockName).ToList();
        Assert.True(stockNames.Count >= 2, $"only {stockNames.Count} allocations took stock");
        Assert.Equal(stockNames.Count, stockNames.Distinct().Count());
        foreach (var a in allocated)
        {
            await using var conn = TenantConnection(pool, a.Tenant.DbName, a.Tenant.DbUser, a.Password!.Reveal());
            await conn.OpenAsync();
        }

        Assert.Equal(20, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.CurrentInstances);
        // What is left in stock is whole on the server, and nothing claimed is still there under a stock name.
        foreach (var name in await StockNamesAsync(app, pool.Id))
        {
            Assert.True(await DatabaseExistsAsync(server, name));
        }

        foreach (var name in stockNames)
        {
            Assert.False(await DatabaseExistsAsync(server, name!));
        }
    }

    public static TheoryData<bool> RenamedBeforeTheCrash => new() { false, true };

    [Theory]
    [MemberData(nameof(RenamedBeforeTheCrash))]
    public async Task AllocatorStoppedMidClaim_SweepRecoversTheTenantDropsTheStockAndRefills(bool renamed)
    {
        await using var app = await StartAsync(stock: 1);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        var stock = app.Get<WarmStockService>();
        await stock.ReplenishAsync(None);
        var instance = Guid.NewGuid();
        var names = app.Allocation.NamesFor(instance);

        // What a process killed after the reservation leaves: the stock claimed by a creating row; with renamed, the rename
        // (one transaction on the pool) had committed too.
        Assert.True(AllocationValidator.TryValidate(Request(instance), app.Get<IOptions<PoolsOptions>>().Value, out var valid, out _));
        var reserved = (await app.Get<TenantStore>().ReserveAsync(valid, names.Database, names.LoginRole, dedicated: false, PlacementStrategy.FillFirst,
            skipLocked: false, None))!;
        var stockName = reserved.Tenant.StockName!;
        if (renamed)
        {
            Assert.True(await app.Get<ITenantDdl>().CreateFromStockAsync(reserved.Pool, stockName, names,
                ScramVerifier.Compute(PasswordGenerator.Generate(32)), 40, None));
        }

        Assert.Equal(renamed, await DatabaseExistsAsync(server, names.Database));
        Assert.Equal(!renamed, await DatabaseExistsAsync(server, stockName));

        await app.CatalogScalarAsync<int>("UPDATE tenant_databases SET created_at = now() - interval '1 hour', updated_at = now() - interval '1 hour' WHERE id = @id",
            ("id", reserved.Tenant.Id));
        Assert.Equal(1, await app.Recovery.RecoverAbandonedAsync(None));
        var repair = await stock.RepairAsync(None);

        Assert.False(await DatabaseExistsAsync(server, names.Database));
        Assert.False(await DatabaseExistsAsync(server, stockName));
        Assert.False(await RoleExistsAsync(server, names.OwnerRole));
        Assert.False(await RoleExistsAsync(server, StockNames.OwnerRole(stockName)));
        Assert.Equal(1, repair.Made);
        Assert.Equal(1L, await StockRowsAsync(app, pool.Id));
        Assert.Equal(0, (await app.Get<PoolStore>().GetAsync(pool.Id, None))!.CurrentInstances);
        // The instance can be allocated again, from the new stock.
        var again = await AllocateOk(app, new AllocationRequest(instance.ToString(), valid.CustomerId.ToString(), "standard"));
        Assert.NotNull(again.Tenant.StockName);
    }

    [Fact]
    public async Task Sweep_StockMissingOnItsServer_IsRemovedAndMadeAgain()
    {
        await using var app = await StartAsync(stock: 2);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        var stock = app.Get<WarmStockService>();
        await stock.ReplenishAsync(None);
        var (lost, kept) = (await StockNamesAsync(app, pool.Id)) switch { var n => (n[0], n[1]) };
        await server.ScalarAsync<int>($"DROP DATABASE \"{lost}\"");

        var repair = await stock.RepairAsync(None);

        Assert.Equal(1, repair.MissingObjects);
        Assert.Equal(1, repair.Made);
        var now = await StockNamesAsync(app, pool.Id);
        Assert.DoesNotContain(lost, now);
        Assert.Contains(kept, now);
        Assert.False(await RoleExistsAsync(server, lost + "_owner"));
        foreach (var name in now)
        {
            Assert.True(await DatabaseExistsAsync(server, name));
        }
    }

    [Fact]
    public async Task Sweep_AbandonedMakeAndOrphans_AreDroppedButAnotherCatalogsStockIsNot()
    {
        await using var app = await StartAsync(stock: 1);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        var store = app.Get<WarmStockStore>();
        var ddl = app.Get<WarmStockDdl>();
        var ours = await app.Get<CatalogIdentity>().GetAsync(None);

        // A replenisher that stopped mid-make (row creating for long), an object of ours nothing records, another catalog's stock.
        var abandoned = StockNames.New();
        Assert.Equal([abandoned], await store.BeginAsync(pool.Id, 1, [abandoned], None));
        await ddl.CreateAsync(pool, abandoned, ours, None);
        await app.CatalogScalarAsync<int>("UPDATE warm_stock SET created_at = now() - interval '1 hour' WHERE name = @n", ("n", abandoned));
        var orphan = StockNames.New();
        await ddl.CreateAsync(pool, orphan, ours, None);
        var foreign = StockNames.New();
        await ddl.CreateAsync(pool, foreign, Guid.NewGuid(), None);
        // A make that stopped after CREATE DATABASE, before the database's comment: only its owner role carries the marker.
        var halfMade = StockNames.New();
        await ddl.CreateAsync(pool, halfMade, ours, None);
        await server.ScalarAsync<int>($"COMMENT ON DATABASE \"{halfMade}\" IS NULL");
        try
        {
            var repair = await app.Get<WarmStockService>().RepairAsync(None);

            Assert.Equal(1, repair.Removed);
            Assert.Equal(2, repair.Orphans);
            Assert.False(await DatabaseExistsAsync(server, halfMade));
            Assert.False(await DatabaseExistsAsync(server, abandoned));
            Assert.False(await DatabaseExistsAsync(server, orphan));
            Assert.False(await RoleExistsAsync(server, orphan + "_owner"));
            Assert.True(await DatabaseExistsAsync(server, foreign));
            Assert.Equal(1L, await StockRowsAsync(app, pool.Id));
        }
        finally
        {
            await ddl.DropAsync(pool, foreign, None);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DrainOrRetire_DropsThePoolsStock_AndTheSweepMakesNoneForIt(bool retire)
    {
        await using var app = await StartAsync(stock: 2);
        var server = fixture.Pools[1];
        var pool = await app.AddPoolAsync(server, 10);
        var stock = app.Get<WarmStockService>();
        await stock.ReplenishAsync(None);
        var names = await StockNamesAsync(app, pool.Id);

        var lifecycle = app.Get<PoolLifecycleService>();
        Assert.IsType<AdminOutcome<PoolView>.Done>(retire ? await lifecycle.RetireAsync(pool.Id, None) : await lifecycle.DrainAsync(pool.Id, None));
        var repair = await stock.RepairAsync(None);

        Assert.Equal(0, repair.Made);
        Assert.Empty(await StockNamesAsync(app, pool.Id));
        foreach (var name in names)
        {
            Assert.False(await DatabaseExistsAsync(server, name));
        }
    }

    [Fact]
    public async Task Replenisher_AfterAnAllocationTookStock_RefillsWithinSeconds()
    {
        await using var app = await StartAsync(stock: 2, new Dictionary<string, string?> { ["Pools:WarmStockInterval"] = "00:10:00" });
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        var replenisher = app.Get<WarmStockReplenisher>();
        await replenisher.StartAsync(None);
        try
        {
            await WaitForStockAsync(app, pool.Id, 2, TimeSpan.FromSeconds(20));

            var allocated = await AllocateOk(app, Request());

            Assert.NotNull(allocated.Tenant.StockName);
            // Only the allocation's signal can refill it now: the interval is ten minutes.
            await WaitForStockAsync(app, pool.Id, 2, TimeSpan.FromSeconds(10));
        }
        finally
        {
            await replenisher.StopAsync(None);
        }
    }

    private static async Task WaitForStockAsync(TestApp app, long poolId, int count, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (await StockRowsAsync(app, poolId) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the stock did not reach {count} within {within.TotalSeconds} s");
            await Task.Delay(50);
        }
    }
}
