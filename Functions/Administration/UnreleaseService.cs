using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>What an un-release came to.</summary>
public abstract record UnreleaseOutcome
{
    /// <summary>Ready again; the new password is in the handoff (and, in the inline mode, in <see cref="Rotated"/>).</summary>
    public sealed record Unreleased(TenantDatabase Tenant, RotateOutcome.Rotated Rotated) : UnreleaseOutcome;
    public sealed record NotFound : UnreleaseOutcome;
    public sealed record NotReleased(TenantDatabaseStatus Status) : UnreleaseOutcome;
    public sealed record PastRetention(DateTimeOffset PurgeAfter) : UnreleaseOutcome;
    public sealed record Busy : UnreleaseOutcome;
    public sealed record Unavailable(string Detail) : UnreleaseOutcome;
}

/// <summary>
/// Un-release (DESIGN.md §10): within the release retention a released tenant comes back as it was before the release —
/// its database open again (CONNECT as it was), status ready — with a new password handed over the way a rotation hands one
/// over (<see cref="HandoffService.RotateAsync"/>: set on the idle login, deposited for one claim). The release refused both
/// logins, so the password held before the release stays refused. When no password can be handed over, the tenant is
/// released again as it was (same <c>released_at</c>): nothing half-made. Runs under the instance's lock, so no purge or
/// final backup acts on it meanwhile.
/// </summary>
public sealed partial class UnreleaseService(
    TenantStore tenants, ReleaseStore releases, TenantRestoreDdl databases, ITenantDdl ddl, HandoffService handoff,
    IOptions<AllocationOptions> allocationOptions, TimeProvider time, ILogger<UnreleaseService> logger)
{
    private AllocationOptions Options => allocationOptions.Value;

    public async Task<UnreleaseOutcome> UnreleaseAsync(DurableTaskClient client, Guid instanceId, string actor, CancellationToken ct)
    {
        await using var instanceLock = await tenants.OpenInstanceLockAsync(instanceId, ct);
        if (!await instanceLock.TryAcquireAsync(ct))
        {
            return new UnreleaseOutcome.Busy();
        }

        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new UnreleaseOutcome.NotFound();
        }

        var (pool, tenant) = live;
        if (tenant.Status != TenantDatabaseStatus.Released || tenant.ReleasedAt is not { } releasedAt)
        {
            return new UnreleaseOutcome.NotReleased(tenant.Status);
        }

        var purgeAfter = releasedAt + Options.ReleaseRetention;
        if (time.GetUtcNow() >= purgeAfter)
        {
            return new UnreleaseOutcome.PastRetention(purgeAfter);
        }

        var names = TenantNames.Of(tenant, Options.DatabasePrefix);
        try
        {
            // Open first: the logins are still refused, so nobody enters before the new password is set.
            await databases.OpenForAdminAsync(pool, names.Database, ct);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            LogFailed(e, instanceId, pool.Name);
            return new UnreleaseOutcome.Unavailable($"Pool '{pool.Name}' could not be reached; the tenant is still released. Retry later.");
        }

        if (await releases.UnreleaseAsync(tenant.Id, releasedAt, $"un-released (released at {releasedAt:O})", actor, ct) is not { } ready)
        {
            await databases.CloseAsync(pool, names.Database, CancellationToken.None);
            return new UnreleaseOutcome.Busy();
        }

        var rotated = await handoff.RotateAsync(client, instanceId, ct);
        if (rotated is RotateOutcome.Rotated done)
        {
            LogUnreleased(instanceId, pool.Name);
            return new UnreleaseOutcome.Unreleased(ready, done);
        }

        // No password reached the handoff: back to released as it was (database closed, logins refused, sessions ended).
        LogRolledBack(instanceId, rotated.GetType().Name);
        await ddl.ReleaseAsync(pool, names, CancellationToken.None);
        await releases.ReleaseAgainAsync(tenant.Id, releasedAt, "un-release undone: no new password could be handed over", actor, CancellationToken.None);
        return new UnreleaseOutcome.Unavailable("No new password could be handed over; the tenant is still released. Retry later.");
    }

    [LoggerMessage(LogLevel.Information, "Un-released the database of instance {InstanceId} on pool {Pool}; a new password is in the handoff")]
    private partial void LogUnreleased(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Un-release of instance {InstanceId} failed on pool {Pool}; the tenant is still released")]
    private partial void LogFailed(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Un-release of instance {InstanceId} undone: the new password could not be handed over ({Outcome})")]
    private partial void LogRolledBack(Guid instanceId, string outcome);
}
