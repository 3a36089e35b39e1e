using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Api;

/// <summary>The instance-service's routes: allocate, provision-dedicated, look up and release a tenant database.</summary>
public sealed class AllocationFunctions(AllocationFlow flow, FinalBackups finals, IOptions<AllocationOptions> options, IOptions<ApiOptions> api)
{
    private int RetryAfter => options.Value.RetryAfterSeconds;

    [Function(nameof(AllocateDatabase))]
    public async Task<IActionResult> AllocateDatabase(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/allocate")] HttpRequest req,
        [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        var (body, problem) = await ApiJson.ReadAsync<AllocationRequest>(req, ct);
        if (problem is not null)
        {
            return problem;
        }

        var result = await flow.AllocateAsync(body, client, api.Value.BaseUrl, ct);
        return AllocationResponses.From(result, req, client, RetryAfter);
    }

    [Function(nameof(ProvisionDedicatedDatabase))]
    public async Task<IActionResult> ProvisionDedicatedDatabase(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/provision-dedicated")] HttpRequest req,
        [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        var (body, problem) = await ApiJson.ReadAsync<AllocationRequest>(req, ct);
        if (problem is not null)
        {
            return problem;
        }

        var result = await flow.ProvisionDedicatedAsync(body, client, api.Value.BaseUrl, ct);
        return AllocationResponses.From(result, req, client, RetryAfter);
    }

    [Function(nameof(GetAllocation))]
    public Task<IActionResult> GetAllocation(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "database/allocations/{instance_id}")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            return await flow.StatusAsync(instanceId, client, ct) is { } result
                ? AllocationResponses.From(result, req, client, RetryAfter)
                : Problems.NotFound("allocation-not-found", "This instance has no database.");
        });

    [Function(nameof(ReleaseAllocation))]
    public Task<IActionResult> ReleaseAllocation(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "database/allocations/{instance_id}")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            var release = await finals.ReleaseAsync(instanceId, AuditActor.Current, client, ct);
            return release.Outcome switch
            {
                ReleaseOutcome.Released released => ApiJson.Ok(new
                {
                    status = TenantDatabaseStatus.Released.ToSql(),
                    instance_id = instanceId,
                    db_name = released.Tenant.DbName,
                    released_at = released.Tenant.ReleasedAt,
                    purge_after = released.PurgeAfter,
                    final_backup_id = release.FinalBackupId,
                }),
                ReleaseOutcome.InProgress => Problems.Conflict("allocation-in-progress", "The database is still being created; release it once it is ready."),
                _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
            };
        });
}
