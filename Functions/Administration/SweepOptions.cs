using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Administration;

/// <summary>
/// The health sweep and the daily cleanup (section <c>Sweep</c>).
/// </summary>
/// <remarks>
/// The two schedules are read twice. The timer triggers name them as app-setting expressions
/// (<see cref="ScheduleExpression"/>, <see cref="CleanupScheduleExpression"/>): the Functions host resolves <c>%name%</c>
/// through its <c>INameResolver</c>, which looks the name up in the host's <c>IConfiguration</c>, so the nested key
/// <c>Sweep:Schedule</c> is what it asks for. App settings and environment variables cannot carry ':' on Linux plans,
/// so set them as <c>Sweep__Schedule</c> and <c>Sweep__CleanupSchedule</c>: the environment provider maps <c>__</c> to
/// <c>:</c> for the host (and for LocalHost) just as it does for this worker's options. The host does not know the
/// defaults below: an unset setting leaves the timer unresolvable, so both settings must be present in the app settings
/// (local.settings.json, the deployment). The worker binds the same keys here only to validate them at start-up.
/// </remarks>
public sealed class SweepOptions
{
    public const string Section = "Sweep";

    /// <summary>The health sweep's timer schedule, as an app-setting expression.</summary>
    public const string ScheduleExpression = "%Sweep:Schedule%";

    /// <summary>The daily cleanup's timer schedule, as an app-setting expression.</summary>
    public const string CleanupScheduleExpression = "%Sweep:CleanupSchedule%";

    private const string SixFieldCron = @"^\s*\S+(\s+\S+){5}\s*$";

    /// <summary>Six-field CRON (seconds first) of the health sweep.</summary>
    [Required, RegularExpression(SixFieldCron, ErrorMessage = "Sweep:Schedule must be a six-field CRON expression.")]
    public string Schedule { get; set; } = "0 */5 * * * *";

    /// <summary>Six-field CRON (seconds first) of the daily cleanup.</summary>
    [Required, RegularExpression(SixFieldCron, ErrorMessage = "Sweep:CleanupSchedule must be a six-field CRON expression.")]
    public string CleanupSchedule { get; set; } = "0 0 3 * * *";

    /// <summary>Pools probed at the same time by one sweep.</summary>
    [Range(1, 64)]
    public int MaxParallelism { get; set; } = 4;

    /// <summary>Connect and query timeout of one health probe.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:02:00")]
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A pool still provisioning after this long is abandoned: the cleanup deprovisions it.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan ProvisioningStuckAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>A pool in <c>error</c> this long (with no tenants) is deprovisioned by the cleanup.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan ErrorPoolRetention { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Completed, failed and terminated orchestrations older than this are purged from the task hub.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>The daily cleanup's own settings (section <c>Cleanup</c>).</summary>
public sealed class CleanupOptions
{
    public const string Section = "Cleanup";

    /// <summary>How long a server of this catalog that no pool knows stays stopped (data kept) before it is deleted.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan OrphanGrace { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long the status history (<c>pool_events</c>) keeps an event; the cleanup purges older ones.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan EventRetention { get; set; } = TimeSpan.FromDays(400);
}
