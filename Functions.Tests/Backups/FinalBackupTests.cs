using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Backups;

/// <summary>
/// Issue 14, the end of a tenant's life on real servers and the shared Azurite: the final backup a purge needs
/// (<c>Backups:FinalOnRelease</c>), purge now, and the refusals of un-release (its full flow, which needs the handoff
/// entity, is <c>LifecycleEndToEndTests</c>'). Each test writes to a blob container of its own and deletes it.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class FinalBackupTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;
    // The shared Azurite, or one of the run's own (TENANTDB_TEST_STORAGE, a connection string) when the shared one is busy.
    private static readonly string StorageConnection =
        Environment.GetEnvironmentVariable("TENANTDB_TEST_STORAGE") is { Length: > 0 } storage ? storage : "UseDevelopmentStorage=true";

    private sealed class Harness(TestApp app, string container) : IAsyncDisposable
    {
        public TestApp App { get; } = app;
        public BackupStore Backups => App.Get<BackupStore>();
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

    private async Task<Harness> StartAsync(IDictionary<string, string?>? extra = null)
    {
        var container = $"test-final-{Guid.NewGuid():N}";
        var settings = new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = StorageConnection,
            ["Backups:Container"] = container,
            ["Backups:FinalOnRelease"] = "true",
            ["Pools:WarmStock"] = "0",
            ["Pools:Tiers:standard:BackupRetention"] = "3.00:00:00",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new Harness(await TestApp.StartAsync(fixture, settings), container);
    }

    private static async Task<AllocationOutcome.Allocated> AllocateWithDataAsync(Harness h, Pool pool, int rows)
    {
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(
            await h.App.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None));
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = pool.Port, Database = allocated.Tenant.DbName, Username = allocated.Tenant.DbUser,
            Password = allocated.Password!.Reveal(), Pooling = false, Timeout = 15,
        }.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, {rows})", conn);
        await cmd.ExecuteNonQueryAsync();
        return allocated;
    }

    private static Task<bool> DatabaseExistsAsync(TestServer server, string db) =>
        server.ScalarAsync<bool>($"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{db}')");

    [Fact]
    public async Task PurgeOfReleasedTenant_TakesTheFinalBackupFirst_BlobAndRowKeptDatabaseGone()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateWithDataAsync(h, pool, 321);
        var released = Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(tenant.Tenant.InstanceId, "test", None));

        var result = await h.App.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);

        Assert.Equal(new PurgeResult(1, 0), result);
        Assert.False(await DatabaseExistsAsync(server, tenant.Tenant.DbName));
        var backup = Assert.Single(await h.Backups.ListAsync(tenant.Tenant.InstanceId, 10, None));
        Assert.Equal((BackupKind.Final, BackupStatus.Completed), (backup.Kind, backup.Status));
        Assert.True(backup.StartedAt >= released.Tenant.ReleasedAt);
        Assert.Contains(backup.TableRows!, t => t is { Table: "orders", Rows: 321 });
        // The tier's retention (3 days), not Backups:Retention (30).
        Assert.InRange((backup.ExpiresAt!.Value - backup.FinishedAt!.Value).TotalHours, 71.9, 72.1);
        var blob = await h.Blobs.BlobAsync(backup.BlobName, None);
        Assert.Equal(backup.SizeBytes, (await blob.GetPropertiesAsync()).Value.ContentLength);
        Assert.Equal("dropped", await h.App.CatalogScalarAsync<string>(
            "SELECT status FROM tenant_databases WHERE id = @id", ("id", tenant.Tenant.Id)));
    }

    [Fact]
    public async Task FinalBackupOfReleasedTenant_LeavesItsDatabaseClosedAndItsLoginsRefused()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateWithDataAsync(h, pool, 5);
        var released = Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(tenant.Tenant.InstanceId, "test", None));
        var live = (await h.App.Get<TenantStore>().FindLiveAsync(tenant.Tenant.InstanceId, None))!;

        var check = await h.App.Get<IFinalBackup>().EnsureAsync(live, None);

        Assert.True(check.Ready, check.Reason);
        Assert.False(await server.ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{tenant.Tenant.DbName}'"));
        Assert.False(await server.ScalarAsync<bool>($"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{tenant.Tenant.DbUser}'"));
        Assert.True(await h.App.Get<IFinalBackup>().ExistsAsync(released.Tenant, None));
        // Asked again: the completed one counts, none is taken twice.
        Assert.Equal(check.BackupId, (await h.App.Get<IFinalBackup>().EnsureAsync(live, None)).BackupId);
        Assert.Single(await h.Backups.ListAsync(tenant.Tenant.InstanceId, 10, None));
    }

    [Fact]
    public async Task PurgeWhoseFinalBackupFails_KeepsTheTenant_AndTheNextCleanupPurgesIt()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateWithDataAsync(h, pool, 10);
        Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(tenant.Tenant.InstanceId, "test", None));
        // An operator's mistake on the server: no session can start in the tenant's database, so pg_dump cannot connect.
        await server.ScalarAsync<int>($"ALTER DATABASE \"{tenant.Tenant.DbName}\" SET session_preload_libraries = 'no_such_library_here'");

        var first = await h.App.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);

        Assert.Equal(new PurgeResult(0, 1), first);
        Assert.True(await DatabaseExistsAsync(server, tenant.Tenant.DbName));
        Assert.Equal("released", await h.App.CatalogScalarAsync<string>("SELECT status FROM tenant_databases WHERE id = @id", ("id", tenant.Tenant.Id)));
        Assert.Equal(BackupStatus.Failed, Assert.Single(await h.Backups.ListAsync(tenant.Tenant.InstanceId, 10, None)).Status);
        Assert.Equal(1L, await h.App.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = @e AND reason LIKE 'no final backup%'",
            ("i", tenant.Tenant.InstanceId), ("e", PoolEventNames.PurgeFailed)));
        Assert.False(await server.ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{tenant.Tenant.DbName}'"));

        await server.ScalarAsync<int>($"ALTER DATABASE \"{tenant.Tenant.DbName}\" RESET session_preload_libraries");
        var second = await h.App.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);

        Assert.Equal(new PurgeResult(1, 0), second);
        Assert.False(await DatabaseExistsAsync(server, tenant.Tenant.DbName));
        Assert.Contains(await h.Backups.ListAsync(tenant.Tenant.InstanceId, 10, None), b => b.Status == BackupStatus.Completed && b.Kind == BackupKind.Final);
    }

    [Fact]
    public async Task PurgeNow_ReadyRefused_ReleasedPurgedAtOnceAfterItsFinalBackup_UnknownNotFound()
    {
        await using var h = await StartAsync();
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateWithDataAsync(h, pool, 7);
        var id = tenant.Tenant.InstanceId;

        Assert.Equal(TenantDatabaseStatus.Ready, Assert.IsType<PurgeNowOutcome.NotReleased>(await h.App.Purge.PurgeNowAsync(id, "test", None)).Status);
        Assert.True(await DatabaseExistsAsync(server, tenant.Tenant.DbName));
        Assert.IsType<PurgeNowOutcome.NotFound>(await h.App.Purge.PurgeNowAsync(Guid.NewGuid(), "test", None));

        Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(id, "test", None));
        var purged = Assert.IsType<PurgeNowOutcome.Purged>(await h.App.Purge.PurgeNowAsync(id, "test", None));

        Assert.False(await DatabaseExistsAsync(server, tenant.Tenant.DbName));
        var backup = (await h.Backups.FindAsync(purged.FinalBackupId!.Value, None))!;
        Assert.Equal((BackupKind.Final, BackupStatus.Completed), (backup.Kind, backup.Status));
        Assert.True((await (await h.Blobs.BlobAsync(backup.BlobName, None)).ExistsAsync()).Value);
        Assert.Equal(0, await h.App.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", pool.Id)));
        Assert.IsType<PurgeNowOutcome.NotFound>(await h.App.Purge.PurgeNowAsync(id, "test", None));
    }

    [Fact]
    public async Task Unrelease_ReadyOrPastRetentionOrPurged_Refused_TenantUntouched()
    {
        await using var h = await StartAsync(new Dictionary<string, string?> { ["Allocation:ReleaseRetention"] = "01:00:00" });
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateWithDataAsync(h, pool, 3);
        var id = tenant.Tenant.InstanceId;
        var unrelease = h.App.Get<UnreleaseService>();

        Assert.Equal(TenantDatabaseStatus.Ready,
            Assert.IsType<UnreleaseOutcome.NotReleased>(await unrelease.UnreleaseAsync(engine.Client, id, "test", None)).Status);
        Assert.IsType<UnreleaseOutcome.NotFound>(await unrelease.UnreleaseAsync(engine.Client, Guid.NewGuid(), "test", None));

        Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(id, "test", None));
        await h.App.RewriteHistoryAsync("UPDATE tenant_databases SET released_at = now() - interval '2 hours' WHERE id = @id", ("id", tenant.Tenant.Id));
        Assert.IsType<UnreleaseOutcome.PastRetention>(await unrelease.UnreleaseAsync(engine.Client, id, "test", None));
        Assert.Equal("released", await h.App.CatalogScalarAsync<string>("SELECT status FROM tenant_databases WHERE id = @id", ("id", tenant.Tenant.Id)));
        Assert.False(await server.ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{tenant.Tenant.DbName}'"));

        Assert.IsType<PurgeNowOutcome.Purged>(await h.App.Purge.PurgeNowAsync(id, "test", None));
        Assert.IsType<UnreleaseOutcome.NotFound>(await unrelease.UnreleaseAsync(engine.Client, id, "test", None));
    }

    [Fact]
    public async Task Unrelease_WhenNoPasswordCanBeHandedOver_LeavesTheTenantReleasedAsItWas()
    {
        // The in-memory engine has no entities: the new password's deposit is never applied, so the rotation answers unavailable.
        await using var h = await StartAsync(new Dictionary<string, string?> { ["Handoff:StorageTimeout"] = "00:00:02" });
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var server = fixture.Pools[1];
        var pool = await h.App.AddPoolAsync(server, 10);
        var tenant = await AllocateWithDataAsync(h, pool, 3);
        var id = tenant.Tenant.InstanceId;
        var released = Assert.IsType<ReleaseOutcome.Released>(await h.App.Allocation.ReleaseAsync(id, "test", None));

        var outcome = await h.App.Get<UnreleaseService>().UnreleaseAsync(engine.Client, id, "test", None);

        Assert.IsType<UnreleaseOutcome.Unavailable>(outcome);
        var row = (await h.App.Get<TenantStore>().FindLiveAsync(id, None))!.Tenant;
        Assert.Equal(TenantDatabaseStatus.Released, row.Status);
        Assert.Equal(released.Tenant.ReleasedAt, row.ReleasedAt);
        Assert.False(await server.ScalarAsync<bool>($"SELECT datallowconn FROM pg_database WHERE datname = '{tenant.Tenant.DbName}'"));
        Assert.Equal(0L, await server.ScalarAsync<long>(
            $"SELECT count(*) FROM pg_roles WHERE rolname IN ('{tenant.Tenant.DbUser}', '{tenant.Tenant.DbUser}_b') AND rolcanlogin"));
    }
}
