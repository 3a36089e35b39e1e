namespace TenantDb.Functions.Provisioning;

/// <summary>
/// The durable run that makes a pool server: its name, input and output. Provisioning owns this contract and starts the run
/// by name; <c>Orchestrations/ProvisionPool</c> implements it.
/// </summary>
public static class ProvisionPoolRun
{
    public const string Orchestrator = "ProvisionPool";
}

public sealed record ProvisionPoolInput(long PoolId, int CreateAttempts, TimeSpan FirstRetryInterval, TimeSpan PollInterval, TimeSpan ReadyTimeout);

public sealed record ProvisionPoolResult(long PoolId, string Status, string? Error);

public sealed record FailPoolInput(long PoolId, string Reason);
