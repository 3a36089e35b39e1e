using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Entities;

namespace TenantDb.Functions.Handoff;

/// <summary>A password to hand off, already encrypted for <c>handoff:{instance_id}</c>. The durable payload of <c>Deposit</c>.</summary>
/// <param name="Login">The login role the password belongs to (null: the tenant's first login).</param>
/// <param name="RotationId">The catalog's rotation that made it (null: the allocation's password); a handoff never goes back to an older rotation.</param>
public sealed record HandoffDeposit(string Ciphertext, DateTimeOffset DepositedAt, DateTimeOffset ExpiresAt, string? Login = null, long? RotationId = null);

/// <summary>A claim that may be retried: the same <paramref name="KeyHash"/> within <paramref name="Window"/> of the claim gets the same answer.</summary>
public sealed record IdempotentClaim(DateTimeOffset Now, string KeyHash, TimeSpan Window);

/// <summary>What a keyed claim took, kept (ciphertext only) so a retry with the same key gets the same answer until <see cref="Until"/>.</summary>
public sealed record HandoffReplay(string KeyHash, string Ciphertext, DateTimeOffset Until);

/// <summary>
/// The entity's state, stored by the task hub in clear: ciphertext and metadata only. After a claim or expiry the
/// ciphertext is gone and the rest stays as a tombstone (so a late claim is told "gone", not "unknown") until
/// <see cref="ForgetAt"/>, when the entity deletes itself.
/// </summary>
public sealed record HandoffState(string? Ciphertext, DateTimeOffset DepositedAt, DateTimeOffset ExpiresAt, DateTimeOffset ForgetAt, DateTimeOffset? ClaimedAt,
    string? Login = null, long? RotationId = null, HandoffReplay? Replay = null);

public enum ClaimStatus { Claimed, AlreadyClaimed, Expired, Unknown }

/// <summary>What one claim got: the ciphertext only when <see cref="ClaimStatus.Claimed"/>.</summary>
public sealed record ClaimResult(ClaimStatus Status, string? Ciphertext = null, DateTimeOffset? ExpiresAt = null, string? Login = null,
    long? RotationId = null, bool Replayed = false);

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

    /// <summary>
    /// Holds a new password, replacing any earlier one (rotation), and schedules its own expiry. A rotation's deposit that
    /// arrives after a later rotation's (signals are not ordered), or the allocation's own made before a rotation's and
    /// arriving after it, is ignored: its password may be no longer in force.
    /// </summary>
    public void Deposit(HandoffDeposit deposit)
    {
        // The newest password wins: an older rotation's deposit, or the allocation's own (no rotation id) made before the
        // rotation's and arriving late (a signal queued behind a restart), never replaces a rotation's.
        if (State?.RotationId is { } held
            && (deposit.RotationId is { } incoming ? incoming < held : deposit.DepositedAt < State.DepositedAt))
        {
            return;
        }

        // The same allocation's first password again (both deposits carry the row's ready_at): a claim re-deposited the catalog's
        // copy and the original signal came late, or the other way round. The handoff holds it already, pending or claimed.
        if (deposit.RotationId is null && State is { RotationId: null } && State.DepositedAt == deposit.DepositedAt)
        {
            return;
        }

        var ttl = deposit.ExpiresAt - deposit.DepositedAt;
        State = new HandoffState(deposit.Ciphertext, deposit.DepositedAt, deposit.ExpiresAt, deposit.ExpiresAt + ttl, ClaimedAt: null,
            deposit.Login, deposit.RotationId);
        ScheduleExpire(deposit.ExpiresAt);
    }

    /// <summary>
    /// <see cref="Claim"/> for a caller that may retry (an answer lost on the wire): the same key within the window gets the
    /// same ciphertext again; any other claim after it sees the tombstone.
    /// </summary>
    public ClaimResult ClaimIdempotent(IdempotentClaim claim)
    {
        if (State is { Replay: { } replay } && replay.KeyHash == claim.KeyHash && claim.Now < replay.Until)
        {
            return new ClaimResult(ClaimStatus.Claimed, replay.Ciphertext, State.ExpiresAt, State.Login, State.RotationId, Replayed: true);
        }

        var result = Claim(claim.Now);
        if (result is { Status: ClaimStatus.Claimed, Ciphertext: { } ciphertext } && State is not null)
        {
            var until = claim.Now + claim.Window;
            State = State with { Replay = new HandoffReplay(claim.KeyHash, ciphertext, until) };
            ScheduleExpire(until);
        }

        return result;
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

        var claim = new ClaimResult(ClaimStatus.Claimed, State.Ciphertext, State.ExpiresAt, State.Login, State.RotationId);
        State = State with { Ciphertext = null, ClaimedAt = now };
        return claim;
    }

    public HandoffMetadata? Peek() =>
        State is null ? null : new HandoffMetadata(State.DepositedAt, State.ExpiresAt, State.ClaimedAt, State.Ciphertext is not null);

    /// <summary>
    /// The scheduled self-signal: a keyed claim's replay ends at its window, at expiry the ciphertext goes (a tombstone
    /// stays), at <see cref="HandoffState.ForgetAt"/> the entity is deleted. A signal scheduled for a deposit that was replaced since finds a later expiry and does nothing.
    /// </summary>
    public void Expire(DateTimeOffset now)
    {
        if (State is { Replay: { } replay } && now >= replay.Until)
        {
            State = State with { Replay = null };
        }

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
