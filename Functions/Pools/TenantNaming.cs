using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Pools;

/// <summary>
/// A tenant's names from its catalog row with the configured <c>Allocation:DatabasePrefix</c>, for areas below the allocations
/// (the composition root makes it from their options).
/// </summary>
public sealed class TenantNaming(string databasePrefix)
{
    public TenantNames Of(TenantDatabase tenant) => TenantNames.Of(tenant, databasePrefix);
}
