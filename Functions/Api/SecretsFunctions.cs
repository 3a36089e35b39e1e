using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Api;

/// <summary>Operators: re-wrap every secret in the catalog under the current secrets key, before an old key is removed.</summary>
public sealed class SecretsFunctions(KeyRotationService keys)
{
    [Function(nameof(RewrapSecrets))]
    public async Task<IActionResult> RewrapSecrets(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = "database/admin/secrets/rewrap")] HttpRequest req, CancellationToken ct)
    {
        var summary = await keys.RewrapAllAsync(ct);
        return ApiJson.Ok(new
        {
            current_key_id = summary.CurrentKeyId,
            rewrapped = summary.Rewrapped,
            changed_meanwhile = summary.ChangedMeanwhile,
            failed = summary.Failed,
            remaining = summary.Remaining,
        });
    }
}
