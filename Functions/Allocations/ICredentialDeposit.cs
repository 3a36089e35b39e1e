using Microsoft.DurableTask.Client;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Allocations;

/// <summary>Hands a newly generated password to the one-time credential handoff; returns when the handoff expires.</summary>
public interface ICredentialDeposit
{
    Task<DateTimeOffset> DepositAsync(DurableTaskClient client, Guid instanceId, Secret password, CancellationToken ct);
}
