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
}
