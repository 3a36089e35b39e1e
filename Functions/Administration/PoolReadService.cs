using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Administration;

/// <summary>Operators' read side of the pools: a filtered page, one pool in detail, the platform in numbers.</summary>
public sealed class PoolReadService(PoolStore pools, PoolQueries queries, WarmStockStore stock, LoadQueries load)
{
    public const int RecentEventCount = 20;
    public const int TopTenantCount = 5;

    /// <summary>Parses the raw query values: unknown words and bad numbers are errors, empty values mean "not given".</summary>
    public async Task<AdminOutcome<PoolPage>> ListAsync(string? status, string? serverType, string? healthStatus, string? page, string? pageSize,
        CancellationToken ct)
    {
        if (!PoolListQuery.TryParse(status, serverType, healthStatus, page, pageSize, out var query, out var errors))
        {
            return new AdminOutcome<PoolPage>.Invalid(errors);
        }

        var size = query.PageSize;
        var (found, total) = await queries.ListPageAsync(query.Status, query.ServerType, query.Health, query.Offset, size, ct);
        var stocked = found.Count == 0 ? new Dictionary<long, int>() : await stock.CountReadyAsync(ct);
        return new AdminOutcome<PoolPage>.Done(new PoolPage(found.Select(p => PoolView.From(p, stocked.GetValueOrDefault(p.Id))).ToList(), total, query.Page, size,
            (total + size - 1) / size));
    }

    public async Task<AdminOutcome<PoolDetail>> GetAsync(long id, CancellationToken ct)
    {
        if (await pools.GetAsync(id, ct) is not { } pool)
        {
            return AdminOutcome<PoolDetail>.PoolNotFound(id);
        }

        var counts = await queries.TenantCountsAsync(id, ct);
        var events = await queries.RecentEventsAsync(id, RecentEventCount, ct);
        var byStatus = Enum.GetValues<TenantDatabaseStatus>().ToDictionary(s => s.ToSql(), s => counts.GetValueOrDefault(s));
        var live = LiveStatuses.All.Sum(s => counts.GetValueOrDefault(s));
        var stocked = await stock.CountReadyAsync(ct);
        var figures = await load.PoolFiguresAsync(id, ct);
        var top = await load.LargestTenantsAsync(id, TopTenantCount, ct);
        return new AdminOutcome<PoolDetail>.Done(new PoolDetail(PoolView.From(pool, stocked.GetValueOrDefault(id)), live, byStatus, events.Select(PoolEventView.From).ToList(),
            figures is null ? null : PoolLoadView.From(figures), top.Select(TenantUsageView.From).ToList()));
    }

    public async Task<PoolStats> StatsAsync(CancellationToken ct)
    {
        var counts = await queries.CountAsync(ct);
        var groups = counts.Pools;
        var capacity = groups.Sum(g => g.Capacity);
        var used = groups.Sum(g => g.Used);
        var tenants = Enum.GetValues<TenantDatabaseStatus>().ToDictionary(s => s.ToSql(), s => counts.Tenants.GetValueOrDefault(s));
        return new PoolStats(
            TotalPools: groups.Sum(g => g.Pools),
            TotalTenants: LiveStatuses.All.Sum(s => tenants[s.ToSql()]),
            TotalCapacity: capacity,
            UsedCapacity: used,
            AvailableCapacity: groups.Sum(g => g.Available),
            UtilizationPercent: PoolView.Percent(used, capacity),
            PoolsByStatus: Enum.GetValues<PoolStatus>().Where(s => s != PoolStatus.Deleted)
                .ToDictionary(s => s.ToSql(), s => groups.Where(g => g.Status == s).Sum(g => g.Pools)),
            PoolsByHealth: Enum.GetValues<HealthStatus>().ToDictionary(h => h.ToSql(), h => groups.Where(g => g.Health == h).Sum(g => g.Pools)),
            TenantsByStatus: tenants,
            ByServerType: Enum.GetValues<ServerType>().ToDictionary(t => t.ToSql(), t =>
            {
                var of = groups.Where(g => g.ServerType == t).ToList();
                return new ServerTypeStats(of.Sum(g => g.Pools), of.Sum(g => g.Capacity), of.Sum(g => g.Used), of.Sum(g => g.Available),
                    PoolView.Percent(of.Sum(g => g.Used), of.Sum(g => g.Capacity)));
            }));
    }
}
