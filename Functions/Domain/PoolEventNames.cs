namespace TenantDb.Functions.Domain;

/// <summary>The kinds of line in the audit trail (<c>pool_events.event</c>).</summary>
public static class PoolEventNames
{
    public const string PoolCreated = "pool_created";
    public const string StatusChanged = "status_changed";
    public const string HealthChanged = "health_changed";
    public const string CapacityReconciled = "capacity_reconciled";
    public const string PoolFailure = "pool_failure";
    public const string ProvisioningRunLost = "provisioning_run_lost";
    public const string DeprovisionFailed = "deprovision_failed";
    public const string Hardened = "hardened";
    public const string DedicatedReclaimed = "dedicated_reclaimed";
    public const string OrphanServerStopped = "orphan_server_stopped";
    public const string OrphanServerRemoved = "orphan_server_removed";
    public const string AdminPasswordRewrapped = "admin_password_rewrapped";
    public const string TenantStatusChanged = "tenant_status_changed";
    public const string AllocationCompensated = "allocation_compensated";
    public const string LeftoverSettled = "leftover_settled";
    public const string PurgeFailed = "purge_failed";
    public const string LoginRotated = "login_rotated";
    public const string BackupCompleted = "backup_completed";
    public const string BackupFailed = "backup_failed";
    public const string TenantRestored = "tenant_restored";
    public const string RestoreFailed = "restore_failed";
    public const string TenantMoveStarted = "tenant_move_started";
    public const string TenantMovedOut = "tenant_moved_out";
    public const string TenantMovedIn = "tenant_moved_in";
    public const string TenantMoveCompleted = "tenant_move_completed";
    public const string TenantMoveFailed = "tenant_move_failed";
    public const string MovedCopyPurged = "moved_copy_purged";
    public const string BackupExpired = "backup_expired";
    public const string TenantUnreleased = "tenant_unreleased";
    public const string TenantAdopted = "tenant_adopted";
    public const string TierChanged = "tier_changed";
    public const string CallbackFailed = "callback_failed";
    public const string QuotaWarning = "quota_warning";
    public const string QuotaReadOnly = "quota_read_only";
    public const string QuotaLifted = "quota_lifted";
}
