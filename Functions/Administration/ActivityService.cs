using Microsoft.DurableTask.Client;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Administration;

/// <summary>
/// What is going on across the pools, for the operators' dashboard (<c>GET database/admin/activity</c>): the latest audit
/// events, the provisioning runs in flight with what the task hub says of each, the tenants waiting for capacity, and live
/// tenants per pool. Pools themselves and the totals come from the pool list and the stats.
/// </summary>
public sealed class ActivityService(ActivityQueries queries)
{
    public const int RecentEventCount = 25;
    public const int WaitingAllocationCount = 50;

    public async Task<OperatorActivity> GetAsync(DurableTaskClient client, CancellationToken ct)
    {
        var events = await queries.RecentEventsAsync(RecentEventCount, ct);
        var beingMade = await queries.PoolsBeingMadeAsync(ct);
        var tenants = await queries.LiveTenantsByPoolAsync(ct);

        var runs = new List<ProvisioningRunView>();
        foreach (var pool in beingMade)
        {
            var run = pool.ProvisioningInstanceId is { Length: > 0 } id ? await client.GetInstanceAsync(id, getInputsAndOutputs: false, ct) : null;
            runs.Add(new ProvisioningRunView(pool.Id, pool.Name, pool.ServerType, pool.Status, pool.ProvisioningInstanceId, run?.RuntimeStatus,
                pool.CreatedAt, run?.LastUpdatedAt, pool.DedicatedToInstanceId));
        }

        var waiting = new List<WaitingAllocationView>();
        var query = new OrchestrationQuery
        {
            InstanceIdPrefix = WaitForCapacity.InstanceIdPrefix,
            Statuses = [OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending],
            PageSize = WaitingAllocationCount,
        };
        await foreach (var run in client.GetAllInstancesAsync(query).WithCancellation(ct))
        {
            if (WaitForCapacity.TryParseInstanceId(run.InstanceId, out var instanceId))
            {
                waiting.Add(new WaitingAllocationView(instanceId, run.RuntimeStatus, run.CreatedAt));
            }

            if (waiting.Count == WaitingAllocationCount)
            {
                break;
            }
        }

        return new OperatorActivity(
            events.Select(e => ActivityEventView.From(e.Event, e.PoolName)).ToList(),
            runs,
            waiting,
            tenants.OrderBy(t => t.Key).Select(t => new PoolTenantsView(t.Key, LiveStatuses.All.Sum(s => t.Value.GetValueOrDefault(s)),
                LiveStatuses.All.ToDictionary(s => s.ToSql(), s => t.Value.GetValueOrDefault(s)))).ToList());
    }
}

/// <summary>The dashboard's live part: never a password, a key or a connection string.</summary>
public sealed record OperatorActivity(
    IReadOnlyList<ActivityEventView> RecentEvents,
    IReadOnlyList<ProvisioningRunView> ProvisioningRuns,
    IReadOnlyList<WaitingAllocationView> WaitingAllocations,
    IReadOnlyList<PoolTenantsView> TenantsByPool);

/// <summary>One audit line, with the name of its pool (null when it names none).</summary>
public sealed record ActivityEventView(long Id, long? PoolId, string? PoolName, string Event, string? FromStatus, string? ToStatus, string? Reason,
    string Actor, Guid? InstanceId, DateTimeOffset At)
{
    public static ActivityEventView From(PoolEvent e, string? poolName) =>
        new(e.Id, e.DbServerId, poolName, e.Event, e.FromStatus, e.ToStatus, e.Reason, e.Actor, e.InstanceId, e.At);
}

/// <summary>
/// A pool being made and its durable run: <see cref="RuntimeStatus"/> is what the task hub says (null when it knows no such
/// run: a lost run, which the next caller that needs capacity notices).
/// </summary>
public sealed record ProvisioningRunView(long PoolId, string PoolName, ServerType ServerType, PoolStatus Status, string? OrchestrationId,
    OrchestrationRuntimeStatus? RuntimeStatus, DateTimeOffset Since, DateTimeOffset? LastUpdatedAt, Guid? DedicatedToInstanceId);

/// <summary>A tenant waiting in its <c>AllocateWhenReady</c> run for a pool with room.</summary>
public sealed record WaitingAllocationView(Guid InstanceId, OrchestrationRuntimeStatus RuntimeStatus, DateTimeOffset Since);

/// <summary>A pool's live tenant databases, in all and by status (creating, ready, released).</summary>
public sealed record PoolTenantsView(long PoolId, int Live, IReadOnlyDictionary<string, int> ByStatus);
