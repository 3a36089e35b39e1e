using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Provisioning;

namespace TenantDb.Functions.Api;

/// <summary>Operators: provision a shared pool now (joins the run already under way, never a second one).</summary>
public sealed class ProvisioningFunctions(ProvisioningService provisioning)
{
    private const int RetryAfterSeconds = 60;

    [Function(nameof(ProvisionPoolNow))]
    public async Task<IActionResult> ProvisionPoolNow(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = "database/admin/provision-pool")] HttpRequest req,
        [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        ReservedPool reserved;
        try
        {
            reserved = await provisioning.StartSharedAsync(client, AuditActor.Current, "requested by an operator", ct);
        }
        catch (ProvisioningRefusedException refused)
        {
            // The header and the body's retry_after say the same (the body said the default 10 while the header said 60).
            req.HttpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problems.Unavailable(refused.Type, refused.Message, RetryAfterSeconds);
        }

        var urls = StatusUrls.For(client, reserved.ProvisioningInstanceId);
        req.HttpContext.Response.Headers.Location = urls.StatusQueryGetUri;
        return ApiJson.Status(StatusCodes.Status202Accepted, new
        {
            status = "provisioning",
            pool_id = reserved.PoolId,
            pool_name = reserved.Name,
            joined = reserved.Joined,
            orchestration = urls,
        });
    }
}
