using System.Diagnostics;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TenantDb.Functions.Tests.Backups;

/// <summary>
/// Backups and restore in place (DESIGN.md §10) on real servers and the shared Azurite: the services called directly (the
/// Durable path is the end-to-end tests'). Each test writes to a blob container of its own and deletes it.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class BackupRestoreTests(PostgresFixture fixture, ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private sealed class Harness(TestApp app, string container) : IAsyncDisposable
    {
        public TestApp App { get; } = app;
        public BackupService Backups => App.Get<BackupService>();
        public RestoreService Restores => App.Get<RestoreService>();
        public BackupBlobs Blobs => App.Get<BackupBlobs>();

        public async ValueTask DisposeAsync()
        {
            try
            {
                await new Azure.Storage.Blobs.BlobServiceClient(StorageConnection).GetBlobContainerClient(container).DeleteIfExistsAsync();
            }
            finally
            {
                await App.DisposeAsync();
            }
        }
    }

    private const string StorageConnection = "UseDevelopmentStorage=true";

    private async Task<Harness> StartAsync()
    {
        var container = $"test-backups-{Guid.NewGuid():N}";
        var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = StorageConnection,
            ["Backups:Container"] = container,
            ["Pools:WarmStock"] = "0",
        });
        return new Harness(app, container);
    }

    private static AllocationRequest Request() => new(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard");

    private static NpgsqlConnection TenantConnection(Pool pool, TenantDatabase tenant, string password) =>
        new(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = pool.Port, Database = tenant.DbName, Username = tenant.DbUser, Password = password, Pooling = false, Timeout = 15,
        }.ConnectionString);

    private static async Task<AllocationOutcome.Allocated> AllocateAsync(Harness h) =>
        Assert.IsType<AllocationOutcome.Allocated>(await h.App.Allocation.AllocateAsync(Request(), None));

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

    private static async Task<BackupResult> BackupAsync(Harness h, Guid instanceId)
    {
        var started = Assert.IsType<BackupStart.Started>(await h.Backups.RecordAsync(instanceId, None));
        Assert.Equal(BackupStatus.Creating, started.Backup.Status);
        return await h.Backups.RunAsync(started.Backup.Id, None);
    }

    private static async Task AssertUnfrozenAsync(TestServer server, TenantDatabase tenant)
    {
        Assert.True(await server.ScalarAsync<bool>($"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{tenant.DbUser}'"));
        Assert.Equal(0L, await server.ScalarAsync<long>(
            $"SELECT count(*) FROM pg_shdescription WHERE description = '{TenantRestoreDdl.FrozenMark}'"));
        Assert.Equal(0L, await server.ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname LIKE '{tenant.DbName}_rs_%'"));
    }

    [Fact]
    public async Task BackupThenDropTable_RestoreInPlace_TableAndRowsBackAndSamePasswordLogsIn()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var password = tenant.Password!.Reveal();
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 1234) g;");
            await ExecAsync(conn, "CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2);");
        }

        var backup = await BackupAsync(h, tenant.Tenant.InstanceId);
        Assert.Equal(BackupStatus.Completed, backup.Status);
        Assert.True(backup.SizeBytes > 0);
        Assert.Matches("^[0-9a-f]{64}$", backup.Sha256!);
        var recorded = (await h.App.Get<BackupStore>().FindAsync(backup.BackupId, None))!;
        Assert.Contains(recorded.TableRows!, t => t is { Schema: "public", Table: "orders", Rows: 1234 });
        Assert.StartsWith("15", recorded.ServerVersion, StringComparison.Ordinal);
        Assert.True((await (await h.Blobs.BlobAsync(recorded.BlobName, None)).GetPropertiesAsync()).Value.ContentLength == backup.SizeBytes);

        // The mistake: a table dropped, another changed.
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "DROP TABLE orders; INSERT INTO keep VALUES (3); CREATE TABLE made_later (x int);");
        }

        var restored = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);

        Assert.True(restored.Status == RestoreResult.Restored, restored.Error);
        Assert.Equal(2, restored.Tables);
        Assert.Equal(1236, restored.Rows);
        Assert.NotNull(restored.DowntimeMs);
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            Assert.Equal(1234L, await ScalarAsync<long>(conn, "SELECT count(*) FROM orders"));
            Assert.Equal("n77", await ScalarAsync<string>(conn, "SELECT note FROM orders WHERE id = 77"));
            Assert.Equal(2L, await ScalarAsync<long>(conn, "SELECT count(*) FROM keep"));
            Assert.Equal(0L, await ScalarAsync<long>(conn, "SELECT count(*) FROM pg_class WHERE relname = 'made_later'"));
            // The tenant still owns what it has: it can write and make objects.
            await ExecAsync(conn, "INSERT INTO orders VALUES (5000, 'after'); CREATE TABLE after_restore (x int);");
            Assert.Equal($"{tenant.Tenant.DbUser}_owner", await ScalarAsync<string>(conn, "SELECT tableowner::text FROM pg_tables WHERE tablename = 'orders'"));
        }

        await AssertUnfrozenAsync(server, tenant.Tenant);
        // Closed to everyone else as allocation left it.
        Assert.False(await server.ScalarAsync<bool>($"SELECT has_database_privilege('public', '{tenant.Tenant.DbName}', 'CONNECT')"));
        Assert.Equal(backup.BackupId, await h.App.CatalogScalarAsync<Guid>(
            "SELECT restored_from_backup_id FROM tenant_databases WHERE id = @id", ("id", tenant.Tenant.Id)));
        Assert.Equal(1L, await h.App.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = @e", ("i", tenant.Tenant.InstanceId), ("e", PoolEventNames.TenantRestored)));
        Assert.Equal(1L, await h.App.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = @e", ("i", tenant.Tenant.InstanceId), ("e", PoolEventNames.BackupCompleted)));
        var listed = await h.Backups.ListAsync(tenant.Tenant.InstanceId, 10, None);
        Assert.Equal(backup.BackupId, Assert.Single(listed!).Id);
    }

    [Fact]
    public async Task BackupOfHostileObjects_Restores()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[2];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var password = tenant.Password!.Reveal();
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, """"
                CREATE TABLE "odd ""name""" ("we ird" text, "x;y" int);
                INSERT INTO "odd ""name""" VALUES ('a', 1), ('b', 2), (E'line\nbreak', 3);
                CREATE SCHEMA "Sch ema";
                CREATE TABLE "Sch ema"."TABLE DATA public t" (id serial PRIMARY KEY, payload bytea);
                INSERT INTO "Sch ema"."TABLE DATA public t" (payload) SELECT decode(md5(g::text), 'hex') FROM generate_series(1, 50) g;
                CREATE VIEW "Sch ema".v AS SELECT count(*) AS n FROM "odd ""name""";
                CREATE UNLOGGED TABLE scratchpad (x int); INSERT INTO scratchpad VALUES (1);
                CREATE FUNCTION "Sch ema".f() RETURNS int LANGUAGE sql AS 'SELECT 42';
                SELECT lo_from_bytea(0, '\xdeadbeef'::bytea);
                SELECT lo_from_bytea(0, repeat('x', 100000)::bytea);
                COMMENT ON TABLE "odd ""name""" IS 'it''s hostile';
                """");
        }

        var backup = await BackupAsync(h, tenant.Tenant.InstanceId);
        Assert.True(backup.Status == BackupStatus.Completed, backup.Error);
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, """"DROP SCHEMA "Sch ema" CASCADE; DELETE FROM "odd ""name"""; SELECT lo_unlink(oid) FROM pg_largeobject_metadata;"""");
        }

        var restored = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);

        Assert.True(restored.Status == RestoreResult.Restored, restored.Error);
        Assert.Equal(2, restored.LargeObjects);
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            Assert.Equal(3L, await ScalarAsync<long>(conn, """"SELECT count(*) FROM "odd ""name""" """"));
            Assert.Equal(50L, await ScalarAsync<long>(conn, """SELECT count(*) FROM "Sch ema"."TABLE DATA public t" """));
            Assert.Equal(3L, await ScalarAsync<long>(conn, """SELECT n FROM "Sch ema".v"""));
            Assert.Equal(42, await ScalarAsync<int>(conn, """SELECT "Sch ema".f()"""));
            Assert.Equal(2L, await ScalarAsync<long>(conn, "SELECT count(*) FROM pg_largeobject_metadata"));
            Assert.Equal(100000, await ScalarAsync<int>(conn, "SELECT max(length(lo_get(oid))) FROM pg_largeobject_metadata"));
        }

        await AssertUnfrozenAsync(server, tenant.Tenant);
    }

    [Fact]
    public async Task ArchiveWithCodeThatResetsRole_RestoresWithoutMakingTheTenantSuperuser()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var password = tenant.Password!.Reveal();
        // The tenant's own code, run by the restore while rows are copied (a CHECK constraint): it tries to leave the role
        // the restore took and make the tenant's login a superuser. In the tenant's session it cannot; it must not in the restore's.
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, $$"""
                CREATE FUNCTION escalate(x int) RETURNS boolean LANGUAGE plpgsql AS $f$
                BEGIN
                    RESET ROLE;
                    EXECUTE format('ALTER ROLE %I SUPERUSER', '{{tenant.Tenant.DbUser}}');
                    RETURN true;
                EXCEPTION WHEN others THEN
                    RETURN true;
                END $f$;
                CREATE TABLE trap (x int CHECK (escalate(x)));
                INSERT INTO trap VALUES (1), (2);
                """);
        }

        Assert.False(await server.ScalarAsync<bool>($"SELECT rolsuper FROM pg_roles WHERE rolname = '{tenant.Tenant.DbUser}'"));
        var backup = await BackupAsync(h, tenant.Tenant.InstanceId);
        Assert.True(backup.Status == BackupStatus.Completed, backup.Error);

        var restored = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);

        Assert.True(restored.Status == RestoreResult.Restored, restored.Error);
        Assert.False(await server.ScalarAsync<bool>($"SELECT rolsuper FROM pg_roles WHERE rolname = '{tenant.Tenant.DbUser}'"));
        Assert.Equal(0L, await server.ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{tenant.Tenant.DbName}_rs_%'"));
        await AssertUnfrozenAsync(server, tenant.Tenant);
    }

    [Fact]
    public async Task RestoreAfterOneThatDiedMidFreeze_GivesTheLoginsBack_AndEndsOpenSessions()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var password = tenant.Password!.Reveal();
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
        }

        var backup = await BackupAsync(h, tenant.Tenant.InstanceId);
        // A restore that died between its freeze and its unfreeze (the host killed): the login refused and marked.
        var names = h.App.Allocation.NamesFor(tenant.Tenant.InstanceId);
        Assert.Equal([tenant.Tenant.DbUser], await h.App.Get<TenantRestoreDdl>().FreezeAsync(pool, names, None));
        await using (var refused = TenantConnection(pool, tenant.Tenant, password))
        {
            Assert.Equal("28000", Assert.IsType<PostgresException>(await Record.ExceptionAsync(() => refused.OpenAsync())).SqlState);
        }

        var restored = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);

        Assert.True(restored.Status == RestoreResult.Restored, restored.Error);
        await AssertUnfrozenAsync(server, tenant.Tenant);
        await using var open = TenantConnection(pool, tenant.Tenant, password);
        await open.OpenAsync();
        Assert.Equal(1L, await ScalarAsync<long>(open, "SELECT count(*) FROM t"));

        // A session open during a restore is ended by its freeze; a new one sees the restored database.
        var again = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);
        Assert.True(again.Status == RestoreResult.Restored, again.Error);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<long>(open, "SELECT count(*) FROM t"));
        await using var fresh = TenantConnection(pool, tenant.Tenant, password);
        await fresh.OpenAsync();
        Assert.Equal(1L, await ScalarAsync<long>(fresh, "SELECT count(*) FROM t"));
    }

    [Fact]
    public async Task BackupOfReleasedTenant_IsRefused()
    {
        await using var h = await StartAsync();
        await h.App.AddPoolAsync(fixture.Pools[1], 10);
        var tenant = await AllocateAsync(h);
        Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(tenant.Tenant.InstanceId, "test", None));

        var start = await h.Backups.RecordAsync(tenant.Tenant.InstanceId, None);

        Assert.Equal(TenantDatabaseStatus.Released, Assert.IsType<BackupStart.NotReady>(start).Status);
        Assert.IsType<BackupStart.NotFound>(await h.Backups.RecordAsync(Guid.NewGuid(), None));
        Assert.Equal(0L, await h.App.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_backups"));
    }

    [Fact]
    public async Task CorruptedBlob_RestoreRefused_TenantUnfrozenAndUntouched()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var password = tenant.Password!.Reveal();
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);");
        }

        var backup = await BackupAsync(h, tenant.Tenant.InstanceId);
        Assert.Equal(BackupStatus.Completed, backup.Status);
        // One byte flipped in the middle of the stored archive (same size).
        var blob = await h.Blobs.BlobAsync((await h.App.Get<BackupStore>().FindAsync(backup.BackupId, None))!.BlobName, None);
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[bytes.Length / 2] ^= 0x5a;
        await blob.UploadAsync(new MemoryStream(bytes));
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "INSERT INTO t VALUES (101);");
        }

        var restored = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);

        Assert.Equal(RestoreResult.Failed, restored.Status);
        Assert.Contains("does not match", restored.Error, StringComparison.Ordinal);
        Assert.Null(restored.DowntimeMs);
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            Assert.Equal(101L, await ScalarAsync<long>(conn, "SELECT count(*) FROM t"));
        }

        await AssertUnfrozenAsync(server, tenant.Tenant);
        Assert.Null(await h.App.CatalogScalarAsync<Guid?>("SELECT restored_from_backup_id FROM tenant_databases WHERE id = @id", ("id", tenant.Tenant.Id)));
        Assert.Equal(1L, await h.App.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = @e", ("i", tenant.Tenant.InstanceId), ("e", PoolEventNames.RestoreFailed)));
    }

    [Fact]
    public async Task BackupWhoseDumpFails_IsMarkedFailed_AndLeavesNoBlob()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var started = Assert.IsType<BackupStart.Started>(await h.Backups.RecordAsync(tenant.Tenant.InstanceId, None));
        // The database vanishes behind the catalog's back (an operator's mistake): pg_dump cannot connect.
        await server.ScalarAsync<int>($"DROP DATABASE \"{tenant.Tenant.DbName}\" WITH (FORCE)");

        var result = await h.Backups.RunAsync(started.Backup.Id, None);

        Assert.Equal(BackupStatus.Failed, result.Status);
        Assert.False(string.IsNullOrEmpty(result.Error));
        Assert.False((await (await h.Blobs.BlobAsync(started.Backup.BlobName, None)).ExistsAsync()).Value);
        Assert.Equal(1L, await h.App.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = @e", ("i", tenant.Tenant.InstanceId), ("e", PoolEventNames.BackupFailed)));
        // Run again (a retried activity): answered as recorded, nothing redone.
        Assert.Equal(BackupStatus.Failed, (await h.Backups.RunAsync(started.Backup.Id, None)).Status);
        // A failed backup is not restored.
        var restore = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, started.Backup.Id), None);
        Assert.Equal(RestoreResult.Failed, restore.Status);
        Assert.Contains("not a completed backup", restore.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientTools_OlderThanTheServer_AreRefusedWithAClearError()
    {
        await using var h = await StartAsync();
        var tools = h.App.Get<PgClientTools>();
        var client = await tools.MajorVersionAsync(None);

        await tools.EnsureCanServeAsync(client * 10000 + 5, None);
        var refused = await Assert.ThrowsAsync<BackupRefusedException>(() => tools.EnsureCanServeAsync((client + 1) * 10000, None));

        Assert.Equal("client-too-old", refused.Type);
        Assert.Contains($"pg_dump/pg_restore {client} cannot serve a PostgreSQL {client + 1} server", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>A figure for the integrator's note, not an assertion of speed: backup and restore of a ~100 MB tenant database.</summary>
    [Fact]
    public async Task HundredMegabyteTenant_BackupAndRestore_RatesMeasured()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[2];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateAsync(h);
        var password = tenant.Password!.Reveal();
        long dbBytes;
        await using (var conn = TenantConnection(pool, tenant.Tenant, password))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE big (id bigint PRIMARY KEY, a text, b text, n numeric)");
            await ExecAsync(conn, """
                INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text), md5((g * 13)::text), g * 1.5 FROM generate_series(1, 650000) g
                """);
            dbBytes = await ScalarAsync<long>(conn, "SELECT pg_database_size(current_database())");
        }

        var watch = Stopwatch.StartNew();
        var backup = await BackupAsync(h, tenant.Tenant.InstanceId);
        var backupSeconds = watch.Elapsed.TotalSeconds;
        Assert.True(backup.Status == BackupStatus.Completed, backup.Error);
        watch.Restart();
        var restored = await h.Restores.RunAsync(new RestoreRunInput(tenant.Tenant.InstanceId, backup.BackupId), None);
        var restoreSeconds = watch.Elapsed.TotalSeconds;
        Assert.True(restored.Status == RestoreResult.Restored, restored.Error);
        Assert.Equal(650000L, restored.Rows);

        var mb = dbBytes / 1e6;
        output.WriteLine(FormattableString.Invariant(
            $"proof backups: db_mb={mb:0.0} dump_mb={backup.SizeBytes / 1e6:0.0} backup_s={backupSeconds:0.00} backup_mb_s={mb / backupSeconds:0.0} restore_s={restoreSeconds:0.00} restore_mb_s={mb / restoreSeconds:0.0} downtime_ms={restored.DowntimeMs:0}"));
        Assert.True(mb > 80, $"the database is {mb:0} MB");
    }
}
