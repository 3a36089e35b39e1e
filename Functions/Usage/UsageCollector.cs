using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Telemetry;

namespace TenantDb.Functions.Usage;

/// <summary>What one collection of a pool found.</summary>
public sealed record UsageCollected(long PoolId, int Databases, int TenantsMeasured, long StoredBytes, int OpenConnections, int MaxConnections,
    int TenantsWarning = 0, int TenantsReadOnly = 0);

/// <summary>
/// Usage collection (DESIGN.md §11): a pool's figures read in one round trip and recorded in one catalog statement, as
/// part of its health check, then the pool's quotas enforced on those figures (<see cref="QuotaEnforcer"/>) and the pool's usage
/// gauges updated. A pool that cannot be read keeps its last figures (their time says how old they are).
/// </summary>
public sealed partial class UsageCollector(UsageProbe probe, UsageStore store, QuotaEnforcer quotas, PoolSnapshot snapshot,
    IOptions<UsageOptions> options, IOptions<PoolsOptions> pools, IOptions<TelemetryOptions> telemetry, TimeProvider time,
    ILogger<UsageCollector> logger)
{
    /// <summary>Reads and records the pool's usage; null (logged) when its server could not be read.</summary>
    public async Task<UsageCollected?> CollectAsync(Pool pool, CancellationToken ct)
    {
        PoolUsageSample sample;
        try
        {
            sample = await probe.ReadAsync(pool, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            LogUnreadable(pool.Name, e.Message);
            return null;
        }

        var measured = await store.RecordAsync(pool.Id, sample, pools.Value.Shared.StorageBudgetBytes, ct);
        LogCollected(pool.Name, sample.Databases.Count, measured, sample.StoredBytes, sample.OpenConnections, sample.MaxConnections);
        var enforced = await quotas.EnforcePoolAsync(pool, ct);
        var sizes = telemetry.Value.PerTenantMetrics
            ? enforced.Tenants.Where(t => t.SizeBytes is not null).ToDictionary(t => t.Tenant.InstanceId, t => t.SizeBytes!.Value)
            : null;
        snapshot.UpdateUsage(pool.Id, pool.Name, new PoolUsageFigures(sample.StoredBytes, sample.OpenConnections, sample.MaxConnections,
            enforced.Warning, enforced.ReadOnly, sizes));
        return new UsageCollected(pool.Id, sample.Databases.Count, measured, sample.StoredBytes, sample.OpenConnections, sample.MaxConnections,
            enforced.Warning, enforced.ReadOnly);
    }

    /// <summary>Deletes the hourly rollup past <see cref="UsageOptions.HistoryRetention"/> (the daily cleanup).</summary>
    public Task<int> PruneHistoryAsync(CancellationToken ct) => store.PruneHistoryAsync(time.GetUtcNow() - options.Value.HistoryRetention, ct);

    [LoggerMessage(LogLevel.Warning, "Usage of pool {Pool} could not be read: {Error}")]
    private partial void LogUnreadable(string pool, string error);

    [LoggerMessage(LogLevel.Debug, "Usage of pool {Pool}: {Databases} databases, {Tenants} tenants measured, {StoredBytes} bytes, {Open}/{Max} connections")]
    private partial void LogCollected(string pool, int databases, int tenants, long storedBytes, int open, int max);
}
