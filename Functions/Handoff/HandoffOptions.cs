using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Handoff;

/// <summary>The one-time credential handoff (section <c>Handoff</c>).</summary>
public sealed class HandoffOptions
{
    public const string Section = "Handoff";

    /// <summary>How long a deposited password waits to be claimed.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a claim waits for a deposit that was signalled but not yet applied (an allocation already ready).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan ClaimWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a waiting claim asks the entity again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:10")]
    public TimeSpan ClaimRetryInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long one <c>ClaimCredentials</c> run may take before the HTTP claim gives up on it.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan ClaimTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the login in use keeps working after a rotation whose new password nobody claims; then the new login
    /// becomes the one in use and the old one is refused (the sweep). A claim ends it at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan RotationGrace { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a rotation may stay in flight before another may take over (the first one crashed).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan RotationTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How long after an allocation turned ready a claim that finds no deposit answers "not yet" (503) before it answers
    /// "no credentials: rotate" (404). A deposit can lag behind a restart (queue visibility, partition leases: minutes), but
    /// one lost with its host (killed between ready and the signal) never comes; without this bound the claim said "not
    /// yet" for the whole <see cref="Ttl"/>.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan DepositGrace { get; set; } = TimeSpan.FromMinutes(6);

    /// <summary>How long an allocation or a rotation waits for the task hub (the deposit signalled) before it answers 503.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan StorageTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a claim with an <c>Idempotency-Key</c> answers the same password again to a retry with that key.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ClaimReplayWindow { get; set; } = TimeSpan.FromMinutes(5);
}
