using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Administration;

/// <summary>
/// A pool's load (DESIGN.md §11) as migration 0013's <c>load_score</c> computes it: each dimension's share (a figure not measured
/// counts 0, a dimension without a limit counts 0) and the largest of them; at 1 the pool takes no tenant.
/// </summary>
public readonly record struct LoadShares(double Tenants, double Storage, double Connections)
{
    public double Score => Math.Max(Tenants, Math.Max(Storage, Connections));

    public static LoadShares Of(int currentInstances, int maxInstances, long storedBytes, long? storageBudgetBytes, int openConnections, int? maxConnections) => new(
        maxInstances > 0 ? (double)currentInstances / maxInstances : 0,
        storageBudgetBytes > 0 ? (double)storedBytes / storageBudgetBytes.Value : 0,
        maxConnections > 0 ? (double)openConnections / maxConnections.Value : 0);

    public static LoadShares Of(PoolFigures p) =>
        Of(p.CurrentInstances, p.MaxInstances, p.StoredBytes ?? 0, p.StorageBudgetBytes, p.OpenConnections ?? 0, p.MaxConnections);

    /// <summary>A share as the API shows it: four decimals.</summary>
    public static double Round(double share) => Math.Round(share, 4);
}

/// <summary>A pool's load score, per dimension and overall, with the figures behind it (null: not measured yet).</summary>
public sealed record PoolLoadView(double Score, double Tenants, double Storage, double Connections, long? StoredBytes, long? StorageBudgetBytes,
    int? OpenConnections, int? MaxConnections, DateTimeOffset? MeasuredAt)
{
    public static PoolLoadView From(PoolFigures p)
    {
        var shares = LoadShares.Of(p);
        return new(LoadShares.Round(shares.Score), LoadShares.Round(shares.Tenants), LoadShares.Round(shares.Storage),
            LoadShares.Round(shares.Connections), p.StoredBytes, p.StorageBudgetBytes, p.OpenConnections, p.MaxConnections, p.MeasuredAt);
    }
}

/// <summary>A tenant in the operators' list: where it lives and its latest usage (null before its pool's first collection).</summary>
public sealed record TenantUsageView(Guid InstanceId, Guid CustomerId, string PlanTier, long PoolId, string PoolName, TenantDatabaseStatus Status,
    long? SizeBytes, int? Connections, DateTimeOffset? CollectedAt, string QuotaState, DateTimeOffset CreatedAt)
{
    public static TenantUsageView From(TenantUsageRow t) =>
        new(t.InstanceId, t.CustomerId, t.PlanTier, t.PoolId, t.PoolName, t.Status, t.SizeBytes, t.Connections, t.CollectedAt, t.QuotaState, t.CreatedAt);
}

public sealed record TenantPage(IReadOnlyList<TenantUsageView> Tenants, long Total, int Page, int PageSize, long TotalPages);

/// <summary>One suggested move: the tenant, from the loaded pool to a pool that stays under the target, and its stored bytes.</summary>
public sealed record RebalanceMove(Guid InstanceId, long FromPoolId, string FromPool, long ToPoolId, string ToPool, long Bytes, double ToPoolScoreAfter);

/// <summary>The most loaded shared pool's score now and once the suggested moves are made.</summary>
public sealed record RebalancePool(long Id, string Name, double ScoreBefore, double ScoreAfter);

/// <summary>
/// The moves that would bring the most loaded shared pool under <see cref="TargetScore"/> (none when it already is);
/// <see cref="Balanced"/> says whether they do (no pool in service may have room enough for them all).
/// </summary>
public sealed record RebalancePlan(double TargetScore, RebalancePool? Pool, bool Balanced, IReadOnlyList<RebalanceMove> Moves);
