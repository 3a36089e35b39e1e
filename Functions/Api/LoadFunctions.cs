using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Api;

/// <summary>Operators' load routes (admin key): the tenants with their usage, and the rebalance suggestion (read-only).</summary>
public sealed class LoadFunctions(LoadService load)
{
    private static readonly string[] TenantQueryKeys = ["pool", "status", "tier", "customer", "over_quota", "sort", "page", "page_size"];

    [Function(nameof(ListTenants))]
    public async Task<IActionResult> ListTenants(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "database/admin/tenants")] HttpRequest req, CancellationToken ct) =>
        AdminFunctions.Respond(await load.ListTenantsAsync(TenantQueryKeys.ToDictionary(k => k, k => (string?)req.Query[k].ToString()), ct));

    [Function(nameof(SuggestRebalance))]
    public async Task<IActionResult> SuggestRebalance(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "database/admin/rebalance")] HttpRequest req, CancellationToken ct) =>
        AdminFunctions.Respond(await load.SuggestRebalanceAsync(req.Query["target_score"], ct));
}
