using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Backups;

/// <summary>
/// Issue 14, backups over time on real servers and the shared Azurite: a tier's schedule (<c>BackupEvery</c>, started by the
/// health sweep) and expiry (the daily cleanup deletes the blob, then marks the row expired). Each test has its own container.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class BackupScheduleTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;
    // The shared Azurite, or one of the run's own (TENANTDB_TEST_STORAGE, a connection string) when the shared one is busy.
    private static readonly string StorageConnection =
        Environment.GetEnvironmentVariable("TENANTDB_TEST_STORAGE") is { Length: > 0 } storage ? storage : "UseDevelopmentStorage=true";

    private async Task<(TestApp App, string Container)> StartAsync()
    {
        var container = $"test-schedule-{Guid.NewGuid():N}";
        var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = StorageConnection,
            ["Backups:Container"] = container,
            ["Pools:WarmStock"] = "0",
            ["Pools:Tiers:standard:BackupEvery"] = "06:00:00",
        });
        return (app, container);
    }

    private static Task DeleteContainerAsync(string container) =>
        new Azure.Storage.Blobs.BlobServiceClient(StorageConnection).GetBlobContainerClient(container).DeleteIfExistsAsync();

    private static async Task<Guid> AllocateAsync(TestApp app, string tier) =>
        Assert.IsType<AllocationOutcome.Allocated>(
            await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), tier), None)).Tenant.InstanceId;

    private static async Task<BackupResult> BackupAsync(TestApp app, Guid instanceId)
    {
        var started = Assert.IsType<BackupStart.Started>(await app.Get<BackupService>().RecordAsync(instanceId, None));
        return await app.Get<BackupService>().RunAsync(started.Backup.Id, None);
    }

    [Fact]
    public async Task ExpiredBackup_DeletedByTheDailyCleanup_BlobFirstThenRowExpired_NeverRestorable()
    {
        var (app, container) = await StartAsync();
        await using var appScope = app;
        try
        {
            await app.AddPoolAsync(fixture.Pools[1], 10);
            var instance = await AllocateAsync(app, "standard");
            var old = await BackupAsync(app, instance);
            var recent = await BackupAsync(app, instance);
            Assert.Equal((BackupStatus.Completed, BackupStatus.Completed), (old.Status, recent.Status));
            await app.RewriteHistoryAsync("UPDATE tenant_backups SET expires_at = now() - interval '1 minute' WHERE id = @id", ("id", old.BackupId));
            var store = app.Get<BackupStore>();
            var oldBlob = await app.Get<BackupBlobs>().BlobAsync((await store.FindAsync(old.BackupId, None))!.BlobName, None);

            var summary = await app.Get<CleanupService>().RunAsync(None);

            Assert.Equal(1, summary.BackupsExpired);
            Assert.Equal(0, summary.Errors);
            Assert.False((await oldBlob.ExistsAsync()).Value);
            Assert.Equal(BackupStatus.Expired, (await store.FindAsync(old.BackupId, None))!.Status);
            var kept = (await store.FindAsync(recent.BackupId, None))!;
            Assert.Equal(BackupStatus.Completed, kept.Status);
            Assert.True((await (await app.Get<BackupBlobs>().BlobAsync(kept.BlobName, None)).ExistsAsync()).Value);
            Assert.Equal(1L, await app.CatalogScalarAsync<long>(
                "SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = 'backup_expired'", ("i", instance)));
            // An expired backup is listed as such and never restored.
            var restore = await app.Get<RestoreService>().RunAsync(new RestoreRunInput(instance, old.BackupId), None);
            Assert.Equal(RestoreResult.Failed, restore.Status);
            Assert.Equal(0, (await app.Get<CleanupService>().RunAsync(None)).BackupsExpired);
        }
        finally
        {
            await DeleteContainerAsync(container);
        }
    }

    [Fact]
    public async Task Schedule_StartsABackupOnlyForReadyTenantsOfAScheduledTierWhoseLastBackupIsOlderThanBackupEvery()
    {
        var (app, container) = await StartAsync();
        await using var appScope = app;
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        try
        {
            await app.AddPoolAsync(fixture.Pools[1], 10);
            var due = await AllocateAsync(app, "standard");
            var backedUpRecently = await AllocateAsync(app, "standard");
            var justMade = await AllocateAsync(app, "standard");
            var unscheduledTier = await AllocateAsync(app, "starter");
            await app.RewriteHistoryAsync("UPDATE tenant_databases SET ready_at = now() - interval '7 hours' WHERE instance_id = ANY(@ids)",
                ("ids", new[] { due, backedUpRecently, unscheduledTier }));
            Assert.Equal(BackupStatus.Completed, (await BackupAsync(app, backedUpRecently)).Status);

            var first = await app.Get<BackupSchedule>().StartDueAsync(engine.Client, None);
            var again = await app.Get<BackupSchedule>().StartDueAsync(engine.Client, None);

            Assert.Equal(new BackupScheduleResult(1, 0), first);
            // The started one is under way (creating): not started twice.
            Assert.Equal(new BackupScheduleResult(0, 0), again);
            var scheduled = Assert.Single(await app.Get<BackupStore>().ListAsync(due, 10, None));
            Assert.Equal((BackupKind.Scheduled, BackupStatus.Creating), (scheduled.Kind, scheduled.Status));
            Assert.NotNull(await engine.Client.GetInstanceAsync(BackupRuns.BackupInstanceIdFor(scheduled.Id)));
            Assert.Empty(await app.Get<BackupStore>().ListAsync(justMade, 10, None));
            Assert.Empty(await app.Get<BackupStore>().ListAsync(unscheduledTier, 10, None));
            Assert.Single(await app.Get<BackupStore>().ListAsync(backedUpRecently, 10, None));

            // Its last backup ages past BackupEvery: due again.
            await app.RewriteHistoryAsync("UPDATE tenant_backups SET finished_at = now() - interval '7 hours' WHERE instance_id = @i", ("i", backedUpRecently));
            Assert.Equal(new BackupScheduleResult(1, 0), await app.Get<BackupSchedule>().StartDueAsync(engine.Client, None));
        }
        finally
        {
            await DeleteContainerAsync(container);
        }
    }
}
