using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Usage;

/// <summary>
/// Quotas per tier (issue 15 item 2) on a real pool server: a tenant filled past a tiny <c>MaxSizeMb</c> is flagged, then made
/// read-only in a way its own sessions cannot undo, reads still work, and a tier with a larger limit makes it writable again.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class QuotaEnforcementTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    // An empty database is about 7.5 MiB: past 80 % of 12 MiB (9.6 MiB) after ~2.5 MiB of rows, past 12 MiB after ~5 MiB.
    private static Dictionary<string, string?> Settings() => new()
    {
        ["Pools:WarmStock"] = "0",
        ["Pools:Tiers:standard:MaxSizeMb"] = "12",
        ["Pools:Tiers:professional:MaxSizeMb"] = "200",
    };

    [Fact]
    public async Task HealthCheck_TenantFilledPastTinyLimit_WarnsThenReadOnlyUnbypassable_TierRaiseMakesItWritable()
    {
        await using var app = await TestApp.StartAsync(fixture, Settings());
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(
            await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None));
        var tenant = allocated.Tenant;
        var names = app.Get<TenantNaming>().Of(tenant);
        var health = app.Get<HealthService>();
        await using var session = await OpenAsTenantAsync(pool, allocated);

        // Things a tenant could prepare while writable to write through later: a SECURITY DEFINER function (runs as the owner),
        // a table its login owns (RESET ROLE first), a table it granted INSERT on to PUBLIC.
        await ExecuteAsync(session, """
            CREATE TABLE blobs (id int, body text);
            CREATE TABLE open_to_all (id int);
            CREATE SEQUENCE ids;
            GRANT USAGE ON SEQUENCE ids TO PUBLIC;
            GRANT INSERT ON open_to_all TO PUBLIC;
            CREATE FUNCTION sneak() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'INSERT INTO blobs VALUES (-1, ''definer'')';
            RESET ROLE;
            CREATE TABLE mine (id int);
            """);
        await CheckAsync(health, pool);
        Assert.Equal(QuotaStates.Ok, await StateAsync(app, tenant));

        await ExecuteAsync(session, "INSERT INTO blobs SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 2500) g");
        var warned = await CheckAsync(health, pool);
        var size = await SizeAsync(app, tenant);
        Assert.True(QuotaStates.Warning == await StateAsync(app, tenant), $"size {size} bytes");
        Assert.Equal(1, warned.TenantsWarning);
        Assert.Equal(1L, await EventsAsync(app, tenant, PoolEventNames.QuotaWarning));

        await ExecuteAsync(session, "INSERT INTO blobs SELECT g, repeat(md5(g::text), 32) FROM generate_series(2501, 5500) g");
        var readOnly = await CheckAsync(health, pool);
        size = await SizeAsync(app, tenant);
        Assert.True(QuotaStates.ReadOnly == await StateAsync(app, tenant), $"size {size} bytes");
        Assert.True(readOnly.TenantsReadOnly == 1, Quota());
        Assert.Equal(1L, await EventsAsync(app, tenant, PoolEventNames.QuotaReadOnly));
        // The session that was open (running as the owner) was ended.
        await Assert.ThrowsAnyAsync<Exception>(() => ExecuteAsync(session, "SELECT 1"));

        await using (var reader = await OpenAsTenantAsync(pool, allocated))
        {
            // Reads work.
            Assert.Equal(5500L, await ScalarAsync<long>(reader, "SELECT count(*) FROM blobs"));

            // An ordinary client's write meets the read-only default (a clear message).
            var plain = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(reader, "INSERT INTO blobs VALUES (0, 'x')"));
            Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, plain.SqlState);

            // With the default turned off (its own command, so the next transaction starts read-write) or a read-write transaction,
            // every way to write, to become the owner or to undo the state is refused for lack of privilege.
            const string Off = "SET default_transaction_read_only = off";
            string[][] attempts =
            [
                [Off, "INSERT INTO blobs VALUES (0, 'x')"],
                ["BEGIN", "SET TRANSACTION READ WRITE", "INSERT INTO blobs VALUES (0, 'x')"],
                [$"SET ROLE {Identifier.Quote(names.OwnerRole)}"],
                [Off, $"ALTER DATABASE {Identifier.Quote(names.Database)} RESET default_transaction_read_only"],
                [Off, $"ALTER DATABASE {Identifier.Quote(names.Database)} SET default_transaction_read_only = off"],
                [Off, $"GRANT {Identifier.Quote(names.OwnerRole)} TO {Identifier.Quote(names.LoginRole)}"],
                [Off, "UPDATE blobs SET body = 'y'"],
                [Off, "DELETE FROM blobs"],
                [Off, "TRUNCATE blobs"],
                [Off, "CREATE TABLE more (id int)"],
                [Off, "CREATE TEMP TABLE scratch (id int)"],
                [Off, "CREATE SCHEMA mine2"],
                [Off, "SELECT sneak()"],
                [Off, "INSERT INTO mine VALUES (1)"],
                [Off, "INSERT INTO open_to_all VALUES (1)"],
                [Off, "SELECT lo_from_bytea(0, '\\x00')"],
                [Off, "SELECT lo_create(0)"],
                [Off, "SELECT nextval('ids')"],
                [Off, "ALTER TABLE blobs ADD COLUMN extra int"],
            ];
            foreach (var attempt in attempts)
            {
                foreach (var step in attempt[..^1])
                {
                    await ExecuteAsync(reader, step);
                }

                var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(reader, attempt[^1]));
                Assert.True(refused.SqlState == PostgresErrorCodes.InsufficientPrivilege, $"{string.Join("; ", attempt)}: {refused.SqlState} {refused.MessageText}");
                await ExecuteAsync(reader, "ROLLBACK");
                await ExecuteAsync(reader, "RESET ALL");
            }

            Assert.Equal(5500L, await ScalarAsync<long>(reader, "SELECT count(*) FROM blobs"));

            // A second check keeps it read-only without another event, and leaves this reading session alone.
            await CheckAsync(health, pool);
            Assert.Equal(QuotaStates.ReadOnly, await StateAsync(app, tenant));
            Assert.Equal(1L, await EventsAsync(app, tenant, PoolEventNames.QuotaReadOnly));
            Assert.Equal(5500L, await ScalarAsync<long>(reader, "SELECT count(*) FROM blobs"));
        }

        // A tier with a larger limit lifts it at once.
        var changed = Assert.IsType<TierChangeOutcome.Done>(
            await app.Get<TierChangeService>().ChangeAsync(tenant.InstanceId, new TierChangeRequest("professional"), "test", None));
        Assert.Equal(QuotaStates.Ok, changed.Placement.Tenant.QuotaState);
        Assert.Equal(QuotaStates.Ok, await StateAsync(app, tenant));
        Assert.Equal(1L, await EventsAsync(app, tenant, PoolEventNames.QuotaLifted));
        await using (var writer = await OpenAsTenantAsync(pool, allocated))
        {
            await ExecuteAsync(writer, """
                INSERT INTO blobs VALUES (0, 'again');
                SELECT sneak();
                INSERT INTO mine VALUES (1);
                INSERT INTO open_to_all VALUES (1);
                SELECT lo_unlink(lo_from_bytea(0, '\x00'));
                CREATE TABLE more (id int);
                """);
            Assert.Equal(5502L, await ScalarAsync<long>(writer, "SELECT count(*) FROM blobs"));
            // The objects are the owner's again, as every object of a writable tenant.
            Assert.Equal(names.OwnerRole, await ScalarAsync<string>(writer, "SELECT tableowner::text FROM pg_tables WHERE tablename = 'more'"));
        }

        // The next check agrees: writable, no further event.
        await CheckAsync(health, pool);
        Assert.Equal(QuotaStates.Ok, await StateAsync(app, tenant));
        Assert.Equal(1L, await EventsAsync(app, tenant, PoolEventNames.QuotaLifted));
    }

    [Fact]
    public async Task HealthCheck_ReadOnlyTenantGivenItsSecondLogin_NextCheckMakesThatLoginReadOnlyToo()
    {
        // A 1 MiB limit: the empty database (~7.5 MiB) is past it at its first check.
        var settings = Settings();
        settings["Pools:Tiers:starter:MaxSizeMb"] = "1";
        await using var app = await TestApp.StartAsync(fixture, settings);
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(
            await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "starter"), None));
        var names = app.Get<TenantNaming>().Of(allocated.Tenant);
        await using (var owner = await OpenAsTenantAsync(pool, allocated))
        {
            await ExecuteAsync(owner, "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1)");
        }

        var health = app.Get<HealthService>();
        Assert.Equal(1, (await CheckAsync(health, pool)).TenantsReadOnly);

        // A rotation makes the second login as the first was made (in the owner role): writable until the pool's next check.
        var password = TenantDb.Functions.Secrets.PasswordGenerator.Generate(40);
        Assert.True(await app.Get<ITenantDdl>().SetLoginPasswordAsync(pool, names, names.AlternateLoginRole,
            TenantDb.Functions.Secrets.ScramVerifier.Compute(password), 20, None));
        await CheckAsync(health, pool);

        await using var second = await OpenAsync(pool, allocated.Tenant.DbName, names.AlternateLoginRole, password);
        Assert.Equal(1L, await ScalarAsync<long>(second, "SELECT count(*) FROM notes"));
        await ExecuteAsync(second, "SET default_transaction_read_only = off");
        var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(second, "INSERT INTO notes VALUES (2)"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        Assert.Equal(1L, await EventsAsync(app, allocated.Tenant, PoolEventNames.QuotaReadOnly));
    }

    [Fact]
    public async Task HealthCheck_ReadOnlyTenantRestoredInPlace_NextCheckLetsItReadAgainStillNotWrite()
    {
        var container = $"test-backups-{Guid.NewGuid():N}";
        var settings = Settings();
        settings["Pools:Tiers:starter:MaxSizeMb"] = "1";
        settings["AzureWebJobsStorage"] = "UseDevelopmentStorage=true";
        settings["Backups:Container"] = container;
        await using var app = await TestApp.StartAsync(fixture, settings);
        try
        {
            var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
            var allocated = Assert.IsType<AllocationOutcome.Allocated>(
                await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "starter"), None));
            await using (var owner = await OpenAsTenantAsync(pool, allocated))
            {
                await ExecuteAsync(owner, "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1), (2)");
            }

            var backups = app.Get<TenantDb.Functions.Backups.BackupService>();
            var started = Assert.IsType<TenantDb.Functions.Backups.BackupStart.Started>(await backups.RecordAsync(allocated.Tenant.InstanceId, None));
            await backups.RunAsync(started.Backup.Id, None);
            var health = app.Get<HealthService>();
            Assert.Equal(1, (await CheckAsync(health, pool)).TenantsReadOnly);

            // The restore swaps in a new database (taken while writable): the login's own CONNECT and SELECT are not on it.
            var restored = await app.Get<TenantDb.Functions.Backups.RestoreService>().RunAsync(
                new TenantDb.Functions.Backups.RestoreRunInput(allocated.Tenant.InstanceId, started.Backup.Id), None);
            Assert.True(restored.Status == TenantDb.Functions.Backups.RestoreResult.Restored, restored.Error);
            await CheckAsync(health, pool);

            await using var reader = await OpenAsTenantAsync(pool, allocated);
            Assert.Equal(2L, await ScalarAsync<long>(reader, "SELECT count(*) FROM notes"));
            await ExecuteAsync(reader, "SET default_transaction_read_only = off");
            var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(reader, "INSERT INTO notes VALUES (3)"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
            Assert.Equal(QuotaStates.ReadOnly, await StateAsync(app, allocated.Tenant));
        }
        finally
        {
            await new Azure.Storage.Blobs.BlobServiceClient("UseDevelopmentStorage=true").GetBlobContainerClient(container).DeleteIfExistsAsync();
        }
    }

    // What the enforcer logged, for a failure's message.
    private static string Quota() => string.Join('\n', CapturedLogs.All.Where(l => l.Contains("QuotaEnforcer", StringComparison.Ordinal)).TakeLast(5));

    private static async Task<TenantDb.Functions.Usage.UsageCollected> CheckAsync(HealthService health, Pool pool)
    {
        var report = Assert.IsType<AdminOutcome<PoolHealthReport>.Done>(await health.CheckAsync(pool.Id, None)).Value;
        return Assert.IsType<TenantDb.Functions.Usage.UsageCollected>(report.Usage);
    }

    private static Task<NpgsqlConnection> OpenAsTenantAsync(Pool pool, AllocationOutcome.Allocated allocated) =>
        OpenAsync(pool, allocated.Tenant.DbName, allocated.Tenant.DbUser, allocated.Password!.Reveal());

    private static async Task<NpgsqlConnection> OpenAsync(Pool pool, string database, string user, string password)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = pool.Port, Database = database, Username = user, Password = password, Pooling = false, Timeout = 5,
        }.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<string> StateAsync(TestApp app, TenantDatabase tenant) =>
        (await app.CatalogScalarAsync<string>("SELECT quota_state FROM tenant_databases WHERE id = @id", ("id", tenant.Id)))!;

    private static Task<long> SizeAsync(TestApp app, TenantDatabase tenant) =>
        app.CatalogScalarAsync<long>("SELECT size_bytes FROM tenant_usage WHERE tenant_id = @id", ("id", tenant.Id));

    private static Task<long> EventsAsync(TestApp app, TenantDatabase tenant, string name) =>
        app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE instance_id = @id AND event = @event",
            ("id", tenant.InstanceId), ("event", name));
}
