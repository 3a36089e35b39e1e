using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace TenantDb.Functions.Telemetry;

/// <summary>
/// The app's one <see cref="Meter"/> and <see cref="ActivitySource"/> (both named <see cref="Name"/>) and every instrument.
/// Recording is in memory only: the gauges read <see cref="PoolSnapshot"/>, which the health sweep fills, never the catalog.
/// </summary>
public sealed class AllocatorTelemetry : IDisposable
{
    public const string Name = "TenantDb.Allocator";

    /// <summary>The spans of the app's own work (allocate, claim, rotate); HTTP and SQL spans come from their libraries.</summary>
    public static readonly ActivitySource Source = new(Name);

    private readonly Meter _meter;
    private readonly Counter<long> _allocations;
    private readonly Histogram<double> _allocationDuration;
    private readonly Histogram<double> _provisioningDuration;
    private readonly Counter<long> _provisioningFailures;
    private readonly Counter<long> _claims;
    private readonly Counter<long> _rotations;

    public AllocatorTelemetry(IMeterFactory meters, PoolSnapshot pools)
    {
        _meter = meters.Create(Name);
        _allocations = _meter.CreateCounter<long>("tenantdb.allocations", "{allocation}", "Allocate calls, by outcome.");
        _allocationDuration = _meter.CreateHistogram<double>("tenantdb.allocation.duration", "ms", "Time an allocate call took, by outcome.");
        _provisioningDuration = _meter.CreateHistogram<double>("tenantdb.provisioning.duration", "ms",
            "Time from a pool's reservation until it went active or failed, by result and server type.");
        _provisioningFailures = _meter.CreateCounter<long>("tenantdb.provisioning.failures", "{pool}", "Provisioning runs that failed, by server type.");
        _claims = _meter.CreateCounter<long>("tenantdb.claims", "{claim}", "Credential claims, by outcome.");
        _rotations = _meter.CreateCounter<long>("tenantdb.rotations", "{rotation}", "Password rotations, by outcome.");
        _meter.CreateObservableGauge("tenantdb.pool.utilization", pools.Utilization, "1",
            "Tenant databases over capacity per pool in service, as of the last health check.");
        _meter.CreateObservableGauge("tenantdb.pools.health", pools.HealthCounts, "{pool}",
            "Pools in service by health, as of the last health check.");
        _meter.CreateObservableGauge("tenantdb.pool.stored_bytes", pools.StoredBytes, "By",
            "Bytes stored on each pool server (every database it could size), as of its last usage collection.");
        _meter.CreateObservableGauge("tenantdb.pool.connections", pools.OpenConnections, "{connection}",
            "Client sessions open on each pool server, as of its last usage collection.");
        _meter.CreateObservableGauge("tenantdb.pool.max_connections", pools.MaxConnections, "{connection}",
            "Each pool server's max_connections, as of its last usage collection.");
        _meter.CreateObservableGauge("tenantdb.pool.tenants_over_quota", pools.TenantsOverQuota, "{tenant}",
            "Ready tenants of each pool past their quota's warning threshold, by quota_state (warning, read_only).");
        _meter.CreateObservableGauge("tenantdb.tenant.size", pools.TenantSizes, "By",
            "Each tenant database's size by instance_id; only with Telemetry:PerTenantMetrics (one series per tenant).");
    }

    public void Allocation(string outcome, TimeSpan elapsed)
    {
        var tag = new KeyValuePair<string, object?>("outcome", outcome);
        _allocations.Add(1, tag);
        _allocationDuration.Record(elapsed.TotalMilliseconds, tag);
    }

    public void Provisioned(string serverType, TimeSpan elapsed, bool succeeded)
    {
        var type = new KeyValuePair<string, object?>("server_type", serverType);
        _provisioningDuration.Record(elapsed.TotalMilliseconds, type, new("result", succeeded ? "active" : "failed"));
        if (!succeeded)
        {
            _provisioningFailures.Add(1, type);
        }
    }

    public void Claim(string outcome) => _claims.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void Rotation(string outcome) => _rotations.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>An outcome record's case as a tag value: <c>NoCapacity</c> → <c>no-capacity</c>.</summary>
    public static string OutcomeName(object outcome) => Kebab.GetOrAdd(outcome.GetType(), static t =>
        string.Concat(t.Name.Select((c, i) => char.IsUpper(c) && i > 0 ? "-" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString())));

    private static readonly ConcurrentDictionary<Type, string> Kebab = new();

    public void Dispose() => _meter.Dispose();
}

/// <summary>What the pool gauges report: each pool in service as its last health check recorded it. Updated by the sweep.</summary>
public sealed class PoolSnapshot
{
    private readonly ConcurrentDictionary<long, Entry> _pools = new();

    private readonly ConcurrentDictionary<long, UsageEntry> _usage = new();

    private sealed record Entry(string Name, int Current, int Max, string Health);

    private sealed record UsageEntry(string Name, PoolUsageFigures Figures);

    /// <param name="health">The pool's health as the catalog words it (<c>healthy</c>, <c>degraded</c>, <c>unhealthy</c>, <c>unknown</c>).</param>
    public void Update(long poolId, string name, int current, int max, string health) => _pools[poolId] = new Entry(name, current, max, health);

    /// <summary>Forgets the pools a sweep no longer checks (retired, deleted).</summary>
    public void Retain(IReadOnlyCollection<long> poolIds)
    {
        foreach (var id in _pools.Keys.Except(poolIds))
        {
            _pools.TryRemove(id, out _);
        }

        foreach (var id in _usage.Keys.Except(poolIds))
        {
            _usage.TryRemove(id, out _);
        }
    }

    /// <summary>A pool's usage as its last collection and quota enforcement found it.</summary>
    public void UpdateUsage(long poolId, string name, PoolUsageFigures figures) => _usage[poolId] = new UsageEntry(name, figures);

    internal IEnumerable<Measurement<long>> StoredBytes() =>
        _usage.Values.Select(u => new Measurement<long>(u.Figures.StoredBytes, Pool(u.Name)));

    internal IEnumerable<Measurement<int>> OpenConnections() =>
        _usage.Values.Select(u => new Measurement<int>(u.Figures.OpenConnections, Pool(u.Name)));

    internal IEnumerable<Measurement<int>> MaxConnections() =>
        _usage.Values.Select(u => new Measurement<int>(u.Figures.MaxConnections, Pool(u.Name)));

    internal IEnumerable<Measurement<int>> TenantsOverQuota() => _usage.Values.SelectMany(u => new[]
    {
        new Measurement<int>(u.Figures.TenantsWarning, Pool(u.Name), new("quota_state", "warning")),
        new Measurement<int>(u.Figures.TenantsReadOnly, Pool(u.Name), new("quota_state", "read_only")),
    });

    internal IEnumerable<Measurement<long>> TenantSizes() => _usage.Values.SelectMany(u =>
        (u.Figures.TenantSizes ?? Enumerable.Empty<KeyValuePair<Guid, long>>()).Select(t => new Measurement<long>(t.Value, Pool(u.Name), new("instance_id", t.Key.ToString()))));

    private static KeyValuePair<string, object?> Pool(string name) => new("pool", name);

    internal IEnumerable<Measurement<double>> Utilization() =>
        _pools.Values.Where(p => p.Max > 0).Select(p => new Measurement<double>((double)p.Current / p.Max, new KeyValuePair<string, object?>("pool", p.Name)));

    internal IEnumerable<Measurement<int>> HealthCounts() =>
        _pools.Values.GroupBy(p => p.Health).Select(g => new Measurement<int>(g.Count(), new KeyValuePair<string, object?>("health", g.Key)));
}

/// <summary>
/// What the usage gauges report of one pool: its totals, its tenants past the warning threshold and read-only, and (only with
/// <c>Telemetry:PerTenantMetrics</c>) each tenant's size by instance id.
/// </summary>
public sealed record PoolUsageFigures(long StoredBytes, int OpenConnections, int MaxConnections, int TenantsWarning, int TenantsReadOnly,
    IReadOnlyDictionary<Guid, long>? TenantSizes);
