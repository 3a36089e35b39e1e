using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Callbacks;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>
/// One restore in place: a single activity verifies, restores into a scratch copy, and swaps it in behind a short freeze.
/// Not retried: a restore that cannot be done says why in the output, with the tenant as it was. A restore done is then told to
/// the allocation's callback URL, if it registered one (issue 14 item 6), by an activity whose failure never fails the restore.
/// </summary>
public sealed class RestoreTenant(RestoreService restores, TenantCallbacks callbacks)
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

        if (result.Status == RestoreResult.Restored)
        {
            try
            {
                await context.CallActivityAsync(nameof(NotifyRestored), result);
            }
            catch (TaskFailedException)
            {
                // The catalog could not be read for the callback: the restore stands; the activity logged why.
            }
        }

        context.SetCustomStatus(result.Status);
        return result;
    }

    /// <summary>The event a callback of a restore in place carries (<c>event</c>).</summary>
    public const string RestoredEvent = "restored";

    [Function(nameof(NotifyRestored))]
    public Task NotifyRestored([ActivityTrigger] RestoreResult result, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => callbacks.NotifyAsync(result.InstanceId, RestoredEvent,
            new { backup_id = result.BackupId, tables = result.Tables, rows = result.Rows, downtime_ms = result.DowntimeMs }, ct));

    [Function(nameof(RunRestore))]
    public Task<RestoreResult> RunRestore([ActivityTrigger] RestoreRunInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => restores.RunAsync(input, ct));
}
