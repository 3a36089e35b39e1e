using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Entities;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocation;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Handoff;

public sealed class HandoffOptions
{
    public const string Section = "Handoff";

    /// <summary>How long a deposited password waits to be claimed.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>What the <c>CredentialHandoff</c> entity stores: ciphertext and metadata only (durable state is stored in clear).</summary>
public sealed record HandoffDepositPayload(string Ciphertext, DateTimeOffset DepositedAt, DateTimeOffset ExpiresAt);

/// <summary>Deposits a new password into the instance's <c>CredentialHandoff</c> entity, encrypted and bound to the instance.</summary>
public sealed class EntityCredentialDeposit(SecretProtector secrets, IOptions<HandoffOptions> options, TimeProvider time) : ICredentialDeposit
{
    public const string EntityName = "CredentialHandoff";

    public static string Purpose(Guid instanceId) => $"handoff:{instanceId:D}";

    public async Task<DateTimeOffset> DepositAsync(DurableTaskClient client, Guid instanceId, Secret password, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var payload = new HandoffDepositPayload(secrets.Protect(password.Reveal(), Purpose(instanceId)), now, now + options.Value.Ttl);
        await client.Entities.SignalEntityAsync(new EntityInstanceId(EntityName, instanceId.ToString("D")), "Deposit", payload, cancellation: ct);
        return payload.ExpiresAt;
    }
}
