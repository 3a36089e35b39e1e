using System.ComponentModel.DataAnnotations;

using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>Size of a shared pool server.</summary>
public sealed class SharedPoolOptions
{
    [Range(typeof(decimal), "0.1", "256", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public decimal Cpu { get; set; } = 2;

    [Required, RegularExpression(PlanTier.MemoryPattern, ErrorMessage = PlanTier.MemoryMessage)]
    public string Memory { get; set; } = "4g";

    [Range(1, 10_000)]
    public int MaxInstances { get; set; } = 50;

    /// <summary>
    /// Bytes a shared pool may store, in GB (2^30 bytes), before placement counts it full (its load score, DESIGN.md §11); the
    /// health check's usage collection records it on each shared pool with the pool's figures.
    /// </summary>
    [Range(typeof(decimal), "0.001", "1000000", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public decimal StorageBudgetGb { get; set; } = 100;

    /// <summary><see cref="StorageBudgetGb"/> in bytes.</summary>
    public long StorageBudgetBytes => (long)(StorageBudgetGb * (1L << 30));
}

public sealed class PoolsOptions
{
    public const string Section = "Pools";

    /// <summary>Configured plan tiers by name (lower case). Configuration adds to or overrides these defaults.</summary>
    public Dictionary<string, PlanTier> Tiers { get; set; } = new(StringComparer.Ordinal)
    {
        ["starter"] = new() { MaxConnections = 20 },
        ["standard"] = new() { MaxConnections = 40 },
        ["professional"] = new() { MaxConnections = 60 },
        ["premium"] = new() { Dedicated = true, MaxConnections = 100, Cpu = 2, Memory = "4g" },
        ["enterprise"] = new() { Dedicated = true, MaxConnections = 200, Cpu = 4, Memory = "8g" },
    };

    public SharedPoolOptions Shared { get; set; } = new();

    /// <summary>Provision the next shared pool ahead of demand when free slots across active pools fall below this.</summary>
    [Range(0, 10_000)]
    public int MinFreeSlots { get; set; } = 5;

    /// <summary>Databases made ahead of demand per active shared pool (DESIGN.md §9); 0 turns the warm stock off.</summary>
    [Range(0, 100)]
    public int WarmStock { get; set; } = 2;

    /// <summary>How often the replenisher looks for pools short of stock when no allocation woke it.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan WarmStockInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive failed health checks before a pool is marked unhealthy (out of placement).</summary>
    /// <summary>How many tenants an evacuation moves off a pool at the same time.</summary>
    [Range(1, 32)]
    public int EvacuateParallelism { get; set; } = 4;

    [Range(1, 100)]
    public int UnhealthyAfterFailures { get; set; } = 3;

    /// <summary>
    /// Timeout of one connection to a pool server, in seconds: opening it, or waiting for one of the
    /// <see cref="MaxAdminConnections"/> when all are busy (Npgsql bounds both by this). A refused connection fails at once;
    /// Npgsql's own default, because under a burst of allocations a shorter wait turned queueing into 503s.
    /// </summary>
    [Range(1, 120)]
    public int ConnectTimeoutSeconds { get; set; } = 15;

    /// <summary>Largest connection pool the allocator keeps to one pool server.</summary>
    [Range(1, 200)]
    public int MaxAdminConnections { get; set; } = 10;

    /// <summary>
    /// Percent of a tier's <see cref="PlanTier.MaxSizeMb"/> past which a tenant is flagged <c>warning</c> (a whole percent, 1-100;
    /// 80 means past 80 %).
    /// </summary>
    [Range(1, 100)]
    public int QuotaWarnAt { get; set; } = 80;

    public bool TryGetTier(string? name, out PlanTier tier)
    {
        tier = null!;
        return name is not null && Tiers.TryGetValue(name, out tier!);
    }
}
