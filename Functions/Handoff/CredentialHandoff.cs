using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Entities;

namespace TenantDb.Functions.Handoff;

/// <summary>A password to hand off, already encrypted for <c>handoff:{instance_id}</c>. The durable payload of <c>Deposit</c>.</summary>
public sealed record HandoffDeposit(string Ciphertext, DateTimeOffset DepositedAt, DateTimeOffset ExpiresAt);

/// <summary>
/// The entity's state, stored by the task hub in clear: ciphertext and metadata only. After a claim or expiry the
/// ciphertext is gone and the rest stays as a tombstone (so a late claim is told "gone", not "unknown") until
/// <see cref="ForgetAt"/>, when the entity deletes itself.
/// </summary>
public sealed record HandoffState(string? Ciphertext, DateTimeOffset DepositedAt, DateTimeOffset ExpiresAt, DateTimeOffset ForgetAt, DateTimeOffset? ClaimedAt);

public enum ClaimStatus { Claimed, AlreadyClaimed, Expired, Unknown }

/// <summary>What one claim got: the ciphertext only when <see cref="ClaimStatus.Claimed"/>.</summary>
public sealed record ClaimResult(ClaimStatus Status, string? Ciphertext = null, DateTimeOffset? ExpiresAt = null);

/// <summary>What <c>Peek</c> shows: never the ciphertext.</summary>
public sealed record HandoffMetadata(DateTimeOffset DepositedAt, DateTimeOffset ExpiresAt, DateTimeOffset? ClaimedAt, bool Claimable);

/// <summary>
/// The one-time credential handoff of one instance (key: <c>instance_id</c>, lower-case "D" form). Deterministic: the
/// time of every decision comes in as input (orchestrators pass their replay-safe clock; expiry signals carry the
/// instant they were scheduled for).
/// </summary>
public sealed class CredentialHandoff : TaskEntity<HandoffState?>
{
    public static EntityInstanceId IdFor(Guid instanceId) => new(nameof(CredentialHandoff), instanceId.ToString("D"));

    /// <summary>Holds a new password, replacing any earlier one (rotation), and schedules its own expiry.</summary>
    public void Deposit(HandoffDeposit deposit)
    {
        var ttl = deposit.ExpiresAt - deposit.DepositedAt;
        State = new HandoffState(deposit.Ciphertext, deposit.DepositedAt, deposit.ExpiresAt, deposit.ExpiresAt + ttl, ClaimedAt: null);
        ScheduleExpire(deposit.ExpiresAt);
    }

    /// <summary>Takes the ciphertext once: later claims see the tombstone.</summary>
    public ClaimResult Claim(DateTimeOffset now)
    {
        switch (State)
        {
            case null:
                return new ClaimResult(ClaimStatus.Unknown);
            case { ClaimedAt: not null }:
                return new ClaimResult(ClaimStatus.AlreadyClaimed, ExpiresAt: State.ExpiresAt);
            case { Ciphertext: null }:
                return new ClaimResult(ClaimStatus.Expired, ExpiresAt: State.ExpiresAt);
        }

        if (now >= State.ExpiresAt)
        {
            State = State with { Ciphertext = null };
            return new ClaimResult(ClaimStatus.Expired, ExpiresAt: State.ExpiresAt);
        }

        var claim = new ClaimResult(ClaimStatus.Claimed, State.Ciphertext, State.ExpiresAt);
        State = State with { Ciphertext = null, ClaimedAt = now };
        return claim;
    }

    public HandoffMetadata? Peek() =>
        State is null ? null : new HandoffMetadata(State.DepositedAt, State.ExpiresAt, State.ClaimedAt, State.Ciphertext is not null);

    /// <summary>
    /// The scheduled self-signal: at expiry the ciphertext goes (a tombstone stays), at <see cref="HandoffState.ForgetAt"/>
    /// the entity is deleted. A signal scheduled for a deposit that was replaced since finds a later expiry and does nothing.
    /// </summary>
    public void Expire(DateTimeOffset now)
    {
        if (State is null || now < State.ExpiresAt)
        {
            return;
        }

        if (now >= State.ForgetAt)
        {
            State = null;
            return;
        }

        State = State with { Ciphertext = null };
        ScheduleExpire(State.ForgetAt);
    }

    protected override HandoffState? InitializeState(TaskEntityOperation entityOperation) => null;

    private void ScheduleExpire(DateTimeOffset at) =>
        Context.SignalEntity(Context.Id, nameof(Expire), at, new SignalEntityOptions { SignalTime = at });

    [Function(nameof(CredentialHandoff))]
    public static Task Dispatch([EntityTrigger] TaskEntityDispatcher dispatcher) => dispatcher.DispatchAsync<CredentialHandoff>();
}
