using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Moves;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>What asking for an evacuation came to.</summary>
public abstract record EvacuationStart
{
    public sealed record Started(string OrchestrationId, PoolView Pool) : EvacuationStart;
    public sealed record Refused(AdminOutcome<PoolView> Outcome) : EvacuationStart;
}

/// <summary>
/// Evacuate a pool (DESIGN.md §10): drained first (no new tenants), then every ready or released tenant on it moved elsewhere,
/// <see cref="PoolsOptions.EvacuateParallelism"/> at a time, by one <c>EvacuatePool</c> run per pool; then it can be retired.
/// </summary>
public sealed partial class EvacuationService(PoolLifecycleService lifecycle, MoveStore moves, IOptions<PoolsOptions> options,
    ILogger<EvacuationService> logger)
{
    public async Task<EvacuationStart> StartAsync(long poolId, DurableTaskClient client, CancellationToken ct)
    {
        var drained = await lifecycle.DrainAsync(poolId, ct);
        if (drained is not AdminOutcome<PoolView>.Done { Value: var pool })
        {
            return new EvacuationStart.Refused(drained);
        }

        var runId = MoveRuns.EvacuateInstanceIdFor(poolId);
        if (!IsRunning(await client.GetInstanceAsync(runId, ct)))
        {
            try
            {
                await client.ScheduleNewOrchestrationInstanceAsync(MoveRuns.EvacuateOrchestrator,
                    new EvacuateRunInput(poolId, options.Value.EvacuateParallelism), new StartOrchestrationOptions(runId), ct);
                LogStarted(pool.Name, options.Value.EvacuateParallelism);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Two requests at once: the other one started the same run.
                if (!IsRunning(await client.GetInstanceAsync(runId, ct)))
                {
                    throw;
                }
            }
        }

        return new EvacuationStart.Started(runId, pool);
    }

    /// <summary>The instances an evacuation of the pool moves (the <c>ListEvacuees</c> activity).</summary>
    public Task<IReadOnlyList<Guid>> ListAsync(long poolId, CancellationToken ct) => moves.ListMovableAsync(poolId, ct);

    private static bool IsRunning(OrchestrationMetadata? run) =>
        run is { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended };

    [LoggerMessage(LogLevel.Information, "Evacuating pool {Pool}: {Parallelism} moves at a time")]
    private partial void LogStarted(string pool, int parallelism);
}
