using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Callbacks;

/// <summary>The <c>Callbacks</c> section: how tenants' callback URLs are called after a move or a restore (issue 14 item 6).</summary>
public sealed class CallbackOptions
{
    public const string Section = "Callbacks";

    /// <summary>
    /// Base64 of the per-deployment HMAC-SHA256 key that signs every callback body (<c>X-TenantDb-Signature</c>). Unset: no callback
    /// is sent (a warning says so once).
    /// </summary>
    public string? Key { get; set; }

    /// <summary>How long one POST may take.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>POSTs per notice at most (the first and its retries).</summary>
    [Range(1, 10)]
    public int Attempts { get; set; } = 3;

    /// <summary>The wait before the first retry; each later one waits twice the one before.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan Backoff { get; set; } = TimeSpan.FromSeconds(1);
}
