using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Moves;

namespace TenantDb.Functions.Api;

/// <summary>The body of a move: the target pool, or none (the in-service pool of the tenant's kind with the most room).</summary>
public sealed class MoveRequest
{
    public long? TargetPoolId { get; init; }
}

/// <summary>Operators' tenant moves (admin key): move one tenant, evacuate a pool. Both answer 202 with the run's status URLs.</summary>
public sealed class MoveFunctions(MoveRequests moves, EvacuationService evacuations, IOptions<AllocationOptions> options)
{
    private int RetryAfter => options.Value.RetryAfterSeconds;

    [Function(nameof(MoveAllocation))]
    public Task<IActionResult> MoveAllocation(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = "database/admin/allocations/{instance_id}/move")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            long? target = null;
            // No body (or an empty one): the allocator picks the target.
            if (req.ContentLength is not 0 && (req.ContentLength is not null || !string.IsNullOrEmpty(req.ContentType)))
            {
                var (body, problem) = await ApiJson.ReadAsync<MoveRequest>(req, ct);
                if (problem is not null)
                {
                    return problem;
                }

                if (body!.TargetPoolId is <= 0)
                {
                    return Problems.Validation(new Dictionary<string, string[]> { ["target_pool_id"] = ["target_pool_id must be a positive pool id."] });
                }

                target = body.TargetPoolId;
            }

            return await moves.StartAsync(instanceId, target, "moved by an operator", client, ct) switch
            {
                MoveStart.Started started => Accepted(req, client, started.OrchestrationId, new
                {
                    status = "moving",
                    move_id = started.MoveId,
                    instance_id = instanceId,
                    target_pool_id = target,
                    retry_after = RetryAfter,
                    orchestration = StatusUrls.For(client, started.OrchestrationId),
                }),
                MoveStart.NotMovable notMovable => Problems.Conflict("allocation-not-ready",
                    $"The database is {notMovable.Status.ToSql()}; only a ready or released database can be moved."),
                MoveStart.TargetNotFound => Problems.NotFound("pool-not-found", $"No pool has id {target}."),
                MoveStart.AlreadyOnTarget => Problems.Conflict("already-on-target", "The database is already on that pool."),
                _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
            };
        });

    [Function(nameof(StartEvacuation))]
    public Task<IActionResult> StartEvacuation(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = "database/admin/pools/{id}/evacuate")] HttpRequest req,
        string id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithPoolAsync(id, async poolId => await evacuations.StartAsync(poolId, client, ct) switch
        {
            EvacuationStart.Started started => Accepted(req, client, started.OrchestrationId, new
            {
                status = "evacuating",
                pool = started.Pool,
                retry_after = RetryAfter,
                orchestration = StatusUrls.For(client, started.OrchestrationId),
            }),
            EvacuationStart.Refused { Outcome: AdminOutcome<PoolView>.NotFound notFound } => Problems.NotFound(notFound.Type, notFound.Detail),
            EvacuationStart.Refused { Outcome: AdminOutcome<PoolView>.Conflict conflict } => Problems.Conflict(conflict.Type, conflict.Detail),
            _ => Problems.Conflict("pool-status", "The pool cannot be evacuated now."),
        });

    private JsonResult Accepted(HttpRequest req, DurableTaskClient client, string orchestrationId, object body) =>
        StatusUrls.Accepted(req, client, orchestrationId, RetryAfter, body);
}
