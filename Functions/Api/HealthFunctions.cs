using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;

namespace TenantDb.Functions.Api;

/// <summary>The app's own health (anonymous): the catalog and the task hub's storage, no secrets, no pool details.</summary>
public sealed class HealthFunctions(AppHealth health, IOptions<AllocationOptions> options)
{
    [Function(nameof(Healthz))]
    public async Task<IActionResult> Healthz(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "healthz")] HttpRequest req,
        [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        var report = await health.CheckAsync(client, ct);
        req.HttpContext.Response.Headers.CacheControl = "no-store";
        var checks = new Dictionary<string, string> { ["catalog"] = report.Catalog, ["task_hub"] = report.TaskHub };
        if (report.Healthy)
        {
            return ApiJson.Ok(new { status = "healthy", checks });
        }

        var failed = string.Join(" and ", report.Failed);
        return Problems.Unavailable("unhealthy", $"Not ready: {failed} did not answer.", options.Value.RetryAfterSeconds,
            new Dictionary<string, object?> { ["checks"] = checks });
    }
}
