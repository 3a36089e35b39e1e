using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Api;

/// <summary>A released tenant's last steps (DESIGN.md §10): un-release within retention, and an operator's purge now.</summary>
public sealed class LifecycleFunctions(UnreleaseService unrelease, TenantPurge purge, IOptions<AllocationOptions> options, IOptions<ApiOptions> api)
{
    private int RetryAfter => options.Value.RetryAfterSeconds;

    [Function(nameof(RestoreRelease))]
    public Task<IActionResult> RestoreRelease(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/allocations/{instance_id}/restore-release")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            return await unrelease.UnreleaseAsync(client, instanceId, AuditActor.Current, ct) switch
            {
                UnreleaseOutcome.Unreleased done when options.Value.InlinePassword => CredentialsFunctions.NoStore(req, new
                {
                    status = done.Tenant.Status.ToSql(),
                    instance_id = instanceId,
                    db_name = done.Tenant.DbName,
                    credentials = new CredentialsView(AllocationFlow.ClaimUrl(api.Value.BaseUrl, instanceId), done.Rotated.ExpiresAt),
                    db_user = done.Rotated.DbUser,
                    db_password = done.Rotated.Password.Reveal(),
                }),
                UnreleaseOutcome.Unreleased done => ApiJson.Ok(new
                {
                    status = done.Tenant.Status.ToSql(),
                    instance_id = instanceId,
                    db_name = done.Tenant.DbName,
                    credentials = new CredentialsView(AllocationFlow.ClaimUrl(api.Value.BaseUrl, instanceId), done.Rotated.ExpiresAt),
                }),
                UnreleaseOutcome.NotReleased notReleased => Problems.Conflict("allocation-not-released",
                    $"The database is {notReleased.Status.ToSql()}; only a released database can be brought back."),
                UnreleaseOutcome.PastRetention past => Problems.Conflict("release-retention-passed",
                    $"The release retention ended at {past.PurgeAfter:O}; the database can no longer be brought back."),
                UnreleaseOutcome.Busy => Problems.Conflict("instance-busy", "Another operation on this instance is under way; try again later."),
                UnreleaseOutcome.Unavailable unavailable => Problems.Unavailable("restore-release-unavailable", unavailable.Detail, RetryAfter),
                _ => Problems.NotFound("allocation-not-found", "This instance has no database (never allocated, or already purged)."),
            };
        });

    [Function(nameof(PurgeAllocation))]
    public Task<IActionResult> PurgeAllocation(
        [HttpTrigger(AuthorizationLevel.Admin, "delete", Route = "database/admin/allocations/{instance_id}")] HttpRequest req,
        string instance_id, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            if (req.Query["purge"] is not { Count: 1 } purgeParam || purgeParam[0] != "now")
            {
                return Problems.BadRequest("invalid-purge", "Only ?purge=now is supported: it purges a released database at once, after its final backup.");
            }

            return await purge.PurgeNowAsync(instanceId, AuditActor.Current, ct) switch
            {
                PurgeNowOutcome.Purged purged => ApiJson.Ok(new
                {
                    status = TenantDatabaseStatus.Dropped.ToSql(),
                    instance_id = instanceId,
                    final_backup_id = purged.FinalBackupId,
                }),
                PurgeNowOutcome.NotReleased notReleased => Problems.Conflict("allocation-not-released",
                    $"The database is {notReleased.Status.ToSql()}; release it first (DELETE database/allocations/{{instance_id}})."),
                PurgeNowOutcome.Busy => Problems.Conflict("instance-busy", "Another operation on this instance is under way; try again later."),
                PurgeNowOutcome.NoFinalBackup missing => Problems.Unavailable("final-backup-unavailable",
                    $"The database was not purged: it has no final backup yet ({missing.Reason}). Retry later.", RetryAfter),
                PurgeNowOutcome.Failed failed => Problems.Unavailable("purge-unavailable", $"The database was not purged: {failed.Reason}. Retry later.", RetryAfter),
                _ => Problems.NotFound("allocation-not-found", "This instance has no database (never allocated, or already purged)."),
            };
        });
}
