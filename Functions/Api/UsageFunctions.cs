using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Usage;

namespace TenantDb.Functions.Api;

/// <summary>The instance-service's usage route (issue 15 item 4): <c>GET database/allocations/{instance_id}/usage</c>.</summary>
public sealed class UsageFunctions(TenantUsageService usage)
{
    [Function(nameof(GetAllocationUsage))]
    public Task<IActionResult> GetAllocationUsage(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "database/allocations/{instance_id}/usage")] HttpRequest req,
        string instance_id, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
            await usage.UsageAsync(instanceId, ct) is { } view
                ? ApiJson.Ok(view)
                : Problems.NotFound("allocation-not-found", "This instance has no database."));
}
