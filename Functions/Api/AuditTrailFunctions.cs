using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Api;

/// <summary>
/// The status history (who changed what, when) of one allocation (same key level as its look-up) and of one pool (admin
/// key): pages newest first, <c>?limit=</c> (1–200, default 50) and <c>?before=</c> (the previous page's <c>next_before</c>).
/// </summary>
public sealed class AuditTrailFunctions(AuditTrailService trail)
{
    [Function(nameof(GetAllocationEvents))]
    public Task<IActionResult> GetAllocationEvents(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "database/allocations/{instance_id}/events")] HttpRequest req,
        string instance_id, CancellationToken ct) =>
        RouteIds.WithInstanceAsync(instance_id, async instanceId =>
            Respond(await trail.AllocationEventsAsync(instanceId, req.Query["limit"], req.Query["before"], ct)));

    [Function(nameof(GetPoolEvents))]
    public Task<IActionResult> GetPoolEvents(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "database/admin/pools/{id}/events")] HttpRequest req,
        string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId => Respond(await trail.PoolEventsAsync(poolId, req.Query["limit"], req.Query["before"], ct)));

    private static IActionResult Respond(AdminOutcome<AuditEventPage> outcome) => outcome switch
    {
        AdminOutcome<AuditEventPage>.Done done => ApiJson.Ok(done.Value),
        AdminOutcome<AuditEventPage>.Invalid invalid => Problems.Validation(invalid.Errors),
        AdminOutcome<AuditEventPage>.NotFound notFound => Problems.NotFound(notFound.Type, notFound.Detail),
        _ => throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}."),
    };
}
