using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// Provisions a pool server: create through the driver (every activity retried with exponential backoff), poll health on durable
/// timers until it answers or the deadline passes, harden, activate. On final failure: remove what was created, pool → error.
/// </summary>
public sealed class ProvisionPool(ProvisioningService provisioning)
{
    // Who the activities' changes are recorded as in the audit trail.
    private static readonly string Actor = Actors.Orchestration(nameof(ProvisionPool));

    [Function(ProvisionPoolRun.Orchestrator)]
    public static async Task<ProvisionPoolResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<ProvisionPoolInput>() ?? throw new InvalidOperationException("ProvisionPool needs its input.");
        var log = context.CreateReplaySafeLogger<ProvisionPool>();
        try
        {
            context.SetCustomStatus("creating-server");
            var retry = RetryOf(input);
            await context.CallActivityAsync(nameof(CreatePoolServer), input.PoolId, retry);

            context.SetCustomStatus("waiting-for-health");
            var deadline = context.CurrentUtcDateTime + input.ReadyTimeout;
            while (!await context.CallActivityAsync<bool>(nameof(CheckPoolReady), input.PoolId, retry))
            {
                if (context.CurrentUtcDateTime >= deadline)
                {
                    return await FailAsync(context, input, $"the server did not answer within {input.ReadyTimeout}");
                }

                await context.CreateTimer(context.CurrentUtcDateTime + input.PollInterval, CancellationToken.None);
            }

            context.SetCustomStatus(PoolStatus.Initializing.ToSql());
            await context.CallActivityAsync(nameof(InitializePool), input.PoolId, retry);
            context.SetCustomStatus(PoolStatus.Active.ToSql());
            log.LogInformation("Pool {PoolId} provisioned", input.PoolId);
            return new ProvisionPoolResult(input.PoolId, PoolStatus.Active.ToSql(), null);
        }
        catch (TaskFailedException e)
        {
            log.LogWarning("Provisioning pool {PoolId} failed: {Error}", input.PoolId, e.FailureDetails.ErrorMessage);
            return await FailAsync(context, input, e.FailureDetails.ErrorMessage);
        }
    }

    [Function(nameof(CreatePoolServer))]
    public Task CreatePoolServer([ActivityTrigger] long poolId, CancellationToken ct) => AuditActor.RunAsync(Actor, () => provisioning.CreateServerAsync(poolId, ct));

    [Function(nameof(CheckPoolReady))]
    public Task<bool> CheckPoolReady([ActivityTrigger] long poolId, CancellationToken ct) => AuditActor.RunAsync(Actor, () => provisioning.IsReadyAsync(poolId, ct));

    [Function(nameof(InitializePool))]
    public Task InitializePool([ActivityTrigger] long poolId, CancellationToken ct) => AuditActor.RunAsync(Actor, () => provisioning.InitializeAsync(poolId, ct));

    [Function(nameof(FailPool))]
    public Task FailPool([ActivityTrigger] FailPoolInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => provisioning.FailAsync(input.PoolId, input.Reason, ct));

    private static async Task<ProvisionPoolResult> FailAsync(TaskOrchestrationContext context, ProvisionPoolInput input, string reason)
    {
        context.SetCustomStatus("failed");
        await context.CallActivityAsync(nameof(FailPool), new FailPoolInput(input.PoolId, reason), RetryOf(input));
        return new ProvisionPoolResult(input.PoolId, PoolStatus.Error.ToSql(), reason);
    }

    // Every activity touches the catalog or the server: each is retried with the same backoff as the create step.
    private static TaskOptions RetryOf(ProvisionPoolInput input) =>
        TaskOptions.FromRetryPolicy(new RetryPolicy(input.CreateAttempts, input.FirstRetryInterval, backoffCoefficient: 2));
}
