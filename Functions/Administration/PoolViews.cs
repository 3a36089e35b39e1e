using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Administration;

/// <summary>A pool as operators see it: never its admin password, clear or encrypted.</summary>
public sealed record PoolView(
    long Id, string Name, string? Host, int? Port, ServerType ServerType, PoolStatus Status, HealthStatus HealthStatus,
    int CurrentInstances, int MaxInstances, double UtilizationPercent, int Priority, string Driver, string? DriverResourceId,
    string? PostgresVersion, decimal? CpuLimit, string? MemoryLimit, string? StoragePath, string? ProvisioningInstanceId,
    Guid? DedicatedToCustomerId, Guid? DedicatedToInstanceId, string AdminUser, DateTimeOffset? LastHealthCheck, int? LastResponseMs,
    int? DatabaseCount, int ConsecutiveHealthFailures, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    int? WarmStock = null)
{
    /// <param name="p">The pool.</param>
    /// <param name="warmStock">Its ready warm-stock databases (DESIGN.md §9), where the page read them.</param>
    public static PoolView From(Pool p, int? warmStock = null) => new(
        p.Id, p.Name, p.Host.Length > 0 ? p.Host : null, p.Port > 0 ? p.Port : null, p.ServerType, p.Status, p.HealthStatus,
        p.CurrentInstances, p.MaxInstances, Percent(p.CurrentInstances, p.MaxInstances), p.Priority, p.Driver,
        p.DriverResourceId, p.PostgresVersion, p.CpuLimit, p.MemoryLimit, p.StoragePath, p.ProvisioningInstanceId, p.DedicatedToCustomerId,
        p.DedicatedToInstanceId, p.AdminUser, p.LastHealthCheck, p.LastResponseMs, p.DatabaseCount, p.ConsecutiveHealthFailures,
        p.LastError, p.CreatedAt, p.UpdatedAt, warmStock);

    /// <summary>The platform's earlier name of <see cref="UtilizationPercent"/>, kept for its callers.</summary>
    public double CapacityPercentage => UtilizationPercent;

    /// <summary>A share in percent, one decimal; 0 of nothing.</summary>
    public static double Percent(long part, long whole) => whole <= 0 ? 0 : Math.Round(100.0 * part / whole, 1);
}

public sealed record PoolPage(IReadOnlyList<PoolView> Pools, long Total, int Page, int PageSize, long TotalPages)
{
    /// <summary>The platform's earlier name of <see cref="Total"/>, kept for its callers.</summary>
    public long TotalCount => Total;
}

public sealed record PoolEventView(long Id, string Event, string? FromStatus, string? ToStatus, string? Reason, string Actor, Guid? InstanceId, DateTimeOffset At)
{
    public static PoolEventView From(PoolEvent e) => new(e.Id, e.Event, e.FromStatus, e.ToStatus, e.Reason, e.Actor, e.InstanceId, e.At);
}

/// <summary>
/// One pool with its tenant rows counted by status (live = creating + ready + released), its latest events, its load score
/// (per dimension and overall) and its largest tenants by stored bytes.
/// </summary>
public sealed record PoolDetail(PoolView Pool, int LiveTenants, IReadOnlyDictionary<string, int> TenantCounts, IReadOnlyList<PoolEventView> RecentEvents,
    PoolLoadView? Load = null, IReadOnlyList<TenantUsageView>? TopTenants = null);

public sealed record ServerTypeStats(int Pools, int Capacity, int Used, int Available, double UtilizationPercent)
{
    /// <summary>The platform's earlier name of <see cref="UtilizationPercent"/>, kept for its callers.</summary>
    public double CapacityPercentage => UtilizationPercent;
}

/// <summary>
/// The platform in numbers (retired pools left out): capacity = slots of all pools, used = slots taken, available = free
/// slots in placement (active, healthy or unknown, load score below 1), tenants = live tenant databases.
/// </summary>
public sealed record PoolStats(
    int TotalPools, int TotalTenants, int TotalCapacity, int UsedCapacity, int AvailableCapacity, double UtilizationPercent,
    IReadOnlyDictionary<string, int> PoolsByStatus, IReadOnlyDictionary<string, int> PoolsByHealth,
    IReadOnlyDictionary<string, int> TenantsByStatus, IReadOnlyDictionary<string, ServerTypeStats> ByServerType)
{
    /// <summary>The platform's earlier name of <see cref="UtilizationPercent"/>, kept for its callers.</summary>
    public double CapacityPercentage => UtilizationPercent;
}
