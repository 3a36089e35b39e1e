using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Provisioning;

namespace TenantDb.Functions.Moves;

/// <summary>
/// A tier change that needs another server (DESIGN.md §10): to a dedicated tier, the instance's own dedicated server is
/// provisioned (or the run under way joined) and the tenant moved onto it; off a dedicated tier, the tenant moves to the shared
/// pool with the most room. Only once the move is done does the row take the new tier, with the new tier's connection limit
/// on the logins where the tenant now is (<see cref="TierChangeStore"/>, under the row's lock). Each try is one activity of a
/// <c>ChangeTierByMove</c> run, which waits between tries for the dedicated server.
/// </summary>
public sealed partial class TierMoves(
    TenantStore tenants,
    MoveStore moves,
    MoveService mover,
    ProvisioningService provisioning,
    TierChangeStore tierStore,
    TenantLimits limits,
    IOptions<PoolsOptions> poolsOptions,
    IOptions<AllocationOptions> allocationOptions,
    ILogger<TierMoves> logger)
{
    /// <summary>Starts the run; its id, for the 202's status URLs.</summary>
    public async Task<string> StartAsync(Guid instanceId, string toTier, DurableTaskClient client, CancellationToken ct)
    {
        var moveId = Guid.NewGuid();
        var runId = MoveRuns.TierInstanceIdFor(moveId);
        var options = allocationOptions.Value;
        await client.ScheduleNewOrchestrationInstanceAsync(MoveRuns.TierOrchestrator,
            new TierMoveInput(moveId, instanceId, toTier, options.WaitPollInterval, options.WaitForCapacityTimeout), new StartOrchestrationOptions(runId), ct);
        LogStarted(instanceId, toTier);
        return runId;
    }

    /// <summary>One try (the <c>TryTierMove</c> activity).</summary>
    public async Task<TierMoveStep> TryAsync(TierMoveInput input, DurableTaskClient client, string actor, CancellationToken ct)
    {
        if (!poolsOptions.Value.TryGetTier(input.ToTier, out var tier))
        {
            return Step(input, TierMoveStep.Failed, error: $"Unknown tier {input.ToTier}.");
        }

        var live = await tenants.FindLiveAsync(input.InstanceId, ct);
        if (live is not { Tenant.Status: TenantDatabaseStatus.Ready })
        {
            return Step(input, TierMoveStep.Failed, error: "The tenant database is not ready.");
        }

        if (live.Tenant.PlanTier == input.ToTier)
        {
            return Step(input, TierMoveStep.Changed);
        }

        MoveResult? moved = null;
        if (!OnKindOf(live.Pool, tier, input.InstanceId))
        {
            long? target = null;
            if (tier.Dedicated)
            {
                if (await moves.FindDedicatedTargetAsync(input.InstanceId, ct) is not { } dedicated)
                {
                    try
                    {
                        var reserved = await provisioning.StartDedicatedAsync(client,
                            new ValidAllocationRequest(input.InstanceId, live.Tenant.CustomerId, input.ToTier, tier), actor, ct);
                        return Step(input, TierMoveStep.Waiting, step: $"waiting-for-pool:{reserved.Name}");
                    }
                    catch (ProvisioningRefusedException refused)
                    {
                        return Step(input, TierMoveStep.Waiting, step: refused.Type);
                    }
                }

                target = dedicated.Id;
            }

            moved = await mover.RunAsync(new MoveRunInput(input.MoveId, input.InstanceId, target, $"tier change to {input.ToTier}", input.ToTier), ct);
            if (moved.Status != MoveResult.Moved)
            {
                return Step(input, TierMoveStep.Failed, moved: moved, error: moved.Error);
            }

            live = await tenants.FindLiveAsync(input.InstanceId, ct) ?? throw new InvalidOperationException("The moved tenant has no database.");
        }

        var (pool, tenant) = live;
        var names = TenantNames.Of(tenant, allocationOptions.Value.DatabasePrefix);
        var result = await tierStore.ChangeAsync(tenant.Id, tenant.PlanTier, input.ToTier,
            () => limits.SetConnectionLimitAsync(pool, names, tier.ConnectionLimit, ct), actor, ct);
        if (result == TierChangeResult.Superseded)
        {
            return Step(input, TierMoveStep.Failed, moved: moved, error: "The tenant row changed meanwhile (another tier change or a release); retry.");
        }

        LogChanged(input.InstanceId, input.ToTier, pool.Name);
        return Step(input, TierMoveStep.Changed, moved: moved);
    }

    // Already on a server of the tier's kind: the instance's own dedicated server for a dedicated tier, a shared pool for a shared one.
    private static bool OnKindOf(Pool pool, PlanTier tier, Guid instanceId) => tier.Dedicated
        ? pool.ServerType == ServerType.Dedicated && pool.DedicatedToInstanceId == instanceId
        : pool.ServerType == ServerType.Shared;

    private static TierMoveStep Step(TierMoveInput input, string status, string? step = null, MoveResult? moved = null, string? error = null) =>
        new(status, input.InstanceId, input.ToTier, step, moved, error);

    [LoggerMessage(LogLevel.Information, "Tier change of instance {InstanceId} to {Tier} needs another server: a move")]
    private partial void LogStarted(Guid instanceId, string tier);

    [LoggerMessage(LogLevel.Information, "Instance {InstanceId} is on tier {Tier} (pool {Pool})")]
    private partial void LogChanged(Guid instanceId, string tier, string pool);
}
