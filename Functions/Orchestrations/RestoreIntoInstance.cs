using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// One restore into a new instance: a single activity allocates the target, fills and verifies it before it turns ready, and
/// deposits its password in the handoff (the password never leaves the activity: the output carries the claim URL). Not
/// retried: a restore that cannot be done says why, with nothing of the target left.
/// </summary>
public sealed class RestoreIntoInstance(RestoreIntoService restores)
{
    private static readonly string Actor = Actors.Orchestration(nameof(RestoreIntoInstance));

    [Function(BackupRuns.RestoreIntoOrchestrator)]
    public static async Task<RestoreIntoResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<RestoreIntoRunInput>() ?? throw new InvalidOperationException("RestoreIntoInstance needs its input.");
        context.SetCustomStatus("restoring");
        RestoreIntoResult result;
        try
        {
            result = await context.CallActivityAsync<RestoreIntoResult>(nameof(RunRestoreInto), input);
        }
        catch (TaskFailedException e)
        {
            result = new RestoreIntoResult(input.SourceInstanceId, input.BackupId, input.TargetInstanceId, RestoreResult.Failed, null, null, null, 0, 0, 0, 0,
                e.FailureDetails.ErrorMessage);
        }

        context.SetCustomStatus(result.Status);
        return result;
    }

    [Function(nameof(RunRestoreInto))]
    public Task<RestoreIntoResult> RunRestoreInto([ActivityTrigger] RestoreIntoRunInput input, [DurableClient] DurableTaskClient client, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => restores.RunAsync(input, client, ct));
}
