using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Backups;

/// <summary>Tenant backups (DESIGN.md §10): where the dumps go and how long a backup is meant to be kept.</summary>
public sealed class BackupsOptions
{
    public const string Section = "Backups";

    /// <summary>The blob container of the dumps, in the storage account of <c>AzureWebJobsStorage</c>; made when missing.</summary>
    [RegularExpression("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")]
    public string Container { get; set; } = "tenantdb-backups";

    /// <summary>A completed backup's <c>expires_at</c> is its finish plus this (recorded; no schedule deletes yet).</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);
}
