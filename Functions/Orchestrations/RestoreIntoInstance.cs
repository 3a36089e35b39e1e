using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// One restore into a new instance: a <c>TryRestoreInto</c> activity allocates the target, fills and verifies it before it turns
/// ready, and deposits its password in the handoff (the password never leaves the activity: the output carries the claim URL).
/// While the target has no server with room (its own dedicated server for a dedicated tier, or a shared pool), each try starts
/// or joins that server's provisioning run and the run waits on a durable timer, bounded by the input's timeout. A try that
/// faults is not retried: a restore that cannot be done says why, with nothing of the target left; the dedicated server this
/// run made for the target is retired then (<c>RetireRestoreTargetServer</c>).
/// </summary>
public sealed class RestoreIntoInstance(RestoreIntoService restores)
{
    private static readonly string Actor = Actors.Orchestration(nameof(RestoreIntoInstance));

    [Function(BackupRuns.RestoreIntoOrchestrator)]
    public static async Task<RestoreIntoResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<RestoreIntoRunInput>() ?? throw new InvalidOperationException("RestoreIntoInstance needs its input.");
        context.SetCustomStatus("restoring");
        var deadline = context.CurrentUtcDateTime + (input.Timeout ?? TimeSpan.Zero);
        long? madePoolId = null;
        RestoreIntoResult result;
        while (true)
        {
            RestoreIntoTry step;
            try
            {
                step = await context.CallActivityAsync<RestoreIntoTry>(nameof(TryRestoreInto), input);
            }
            catch (TaskFailedException e)
            {
                result = Failed(input, e.FailureDetails.ErrorMessage);
                break;
            }

            // The latest server made for the target: one whose provisioning failed is already removed (its pool in error).
            madePoolId = step.MadePoolId ?? madePoolId;
            if (step.Result is { } done)
            {
                result = done;
                break;
            }

            context.SetCustomStatus(step.Step);
            if (input.PollInterval is not { } poll || context.CurrentUtcDateTime + poll >= deadline)
            {
                result = Failed(input, $"No server for the target instance was ready in time ({step.Step}); the target was not made.");
                break;
            }

            await context.CreateTimer(context.CurrentUtcDateTime + poll, CancellationToken.None);
        }

        if (result.Status == RestoreResult.Failed && madePoolId is { } poolId)
        {
            try
            {
                var retired = await context.CallActivityAsync<string>(nameof(RetireRestoreTargetServer), new RestoreIntoRetireInput(poolId, input.TargetInstanceId));
                result = retired.Length == 0 ? result : result with { Error = $"{result.Error} {retired}" };
            }
            catch (TaskFailedException e)
            {
                result = result with { Error = $"{result.Error} The dedicated server made for it (pool {poolId}) could not be retired now: {e.FailureDetails.ErrorMessage}" };
            }
        }

        context.SetCustomStatus(result.Status);
        return result;
    }

    [Function(nameof(TryRestoreInto))]
    public Task<RestoreIntoTry> TryRestoreInto([ActivityTrigger] RestoreIntoRunInput input, [DurableClient] DurableTaskClient client, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => restores.TryAsync(input, client, ct));

    [Function(nameof(RetireRestoreTargetServer))]
    public Task<string> RetireRestoreTargetServer([ActivityTrigger] RestoreIntoRetireInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => restores.RetireMadeServerAsync(input, Actor, ct));

    private static RestoreIntoResult Failed(RestoreIntoRunInput input, string error) =>
        new(input.SourceInstanceId, input.BackupId, input.TargetInstanceId, RestoreResult.Failed, null, null, null, 0, 0, 0, 0, error);
}
