using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Moves;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// Evacuates a drained pool: one <c>MoveTenant</c> run per tenant on it, at most <see cref="EvacuateRunInput.Parallelism"/> at a
/// time, the progress in the custom status; a tenant whose move failed stays on the pool and is listed in the output.
/// </summary>
public sealed class EvacuatePool(EvacuationService evacuations)
{
    [Function(MoveRuns.EvacuateOrchestrator)]
    public static async Task<EvacuationProgress> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<EvacuateRunInput>() ?? throw new InvalidOperationException("EvacuatePool needs its input.");
        var queue = new Queue<Guid>(await context.CallActivityAsync<List<Guid>>(nameof(ListEvacuees), input.PoolId));
        var total = queue.Count;
        var (moved, failed) = (0, 0);
        var failures = new List<MoveResult>();
        var running = new List<Task<MoveResult>>();
        var reason = $"evacuating pool {input.PoolId}";
        context.SetCustomStatus(new EvacuationProgress(input.PoolId, total, 0, 0, total, failures));
        while (queue.Count > 0 || running.Count > 0)
        {
            while (running.Count < Math.Max(1, input.Parallelism) && queue.Count > 0)
            {
                var moveId = context.NewGuid();
                running.Add(context.CallSubOrchestratorAsync<MoveResult>(MoveRuns.MoveOrchestrator, new MoveRunInput(moveId, queue.Dequeue(), null, reason),
                    new SubOrchestrationOptions { InstanceId = MoveRuns.MoveInstanceIdFor(moveId) }));
            }

            var done = await Task.WhenAny(running);
            running.Remove(done);
            var result = await done;
            if (result.Status == MoveResult.Moved)
            {
                moved++;
            }
            else
            {
                failed++;
                failures.Add(result);
            }

            context.SetCustomStatus(new EvacuationProgress(input.PoolId, total, moved, failed, total - moved - failed, failures));
        }

        return new EvacuationProgress(input.PoolId, total, moved, failed, 0, failures);
    }

    [Function(nameof(ListEvacuees))]
    public async Task<List<Guid>> ListEvacuees([ActivityTrigger] long poolId, CancellationToken ct) => [.. await evacuations.ListAsync(poolId, ct)];
}
