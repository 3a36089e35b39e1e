using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// A tenant waiting for capacity: tries the allocation on a durable timer until a pool has room (starting or joining the
/// provisioning of one, never duplicating it) or the wait times out. Its output never carries the password.
/// </summary>
public sealed class AllocateWhenReady(AllocationFlow flow)
{
    /// <summary>Attempts of one try (it touches the catalog and a pool server), the first retry after one poll interval.</summary>
    private const int TryAttempts = 3;

    public static string InstanceIdFor(Guid instanceId) => WaitForCapacity.InstanceIdFor(instanceId);

    [Function(WaitForCapacity.Orchestrator)]
    public static async Task<AllocateAttempt> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<AllocateWhenReadyInput>() ?? throw new InvalidOperationException("AllocateWhenReady needs its input.");
        var deadline = context.CurrentUtcDateTime + input.Timeout;
        var maxAttempts = (int)Math.Ceiling(input.Timeout / input.PollInterval) + 1;
        var retry = TaskOptions.FromRetryPolicy(new RetryPolicy(TryAttempts, input.PollInterval, backoffCoefficient: 2));
        for (var attempt = 1; attempt <= maxAttempts && context.CurrentUtcDateTime < deadline; attempt++)
        {
            AllocateAttempt result;
            try
            {
                result = await context.CallActivityAsync<AllocateAttempt>(nameof(TryAllocate), input, retry);
            }
            catch (TaskFailedException)
            {
                // The catalog or a server failed past the retries: the wait goes on, bounded by its deadline.
                result = new AllocateAttempt(false, null, null, "retrying");
            }

            context.SetCustomStatus(result.Step);
            if (result.Done)
            {
                return result;
            }

            await context.CreateTimer(context.CurrentUtcDateTime + input.PollInterval, CancellationToken.None);
        }

        context.SetCustomStatus("timed-out");
        return new AllocateAttempt(true, null, $"No capacity became available within {input.Timeout}.", "timed-out");
    }

    [Function(nameof(TryAllocate))]
    public Task<AllocateAttempt> TryAllocate([ActivityTrigger] AllocateWhenReadyInput input, [DurableClient] DurableTaskClient client, CancellationToken ct) =>
        AuditActor.RunAsync(Actors.Orchestration(nameof(AllocateWhenReady)), () => flow.TryAllocateWaitingAsync(input, client, ct));
}
