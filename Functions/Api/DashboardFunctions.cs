using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Api;

/// <summary>
/// The operators' dashboard. A browser's navigation cannot send the admin key in a header, and a key never goes in a URL,
/// so the page itself is anonymous and holds no data; its script reads the admin routes (pools, stats, and the activity
/// below) with the key the operator types in.
/// </summary>
public sealed class DashboardFunctions(ActivityService activity)
{
    [Function(nameof(Dashboard))]
    public IActionResult Dashboard(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "database/admin/dashboard")] HttpRequest req) =>
        DashboardPage.Respond(req.HttpContext.Response);

    /// <summary>Latest audit events, provisioning runs in flight, allocations waiting for capacity, live tenants per pool.</summary>
    [Function(nameof(GetActivity))]
    public async Task<IActionResult> GetActivity(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "database/admin/activity")] HttpRequest req,
        [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        req.HttpContext.Response.Headers.CacheControl = "no-store";
        return ApiJson.Ok(await activity.GetAsync(client, ct));
    }
}
