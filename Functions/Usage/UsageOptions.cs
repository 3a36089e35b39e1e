using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Usage;

/// <summary>Usage collection (section <c>Usage</c>).</summary>
public sealed class UsageOptions
{
    public const string Section = "Usage";

    /// <summary>How long the hourly rollup is kept; the daily cleanup deletes older hours.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromDays(30);
}
