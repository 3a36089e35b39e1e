using TenantDb.Functions.Catalog;

namespace TenantDb.Functions.Allocation;

/// <summary>Where a tenant's database lives, in the platform's contract (never the password unless inline mode asks for it).</summary>
public sealed record AllocationView(
    string Status,
    Guid InstanceId,
    Guid CustomerId,
    string PlanTier,
    string DbHost,
    int DbPort,
    string DbName,
    string DbUser,
    string PoolName,
    ServerType ServerType,
    TenantDatabaseStatus DatabaseStatus,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ReadyAt,
    CredentialsView? Credentials = null,
    string? DbPassword = null)
{
    public static AllocationView Of(Pool pool, TenantDatabase tenant, CredentialsView? credentials = null, string? password = null) =>
        new(tenant.Status == TenantDatabaseStatus.Ready ? "allocated" : tenant.Status.ToSql(), tenant.InstanceId, tenant.CustomerId, tenant.PlanTier,
            pool.Host, pool.Port, tenant.DbName, tenant.DbUser, pool.Name, pool.ServerType, tenant.Status, tenant.CreatedAt, tenant.ReadyAt,
            credentials, password);
}

/// <summary>Where to claim the password once, and until when.</summary>
public sealed record CredentialsView(string ClaimUrl, DateTimeOffset ExpiresAt);
