using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;

namespace TenantDb.Functions.Handoff;

/// <param name="InstanceId">The instance whose handoff is claimed (lower-case "D" form).</param>
/// <param name="KeyHash">SHA-256 of the caller's <c>Idempotency-Key</c> (null: strictly once).</param>
/// <param name="ReplayWindow">How long a claim with that key answers the same again.</param>
public sealed record ClaimCredentialsInput(string InstanceId, string? KeyHash = null, TimeSpan? ReplayWindow = null);

/// <summary>
/// The atomic take-once: a client can only signal an entity or read its state, so a claim runs as this short
/// orchestration calling the entity with the replay-safe clock. Its output is ciphertext only; the caller purges it.
/// </summary>
public static class ClaimCredentials
{
    [Function(nameof(ClaimCredentials))]
    public static async Task<ClaimResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<ClaimCredentialsInput>() ?? throw new InvalidOperationException("ClaimCredentials needs its input.");
        var id = CredentialHandoff.IdFor(Guid.ParseExact(input.InstanceId, "D"));
        context.SetCustomStatus("claiming");
        var now = new DateTimeOffset(context.CurrentUtcDateTime, TimeSpan.Zero);
        var result = input is { KeyHash: { } keyHash, ReplayWindow: { } window }
            ? await context.Entities.CallEntityAsync<ClaimResult>(id, nameof(CredentialHandoff.ClaimIdempotent), new IdempotentClaim(now, keyHash, window))
            : await context.Entities.CallEntityAsync<ClaimResult>(id, nameof(CredentialHandoff.Claim), now);
        context.SetCustomStatus(result.Status.ToString());
        return result;
    }
}
