using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocation;
using TenantDb.Functions.Handoff;

namespace TenantDb.Functions.Api;

/// <summary>The one-time credential handoff: claim the password once; rotate it (a new password, handed off again).</summary>
public sealed class CredentialsFunctions(HandoffService handoff, IOptions<AllocationOptions> options, IOptions<ApiOptions> api)
{
    [Function(nameof(ClaimDatabaseCredentials))]
    public async Task<IActionResult> ClaimDatabaseCredentials(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/credentials/{instance_id}/claim")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        if (!AllocationValidator.TryParseId(instance_id, out var instanceId))
        {
            return Problems.InvalidInstanceId();
        }

        return await handoff.ClaimAsync(client, instanceId, ct) switch
        {
            ClaimOutcome.Claimed c => ApiJson.Ok(new
            {
                instance_id = c.InstanceId,
                db_host = c.DbHost,
                db_port = c.DbPort,
                db_name = c.DbName,
                db_user = c.DbUser,
                db_password = c.Password.Reveal(),
            }),
            ClaimOutcome.AlreadyClaimed => Problems.Gone("credentials-already-claimed", "These credentials were already claimed; rotate to get a new password."),
            ClaimOutcome.Expired => Problems.Gone("credentials-expired", "These credentials expired unclaimed; rotate to get a new password."),
            _ => Problems.NotFound("credentials-not-found", "There are no credentials to claim for this instance."),
        };
    }

    [Function(nameof(RotateDatabaseCredentials))]
    public async Task<IActionResult> RotateDatabaseCredentials(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/credentials/{instance_id}/rotate")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
    {
        if (!AllocationValidator.TryParseId(instance_id, out var instanceId))
        {
            return Problems.InvalidInstanceId();
        }

        return await handoff.RotateAsync(client, instanceId, ct) switch
        {
            RotateOutcome.Rotated rotated => ApiJson.Ok(new
            {
                instance_id = instanceId,
                credentials = new CredentialsView(AllocationFlow.ClaimUrl(api.Value.BaseUrl, instanceId), rotated.ExpiresAt),
                db_password = options.Value.InlinePassword ? rotated.Password.Reveal() : null,
            }),
            RotateOutcome.NotReady notReady => Problems.Conflict("allocation-not-ready", $"The database is {notReady.Status.ToString().ToLowerInvariant()}; only a ready database can rotate its password."),
            _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
        };
    }
}
