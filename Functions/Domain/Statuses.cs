namespace TenantDb.Functions.Domain;

/// <summary>Lifecycle of a pool server: provisioning → initializing → active ⇄ full, plus draining, error, deleting, deleted.</summary>
public enum PoolStatus { Provisioning, Initializing, Active, Full, Draining, Error, Deleting, Deleted }

public enum HealthStatus { Healthy, Degraded, Unhealthy, Unknown }

public enum ServerType { Shared, Dedicated, Platform }

public enum TenantDatabaseStatus { Creating, Ready, Released, Failed, Dropped }

/// <summary>Tenant statuses whose database exists or is being made: they hold a slot and a unique instance id.</summary>
public static class LiveStatuses
{
    public static readonly IReadOnlyList<TenantDatabaseStatus> All =
        [TenantDatabaseStatus.Creating, TenantDatabaseStatus.Ready, TenantDatabaseStatus.Released];

    /// <summary>The set as SQL, for <c>status IN {Sql}</c> (the partial unique index of migration 0001 uses the same set).</summary>
    public const string Sql = "('creating', 'ready', 'released')";
}
