using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Handoff;

/// <summary>What a claim came to. Only <see cref="Claimed"/> carries the password, in clear, for this one answer.</summary>
public abstract record ClaimOutcome
{
    /// <param name="DbUser">The login the password belongs to (one of the tenant's two alternating logins).</param>
    public sealed record Claimed(Guid InstanceId, string DbHost, int DbPort, string DbName, string DbUser, Secret Password) : ClaimOutcome;
    public sealed record AlreadyClaimed : ClaimOutcome;
    public sealed record Expired : ClaimOutcome;
    public sealed record Unknown : ClaimOutcome;

    /// <summary>A newer rotation replaced the password while it was claimed: its own password is on the way; retry.</summary>
    public sealed record Superseded : ClaimOutcome;

    /// <summary>The task hub did not answer in time; nothing was taken. Retry.</summary>
    public sealed record Unavailable : ClaimOutcome;
}

/// <summary>What a rotation came to.</summary>
public abstract record RotateOutcome
{
    /// <summary>The new password is in force on <see cref="DbUser"/> and deposited for a claim until <see cref="ExpiresAt"/>.</summary>
    public sealed record Rotated(DateTimeOffset ExpiresAt, Secret Password, string DbUser) : RotateOutcome;
    public sealed record NotFound : RotateOutcome;
    public sealed record NotReady(TenantDatabaseStatus Status) : RotateOutcome;

    /// <summary>Another rotation of the instance is in flight (409).</summary>
    public sealed record InProgress : RotateOutcome;

    /// <summary>A pool or the task hub failed or did not answer in time (503); the login in use still works.</summary>
    public sealed record Unavailable(string Detail) : RotateOutcome;
}

/// <summary>The database side of a rotation (no Durable client needed): the new password, already in force.</summary>
public abstract record PasswordChange
{
    /// <summary>Recorded (encrypted) as rotation <see cref="RotationId"/>, then set on <see cref="Login"/>, the idle login.</summary>
    public sealed record Changed(Allocation Placement, Secret Password, string Login, long RotationId, string Ciphertext) : PasswordChange;
    public sealed record NotFound : PasswordChange;
    public sealed record NotReady(TenantDatabaseStatus Status) : PasswordChange;
    public sealed record InProgress : PasswordChange;

    /// <summary>The pool failed mid-way: the rotation is recorded as unconfirmed; the login in use is untouched.</summary>
    public sealed record Failed(string Detail) : PasswordChange;
}

/// <summary>
/// The one-time credential handoff (DESIGN.md §5): deposit an encrypted password in the instance's
/// <see cref="CredentialHandoff"/> entity, claim it once through a <see cref="ClaimCredentials"/> run, rotate it.
/// </summary>
public sealed partial class HandoffService(
    SecretProtector secrets,
    IOptions<HandoffOptions> options,
    IOptions<AllocationOptions> allocationOptions,
    IOptions<PoolsOptions> poolsOptions,
    TimeProvider time,
    TenantStore tenants,
    LoginRotationStore rotations,
    AllocationService allocation,
    ITenantDdl ddl,
    ILogger<HandoffService> logger) : ICredentialDeposit
{
    public const string Actor = Actors.CredentialHandoff;
    private HandoffOptions Options => options.Value;

    /// <summary>What the handoff keeps of an <c>Idempotency-Key</c>: its SHA-256, never the key.</summary>
    public static string KeyHash(string idempotencyKey) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(idempotencyKey)));

    /// <summary>The associated data of a handoff ciphertext: it decrypts for this instance only.</summary>
    public static string Purpose(Guid instanceId) => $"handoff:{instanceId:D}";

    public static string ClaimInstanceId(Guid instanceId) => $"claim-{instanceId:D}-{Guid.NewGuid():N}";

    /// <summary>Encrypts <paramref name="password"/> and signals it into the instance's handoff; returns when it expires.</summary>
    public async Task<DateTimeOffset> DepositAsync(DurableTaskClient client, Guid instanceId, Secret password, CancellationToken ct)
    {
        var deposit = Seal(instanceId, password) with { Login = allocation.NamesFor(instanceId).LoginRole };
        await SignalDepositAsync(client, instanceId, deposit, ct);
        return deposit.ExpiresAt;
    }

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
    public async Task<ClaimOutcome> ClaimAsync(DurableTaskClient client, Guid instanceId, string? idempotencyKey, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        if (live is not { Tenant.Status: TenantDatabaseStatus.Ready })
        {
            // Nothing to hand off (unknown, still creating, or released): the entity is not touched.
            return new ClaimOutcome.Unknown();
        }

        var madeAt = live.Tenant.ReadyAt ?? live.Tenant.CreatedAt;
        var waitUntil = time.GetUtcNow() + Options.ClaimWait;
        while (true)
        {
            ClaimResult? result;
            try
            {
                result = await RunClaimAsync(client, instanceId, idempotencyKey, ct);
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
                    var names = allocation.NamesFor(instanceId);
                    var login = result.Login ?? names.LoginRole;
                    if (result.RotationId is { } rotationId && !await CommitRotationAsync(pool, tenant.Id, names, rotationId, login, ct))
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

            var now = time.GetUtcNow();
            if (now - madeAt >= Options.Ttl || allocationOptions.Value.InlinePassword)
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

    /// <summary>
    /// A new password for a ready tenant (DESIGN.md §9, alternating logins): recorded encrypted, set on the idle login,
    /// deposited for a claim. The login in use keeps working until the new password is claimed or the grace ends.
    /// </summary>
    public async Task<RotateOutcome> RotateAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
    {
        switch (await ChangePasswordAsync(instanceId, ct))
        {
            case PasswordChange.Changed changed:
                var (tenantId, rotationId) = (changed.Placement.Tenant.Id, changed.RotationId);
                var now = time.GetUtcNow();
                var deposit = new HandoffDeposit(changed.Ciphertext, now, now + Options.Ttl, changed.Login, rotationId);
                try
                {
                    var deadline = now + Options.StorageTimeout;
                    await BoundedAsync(t => SignalDepositAsync(client, instanceId, deposit, t), deadline, ct);
                    // The entity may still hold the claimed tombstone of the previous password: a claim that overtook this
                    // signal would answer "already claimed", so the rotation answers once the deposit is applied.
                    await WaitUntilAppliedAsync(client, instanceId, deposit, deadline, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    LogDepositFailed(e, instanceId, rotationId);
                    await TryAsync(() => rotations.MarkUnconfirmedAsync(tenantId, rotationId, CancellationToken.None));
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

    /// <summary>
    /// The database half of <see cref="RotateAsync"/>: the new password is recorded encrypted in the catalog first, then set
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

        var names = allocation.NamesFor(instanceId);
        var password = PasswordGenerator.Generate(allocationOptions.Value.PasswordLength);
        var ciphertext = secrets.Protect(password, Purpose(instanceId));
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
        var limit = poolsOptions.Value.TryGetTier(live.Tenant.PlanTier, out var tier) ? tier.ConnectionLimit : new PlanTier().ConnectionLimit;
        try
        {
            var set = await rotations.WhileSettingAsync(tenantId, rotationId,
                () => ddl.SetLoginPasswordAsync(live.Pool, names, login, ScramVerifier.Compute(password), limit, ct), ct);
            switch (set)
            {
                case null:
                    // Overtaken by a rotation that took over this one (it outlived RotationTimeout): that one is in flight.
                    LogRotationBusy(instanceId);
                    return new PasswordChange.InProgress();
                case false:
                    // Released meanwhile: the login was refused again; nothing to hand off.
                    await rotations.MarkUnconfirmedAsync(tenantId, rotationId, ct);
                    return new PasswordChange.NotReady(TenantDatabaseStatus.Released);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
        {
            LogRotationFailed(e, instanceId, live.Pool.Name);
            await TryAsync(() => rotations.MarkUnconfirmedAsync(tenantId, rotationId, CancellationToken.None));
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
        foreach (var due in await rotations.ListDueAsync(time.GetUtcNow() - Options.RotationGrace, 200, ct))
        {
            var names = allocation.NamesFor(due.InstanceId);
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
            catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
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
    private async Task<bool> CommitRotationAsync(Pool pool, long tenantId, TenantNames names, long rotationId, string login, CancellationToken ct,
        string actor = Actor)
    {
        if (await rotations.CommitAsync(tenantId, rotationId, login, actor, ct) == RotationCommit.Superseded)
        {
            return false;
        }

        try
        {
            await rotations.WhileRetiringAsync(tenantId, login => ddl.DisableLoginAsync(pool, names, login, ct), ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
        {
            LogSweepFailed(e, null, pool.Name);
        }

        return true;
    }

    private async Task BoundedAsync(Func<CancellationToken, Task> call, DateTimeOffset deadline, CancellationToken ct)
    {
        var left = deadline - time.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            throw new TimeoutException("The task hub did not answer in time.");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(left);
        try
        {
            // WaitAsync too: not every client honours its token while storage stalls.
            await call(timeout.Token).WaitAsync(left, time, ct);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException("The task hub did not answer in time.");
        }
    }

    private async Task TryAsync(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
        {
            LogSweepFailed(e, null, "catalog");
        }
    }


    private async Task SignalDepositAsync(DurableTaskClient client, Guid instanceId, HandoffDeposit deposit, CancellationToken ct)
    {
        await client.Entities.SignalEntityAsync(CredentialHandoff.IdFor(instanceId), nameof(CredentialHandoff.Deposit), deposit, cancellation: ct);
        LogDeposited(instanceId, deposit.ExpiresAt);
    }

    private async Task WaitUntilAppliedAsync(DurableTaskClient client, Guid instanceId, HandoffDeposit deposit, DateTimeOffset deadline, CancellationToken ct)
    {
        while (true)
        {
            EntityMetadata<HandoffState>? entity = null;
            await BoundedAsync(async t => entity = await client.Entities.GetEntityAsync<HandoffState>(CredentialHandoff.IdFor(instanceId), includeState: true, t), deadline, ct);
            // Applied, or overtaken by a newer rotation's deposit (the entity keeps the newest).
            if (entity is { IncludesState: true, State: { } state } && state.RotationId >= deposit.RotationId)
            {
                return;
            }

            if (time.GetUtcNow() >= deadline)
            {
                throw new TimeoutException("The deposit was not applied in time.");
            }

            await Task.Delay(Options.ClaimRetryInterval, time, ct);
        }
    }

    /// <summary>One take-once claim run; null when the run failed rather than answered.</summary>
    private async Task<ClaimResult?> RunClaimAsync(DurableTaskClient client, Guid instanceId, string? idempotencyKey, CancellationToken ct)
    {
        var id = ClaimInstanceId(instanceId);
        var input = idempotencyKey is null
            ? new ClaimCredentialsInput(instanceId.ToString("D"))
            : new ClaimCredentialsInput(instanceId.ToString("D"), KeyHash(idempotencyKey), Options.ClaimReplayWindow);
        await BoundedAsync(t => client.ScheduleNewOrchestrationInstanceAsync(nameof(ClaimCredentials), input, new StartOrchestrationOptions(id), t),
            time.GetUtcNow() + Options.StorageTimeout, ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.ClaimTimeout);
        OrchestrationMetadata run;
        try
        {
            run = await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The claim run {id} did not finish within {Options.ClaimTimeout}.");
        }

        var answer = run.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? run.ReadOutputAs<ClaimResult>() : null;
        if (answer is null)
        {
            LogClaimRunFailed(instanceId, run.RuntimeStatus);
        }

        try
        {
            // Its output (ciphertext) and history have served their purpose; best effort and bounded (the history purge
            // of the daily cleanup removes what is left), so it never replaces the answer.
            await BoundedAsync(t => client.PurgeInstanceAsync(id, t), time.GetUtcNow() + Options.StorageTimeout, CancellationToken.None);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogClaimPurgeDeferred(e, instanceId);
        }

        return answer;
    }

    [LoggerMessage(LogLevel.Warning, "The claim run of instance {InstanceId} ended {RuntimeStatus} without an answer; answered unavailable")]
    private partial void LogClaimRunFailed(Guid instanceId, OrchestrationRuntimeStatus runtimeStatus);

    [LoggerMessage(LogLevel.Warning, "The finished claim run of instance {InstanceId} could not be purged now; the history cleanup removes it")]
    private partial void LogClaimPurgeDeferred(Exception e, Guid instanceId);

    [LoggerMessage(LogLevel.Information, "Deposited the credential handoff of instance {InstanceId}, expiring at {ExpiresAt}")]
    private partial void LogDeposited(Guid instanceId, DateTimeOffset expiresAt);

    [LoggerMessage(LogLevel.Information, "Credentials of instance {InstanceId} claimed (replayed for the same idempotency key: {Replayed})")]
    private partial void LogClaimed(Guid instanceId, bool replayed);

    [LoggerMessage(LogLevel.Warning, "Claim for instance {InstanceId} did not finish in time; answered unavailable")]
    private partial void LogClaimTimedOut(Guid instanceId);

    [LoggerMessage(LogLevel.Information, "Claim for instance {InstanceId} took the password of rotation {RotationId}, which a newer rotation replaced; the caller retries")]
    private partial void LogSuperseded(Guid instanceId, long rotationId);

    [LoggerMessage(LogLevel.Information, "Rotation for instance {InstanceId} refused: another one is in flight")]
    private partial void LogRotationBusy(Guid instanceId);

    [LoggerMessage(LogLevel.Warning, "Rotation for instance {InstanceId} failed on pool {Pool}; the login in use is untouched")]
    private partial void LogRotationFailed(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "The password of rotation {RotationId} (instance {InstanceId}) did not reach its handoff in time; the login in use is untouched")]
    private partial void LogDepositFailed(Exception e, Guid instanceId, long rotationId);


    [LoggerMessage(LogLevel.Information, "Gave up rotation {RotationId} of instance {InstanceId}, which never reached its handoff")]
    private partial void LogAbandoned(Guid instanceId, long rotationId);

    [LoggerMessage(LogLevel.Warning, "Finishing a login rotation (instance {InstanceId}) failed on {Pool}; the sweep retries")]
    private partial void LogSweepFailed(Exception e, Guid? instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Claim for instance {InstanceId} refused: {Status}")]
    private partial void LogRefused(Guid instanceId, ClaimStatus status);

    [LoggerMessage(LogLevel.Warning, "Claim for instance {InstanceId} found no deposit after {Wait}; answered unavailable (retry)")]
    private partial void LogDepositPending(Guid instanceId, TimeSpan wait);

    [LoggerMessage(LogLevel.Debug, "Claim for instance {InstanceId} found no deposit yet; waiting for it")]
    private partial void LogWaitingForDeposit(Guid instanceId);

    [LoggerMessage(LogLevel.Information, "Set a new password on login {Login} of instance {InstanceId} on pool {Pool}")]
    private partial void LogRotated(Guid instanceId, string pool, string login);
}
