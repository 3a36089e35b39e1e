using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// One restore in place: a single activity verifies, restores into a scratch copy, and swaps it in behind a short freeze.
/// Not retried: a restore that cannot be done says why in the output, with the tenant as it was.
/// </summary>
public sealed class RestoreTenant(RestoreService restores)
{
    private static readonly string Actor = Actors.Orchestration(nameof(RestoreTenant));

    [Function(BackupRuns.RestoreOrchestrator)]
    public static async Task<RestoreResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<RestoreRunInput>() ?? throw new InvalidOperationException("RestoreTenant needs its input.");
        context.SetCustomStatus("restoring");
        RestoreResult result;
        try
        {
            result = await context.CallActivityAsync<RestoreResult>(nameof(RunRestore), input);
        }
        catch (TaskFailedException e)
        {
            result = new RestoreResult(input.InstanceId, input.BackupId, RestoreResult.Failed, 0, 0, 0, 0, null, e.FailureDetails.ErrorMessage);
        }

        context.SetCustomStatus(result.Status);
        return result;
    }

    [Function(nameof(RunRestore))]
    public Task<RestoreResult> RunRestore([ActivityTrigger] RestoreRunInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => restores.RunAsync(input, ct));
}
