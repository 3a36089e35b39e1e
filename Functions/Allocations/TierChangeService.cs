using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Usage;

namespace TenantDb.Functions.Allocations;

/// <summary>The PATCH body of an allocation: the tier it should have. Nothing is trusted yet.</summary>
public sealed record TierChangeRequest([property: JsonPropertyName("plan_tier")] string? PlanTier);

/// <summary>What a tier change came to (each maps to one HTTP answer).</summary>
public abstract record TierChangeOutcome
{
    /// <summary>The tier and the pool's limits changed (or the tier was already this one: <paramref name="Changed"/> false).</summary>
    public sealed record Done(Allocation Placement, bool Changed) : TierChangeOutcome;
    public sealed record Invalid(IReadOnlyDictionary<string, string[]> Errors) : TierChangeOutcome;
    public sealed record NotFound : TierChangeOutcome;
    public sealed record NotReady(TenantDatabaseStatus Status) : TierChangeOutcome;

    /// <summary>The change needs the tenant on another server (a dedicated tier, or off a dedicated server): a move.</summary>
    public sealed record NeedsMove(string Detail) : TierChangeOutcome;

    /// <summary>The row changed meanwhile (another tier change, a release): nothing was done.</summary>
    public sealed record Busy : TierChangeOutcome;
}

/// <summary>
/// <c>PATCH database/allocations/{instance_id}</c> (issue 14 item 4, the shared half): a shared tenant moves to another shared tier
/// in place — its logins' connection limit set to the new tier's on the pool, then the row's <c>plan_tier</c> and a
/// <c>tier_changed</c> event, under the row's lock; a catalog failure after the DDL puts the old limit back. A change that needs
/// another server is refused in one place (<see cref="NeedsMove"/>) until the move takes it.
/// </summary>
public sealed partial class TierChangeService(
    TenantStore tenants,
    TierChangeStore store,
    TenantLimits limits,
    QuotaEnforcer quotas,
    IOptions<PoolsOptions> poolsOptions,
    IOptions<AllocationOptions> allocationOptions,
    ILogger<TierChangeService> logger)
{
    public async Task<TierChangeOutcome> ChangeAsync(Guid instanceId, TierChangeRequest? request, string actor, CancellationToken ct)
    {
        var tiers = poolsOptions.Value;
        if (!tiers.TryGetTier(request?.PlanTier, out var target))
        {
            return new TierChangeOutcome.Invalid(new Dictionary<string, string[]>
            {
                ["plan_tier"] = [$"plan_tier must be one of: {string.Join(", ", tiers.Tiers.Keys.Order(StringComparer.Ordinal))}."],
            });
        }

        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new TierChangeOutcome.NotFound();
        }

        var (pool, tenant) = live;
        if (tenant.Status != TenantDatabaseStatus.Ready)
        {
            return new TierChangeOutcome.NotReady(tenant.Status);
        }

        var toTier = request!.PlanTier!;
        if (tenant.PlanTier == toTier)
        {
            return new TierChangeOutcome.Done(live, Changed: false);
        }

        tiers.TryGetTier(tenant.PlanTier, out var current);
        if (NeedsMove(pool, current, target, toTier) is { } move)
        {
            return move;
        }

        var names = TenantNames.Of(tenant, allocationOptions.Value.DatabasePrefix);
        var oldLimit = (current ?? new PlanTier()).ConnectionLimit;
        var poolChanged = false;
        try
        {
            var result = await store.ChangeAsync(tenant.Id, tenant.PlanTier, toTier, async () =>
            {
                poolChanged = true;
                await limits.SetConnectionLimitAsync(pool, names, target.ConnectionLimit, ct);
            }, actor, ct);
            if (result == TierChangeResult.Superseded)
            {
                return new TierChangeOutcome.Busy();
            }
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            // The pool may have the new limit while the catalog kept the old tier (its answer lost, or its write failed): unless the
            // catalog did record the change, the old limit goes back, so pool and catalog agree.
            if (poolChanged && await TierOfBestEffortAsync(tenant.Id) != toTier)
            {
                await RestoreLimitBestEffortAsync(pool, names, oldLimit, instanceId);
            }

            throw;
        }

        LogTierChanged(instanceId, tenant.PlanTier, toTier, target.ConnectionLimit);
        // The new tier's size limit holds from now: a larger one (or none) lifts a read-only tenant at once, a smaller one may make it
        // read-only (on the size last measured). Best effort: a failure is logged and the next health check of the pool enforces it.
        var quotaState = await quotas.EnforceTenantAsync(pool, tenant.Id, ct) ?? tenant.QuotaState;
        return new TierChangeOutcome.Done(live with { Tenant = tenant with { PlanTier = toTier, QuotaState = quotaState } }, Changed: true);
    }

    /// <summary>
    /// The one place that says a tier change needs another server: to or from a dedicated tier, or off a dedicated server. The move
    /// (issue 14 item 3) replaces this answer with a move to a new dedicated server.
    /// </summary>
    private static TierChangeOutcome.NeedsMove? NeedsMove(Pool pool, PlanTier? current, PlanTier target, string toTier) =>
        target.Dedicated || current?.Dedicated == true || pool.ServerType != ServerType.Shared
            ? new TierChangeOutcome.NeedsMove($"Changing to tier {toTier} needs the tenant on another server (a move); it is not done in place.")
            : null;

    private async Task<string?> TierOfBestEffortAsync(long tenantId)
    {
        try
        {
            return await store.TierOfAsync(tenantId, CancellationToken.None);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            return null;
        }
    }

    private async Task RestoreLimitBestEffortAsync(Pool pool, TenantNames names, int limit, Guid instanceId)
    {
        try
        {
            await limits.SetConnectionLimitAsync(pool, names, limit, CancellationToken.None);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            LogRestoreFailed(e, instanceId, pool.Name);
        }
    }

    [LoggerMessage(LogLevel.Information, "Instance {InstanceId} changed tier {FromTier} -> {ToTier} (connection limit {ConnectionLimit})")]
    private partial void LogTierChanged(Guid instanceId, string fromTier, string toTier, int connectionLimit);

    [LoggerMessage(LogLevel.Error, "Could not put the old connection limit back on instance {InstanceId}'s logins on pool {Pool} after a failed tier change")]
    private partial void LogRestoreFailed(Exception e, Guid instanceId, string pool);
}
