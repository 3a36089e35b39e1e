using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Timers;

/// <summary>
/// Once a day (<c>Sweep__CleanupSchedule</c>, default 03:00 UTC): abandoned pools and orphan servers removed, released
/// tenant databases past retention purged, then old orchestration history purged from the task hub.
/// </summary>
public sealed class DailyCleanup(CleanupService cleanup)
{
    [Function(nameof(DailyCleanup))]
    public Task Run([TimerTrigger(SweepOptions.CleanupScheduleExpression)] TimerInfo timer, [DurableClient] DurableTaskClient client,
        CancellationToken ct) => AuditActor.RunAsync(Actors.Timer(nameof(DailyCleanup)), async () =>
        {
            await cleanup.RunAsync(ct);
            await cleanup.PurgeHistoryAsync(client, ct);
        });
}
