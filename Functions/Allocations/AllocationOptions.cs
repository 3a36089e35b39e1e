using System.ComponentModel.DataAnnotations;

using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

public sealed class AllocationOptions
{
    public const string Section = "Allocation";

    public PlacementStrategy Strategy { get; set; } = PlacementStrategy.FillFirst;

    /// <summary>Prefix of every tenant database and role name; lower-case letters, digits, underscore.</summary>
    [RegularExpression("^[a-z][a-z0-9_]{0,15}$")]
    public string DatabasePrefix { get; set; } = "odoo_";

    [Range(32, 128)]
    public int PasswordLength { get; set; } = 40;

    /// <summary>
    /// Return <c>db_password</c> in the allocate response (the platform's old shape) instead of only a claim URL: at once when
    /// the call creates the database, else in the first 200 after a 202 (taken once from the handoff the waiting run filled).
    /// </summary>
    public bool InlinePassword { get; set; }

    /// <summary>How long a released tenant database is kept before it is dropped.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan ReleaseRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long a duplicate request waits for a concurrent allocation of the same instance before answering "in progress".</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan DuplicateWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an allocation waits for a new pool before it fails (the <c>AllocateWhenReady</c> orchestration).</summary>
    [Range(typeof(TimeSpan), "00:00:10", "7.00:00:00")]
    public TimeSpan WaitForCapacityTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How often a waiting allocation tries again, on a durable timer.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan WaitPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The <c>retry_after</c> (seconds) a 202 answer suggests.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 10;

    /// <summary>An allocation still <c>creating</c> after this was abandoned (the allocator stopped mid-way); the sweep undoes it.</summary>
    [Range(typeof(TimeSpan), "00:00:30", "1.00:00:00")]
    public TimeSpan StaleCreatingAfter { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Pools tried for one allocation when a pool server fails mid-way.</summary>
    [Range(1, 10)]
    public int MaxPlacementAttempts { get; set; } = 3;
}
