using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using TenantDb.Functions.Callbacks;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Moves;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// One move of a tenant between pools: a single activity does it (its rollback included). A move interrupted where only a
/// later run can tell how to go on (the catalog lost at the switch) is finished or rolled back by a recovery activity,
/// retried on durable timers.
/// </summary>
public sealed class MoveTenant(MoveService moves, TenantCallbacks callbacks)
{
    private static readonly string Actor = Actors.Orchestration(nameof(MoveTenant));
    private static readonly TimeSpan RecoveryDelay = TimeSpan.FromSeconds(30);
    private const int RecoveryAttempts = 10;

    [Function(MoveRuns.MoveOrchestrator)]
    public static async Task<MoveResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<MoveRunInput>() ?? throw new InvalidOperationException("MoveTenant needs its input.");
        context.SetCustomStatus("moving");
        var result = await CallAsync(context, nameof(RunMove), input);
        for (var attempt = 1; attempt <= RecoveryAttempts && result.ErrorType == MoveService.Interrupted; attempt++)
        {
            context.SetCustomStatus("recovering");
            await context.CreateTimer(context.CurrentUtcDateTime + RecoveryDelay, CancellationToken.None);
            result = await CallAsync(context, nameof(RecoverMove), input);
        }

        if (result.Status == MoveResult.Moved)
        {
            try
            {
                await context.CallActivityAsync(nameof(NotifyMoved), result);
            }
            catch (TaskFailedException)
            {
                // The catalog could not be read for the callback: the move stands; the activity logged why.
            }
        }

        context.SetCustomStatus(result.Status);
        return result;
    }

    /// <summary>The event a callback of a move carries (<c>event</c>); the body's db_host and db_port are the new ones.</summary>
    public const string MovedEvent = "moved";

    [Function(nameof(NotifyMoved))]
    public Task NotifyMoved([ActivityTrigger] MoveResult result, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => callbacks.NotifyAsync(result.InstanceId, MovedEvent,
            new { generation = result.Generation, db_server_id = result.TargetPoolId, downtime_ms = result.DowntimeMs }, ct));

    private static async Task<MoveResult> CallAsync(TaskOrchestrationContext context, string activity, MoveRunInput input)
    {
        try
        {
            return await context.CallActivityAsync<MoveResult>(activity, input);
        }
        catch (TaskFailedException e)
        {
            return new MoveResult(input.MoveId, input.InstanceId, MoveResult.Failed, null, input.TargetPoolId, null, null, 0, 0, 0, 0,
                e.FailureDetails.ErrorMessage, MoveService.Interrupted);
        }
    }

    [Function(nameof(RunMove))]
    public Task<MoveResult> RunMove([ActivityTrigger] MoveRunInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => moves.RunAsync(input, ct));

    [Function(nameof(RecoverMove))]
    public Task<MoveResult> RecoverMove([ActivityTrigger] MoveRunInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => moves.RecoverAsync(input, ct));
}
