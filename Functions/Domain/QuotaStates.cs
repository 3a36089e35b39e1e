namespace TenantDb.Functions.Domain;

/// <summary>Where a tenant stands against its tier's size limit (<c>tenant_databases.quota_state</c>, DESIGN.md §11).</summary>
public static class QuotaStates
{
    /// <summary>Under the warning threshold, or a tier without a size limit.</summary>
    public const string Ok = "ok";

    /// <summary>Past <c>Pools:QuotaWarnAt</c> percent of the tier's <c>MaxSizeMb</c>: flagged, still writable.</summary>
    public const string Warning = "warning";

    /// <summary>Past the tier's <c>MaxSizeMb</c>: the database is read-only for the tenant.</summary>
    public const string ReadOnly = "read_only";

    /// <summary>
    /// The state a tenant of <paramref name="tier"/> holding <paramref name="sizeBytes"/> should be in; null when nothing is known of
    /// its size (not measured yet): it keeps its state.
    /// </summary>
    public static string? For(long? sizeBytes, PlanTier tier, int warnAtPercent) =>
        tier.MaxSizeBytes is not { } max ? Ok
        : sizeBytes is not { } size ? null
        : size > max ? ReadOnly
        : size * 100 > max * warnAtPercent ? Warning
        : Ok;
}
