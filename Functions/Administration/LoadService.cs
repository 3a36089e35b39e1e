using System.Globalization;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>
/// Operators' view of load (DESIGN.md §11): the tenants with their usage, and the rebalance suggestion, read-only: the moves
/// it lists are run, if an operator wants them, through <c>POST database/admin/allocations/{id}/move</c>.
/// </summary>
public sealed class LoadService(LoadQueries queries, IOptions<PoolsOptions> pools)
{
    public const double DefaultTargetScore = 0.7;

    /// <summary>A filtered, ordered page of tenants; bad values are errors (one per field).</summary>
    public async Task<AdminOutcome<TenantPage>> ListTenantsAsync(IReadOnlyDictionary<string, string?> values, CancellationToken ct)
    {
        if (!TenantListQuery.TryParse(values, pools.Value, out var query, out var errors))
        {
            return new AdminOutcome<TenantPage>.Invalid(errors);
        }

        var (found, total) = await queries.ListTenantsAsync(query.Filter, query.Sort, query.Offset, query.PageSize, ct);
        return new AdminOutcome<TenantPage>.Done(new TenantPage(found.Select(TenantUsageView.From).ToList(), total, query.Page, query.PageSize,
            (total + query.PageSize - 1) / query.PageSize));
    }

    /// <summary>
    /// The moves that would bring the most loaded shared pool in service to <paramref name="targetScore"/> or under (default
    /// <see cref="DefaultTargetScore"/>): its movable tenants largest first, each onto the shared pool in service where it leaves the
    /// lowest score, provided that score stays at or under the target (never a dedicated server, never a pool out of service);
    /// a tenant no pool can take is passed over. Nothing is moved.
    /// </summary>
    public async Task<AdminOutcome<RebalancePlan>> SuggestRebalanceAsync(string? targetScore, CancellationToken ct)
    {
        var target = DefaultTargetScore;
        if (!string.IsNullOrEmpty(targetScore)
            && (!double.TryParse(targetScore, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out target) || !(target > 0 && target <= 1)))
        {
            return new AdminOutcome<RebalancePlan>.Invalid(new Dictionary<string, string[]>
            {
                ["target_score"] = ["target_score must be a number above 0 and at most 1, such as 0.7."],
            });
        }

        var budget = pools.Value.Shared.StorageBudgetBytes;
        var all = (await queries.SharedPoolFiguresAsync(ct)).Select(p => new Simulated(p, budget)).ToList();
        var source = all.Where(p => p.Pool.Status is PoolStatus.Active or PoolStatus.Full && InService(p.Pool))
            .OrderByDescending(p => p.Score).ThenBy(p => p.Pool.Id).FirstOrDefault();
        if (source is null)
        {
            return new AdminOutcome<RebalancePlan>.Done(new RebalancePlan(target, null, true, []));
        }

        var before = source.Score;
        var moves = new List<RebalanceMove>();
        if (before > target)
        {
            var targets = all.Where(p => p != source && p.Pool.Status == PoolStatus.Active && InService(p.Pool)).ToList();
            foreach (var tenant in await queries.MovableTenantsAsync(source.Pool.Id, ct))
            {
                if (source.Score <= target)
                {
                    break;
                }

                var (bytes, connections) = (tenant.SizeBytes ?? 0, tenant.Connections ?? 0);
                var best = targets.Select(p => (Pool: p, After: p.With(1, bytes, connections).Score))
                    .Where(c => c.After <= target).OrderBy(c => c.After).ThenBy(c => c.Pool.Pool.Id).FirstOrDefault();
                if (best.Pool is null)
                {
                    continue;
                }

                best.Pool.Add(1, bytes, connections);
                source.Add(-1, -bytes, -connections);
                moves.Add(new RebalanceMove(tenant.InstanceId, source.Pool.Id, source.Pool.Name, best.Pool.Pool.Id, best.Pool.Pool.Name, bytes,
                    LoadShares.Round(best.After)));
            }
        }

        return new AdminOutcome<RebalancePlan>.Done(new RebalancePlan(target,
            new RebalancePool(source.Pool.Id, source.Pool.Name, LoadShares.Round(before), LoadShares.Round(source.Score)), source.Score <= target, moves));
    }

    private static bool InService(PoolFigures p) => p.HealthStatus is HealthStatus.Healthy or HealthStatus.Unknown;

    /// <summary>A pool's figures as the planned moves change them; an unmeasured pool's budget is the configured one.</summary>
    private sealed class Simulated(PoolFigures pool, long configuredBudget)
    {
        private readonly long _budget = pool.StorageBudgetBytes ?? configuredBudget;
        private int _count = pool.CurrentInstances;
        private long _bytes = pool.StoredBytes ?? 0;
        private int _connections = pool.OpenConnections ?? 0;

        public PoolFigures Pool { get; } = pool;
        public double Score => LoadShares.Of(_count, Pool.MaxInstances, _bytes, _budget, _connections, Pool.MaxConnections).Score;

        public LoadShares With(int tenants, long moreBytes, int moreConnections) =>
            LoadShares.Of(_count + tenants, Pool.MaxInstances, _bytes + moreBytes, _budget, _connections + moreConnections, Pool.MaxConnections);

        public void Add(int tenants, long moreBytes, int moreConnections)
        {
            _count += tenants;
            _bytes += moreBytes;
            _connections += moreConnections;
        }
    }
}
