using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Handoff;

/// <summary>
/// The database half of a password rotation (DESIGN.md §9, alternating logins): the new password recorded encrypted, set on
/// the idle login, committed when claimed, and the sweep that finishes or gives up rotations nobody claimed.
/// </summary>
public sealed partial class PasswordRotation(
    SecretProtector secrets,
    IOptions<HandoffOptions> options,
    IOptions<AllocationOptions> allocationOptions,
    IOptions<PoolsOptions> poolsOptions,
    TimeProvider time,
    TenantStore tenants,
    LoginRotationStore rotations,
    ITenantDdl ddl,
    ILogger<PasswordRotation> logger)
{
    /// <summary>Rotations the sweep settles per run at most; the rest wait for the next sweep.</summary>
    public const int BatchSize = 200;

    private HandoffOptions Options => options.Value;

    /// <summary>
    /// The database half of <see cref="HandoffService.RotateAsync"/>: the new password is recorded encrypted in the catalog first, then set
    /// (as a SCRAM verifier, never clear text) on the idle login. A crash at any point leaves the login in use working.
    /// </summary>
    public async Task<PasswordChange> ChangePasswordAsync(Guid instanceId, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is null)
        {
            return new PasswordChange.NotFound();
        }

        if (live.Tenant.Status != TenantDatabaseStatus.Ready)
        {
            return new PasswordChange.NotReady(live.Tenant.Status);
        }

        var names = TenantNames.Of(live.Tenant, allocationOptions.Value.DatabasePrefix);
        var password = PasswordGenerator.Generate(allocationOptions.Value.PasswordLength);
        var ciphertext = secrets.Protect(password, HandoffService.Purpose(instanceId));
        var start = await rotations.BeginAsync(instanceId, names.LoginRole, names.AlternateLoginRole, ciphertext, Options.RotationTimeout, ct);
        switch (start)
        {
            case RotationStart.NotFound:
                return new PasswordChange.NotFound();
            case RotationStart.NotReady notReady:
                return new PasswordChange.NotReady(notReady.Status);
            case RotationStart.InProgress:
                LogRotationBusy(instanceId);
                return new PasswordChange.InProgress();
        }

        var (rotationId, login) = (RotationStart.Begun)start;
        var tenantId = live.Tenant.Id;
        try
        {
            // The limit of the tier the row has under the lock (a tier change takes the same lock), for a login made now.
            var set = await rotations.WhileSettingAsync(tenantId, live.Pool.Id, rotationId,
                planTier => ddl.SetLoginPasswordAsync(live.Pool, names, login, ScramVerifier.Compute(password), LimitOf(planTier), ct), ct);
            switch (set)
            {
                case null:
                    // Overtaken by a rotation that took over this one (it outlived RotationTimeout): that one is in flight. Or the
                    // tenant moved to another pool meanwhile: this one set nothing and ends (a retry rotates on the new pool).
                    await MarkUnconfirmedBestEffortAsync(tenantId, rotationId);
                    LogRotationBusy(instanceId);
                    return new PasswordChange.InProgress();
                case false:
                    // Released meanwhile: the login was refused again; nothing to hand off.
                    await rotations.MarkUnconfirmedAsync(tenantId, rotationId, ct);
                    return new PasswordChange.NotReady(TenantDatabaseStatus.Released);
            }
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            LogRotationFailed(e, instanceId, live.Pool.Name);
            await MarkUnconfirmedBestEffortAsync(tenantId, rotationId);
            return new PasswordChange.Failed($"The password could not be set on pool '{live.Pool.Name}'; the current password still works. Retry later.");
        }

        LogRotated(instanceId, live.Pool.Name, login);
        return new PasswordChange.Changed(live, new Secret(password), login, rotationId, ciphertext);
    }

    /// <summary>
    /// The sweep's part: a rotation deposited longer than <see cref="HandoffOptions.RotationGrace"/> ago and never claimed
    /// becomes the one in use (the old login is refused); one that never reached the handoff is given up (its login refused);
    /// a retirement a claim could not finish is done. Returns how many tenants it acted on.
    /// </summary>
    public async Task<int> SweepRotationsAsync(CancellationToken ct)
    {
        var done = 0;
        foreach (var due in await rotations.ListDueAsync(time.GetUtcNow() - Options.RotationGrace, BatchSize, ct))
        {
            var names = TenantNames.Of(due.InstanceId, due.DbName, due.OwnerRole, due.LoginRole, allocationOptions.Value.DatabasePrefix);
            try
            {
                switch (due)
                {
                    // Handed off but never claimed within the grace: nobody holds that password, so the login in use stays
                    // and the new one is refused (a claim commits a rotation the moment it hands the password over).
                    case { RotationState: "setting" or "unconfirmed" or "pending", RotationId: { } failed }:
                        await rotations.WhileAbandoningAsync(due.TenantId, failed, login => ddl.DisableLoginAsync(due.Pool, names, login, ct), ct);
                        LogAbandoned(due.InstanceId, failed);
                        break;
                }

                await rotations.WhileRetiringAsync(due.TenantId, login => ddl.DisableLoginAsync(due.Pool, names, login, ct), ct);
                done++;
            }
            catch (Exception e) when (PoolFailures.IsTransient(e))
            {
                LogSweepFailed(e, due.InstanceId, due.Pool.Name);
            }
        }

        return done;
    }

    /// <summary>
    /// A rotation's password was claimed: its login becomes the one in use, then the old one is refused (best effort: the
    /// sweep finishes a retirement a fault interrupted). False when a newer rotation replaced it meanwhile.
    /// </summary>
    public async Task<bool> CommitAsync(Pool pool, long tenantId, TenantNames names, long rotationId, string login, string actor, CancellationToken ct)
    {
        if (await rotations.CommitAsync(tenantId, rotationId, login, actor, ct) == RotationCommit.Superseded)
        {
            return false;
        }

        try
        {
            await rotations.WhileRetiringAsync(tenantId, login => ddl.DisableLoginAsync(pool, names, login, ct), ct);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            LogSweepFailed(e, null, pool.Name);
        }

        return true;
    }

    private int LimitOf(string planTier) =>
        poolsOptions.Value.TryGetTier(planTier, out var tier) ? tier.ConnectionLimit : new PlanTier().ConnectionLimit;

    /// <summary>Records that a rotation's password never reached its handoff; a catalog fault is logged (the sweep settles it).</summary>
    public async Task MarkUnconfirmedBestEffortAsync(long tenantId, long rotationId)
    {
        try
        {
            await rotations.MarkUnconfirmedAsync(tenantId, rotationId, CancellationToken.None);
        }
        catch (Exception e) when (PoolFailures.IsTransient(e))
        {
            LogSweepFailed(e, null, "catalog");
        }
    }

    [LoggerMessage(LogLevel.Information, "Rotation for instance {InstanceId} refused: another one is in flight")]
    private partial void LogRotationBusy(Guid instanceId);

    [LoggerMessage(LogLevel.Warning, "Rotation for instance {InstanceId} failed on pool {Pool}; the login in use is untouched")]
    private partial void LogRotationFailed(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Gave up rotation {RotationId} of instance {InstanceId}, which never reached its handoff")]
    private partial void LogAbandoned(Guid instanceId, long rotationId);

    [LoggerMessage(LogLevel.Warning, "Finishing a login rotation (instance {InstanceId}) failed on {Pool}; the sweep retries")]
    private partial void LogSweepFailed(Exception e, Guid? instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Set a new password on login {Login} of instance {InstanceId} on pool {Pool}")]
    private partial void LogRotated(Guid instanceId, string pool, string login);
}
