using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Moves;

namespace TenantDb.Functions.Api;

/// <summary>The instance-service's tier change (issue 14 item 4): <c>PATCH database/allocations/{instance_id}</c> with a new <c>plan_tier</c>.</summary>
public sealed class TierChangeFunctions(TierChangeService tiers, TierMoves tierMoves, IOptions<AllocationOptions> options)
{
    [Function(nameof(ChangeAllocationTier))]
    public Task<IActionResult> ChangeAllocationTier(
        [HttpTrigger(AuthorizationLevel.Function, "patch", Route = "database/allocations/{instance_id}")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            var (body, problem) = await ApiJson.ReadAsync<TierChangeRequest>(req, ct);
            if (problem is not null)
            {
                return problem;
            }

            return await tiers.ChangeAsync(instanceId, body, AuditActor.Current, ct) switch
            {
                TierChangeOutcome.Done done => ApiJson.Ok(AllocationView.Of(done.Placement.Pool, done.Placement.Tenant)),
                TierChangeOutcome.Invalid invalid => Problems.Validation(invalid.Errors),
                TierChangeOutcome.NotReady notReady => Problems.Conflict("allocation-not-ready",
                    $"The database is {notReady.Status.ToSql()}; only a ready database changes tier."),
                // To or from a dedicated tier: the tenant moves to a server of the new tier's kind first (a run), then takes the tier.
                TierChangeOutcome.NeedsMove => await StartMoveAsync(req, instanceId, body!.PlanTier!, client, ct),
                TierChangeOutcome.Busy => Problems.Conflict("allocation-busy", "The allocation changed meanwhile; read it and try again."),
                _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
            };
        });

    private async Task<IActionResult> StartMoveAsync(HttpRequest req, Guid instanceId, string toTier, DurableTaskClient client, CancellationToken ct)
    {
        var runId = await tierMoves.StartAsync(instanceId, toTier, client, ct);
        return StatusUrls.Accepted(req, client, runId, options.Value.RetryAfterSeconds, new
        {
            status = "changing",
            instance_id = instanceId,
            plan_tier = toTier,
            retry_after = options.Value.RetryAfterSeconds,
            orchestration = StatusUrls.For(client, runId),
        });
    }
}
