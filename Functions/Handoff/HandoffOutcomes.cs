using TenantDb.Functions.Domain;
using TenantDb.Functions.Secrets;

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
