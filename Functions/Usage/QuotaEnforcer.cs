using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Usage;

/// <summary>What one enforcement of a pool's quotas found: its ready tenants by state, how many changed state, how many failed.</summary>
public sealed record QuotaEnforced(int Warning, int ReadOnly, int Changed, int Failed, IReadOnlyList<TenantQuota> Tenants);

/// <summary>
/// Quotas per tier (DESIGN.md §11, issue 15 item 2), after each usage collection of a pool: a ready tenant past
/// <c>Pools:QuotaWarnAt</c> percent of its tier's <c>MaxSizeMb</c> is flagged <c>warning</c> (event <c>quota_warning</c>); past
/// <c>MaxSizeMb</c> its database turns read-only for it (<see cref="QuotaDdl"/>, sessions ended, event <c>quota_read_only</c>);
/// back under the limit (its data shrank, or a tier with a larger limit or none) it is writable again (event <c>quota_lifted</c>).
/// <para>
/// The read-only state is recorded before it is applied and applied again at every collection while it holds (sessions are ended
/// only when it was missing on the server), so a tenant moved, restored or given a new login while read-only is read-only again on
/// its server at the next health check of that pool. A lift is applied before it is recorded, so a failure leaves it to be lifted
/// again. Released tenants are not enforced.
/// </para>
/// </summary>
public sealed partial class QuotaEnforcer(QuotaStore store, QuotaDdl ddl, TenantNaming naming, IOptions<PoolsOptions> poolsOptions,
    ILogger<QuotaEnforcer> logger)
{
    private const double MiB = 1024 * 1024;

    /// <summary>Enforces the quotas of the pool's ready tenants by their latest measured sizes. One tenant's failure is logged and counted.</summary>
    public async Task<QuotaEnforced> EnforcePoolAsync(Pool pool, CancellationToken ct)
    {
        var tenants = await store.ListReadyAsync(pool.Id, ct);
        int warning = 0, readOnly = 0, changed = 0, failed = 0;
        foreach (var tenant in tenants)
        {
            var (state, moved) = await EnforceBestEffortAsync(pool, tenant, ct);
            failed += state is null ? 1 : 0;
            warning += state == QuotaStates.Warning ? 1 : 0;
            readOnly += state == QuotaStates.ReadOnly ? 1 : 0;
            changed += moved ? 1 : 0;
        }

        return new QuotaEnforced(warning, readOnly, changed, failed, tenants);
    }

    /// <summary>
    /// Enforces one ready tenant's quota now (after its tier changed, so a larger limit lifts it at once); the tenant's state after,
    /// or null when it is not a ready tenant of <paramref name="pool"/> or its server failed (the next collection tries again).
    /// </summary>
    public async Task<string?> EnforceTenantAsync(Pool pool, long tenantId, CancellationToken ct)
    {
        TenantQuota? tenant;
        try
        {
            tenant = await store.FindReadyAsync(tenantId, ct);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            // The change it follows is done: the catalog's trouble leaves the quota to the next collection.
            LogTenantUnread(e, tenantId, pool.Name);
            return null;
        }

        return tenant is null || tenant.Tenant.DbServerId != pool.Id ? null : (await EnforceBestEffortAsync(pool, tenant, ct)).State;
    }

    private async Task<(string? State, bool Changed)> EnforceBestEffortAsync(Pool pool, TenantQuota tenant, CancellationToken ct)
    {
        try
        {
            return await EnforceAsync(pool, tenant, ct);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e) || e is InvalidOperationException or ArgumentException)
        {
            LogEnforcementFailed(e, tenant.Tenant.InstanceId, pool.Name);
            return (null, false);
        }
    }

    private async Task<(string State, bool Changed)> EnforceAsync(Pool pool, TenantQuota row, CancellationToken ct)
    {
        var options = poolsOptions.Value;
        var tenant = row.Tenant;
        // A tier no longer configured has no limit: nothing to hold the tenant to.
        var tier = options.TryGetTier(tenant.PlanTier, out var configured) ? configured : new PlanTier();
        var desired = QuotaStates.For(row.SizeBytes, tier, options.QuotaWarnAt) ?? row.QuotaState;
        var names = naming.Of(tenant);
        if (desired == QuotaStates.ReadOnly && !QuotaDdl.CanMakeReadOnly(names))
        {
            // An adopted database its login owns: flagged, not enforced (the operator moves its objects to an owner role first).
            desired = QuotaStates.Warning;
        }

        var reason = Reason(row.SizeBytes, tenant.PlanTier, tier, options.QuotaWarnAt);
        var actor = AuditActor.Current;
        var changed = false;
        if (desired == QuotaStates.ReadOnly)
        {
            if (row.QuotaState != QuotaStates.ReadOnly)
            {
                changed = await store.ChangeAsync(tenant.Id, row.QuotaState, QuotaStates.ReadOnly, PoolEventNames.QuotaReadOnly, reason, actor, ct);
            }

            var ended = await ddl.MakeReadOnlyAsync(pool, names, ct);
            if (changed)
            {
                LogReadOnly(tenant.InstanceId, pool.Name, reason, ended);
            }
        }
        else if (row.QuotaState == QuotaStates.ReadOnly)
        {
            await ddl.MakeWritableAsync(pool, names, ct);
            changed = await store.ChangeAsync(tenant.Id, QuotaStates.ReadOnly, desired, PoolEventNames.QuotaLifted, reason, actor, ct);
            LogLifted(tenant.InstanceId, pool.Name, reason);
        }
        else if (row.QuotaState != desired)
        {
            changed = await store.ChangeAsync(tenant.Id, row.QuotaState, desired,
                desired == QuotaStates.Warning ? PoolEventNames.QuotaWarning : null, reason, actor, ct);
            if (changed && desired == QuotaStates.Warning)
            {
                LogWarning(tenant.InstanceId, pool.Name, reason);
            }
        }

        return (desired, changed);
    }

    private static string Reason(long? sizeBytes, string tierName, PlanTier tier, int warnAt) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"size {(sizeBytes is { } size ? $"{size / MiB:0.0} MiB" : "not measured")}, tier {tierName} MaxSizeMb {(tier.MaxSizeMb?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none")}, warning past {warnAt} %");

    [LoggerMessage(LogLevel.Warning, "Instance {InstanceId} on pool {Pool} is past its tier's size limit: read-only ({Reason}); {Sessions} sessions ended")]
    private partial void LogReadOnly(Guid instanceId, string pool, string reason, int sessions);

    [LoggerMessage(LogLevel.Information, "Instance {InstanceId} on pool {Pool} is under its tier's size limit again: writable ({Reason})")]
    private partial void LogLifted(Guid instanceId, string pool, string reason);

    [LoggerMessage(LogLevel.Information, "Instance {InstanceId} on pool {Pool} is near its tier's size limit ({Reason})")]
    private partial void LogWarning(Guid instanceId, string pool, string reason);

    [LoggerMessage(LogLevel.Error, "Quota of tenant row {TenantId} on pool {Pool} could not be read after its tier changed; the next collection enforces it")]
    private partial void LogTenantUnread(Exception e, long tenantId, string pool);

    [LoggerMessage(LogLevel.Error, "Quota of instance {InstanceId} on pool {Pool} could not be enforced; the next collection tries again")]
    private partial void LogEnforcementFailed(Exception e, Guid instanceId, string pool);
}
