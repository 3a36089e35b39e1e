using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Domain;

/// <summary>A plan tier: whether it gets a server of its own, and what its tenants may use.</summary>
public sealed class PlanTier
{
    /// <summary>A memory size as Docker takes it: a whole number with an optional unit (<c>512m</c>, <c>4g</c>).</summary>
    public const string MemoryPattern = "^[1-9][0-9]{0,6}[kmg]?$";

    public const string MemoryMessage = "Memory must be a whole number with an optional unit k, m or g (e.g. 512m, 4g).";

    /// <summary>Premium tiers get a dedicated server (<c>provision-dedicated</c>); the others share pools.</summary>
    public bool Dedicated { get; set; }

    /// <summary>
    /// The old name of <see cref="MaxConnections"/> (the same value): configurations that set <c>ConnectionLimit</c> keep working.
    /// When both are set, <c>MaxConnections</c> wins (it binds after this one).
    /// </summary>
    [Range(1, 10_000)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public int ConnectionLimit { get => MaxConnections; set => MaxConnections = value; }

    /// <summary>
    /// Per-tenant connection limit (<c>Pools:Tiers:&lt;tier&gt;:MaxConnections</c>): set on the tenant's login roles, where the tenant has
    /// no privilege to lift it.
    /// </summary>
    [Range(1, 10_000)]
    public int MaxConnections { get; set; } = 20;

    /// <summary>
    /// Largest size of a tenant database of this tier in MiB (<c>pg_database_size</c>), or null for no limit. Past
    /// <c>Pools:QuotaWarnAt</c> percent of it the tenant is flagged <c>warning</c>; past it the database turns read-only for
    /// the tenant (DESIGN.md §11).
    /// </summary>
    [Range(1, 100_000_000)]
    public int? MaxSizeMb { get; set; }

    /// <summary><see cref="MaxSizeMb"/> in bytes, or null for no limit.</summary>
    public long? MaxSizeBytes => MaxSizeMb * 1024L * 1024L;

    /// <summary>CPUs of a dedicated server of this tier.</summary>
    [Range(typeof(decimal), "0.1", "256", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public decimal Cpu { get; set; } = 1;

    /// <summary>Memory of a dedicated server of this tier, e.g. <c>2g</c>.</summary>
    [Required, RegularExpression(PlanTier.MemoryPattern, ErrorMessage = PlanTier.MemoryMessage)]
    public string Memory { get; set; } = "1g";

    /// <summary>Tenants on a dedicated server of this tier (normally 1).</summary>
    [Range(1, 10_000)]
    public int MaxInstances { get; set; } = 1;

    /// <summary>How often a ready tenant of this tier is backed up on schedule (the daily cleanup); null: no scheduled backups.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "365.00:00:00")]
    public TimeSpan? BackupEvery { get; set; }

    /// <summary>How long a backup of a tenant of this tier is kept (its <c>expires_at</c>); null: <c>Backups:Retention</c>.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan? BackupRetention { get; set; }
}
