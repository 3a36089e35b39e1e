using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Api;

/// <summary>Operators' route (admin key) that makes existing databases of a registered pool tenants of the catalog (issue 14 item 7).</summary>
public sealed class AdoptionFunctions(TenantAdoptionService adoption)
{
    [Function(nameof(AdoptDatabases))]
    public Task<IActionResult> AdoptDatabases(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = "database/admin/pools/{id}/adopt")] HttpRequest req, string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId =>
        {
            var (body, problem) = await ApiJson.ReadAsync<AdoptDatabasesRequest>(req, ct);
            return problem ?? AdminFunctions.Respond(await adoption.AdoptAsync(poolId, body, ct));
        });
}
