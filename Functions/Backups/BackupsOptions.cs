using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Backups;

/// <summary>Tenant backups (DESIGN.md §10): where the dumps go and how long a backup is meant to be kept.</summary>
public sealed class BackupsOptions
{
    public const string Section = "Backups";

    /// <summary>The blob container of the dumps, in the storage account of <c>AzureWebJobsStorage</c>; made when missing.</summary>
    [RegularExpression("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")]
    public string Container { get; set; } = "tenantdb-backups";

    /// <summary>
    /// A completed backup's <c>expires_at</c> is its finish plus this, unless its tier sets <c>Pools:Tiers:&lt;tier&gt;:BackupRetention</c>;
    /// the daily cleanup deletes expired backups.
    /// </summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A release starts a final backup, and no released tenant is purged without a completed backup taken after its release.</summary>
    public bool FinalOnRelease { get; set; } = true;

    /// <summary>How long a release waits for the task hub to accept its final backup's run; past it the purge takes the backup itself.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:01:00")]
    public TimeSpan FinalStartTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A backup still <c>creating</c> this long after it started is taken as abandoned (its run died): failed, and taken again.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan AbandonedAfter { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Scheduled backups (a tier's <c>BackupEvery</c>) the daily cleanup takes per run at most; the rest wait for the next run.</summary>
    [Range(0, 10_000)]
    public int ScheduleBatch { get; set; } = 50;

    /// <summary>Expired backups the daily cleanup deletes per run at most.</summary>
    [Range(1, 100_000)]
    public int ExpiryBatch { get; set; } = 1000;
}
