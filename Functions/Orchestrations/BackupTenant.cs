using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Orchestrations;

/// <summary>One backup: a single activity streams the dump to its blob and records it; its output never carries a secret.</summary>
public sealed class BackupTenant(BackupService backups)
{
    private static readonly string Actor = Actors.Orchestration(nameof(BackupTenant));

    /// <summary>A host that died mid-dump: the activity runs again (the row is still creating) over the same blob.</summary>
    private static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(new RetryPolicy(2, TimeSpan.FromSeconds(10)));

    [Function(BackupRuns.BackupOrchestrator)]
    public static async Task<BackupResult> Run([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var input = context.GetInput<BackupRunInput>() ?? throw new InvalidOperationException("BackupTenant needs its input.");
        context.SetCustomStatus("dumping");
        var result = await context.CallActivityAsync<BackupResult>(nameof(RunBackup), input, Retry);
        context.SetCustomStatus(result.Status);
        return result;
    }

    [Function(nameof(RunBackup))]
    public Task<BackupResult> RunBackup([ActivityTrigger] BackupRunInput input, CancellationToken ct) =>
        AuditActor.RunAsync(Actor, () => backups.RunAsync(input.BackupId, ct));
}
