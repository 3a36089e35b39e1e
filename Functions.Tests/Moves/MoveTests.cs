using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Moves;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TenantDb.Functions.Tests.Moves;

/// <summary>
/// Moves between two real pool servers (DESIGN.md §10), the service called directly (the Durable path and the HTTP route are
/// the end-to-end tests'): data, passwords, open sessions, counters, and the rollback of a move that fails mid-restore.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class MoveTests(PostgresFixture fixture, ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static AllocationRequest Request() => new(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard");

    private static NpgsqlConnection TenantConnection(Pool pool, TenantDatabase tenant, string password) =>
        new(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = pool.Port, Database = tenant.DbName, Username = tenant.DbUser, Password = password, Pooling = false, Timeout = 15,
        }.ConnectionString);

    private static async Task ExecAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 600 };
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task<(TestApp App, Pool Source, Pool Target, AllocationOutcome.Allocated Tenant)> StartAsync()
    {
        var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:WarmStock"] = "0" });
        var source = await app.AddPoolAsync(fixture.Pools[0], 10);
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(), None));
        var target = await app.AddPoolAsync(fixture.Pools[1], 10);
        return (app, source, target, allocated);
    }

    private static async Task WriteDataAsync(AllocationOutcome.Allocated tenant)
    {
        await using var conn = TenantConnection(tenant.Pool, tenant.Tenant, tenant.Password!.Reveal());
        await conn.OpenAsync();
        await ExecAsync(conn, """"
            CREATE TABLE orders (id int PRIMARY KEY, note text);
            INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 5000) g;
            CREATE SCHEMA "odd ""schema""";
            CREATE TABLE "odd ""schema""".";drop table orders;--" (v int);
            INSERT INTO "odd ""schema""".";drop table orders;--" VALUES (1), (2), (3);
            SELECT lo_from_bytea(0, 'large object'::bytea);
            """");
    }

    [Fact]
    public async Task Move_WithDataAndAnOpenSession_DataOnTheTargetSamePasswordSourceRefusesCountersRight()
    {
        var (app, source, target, tenant) = await StartAsync();
        await using var _ = app;
        await WriteDataAsync(tenant);
        var password = tenant.Password!.Reveal();
        await using var open = TenantConnection(source, tenant.Tenant, password);
        await open.OpenAsync();
        var instance = tenant.Tenant.InstanceId;

        var result = await app.Get<MoveService>().RunAsync(new MoveRunInput(Guid.NewGuid(), instance, target.Id, "test"), None);

        output.WriteLine($"move: {result.Status} downtime {result.DowntimeMs:0} ms, {result.Tables} tables, {result.Rows} rows, {result.Bytes} bytes, {result.Seconds:0.0} s");
        Assert.Equal(MoveResult.Moved, result.Status);
        Assert.Equal(2, result.Generation);
        Assert.Equal(2, result.Tables);
        Assert.Equal(5003, result.Rows);
        // The session on the source was ended by the freeze.
        await Assert.ThrowsAnyAsync<Exception>(async () => await ScalarAsync<int>(open, "SELECT 1"));
        // The same password logs in on the target, where the data is.
        await using (var moved = TenantConnection(target, tenant.Tenant, password))
        {
            await moved.OpenAsync();
            Assert.Equal(5000L, await ScalarAsync<long>(moved, "SELECT count(*) FROM orders"));
            Assert.Equal(3L, await ScalarAsync<long>(moved, "SELECT count(*) FROM \"odd \"\"schema\"\"\".\";drop table orders;--\""));
            Assert.Equal(1L, await ScalarAsync<long>(moved, "SELECT count(*) FROM pg_largeobject_metadata"));
            await ExecAsync(moved, "INSERT INTO orders VALUES (5001, 'after the move')");
            Assert.Equal(tenant.Tenant.DbName, await ScalarAsync<string>(moved, "SELECT current_database()"));
        }

        // The source copy refuses the tenant's logins.
        await using (var old = TenantConnection(source, tenant.Tenant, password))
        {
            await Assert.ThrowsAsync<PostgresException>(() => old.OpenAsync());
        }

        var live = (await app.Allocation.FindAsync(instance, None))!;
        Assert.Equal(target.Id, live.Pool.Id);
        Assert.Equal(2, live.Tenant.Generation);
        Assert.Equal(0, (await app.Get<PoolStore>().GetAsync(source.Id, None))!.CurrentInstances);
        Assert.Equal(1, (await app.Get<PoolStore>().GetAsync(target.Id, None))!.CurrentInstances);
        Assert.Equal("moved", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_moves WHERE instance_id = @i", ("i", instance)));
        Assert.Equal(1L, await app.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = 'tenant_move_completed' AND reason LIKE 'downtime % ms%'", ("i", instance)));
        // The health sweep's recount agrees with the counters.
        Assert.Null(await app.Get<PoolHealthStore>().ReconcileCapacityAsync(source.Id, "test", None));
        Assert.Null(await app.Get<PoolHealthStore>().ReconcileCapacityAsync(target.Id, "test", None));
    }

    [Fact]
    public async Task MovedCopyPurge_SourceCopyPastItsRetention_IsDroppedWithItsRolesAndTheTenantOnTheTargetIsUntouched()
    {
        var (app, source, target, tenant) = await StartAsync();
        await using var _ = app;
        await WriteDataAsync(tenant);
        var password = tenant.Password!.Reveal();
        var instance = tenant.Tenant.InstanceId;
        var names = tenant.Tenant.DbName;
        Assert.Equal(MoveResult.Moved, (await app.Get<MoveService>().RunAsync(new MoveRunInput(Guid.NewGuid(), instance, target.Id, "test"), None)).Status);
        var purge = app.Get<MovedCopyPurge>();

        // Within its retention the source copy stays.
        Assert.Equal((0, 0), await purge.PurgeDueAsync("test", None));
        Assert.Equal(1L, await fixture.Pools[0].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{names}'"));

        await app.RewriteHistoryAsync("UPDATE tenant_moves SET source_purge_after = now() - interval '1 minute' WHERE instance_id = @i", ("i", instance));
        Assert.Equal((1, 0), await purge.PurgeDueAsync("test", None));

        Assert.Equal(0L, await fixture.Pools[0].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{names}'"));
        Assert.Equal(0L, await fixture.Pools[0].ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{tenant.Tenant.DbUser}%'"));
        Assert.Equal("source_purged", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_moves WHERE instance_id = @i", ("i", instance)));
        // Done once: the next cleanup finds nothing due.
        Assert.Equal((0, 0), await purge.PurgeDueAsync("test", None));
        await using var moved = TenantConnection(target, tenant.Tenant, password);
        await moved.OpenAsync();
        Assert.Equal(5000L, await ScalarAsync<long>(moved, "SELECT count(*) FROM orders"));
        Assert.Equal(TenantDatabaseStatus.Ready, (await app.Allocation.FindAsync(instance, None))!.Tenant.Status);
    }

    [Fact]
    public async Task StuckMoveRecovery_MoveWhoseWorkerDiedMidCopy_IsRolledBackByTheSweepAndTheTenantIsWritableOnItsSource()
    {
        // A run that dies mid-copy and never comes back (terminated, or its history purged): nothing but the sweep would end it,
        // and the tenant would stay frozen with a slot held on the target.
        var (app, source, target, tenant) = await StartAsync();
        await using var _ = app;
        var password = tenant.Password!.Reveal();
        await using (var conn = TenantConnection(tenant.Pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 3000) g");
        }

        // The state a move's worker leaves when its host dies mid-copy, made by the move's own steps: the target slot reserved
        // and the row moving, the roles and scratch database on the target, the source's logins frozen.
        var instance = tenant.Tenant.InstanceId;
        var names = app.Allocation.NamesFor(instance);
        var begun = Assert.IsType<MoveBegin.Begun>(await app.Get<MoveStore>().BeginAsync(Guid.NewGuid(), tenant.Tenant, target.Id, false, "test", "test", None));
        await app.Get<MoveDdl>().CreateRolesAsync(target, names, await app.Get<MoveDdl>().ReadLoginsAsync(source, names, None), None);
        var restoreDdl = app.Get<TenantDb.Functions.Backups.TenantRestoreDdl>();
        await restoreDdl.CreateScratchAsync(target, names, ScramVerifier.Compute(PasswordGenerator.Generate(40)), None);
        Assert.NotEmpty(await restoreDdl.FreezeAsync(source, names, None));
        await using (var frozen = TenantConnection(source, tenant.Tenant, password))
        {
            await Assert.ThrowsAsync<PostgresException>(() => frozen.OpenAsync());
        }

        Assert.Equal(1, (await app.Get<PoolStore>().GetAsync(target.Id, None))!.CurrentInstances);
        var recovery = app.Get<StuckMoveRecovery>();
        // Young moves are their own run's to recover.
        Assert.Equal((0, 0), await recovery.RecoverAsync(None));

        await app.RewriteHistoryAsync("UPDATE tenant_moves SET started_at = now() - interval '1 hour' WHERE instance_id = @i", ("i", instance));
        Assert.Equal((0, 1), await recovery.RecoverAsync(None));

        Assert.Equal("failed", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_moves WHERE instance_id = @i", ("i", instance)));
        await using (var back = TenantConnection(source, tenant.Tenant, password))
        {
            await back.OpenAsync();
            await ExecAsync(back, "INSERT INTO orders VALUES (3001, 'after the rollback')");
            Assert.Equal(3001L, await ScalarAsync<long>(back, "SELECT count(*) FROM orders"));
        }

        Assert.Equal(source.Id, (await app.Allocation.FindAsync(instance, None))!.Pool.Id);
        Assert.Equal(1, (await app.Get<PoolStore>().GetAsync(source.Id, None))!.CurrentInstances);
        Assert.Equal(0, (await app.Get<PoolStore>().GetAsync(target.Id, None))!.CurrentInstances);
        Assert.Equal(0L, await fixture.Pools[1].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname LIKE '{tenant.Tenant.DbName}%'"));
        Assert.Equal((0, 0), await recovery.RecoverAsync(None));
    }

    [Fact]
    public async Task Move_FailingMidRestore_TenantBackOnItsSourceWritableNothingLeftOnTheTarget()
    {
        var (app, source, target, tenant) = await StartAsync();
        await using var _ = app;
        await WriteDataAsync(tenant);
        // An object only a superuser may make: the copy's restore (as the tenant's owner, never the admin) fails on it after the
        // tables and their rows were copied.
        await using (var admin = new NpgsqlConnection(fixture.Pools[0].ConnectionString(tenant.Tenant.DbName)))
        {
            await admin.OpenAsync();
            await ExecAsync(admin, """
                CREATE FUNCTION public.noop_event() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
                CREATE EVENT TRIGGER zz_noop ON ddl_command_start EXECUTE FUNCTION public.noop_event();
                """);
        }

        var instance = tenant.Tenant.InstanceId;
        var result = await app.Get<MoveService>().RunAsync(new MoveRunInput(Guid.NewGuid(), instance, target.Id, "test"), None);

        output.WriteLine($"move: {result.Status} {result.ErrorType}: {result.Error}");
        Assert.Equal(MoveResult.Failed, result.Status);
        Assert.Contains("pg_restore", result.Error);
        var live = (await app.Allocation.FindAsync(instance, None))!;
        Assert.Equal(source.Id, live.Pool.Id);
        Assert.Equal(1, live.Tenant.Generation);
        await using (var conn = TenantConnection(source, tenant.Tenant, tenant.Password!.Reveal()))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "INSERT INTO orders VALUES (5001, 'still writable')");
        }

        Assert.Equal(0L, await fixture.Pools[1].ScalarAsync<long>(
            $"SELECT count(*) FROM pg_database WHERE datname LIKE '{tenant.Tenant.DbName}%'"));
        Assert.Equal(0L, await fixture.Pools[1].ScalarAsync<long>(
            $"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{tenant.Tenant.DbName}%' OR rolname LIKE '{tenant.Tenant.DbUser}%'"));
        Assert.Equal(1, (await app.Get<PoolStore>().GetAsync(source.Id, None))!.CurrentInstances);
        Assert.Equal(0, (await app.Get<PoolStore>().GetAsync(target.Id, None))!.CurrentInstances);
        Assert.Equal("failed", await app.CatalogScalarAsync<string>("SELECT status FROM tenant_moves WHERE instance_id = @i", ("i", instance)));
    }

    [Fact]
    public async Task Move_NoOtherPoolWithRoom_RefusedNothingChanged()
    {
        var (app, source, target, tenant) = await StartAsync();
        await using var _ = app;
        await app.Get<PoolStore>().TransitionAsync(target.Id, [PoolStatus.Active], PoolStatus.Draining, "test", "test", None);

        var result = await app.Get<MoveService>().RunAsync(new MoveRunInput(Guid.NewGuid(), tenant.Tenant.InstanceId, null, "test"), None);

        Assert.Equal(MoveResult.Failed, result.Status);
        Assert.Equal("no-target", result.ErrorType);
        Assert.Equal(source.Id, (await app.Allocation.FindAsync(tenant.Tenant.InstanceId, None))!.Pool.Id);
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_moves WHERE instance_id = @i", ("i", tenant.Tenant.InstanceId)));
    }
}
