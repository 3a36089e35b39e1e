using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Moves;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// A tier change that needs another server: one <c>TryTierMove</c> activity per try (provision or join the dedicated server,
/// then move, then change the tier), a durable timer between tries while the server is made, bounded by the input's timeout.
/// </summary>
public sealed class ChangeTierByMove(TierMoves tiers)
{
    private static readonly string Actor = Actors.Orchestration(nameof(ChangeTierByMove));

    [Function(MoveRuns.TierOrchestrator)]
    public static async Task<TierMoveStep> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<TierMoveInput>() ?? throw new InvalidOperationException("ChangeTierByMove needs its input.");
        var deadline = context.CurrentUtcDateTime + input.Timeout;
        while (true)
        {
            TierMoveStep step;
            try
            {
                step = await context.CallActivityAsync<TierMoveStep>(nameof(TryTierMove), input);
            }
            catch (TaskFailedException e)
            {
                // A fault of this try (the catalog, the task hub): the next try picks up where the move is.
                step = new TierMoveStep(TierMoveStep.Waiting, input.InstanceId, input.ToTier, "retrying", null, e.FailureDetails.ErrorMessage);
            }

            context.SetCustomStatus(step.Step ?? step.Status);
            if (step.Status != TierMoveStep.Waiting)
            {
                return step;
            }

            if (context.CurrentUtcDateTime + input.PollInterval >= deadline)
            {
                return step with { Status = TierMoveStep.Failed, Error = $"No server of tier {input.ToTier} was ready in time ({step.Step}); the tenant stays where it was." };
            }

            await context.CreateTimer(context.CurrentUtcDateTime + input.PollInterval, CancellationToken.None);
        }
    }

    [Function(nameof(TryTierMove))]
    public Task<TierMoveStep> TryTierMove([ActivityTrigger] TierMoveInput input, [DurableClient] DurableTaskClient client, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => tiers.TryAsync(input, client, Actor, ct));
}
