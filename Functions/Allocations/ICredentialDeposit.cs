using Microsoft.DurableTask.Client;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Allocations;

/// <summary>A password taken back out of the handoff, and the login it belongs to.</summary>
public sealed record HandedPassword(string DbUser, Secret Password);

/// <summary>Hands a newly generated password to the one-time credential handoff; returns when the handoff expires.</summary>
public interface ICredentialDeposit
{
    /// <param name="readyAt">When the tenant turned ready: the deposit's time, so a second deposit of the same password (the
    /// catalog's copy) is known as such.</param>
    Task<DateTimeOffset> DepositAsync(DurableTaskClient client, Guid instanceId, Secret password, DateTimeOffset readyAt, CancellationToken ct);

    /// <summary>When the handoff of a first password the catalog keeps (deposited by its first claim) ends.</summary>
    DateTimeOffset ExpiresAt(DateTimeOffset readyAt);

    /// <summary>
    /// The inline-password mode's take: the allocation's own password (never a rotation's) when its handoff still holds it
    /// unclaimed, claimed once (a later call gets null); null when there is none to take.
    /// </summary>
    Task<HandedPassword?> TakeAllocationPasswordAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct);
}
