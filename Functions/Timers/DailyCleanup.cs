using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Timers;

/// <summary>
/// Once a day (<c>Sweep__CleanupSchedule</c>, default 03:00 UTC): abandoned pools and orphan servers removed, released
/// tenant databases past retention purged, then old orchestration history purged from the task hub.
/// </summary>
public sealed class DailyCleanup(CleanupService cleanup)
{
    [Function(nameof(DailyCleanup))]
    public async Task Run([TimerTrigger(SweepOptions.CleanupScheduleExpression)] TimerInfo timer, [DurableClient] DurableTaskClient client,
        CancellationToken ct)
    {
        await cleanup.RunAsync(ct);
        await cleanup.PurgeHistoryAsync(client, ct);
    }
}
