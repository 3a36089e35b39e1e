using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Usage;

/// <summary>A tier's limits as the usage route shows them.</summary>
public sealed record TierLimitsView(
    [property: JsonPropertyName("max_size_mb")] int? MaxSizeMb,
    [property: JsonPropertyName("max_connections")] int MaxConnections,
    [property: JsonPropertyName("warn_at_percent")] int WarnAtPercent);

/// <summary>
/// <c>GET database/allocations/{instance_id}/usage</c>: the tenant's latest measured size and sessions (null until its pool's first
/// health check measured it), its tier's limits, how much of its size limit it uses and its quota state.
/// </summary>
public sealed record TenantUsageView(
    [property: JsonPropertyName("instance_id")] Guid InstanceId,
    [property: JsonPropertyName("plan_tier")] string PlanTier,
    [property: JsonPropertyName("database_status"), JsonConverter(typeof(VocabularyJsonConverter<TenantDatabaseStatus>))] TenantDatabaseStatus DatabaseStatus,
    [property: JsonPropertyName("size_bytes")] long? SizeBytes,
    [property: JsonPropertyName("connections")] int? Connections,
    [property: JsonPropertyName("collected_at")] DateTimeOffset? CollectedAt,
    [property: JsonPropertyName("limits")] TierLimitsView Limits,
    [property: JsonPropertyName("percent_used")] double? PercentUsed,
    [property: JsonPropertyName("quota_state")] string QuotaState,
    [property: JsonPropertyName("quota_changed_at")] DateTimeOffset? QuotaChangedAt);

/// <summary>Reads a live tenant's usage for the usage route (issue 15 item 4).</summary>
public sealed class TenantUsageService(QuotaStore store, IOptions<PoolsOptions> poolsOptions)
{
    /// <summary>The instance's usage, or null when it has no live database.</summary>
    public async Task<TenantUsageView?> UsageAsync(Guid instanceId, CancellationToken ct)
    {
        var row = await store.UsageOfAsync(instanceId, ct);
        if (row is null)
        {
            return null;
        }

        var options = poolsOptions.Value;
        var tier = options.TryGetTier(row.PlanTier, out var configured) ? configured : new PlanTier();
        double? percent = row.SizeBytes is { } size && tier.MaxSizeBytes is { } max ? Math.Round(100.0 * size / max, 1) : null;
        return new TenantUsageView(row.InstanceId, row.PlanTier, row.Status, row.SizeBytes, row.Connections, row.CollectedAt,
            new TierLimitsView(tier.MaxSizeMb, tier.MaxConnections, options.QuotaWarnAt), percent, row.QuotaState, row.QuotaChangedAt);
    }
}
