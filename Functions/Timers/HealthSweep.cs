using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Moves;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Stock;

namespace TenantDb.Functions.Timers;

/// <summary>
/// Every few minutes (<c>Sweep__Schedule</c>, default every 5 minutes): a real health check of every pool in service,
/// then undo allocations abandoned mid-way and finish or roll back moves left in flight with no worker, then repair and refill the warm stock, then the headroom rule, so the next shared pool is provisioned before tenants
/// have to wait for it. Login rotations whose grace ended are finished (DESIGN.md §9); last, a batch of pool admin
/// passwords re-wrapped under the current secrets key; then the scheduled backups that are due are started (a tier's
/// <c>BackupEvery</c>).
/// </summary>
public sealed class HealthSweep(HealthService health, AbandonedAllocationRecovery recovery, WarmStockService stock, ProvisioningService provisioning,
    PasswordRotation rotation, KeyRotationService keys, BackupSchedule backups, StuckMoveRecovery stuckMoves)
{
    [Function(nameof(HealthSweep))]
    public Task Run([TimerTrigger(SweepOptions.ScheduleExpression)] TimerInfo timer, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => AuditActor.RunAsync(Actors.Timer(nameof(HealthSweep)), async () =>
        {
            await health.SweepAsync(ct);
            await recovery.RecoverAbandonedAsync(ct);
            await stuckMoves.RecoverAsync(ct);
            await stock.RepairAsync(ct);
            await rotation.SweepRotationsAsync(ct);
            await provisioning.EnsureHeadroomAsync(client, ct);
            await keys.RewrapStepAsync(ct);
            await backups.StartDueAsync(client, ct);
        });
}
