using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

/// <summary>
/// The final backup a purge needs (DESIGN.md §10, <c>Backups:FinalOnRelease</c>): no released tenant is purged without a
/// completed backup taken after its release. The backups feature implements it; the purge only asks.
/// </summary>
public interface IFinalBackup
{
    /// <summary>
    /// True when the released tenant has a completed backup taken after its release, taking one now (and waiting for it)
    /// when it has none; false when none could be had this time (its backup failed, or one is still running).
    /// </summary>
    Task<FinalBackupCheck> EnsureAsync(Allocation released, CancellationToken ct);

    /// <summary>True when the released tenant has a completed backup taken after its release (or final backups are off).</summary>
    Task<bool> ExistsAsync(TenantDatabase released, CancellationToken ct);
}

/// <summary>Whether a released tenant may be purged as far as its final backup goes, and why not.</summary>
public sealed record FinalBackupCheck(bool Ready, Guid? BackupId, string? Reason)
{
    public static FinalBackupCheck Taken(Guid? backupId) => new(true, backupId, null);
    public static FinalBackupCheck Missing(string reason) => new(false, null, reason);
}
