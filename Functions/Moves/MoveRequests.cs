using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Moves;

/// <summary>What asking for a move came to.</summary>
public abstract record MoveStart
{
    public sealed record Started(Guid MoveId, string OrchestrationId) : MoveStart;
    public sealed record NotFound : MoveStart;
    public sealed record NotMovable(TenantDatabaseStatus Status) : MoveStart;
    public sealed record TargetNotFound : MoveStart;
    public sealed record AlreadyOnTarget : MoveStart;
}

/// <summary>Checks a move request against the catalog, then starts its run; the move itself is <see cref="MoveService"/>'s.</summary>
public sealed class MoveRequests(TenantStore tenants, PoolStore pools)
{
    public async Task<MoveStart> StartAsync(Guid instanceId, long? targetPoolId, string reason, DurableTaskClient client, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new MoveStart.NotFound();
        }

        if (live.Tenant.Status is not (TenantDatabaseStatus.Ready or TenantDatabaseStatus.Released))
        {
            return new MoveStart.NotMovable(live.Tenant.Status);
        }

        if (targetPoolId is { } target)
        {
            if (await pools.GetAsync(target, ct) is null)
            {
                return new MoveStart.TargetNotFound();
            }

            if (target == live.Pool.Id)
            {
                return new MoveStart.AlreadyOnTarget();
            }
        }

        var moveId = Guid.NewGuid();
        var runId = MoveRuns.MoveInstanceIdFor(moveId);
        await client.ScheduleNewOrchestrationInstanceAsync(MoveRuns.MoveOrchestrator, new MoveRunInput(moveId, instanceId, targetPoolId, reason),
            new StartOrchestrationOptions(runId), ct);
        return new MoveStart.Started(moveId, runId);
    }
}
