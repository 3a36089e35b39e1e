using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>The domain's status words as the catalog's SQL spells them, for interpolation into statement text.</summary>
internal static class Words
{
    public static readonly string Provisioning = PoolStatus.Provisioning.ToSql();
    public static readonly string Initializing = PoolStatus.Initializing.ToSql();
    public static readonly string Active = PoolStatus.Active.ToSql();
    public static readonly string Full = PoolStatus.Full.ToSql();
    public static readonly string Draining = PoolStatus.Draining.ToSql();
    public static readonly string Error = PoolStatus.Error.ToSql();
    public static readonly string Deleting = PoolStatus.Deleting.ToSql();
    public static readonly string Deleted = PoolStatus.Deleted.ToSql();

    public static readonly string Healthy = HealthStatus.Healthy.ToSql();
    public static readonly string Unhealthy = HealthStatus.Unhealthy.ToSql();
    public static readonly string Unknown = HealthStatus.Unknown.ToSql();

    public static readonly string Shared = ServerType.Shared.ToSql();
    public static readonly string Dedicated = ServerType.Dedicated.ToSql();

    public static readonly string Creating = TenantDatabaseStatus.Creating.ToSql();
    public static readonly string Ready = TenantDatabaseStatus.Ready.ToSql();
    public static readonly string Released = TenantDatabaseStatus.Released.ToSql();
    public static readonly string Failed = TenantDatabaseStatus.Failed.ToSql();
    public static readonly string Dropped = TenantDatabaseStatus.Dropped.ToSql();
}
