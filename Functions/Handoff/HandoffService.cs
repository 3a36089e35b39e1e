using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Telemetry;

namespace TenantDb.Functions.Handoff;

/// <summary>
/// The one-time credential handoff (DESIGN.md §5): deposit an encrypted password in the instance's
/// <see cref="CredentialHandoff"/> entity, claim it once through a <see cref="ClaimCredentials"/> run, hand off a rotated
/// password (the database half is <see cref="PasswordRotation"/>). The task-hub calls themselves are <see cref="HandoffTaskHub"/>'s.
/// </summary>
public sealed partial class HandoffService(
    SecretProtector secrets,
    IOptions<HandoffOptions> options,
    IOptions<AllocationOptions> allocationOptions,
    TimeProvider time,
    TenantStore tenants,
    FirstPasswordStore firstPasswords,
    LoginRotationStore rotations,
    PasswordRotation rotation,
    AllocatorTelemetry telemetry,
    HandoffTaskHub hub,
    ILogger<HandoffService> logger) : ICredentialDeposit
{
    private HandoffOptions Options => options.Value;

    /// <summary>The associated data of a handoff ciphertext: it decrypts for this instance only.</summary>
    public static string Purpose(Guid instanceId) => SecretProtector.HandoffPurpose(instanceId);

    /// <summary>Encrypts <paramref name="password"/> and signals it into the instance's handoff; returns when it expires.</summary>
    public async Task<DateTimeOffset> DepositAsync(DurableTaskClient client, Guid instanceId, Secret password, DateTimeOffset readyAt, CancellationToken ct)
    {
        var deposit = FirstPasswordDeposit(instanceId, secrets.Protect(password.Reveal(), Purpose(instanceId)), readyAt);
        // Not bounded by StorageTimeout: the tenant is ready and this is the only copy of its password, so a slow task hub under
        // load is waited for (bounding it at 15 s turned 78 of 500 allocations of the load proof into 503s and lost passwords).
        // A deposit lost with its host is answered by the claim's deposit grace ("rotate").
        await hub.SignalDepositAsync(client, instanceId, deposit, ct);
        return deposit.ExpiresAt;
    }

    /// <summary>When a first password's handoff ends: the TTL after the tenant turned ready.</summary>
    public DateTimeOffset ExpiresAt(DateTimeOffset readyAt) => readyAt + Options.Ttl;

    /// <summary>The deposit of a tenant's first password: timed from when the tenant turned ready, on its first login.</summary>
    private HandoffDeposit FirstPasswordDeposit(Guid instanceId, string ciphertext, DateTimeOffset readyAt) =>
        new(ciphertext, readyAt, readyAt + Options.Ttl, TenantNames.For(instanceId, allocationOptions.Value.DatabasePrefix).LoginRole);

    /// <summary>The entity's <c>Deposit</c> payload for a password: ciphertext bound to the instance, and its times.</summary>
    public HandoffDeposit Seal(Guid instanceId, Secret password)
    {
        var now = time.GetUtcNow();
        return new HandoffDeposit(secrets.Protect(password.Reveal(), Purpose(instanceId)), now, now + Options.Ttl);
    }

    /// <summary>
    /// Claims the password once. A claim for a ready allocation younger than the TTL that finds no deposit waits for it
    /// (bounded by <see cref="HandoffOptions.ClaimWait"/>): the deposit is a signal and may not be applied yet.
    /// </summary>
    /// <param name="idempotencyKey">The caller's <c>Idempotency-Key</c>: a retry with it within
    /// <see cref="HandoffOptions.ClaimReplayWindow"/> gets the same answer. Null: strictly once.</param>
    public Task<ClaimOutcome> ClaimAsync(DurableTaskClient client, Guid instanceId, string? idempotencyKey, CancellationToken ct) =>
        ObservedAsync("claim", instanceId, telemetry.Claim, () => ClaimCoreAsync(client, instanceId, idempotencyKey, ct));

    private async Task<ClaimOutcome> ClaimCoreAsync(DurableTaskClient client, Guid instanceId, string? idempotencyKey, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is not { Tenant.Status: TenantDatabaseStatus.Ready })
        {
            // Nothing to hand off (unknown, still creating, or released): the entity is not touched.
            return new ClaimOutcome.Unknown();
        }

        var madeAt = live.Tenant.HandoffFrom;
        var waitUntil = time.GetUtcNow() + Options.ClaimWait;
        var copyTried = false;
        while (true)
        {
            if (!copyTried && !allocationOptions.Value.InlinePassword)
            {
                // The first password waits in the catalog (its copy, written with the ready row); the allocation deposits nothing.
                // The first claim deposits it in the handoff and claims it there, once: a second deposit of the same password is
                // ignored by the entity, so a claim that finds it already there (pending or claimed) gets the entity's answer.
                copyTried = true;
                switch (await RedepositFirstPasswordAsync(client, instanceId, live.Tenant, ct))
                {
                    case Redeposit.Expired:
                        LogRefused(instanceId, ClaimStatus.Expired);
                        return new ClaimOutcome.Expired();
                    case Redeposit.Unavailable:
                        return new ClaimOutcome.Unavailable();
                }
            }

            ClaimResult? result;
            try
            {
                result = await hub.RunClaimAsync(client, instanceId, idempotencyKey, ct);
            }
            catch (TimeoutException)
            {
                LogClaimTimedOut(instanceId);
                return new ClaimOutcome.Unavailable();
            }

            if (result is null)
            {
                // The claim run failed (a worker fault): nothing was handed over; the caller retries.
                return new ClaimOutcome.Unavailable();
            }

            switch (result.Status)
            {
                case ClaimStatus.Claimed when result.Ciphertext is not null:
                    var password = new Secret(secrets.Unprotect(result.Ciphertext, Purpose(instanceId)));
                    var (pool, tenant) = live;
                    if (result.RotationId is null)
                    {
                        await ClearFirstPasswordCopyBestEffortAsync(tenant.Id);
                    }

                    var names = TenantNames.Of(tenant, allocationOptions.Value.DatabasePrefix);
                    var login = result.Login ?? names.LoginRole;
                    if (result.RotationId is { } rotationId && !await rotation.CommitAsync(pool, tenant.Id, names, rotationId, login, AuditActor.Current, ct))
                    {
                        LogSuperseded(instanceId, rotationId);
                        return new ClaimOutcome.Superseded();
                    }

                    LogClaimed(instanceId, result.Replayed);
                    return new ClaimOutcome.Claimed(instanceId, pool.Host, pool.Port, tenant.DbName, login, password);
                case ClaimStatus.AlreadyClaimed:
                    LogRefused(instanceId, result.Status);
                    return new ClaimOutcome.AlreadyClaimed();
                case ClaimStatus.Expired:
                    LogRefused(instanceId, result.Status);
                    return new ClaimOutcome.Expired();
            }

            if (live.Tenant.AdoptedAt is not null)
            {
                // An adopted tenant (issue 14 item 7) never had a first password here: the platform already holds it. Only a
                // rotation deposits one, and a claim that finds none has nothing to wait for.
                LogRefused(instanceId, ClaimStatus.Unknown);
                return new ClaimOutcome.Unknown();
            }

            var now = time.GetUtcNow();
            if (now - madeAt >= Options.Ttl || now - madeAt >= Options.DepositGrace || allocationOptions.Value.InlinePassword)
            {
                LogRefused(instanceId, ClaimStatus.Unknown);
                return new ClaimOutcome.Unknown();
            }

            if (now >= waitUntil)
            {
                // A ready allocation younger than the TTL whose deposit is still on its way (a signal queued behind a restart):
                // not "no credentials" but "not yet" — the caller retries after Retry-After.
                LogDepositPending(instanceId, Options.ClaimWait);
                return new ClaimOutcome.Unavailable();
            }

            LogWaitingForDeposit(instanceId);
            await Task.Delay(Options.ClaimRetryInterval, time, ct);
        }
    }

    private enum Redeposit { None, Deposited, Expired, Unavailable }

    /// <summary>The catalog's copy of the first password, deposited in the handoff (and applied there) when it is still in time.</summary>
    private async Task<Redeposit> RedepositFirstPasswordAsync(DurableTaskClient client, Guid instanceId, TenantDatabase tenant, CancellationToken ct)
    {
        if (await firstPasswords.FindAsync(tenant.Id, ct) is not { } copy)
        {
            return Redeposit.None;
        }

        if (time.GetUtcNow() >= tenant.HandoffFrom + Options.Ttl)
        {
            await firstPasswords.ClearAsync(tenant.Id, ct);
            return Redeposit.Expired;
        }

        var deposit = FirstPasswordDeposit(instanceId, copy, tenant.HandoffFrom);
        try
        {
            var deadline = time.GetUtcNow() + Options.StorageTimeout;
            await hub.BoundedAsync(t => hub.SignalDepositAsync(client, instanceId, deposit, t), deadline, ct);
            await hub.WaitUntilAppliedAsync(client, instanceId, deposit, deadline, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            LogRedepositFailed(e, instanceId);
            return Redeposit.Unavailable;
        }

        LogRedeposited(instanceId);
        return Redeposit.Deposited;
    }

    // The handoff's tombstone already refuses a second claim; the copy goes so nothing can deposit it again. A failure here
    // leaves it to expire with the TTL (the daily cleanup clears it).
    private async Task ClearFirstPasswordCopyBestEffortAsync(long tenantId)
    {
        try
        {
            await firstPasswords.ClearAsync(tenantId, CancellationToken.None);
        }
        catch (Exception e)
        {
            LogCopyNotCleared(e, tenantId);
        }
    }

    /// <summary>
    /// For an allocate in the inline-password mode that follows a 202: the password the waiting allocation deposited, taken
    /// once through the same claim as <see cref="ClaimAsync"/>. A cheap read of the entity first, so a repeat allocate of an
    /// instance whose password was taken (or never deposited, or a rotation's) starts no claim run. A task hub that does not
    /// answer is a <see cref="TimeoutException"/> (503): a 200 without the password would end the caller's loop without it.
    /// </summary>
    public async Task<HandedPassword?> TakeAllocationPasswordAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
    {
        var waitUntil = time.GetUtcNow() + Options.ClaimWait;
        bool? depositComing = null;
        while (true)
        {
            EntityMetadata<HandoffState>? entity = null;
            await hub.BoundedAsync(async t => entity = await client.Entities.GetEntityAsync<HandoffState>(CredentialHandoff.IdFor(instanceId), includeState: true, t),
                time.GetUtcNow() + Options.StorageTimeout, ct);
            if (entity is { IncludesState: true, State: { Ciphertext: not null, RotationId: null, ClaimedAt: null } })
            {
                break;
            }

            // Nothing deposited (yet). The waiting run's deposit is a signal the run does not wait for: its run can be complete
            // before the entity applied it. Only when such a run placed this instance is a deposit on its way; then wait for it
            // (bounded), and past the bound answer 503 "not yet" rather than a 200 that would end the caller's loop without it.
            if (entity is { IncludesState: true, State.ClaimedAt: not null } || entity is { IncludesState: true, State.RotationId: not null }
                || !(depositComing ??= await WaitingRunPlacedAsync(client, instanceId, ct)))
            {
                return null;
            }

            if (time.GetUtcNow() >= waitUntil)
            {
                LogDepositPending(instanceId, Options.ClaimWait);
                throw new TimeoutException("The waiting allocation's deposit is not applied yet.");
            }

            LogWaitingForDeposit(instanceId);
            await Task.Delay(Options.ClaimRetryInterval, time, ct);
        }

        return await ClaimAsync(client, instanceId, idempotencyKey: null, ct) switch
        {
            ClaimOutcome.Claimed claimed => new HandedPassword(claimed.DbUser, claimed.Password),
            ClaimOutcome.Unavailable => throw new TimeoutException("The credential handoff did not answer in time."),
            _ => null,
        };
    }

    /// <summary>Did this instance's waiting run (<c>AllocateWhenReady</c>) place it, recently enough that its deposit may still be on the way?</summary>
    private async Task<bool> WaitingRunPlacedAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
    {
        OrchestrationMetadata? run = null;
        await hub.BoundedAsync(async t => run = await client.GetInstanceAsync(WaitForCapacity.InstanceIdFor(instanceId), getInputsAndOutputs: true, t),
            time.GetUtcNow() + Options.StorageTimeout, ct);
        return run is { RuntimeStatus: OrchestrationRuntimeStatus.Completed } && time.GetUtcNow() - run.LastUpdatedAt < Options.DepositGrace
            && run.ReadOutputAs<AllocateAttempt>()?.Allocation is not null;
    }

    /// <summary>
    /// A new password for a ready tenant (DESIGN.md §9, alternating logins): recorded encrypted, set on the idle login,
    /// deposited for a claim. The login in use keeps working until the new password is claimed or the grace ends.
    /// </summary>
    public Task<RotateOutcome> RotateAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct) =>
        ObservedAsync("rotate", instanceId, telemetry.Rotation, () => RotateCoreAsync(client, instanceId, ct));

    /// <summary>Runs a claim or rotation in its span and its log scope (<c>InstanceId</c>) and counts its outcome.</summary>
    private async Task<T> ObservedAsync<T>(string operation, Guid instanceId, Action<string> count, Func<Task<T>> run) where T : notnull
    {
        using var activity = AllocatorTelemetry.Source.StartActivity(operation);
        activity?.SetTag("tenantdb.instance_id", instanceId);
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["InstanceId"] = instanceId });
        var outcome = "error";
        try
        {
            var result = await run();
            outcome = AllocatorTelemetry.OutcomeName(result);
            return result;
        }
        finally
        {
            activity?.SetTag("tenantdb.outcome", outcome);
            count(outcome);
        }
    }

    private async Task<RotateOutcome> RotateCoreAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
    {
        switch (await rotation.ChangePasswordAsync(instanceId, ct))
        {
            case PasswordChange.Changed changed:
                var (tenantId, rotationId) = (changed.Placement.Tenant.Id, changed.RotationId);
                var now = time.GetUtcNow();
                var deposit = new HandoffDeposit(changed.Ciphertext, now, now + Options.Ttl, changed.Login, rotationId);
                try
                {
                    var deadline = now + Options.StorageTimeout;
                    await hub.BoundedAsync(t => hub.SignalDepositAsync(client, instanceId, deposit, t), deadline, ct);
                    // The entity may still hold the claimed tombstone of the previous password: a claim that overtook this
                    // signal would answer "already claimed", so the rotation answers once the deposit is applied.
                    await hub.WaitUntilAppliedAsync(client, instanceId, deposit, deadline, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    LogDepositFailed(e, instanceId, rotationId);
                    await rotation.MarkUnconfirmedBestEffortAsync(tenantId, rotationId);
                    return new RotateOutcome.Unavailable("The new password could not be handed off in time; the current password still works. Retry later.");
                }

                await rotations.MarkDepositedAsync(tenantId, rotationId, ct);
                return new RotateOutcome.Rotated(deposit.ExpiresAt, changed.Password, changed.Login);
            case PasswordChange.NotReady notReady:
                return new RotateOutcome.NotReady(notReady.Status);
            case PasswordChange.InProgress:
                return new RotateOutcome.InProgress();
            case PasswordChange.Failed failed:
                return new RotateOutcome.Unavailable(failed.Detail);
            default:
                return new RotateOutcome.NotFound();
        }
    }




    [LoggerMessage(LogLevel.Information, "Credentials of instance {InstanceId} claimed (replayed for the same idempotency key: {Replayed})")]
    private partial void LogClaimed(Guid instanceId, bool replayed);

    [LoggerMessage(LogLevel.Warning, "Claim for instance {InstanceId} did not finish in time; answered unavailable")]
    private partial void LogClaimTimedOut(Guid instanceId);

    [LoggerMessage(LogLevel.Information, "Claim for instance {InstanceId} took the password of rotation {RotationId}, which a newer rotation replaced; the caller retries")]
    private partial void LogSuperseded(Guid instanceId, long rotationId);

    [LoggerMessage(LogLevel.Warning, "The password of rotation {RotationId} (instance {InstanceId}) did not reach its handoff in time; the login in use is untouched")]
    private partial void LogDepositFailed(Exception e, Guid instanceId, long rotationId);

    [LoggerMessage(LogLevel.Debug, "Claim for instance {InstanceId}: the catalog's copy of its first password deposited in the handoff")]
    private partial void LogRedeposited(Guid instanceId);

    [LoggerMessage(LogLevel.Warning, "Claim for instance {InstanceId} found no deposit and could not deposit the catalog's copy in time; answered unavailable")]
    private partial void LogRedepositFailed(Exception e, Guid instanceId);

    [LoggerMessage(LogLevel.Warning, "The claimed first password's copy of tenant row {TenantId} was not cleared; it expires with the handoff TTL")]
    private partial void LogCopyNotCleared(Exception e, long tenantId);

    [LoggerMessage(LogLevel.Information, "Claim for instance {InstanceId} refused: {Status}")]
    private partial void LogRefused(Guid instanceId, ClaimStatus status);

    [LoggerMessage(LogLevel.Warning, "Claim for instance {InstanceId} found no deposit after {Wait}; answered unavailable (retry)")]
    private partial void LogDepositPending(Guid instanceId, TimeSpan wait);

    [LoggerMessage(LogLevel.Debug, "Claim for instance {InstanceId} found no deposit yet; waiting for it")]
    private partial void LogWaitingForDeposit(Guid instanceId);
}
