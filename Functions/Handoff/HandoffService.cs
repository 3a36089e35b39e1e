using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocation;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Handoff;

/// <summary>What a claim came to. Only <see cref="Claimed"/> carries the password, in clear, for this one answer.</summary>
public abstract record ClaimOutcome
{
    public sealed record Claimed(Guid InstanceId, string DbHost, int DbPort, string DbName, string DbUser, Secret Password) : ClaimOutcome;
    public sealed record AlreadyClaimed : ClaimOutcome;
    public sealed record Expired : ClaimOutcome;
    public sealed record Unknown : ClaimOutcome;
}

/// <summary>What a rotation came to.</summary>
public abstract record RotateOutcome
{
    /// <summary>The new password is in force and deposited for a claim until <see cref="ExpiresAt"/>.</summary>
    public sealed record Rotated(DateTimeOffset ExpiresAt, Secret Password) : RotateOutcome;
    public sealed record NotFound : RotateOutcome;
    public sealed record NotReady(TenantDatabaseStatus Status) : RotateOutcome;
}

/// <summary>The database side of a rotation (no Durable client needed): the new password, already in force.</summary>
public abstract record PasswordChange
{
    public sealed record Changed(Reservation Placement, Secret Password) : PasswordChange;
    public sealed record NotFound : PasswordChange;
    public sealed record NotReady(TenantDatabaseStatus Status) : PasswordChange;
}

/// <summary>
/// The one-time credential handoff (DESIGN.md §5): deposit an encrypted password in the instance's
/// <see cref="CredentialHandoff"/> entity, claim it once through a <see cref="ClaimCredentials"/> run, rotate it.
/// </summary>
public sealed partial class HandoffService(
    SecretProtector secrets,
    IOptions<HandoffOptions> options,
    IOptions<AllocationOptions> allocationOptions,
    TimeProvider time,
    TenantStore tenants,
    AllocationService allocation,
    ITenantDdl ddl,
    ILogger<HandoffService> logger) : ICredentialDeposit
{
    private HandoffOptions Options => options.Value;

    /// <summary>The associated data of a handoff ciphertext: it decrypts for this instance only.</summary>
    public static string Purpose(Guid instanceId) => $"handoff:{instanceId:D}";

    public static string ClaimInstanceId(Guid instanceId) => $"claim-{instanceId:D}-{Guid.NewGuid():N}";

    /// <summary>Encrypts <paramref name="password"/> and signals it into the instance's handoff; returns when it expires.</summary>
    public async Task<DateTimeOffset> DepositAsync(DurableTaskClient client, Guid instanceId, Secret password, CancellationToken ct)
    {
        var deposit = Seal(instanceId, password);
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
    public async Task<ClaimOutcome> ClaimAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
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
            var result = await RunClaimAsync(client, instanceId, ct);
            switch (result.Status)
            {
                case ClaimStatus.Claimed when result.Ciphertext is not null:
                    var password = new Secret(secrets.Unprotect(result.Ciphertext, Purpose(instanceId)));
                    LogClaimed(instanceId);
                    var (pool, tenant) = live;
                    return new ClaimOutcome.Claimed(instanceId, pool.Host, pool.Port, tenant.DbName, tenant.DbUser, password);
                case ClaimStatus.AlreadyClaimed:
                    LogRefused(instanceId, result.Status);
                    return new ClaimOutcome.AlreadyClaimed();
                case ClaimStatus.Expired:
                    LogRefused(instanceId, result.Status);
                    return new ClaimOutcome.Expired();
            }

            var now = time.GetUtcNow();
            if (now - madeAt >= Options.Ttl || now >= waitUntil)
            {
                LogRefused(instanceId, ClaimStatus.Unknown);
                return new ClaimOutcome.Unknown();
            }

            LogWaitingForDeposit(instanceId);
            await Task.Delay(Options.ClaimRetryInterval, time, ct);
        }
    }

    /// <summary>A new password for a ready tenant, in force on its server, and deposited again for a claim.</summary>
    public async Task<RotateOutcome> RotateAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
    {
        switch (await ChangePasswordAsync(instanceId, ct))
        {
            case PasswordChange.Changed changed:
                var deposit = Seal(instanceId, changed.Password);
                await SignalDepositAsync(client, instanceId, deposit, ct);
                // The entity still holds the claimed tombstone of the previous password: a claim that overtook this
                // signal would answer "already claimed" and strand the new password, so wait until it is applied.
                await WaitUntilAppliedAsync(client, instanceId, deposit, ct);
                return new RotateOutcome.Rotated(deposit.ExpiresAt, changed.Password);
            case PasswordChange.NotReady notReady:
                return new RotateOutcome.NotReady(notReady.Status);
            default:
                return new RotateOutcome.NotFound();
        }
    }

    /// <summary>The database half of <see cref="RotateAsync"/>: a new password set as a SCRAM verifier (never clear text).</summary>
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

        var password = PasswordGenerator.Generate(allocationOptions.Value.PasswordLength);
        await ddl.SetPasswordAsync(live.Pool, allocation.NamesFor(instanceId), ScramVerifier.Compute(password), ct);
        LogRotated(instanceId, live.Pool.Name);
        return new PasswordChange.Changed(live, new Secret(password));
    }

    private async Task SignalDepositAsync(DurableTaskClient client, Guid instanceId, HandoffDeposit deposit, CancellationToken ct)
    {
        await client.Entities.SignalEntityAsync(CredentialHandoff.IdFor(instanceId), nameof(CredentialHandoff.Deposit), deposit, cancellation: ct);
        LogDeposited(instanceId, deposit.ExpiresAt);
    }

    private async Task WaitUntilAppliedAsync(DurableTaskClient client, Guid instanceId, HandoffDeposit deposit, CancellationToken ct)
    {
        var waitUntil = time.GetUtcNow() + Options.ClaimWait;
        while (true)
        {
            var entity = await client.Entities.GetEntityAsync<HandoffState>(CredentialHandoff.IdFor(instanceId), includeState: true, ct);
            if (entity is { IncludesState: true, State: { } state } && state.DepositedAt >= deposit.DepositedAt)
            {
                return;
            }

            if (time.GetUtcNow() >= waitUntil)
            {
                LogDepositNotApplied(instanceId, Options.ClaimWait);
                return;
            }

            await Task.Delay(Options.ClaimRetryInterval, time, ct);
        }
    }

    private async Task<ClaimResult> RunClaimAsync(DurableTaskClient client, Guid instanceId, CancellationToken ct)
    {
        var id = ClaimInstanceId(instanceId);
        await client.ScheduleNewOrchestrationInstanceAsync(nameof(ClaimCredentials), new ClaimCredentialsInput(instanceId.ToString("D")),
            new StartOrchestrationOptions(id), ct);
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

        try
        {
            return run.RuntimeStatus == OrchestrationRuntimeStatus.Completed && run.ReadOutputAs<ClaimResult>() is { } result
                ? result
                : throw new InvalidOperationException($"The claim run {id} ended {run.RuntimeStatus}: {run.FailureDetails?.ErrorMessage}");
        }
        finally
        {
            // Its output (ciphertext) and history have served their purpose.
            await client.PurgeInstanceAsync(id, CancellationToken.None);
        }
    }

    [LoggerMessage(LogLevel.Information, "Deposited the credential handoff of instance {InstanceId}, expiring at {ExpiresAt}")]
    private partial void LogDeposited(Guid instanceId, DateTimeOffset expiresAt);

    [LoggerMessage(LogLevel.Information, "Credentials of instance {InstanceId} claimed")]
    private partial void LogClaimed(Guid instanceId);

    [LoggerMessage(LogLevel.Information, "Claim for instance {InstanceId} refused: {Status}")]
    private partial void LogRefused(Guid instanceId, ClaimStatus status);

    [LoggerMessage(LogLevel.Debug, "Claim for instance {InstanceId} found no deposit yet; waiting for it")]
    private partial void LogWaitingForDeposit(Guid instanceId);

    [LoggerMessage(LogLevel.Warning, "The rotated password of instance {InstanceId} was not yet in its handoff after {Wait}; a claim may have to be retried")]
    private partial void LogDepositNotApplied(Guid instanceId, TimeSpan wait);

    [LoggerMessage(LogLevel.Information, "Rotated the password of instance {InstanceId} on pool {Pool}")]
    private partial void LogRotated(Guid instanceId, string pool);
}
