using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Backups;

/// <summary>
/// Issue 14, restore into a new instance on real servers and Azurite: what must never be left half-made. The full flow (the
/// target claimed and logging in) needs the handoff entity and is <c>BackupEndToEndTests</c>'.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class RestoreIntoTests(PostgresFixture fixture, Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    // The shared Azurite, or one of the run's own (TENANTDB_TEST_STORAGE, a connection string) when the shared one is busy.
    private static readonly string StorageConnection =
        Environment.GetEnvironmentVariable("TENANTDB_TEST_STORAGE") is { Length: > 0 } storage ? storage : "UseDevelopmentStorage=true";

    [Fact]
    public async Task RestoreIntoNewInstance_WhoseCopyDoesNotVerify_LeavesNothingOfTheTarget_AndTheSourceUntouched()
    {
        var container = $"test-into-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = StorageConnection,
            ["Backups:Container"] = container,
            ["Pools:WarmStock"] = "0",
        });
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        try
        {
            var server = fixture.Pools[1];
            var pool = await app.AddPoolAsync(server, 10);
            var source = Assert.IsType<AllocationOutcome.Allocated>(
                await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None));
            NpgsqlConnection SourceConnection() => new(new NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1", Port = pool.Port, Database = source.Tenant.DbName, Username = source.Tenant.DbUser,
                Password = source.Password!.Reveal(), Pooling = false, Timeout = 15,
            }.ConnectionString);
            await using (var conn = SourceConnection())
            {
                await conn.OpenAsync();
                await using var cmd = new NpgsqlCommand("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 1234)", conn);
                await cmd.ExecuteNonQueryAsync();
            }

            var started = Assert.IsType<BackupStart.Started>(await app.Get<BackupService>().RecordAsync(source.Tenant.InstanceId, None));
            Assert.Equal(BackupStatus.Completed, (await app.Get<BackupService>().RunAsync(started.Backup.Id, None)).Status);
            // The record says 999 rows; the archive holds 1234: the restored copy cannot verify.
            await app.RewriteHistoryAsync("""
                UPDATE tenant_backups SET table_rows = jsonb_set(table_rows, '{0,rows}', '999') WHERE id = @id
                """, ("id", started.Backup.Id));
            var target = Guid.NewGuid();

            var result = (await app.Get<RestoreIntoService>().TryAsync(
                new RestoreIntoRunInput(source.Tenant.InstanceId, started.Backup.Id, target, "http://127.0.0.1:7071"), engine.Client, None)).Result!;

            Assert.Equal(RestoreResult.Failed, result.Status);
            Assert.Contains("does not match the backup", result.Error, StringComparison.Ordinal);
            Assert.Null(result.ClaimUrl);
            Assert.Null(await app.Get<TenantStore>().FindLiveAsync(target, None));
            var names = app.Allocation.NamesFor(target);
            Assert.False(await server.ScalarAsync<bool>($"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{names.Database}')"));
            Assert.Equal(0L, await server.ScalarAsync<long>(
                $"SELECT count(*) FROM pg_roles WHERE rolname IN ('{names.LoginRole}', '{names.OwnerRole}', '{TenantRestoreDdl.RestoreLoginName(names)}')"));
            Assert.Equal(1, await app.CatalogScalarAsync<int>("SELECT current_instances FROM db_servers WHERE id = @id", ("id", pool.Id)));
            // The source is untouched: ready, its rows there, its password logs in.
            Assert.Equal(TenantDb.Functions.Domain.TenantDatabaseStatus.Ready,
                (await app.Get<TenantStore>().FindLiveAsync(source.Tenant.InstanceId, None))!.Tenant.Status);
            await using (var conn = SourceConnection())
            {
                await conn.OpenAsync();
                await using var count = new NpgsqlCommand("SELECT count(*) FROM orders", conn);
                Assert.Equal(1234L, (long)(await count.ExecuteScalarAsync())!);
            }
        }
        finally
        {
            await new Azure.Storage.Blobs.BlobServiceClient(StorageConnection).GetBlobContainerClient(container).DeleteIfExistsAsync();
        }
    }

    /// <summary>Figures for the note, not an assertion of speed: a ~100 MB tenant's final backup, then a restore of it into a new instance.</summary>
    [Fact]
    public async Task HundredMegabyteTenant_FinalBackupAndRestoreIntoNewInstance_RatesMeasured()
    {
        var container = $"test-into-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = StorageConnection,
            ["Backups:Container"] = container,
            ["Backups:FinalOnRelease"] = "true",
            ["Pools:WarmStock"] = "0",
        });
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        try
        {
            var server = fixture.Pools[2];
            var pool = await app.AddPoolAsync(server, 10);
            var source = Assert.IsType<AllocationOutcome.Allocated>(
                await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None));
            long dbBytes;
            await using (var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1", Port = pool.Port, Database = source.Tenant.DbName, Username = source.Tenant.DbUser,
                Password = source.Password!.Reveal(), Pooling = false, Timeout = 15, CommandTimeout = 600,
            }.ConnectionString))
            {
                await conn.OpenAsync();
                await using (var fill = new NpgsqlCommand("""
                    CREATE TABLE big (id bigint PRIMARY KEY, a text, b text, n numeric);
                    INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text), md5((g * 13)::text), g * 1.5 FROM generate_series(1, 650000) g
                    """, conn))
                {
                    await fill.ExecuteNonQueryAsync();
                }

                await using var size = new NpgsqlCommand("SELECT pg_database_size(current_database())", conn);
                dbBytes = (long)(await size.ExecuteScalarAsync())!;
            }

            Assert.IsType<ReleaseOutcome.Released>(await app.Allocation.ReleaseAsync(source.Tenant.InstanceId, "test", None));
            var live = (await app.Get<TenantStore>().FindLiveAsync(source.Tenant.InstanceId, None))!;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var final = await app.Get<TenantDb.Functions.Allocations.IFinalBackup>().EnsureAsync(live, None);
            var finalSeconds = watch.Elapsed.TotalSeconds;
            Assert.True(final.Ready, final.Reason);

            var target = Guid.NewGuid();
            watch.Restart();
            var result = (await app.Get<RestoreIntoService>().TryAsync(
                new RestoreIntoRunInput(source.Tenant.InstanceId, final.BackupId!.Value, target, "http://127.0.0.1:7071"), engine.Client, None)).Result!;
            var intoSeconds = watch.Elapsed.TotalSeconds;

            Assert.True(result.Status == RestoreResult.Restored, result.Error);
            Assert.Equal(650000L, result.Rows);
            Assert.Equal(TenantDb.Functions.Domain.TenantDatabaseStatus.Ready, (await app.Get<TenantStore>().FindLiveAsync(target, None))!.Tenant.Status);
            var mb = dbBytes / 1e6;
            output.WriteLine(FormattableString.Invariant(
                $"proof backups: final_db_mb={mb:0.0} final_backup_s={finalSeconds:0.00} final_backup_mb_s={mb / finalSeconds:0.0} restore_into_new_s={intoSeconds:0.00} restore_into_new_mb_s={mb / intoSeconds:0.0}"));
            Assert.True(mb > 80, $"the database is {mb:0} MB");
        }
        finally
        {
            await new Azure.Storage.Blobs.BlobServiceClient(StorageConnection).GetBlobContainerClient(container).DeleteIfExistsAsync();
        }
    }
}
