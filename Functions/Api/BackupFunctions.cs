using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Api;

/// <summary>The body of a restore: none (in place), or the new instance to restore into.</summary>
public sealed record RestoreRequest(string? TargetInstanceId);

/// <summary>The instance-service's backup routes: take a backup, list them, restore one in place or into a new instance (DESIGN.md §10).</summary>
public sealed class BackupFunctions(BackupService backups, RestoreService restores, RestoreIntoService restoresInto, IOptions<AllocationOptions> options,
    IOptions<ApiOptions> api)
{
    private const int ListLimit = 100;

    private int RetryAfter => options.Value.RetryAfterSeconds;

    [Function(nameof(StartBackup))]
    public Task<IActionResult> StartBackup(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/allocations/{instance_id}/backups")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, instanceId => StartAsync(req, instanceId, client, ct));

    /// <summary>The operators' variant (admin key): the same backup, the same 202.</summary>
    [Function(nameof(StartBackupAsAdmin))]
    public Task<IActionResult> StartBackupAsAdmin(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = "database/admin/allocations/{instance_id}/backups")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, instanceId => StartAsync(req, instanceId, client, ct));

    private async Task<IActionResult> StartAsync(HttpRequest req, Guid instanceId, DurableTaskClient client, CancellationToken ct) =>
        await backups.StartAsync(instanceId, client, ct) switch
        {
            BackupStart.Started started => Accepted(req, client, started.OrchestrationId, new
            {
                status = started.Backup.Status,
                backup_id = started.Backup.Id,
                instance_id = instanceId,
                retry_after = RetryAfter,
                orchestration = StatusUrls.For(client, started.OrchestrationId),
            }),
            BackupStart.NotReady notReady => Problems.Conflict("allocation-not-ready",
                $"The database is {notReady.Status.ToSql()}; only a ready database can be backed up."),
            _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
        };

    [Function(nameof(ListBackups))]
    public Task<IActionResult> ListBackups(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "database/allocations/{instance_id}/backups")] HttpRequest req,
        string instance_id, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            return await backups.ListAsync(instanceId, ListLimit, ct) is { } list
                ? ApiJson.Ok(new { instance_id = instanceId, backups = list.Select(BackupView.Of).ToList() })
                : Problems.NotFound("allocation-not-found", "This instance has no database and no backups.");
        });

    [Function(nameof(RestoreBackup))]
    public Task<IActionResult> RestoreBackup(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/allocations/{instance_id}/backups/{backup_id}/restore")] HttpRequest req,
        string instance_id, string backup_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            if (!AllocationValidator.TryParseId(backup_id, out var backupId))
            {
                return Problems.BadRequest("invalid-backup-id", "The backup id must be a UUID.");
            }

            // No body (or no target, or the source itself): in place. A body that cannot be read is refused, never taken as "in place".
            Guid? target = null;
            if (req.ContentLength > 0 || (req.ContentLength is null && req.Headers.TransferEncoding.Count > 0))
            {
                var (body, problem) = await ApiJson.ReadAsync<RestoreRequest>(req, ct);
                if (problem is not null)
                {
                    return problem;
                }

                if (body!.TargetInstanceId is { } raw)
                {
                    if (!AllocationValidator.TryParseId(raw, out var parsed))
                    {
                        return Problems.BadRequest("invalid-target-instance-id", "target_instance_id must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");
                    }

                    target = parsed == instanceId ? null : parsed;
                }
            }

            return target is { } targetId
                ? await restoresInto.StartAsync(instanceId, backupId, targetId, api.Value.BaseUrl, client, ct) switch
                {
                    RestoreIntoStart.Started started => Accepted(req, client, started.OrchestrationId, new
                    {
                        status = "restoring",
                        instance_id = instanceId,
                        backup_id = backupId,
                        target_instance_id = targetId,
                        retry_after = RetryAfter,
                        orchestration = StatusUrls.For(client, started.OrchestrationId),
                    }),
                    RestoreIntoStart.TargetExists => Problems.Conflict("target-exists", "The target instance already has a database."),
                    RestoreIntoStart.BackupNotUsable unusable => Problems.Conflict("backup-not-usable", $"The backup cannot be restored: it is {unusable.Status}."),
                    _ => Problems.NotFound("backup-not-found", "This instance has no such backup."),
                }
                : await restores.StartAsync(instanceId, backupId, client, ct) switch
                {
                    RestoreStart.Started started => Accepted(req, client, started.OrchestrationId, new
                    {
                        status = "restoring",
                        instance_id = instanceId,
                        backup_id = backupId,
                        retry_after = RetryAfter,
                        orchestration = StatusUrls.For(client, started.OrchestrationId),
                    }),
                    RestoreStart.NotReady notReady => Problems.Conflict("allocation-not-ready",
                        $"The database is {notReady.Status.ToSql()}; only a ready database can be restored."),
                    RestoreStart.BackupNotUsable unusable => Problems.Conflict("backup-not-usable",
                        $"The backup cannot be restored: it is {unusable.Status}."),
                    RestoreStart.BackupNotFound => Problems.NotFound("backup-not-found", "This instance has no such backup."),
                    _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
                };
        });

    private JsonResult Accepted(HttpRequest req, DurableTaskClient client, string orchestrationId, object body) =>
        StatusUrls.Accepted(req, client, orchestrationId, RetryAfter, body);
}
