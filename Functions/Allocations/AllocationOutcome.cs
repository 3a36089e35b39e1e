using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

/// <summary>What an allocate call came to. Each case maps to one HTTP answer.</summary>
public abstract record AllocationOutcome
{
    /// <summary>The tenant's database is ready. <see cref="Password"/> is set only when this call created it.</summary>
    public sealed record Allocated(Pool Pool, TenantDatabase Tenant, Secret? Password) : AllocationOutcome;

    /// <summary>Another call is still creating this instance's database.</summary>
    public sealed record InProgress(TenantDatabase Tenant) : AllocationOutcome;

    /// <summary>The instance exists with another customer or tier, or was released.</summary>
    public sealed record Conflict(string Type, string Detail) : AllocationOutcome;

    /// <summary>No eligible pool has room (for a dedicated tier: the instance has no dedicated server yet). Nothing was created.</summary>
    public sealed record NoCapacity(bool Dedicated) : AllocationOutcome;

    /// <summary>The request was invalid; nothing was touched.</summary>
    public sealed record Invalid(IReadOnlyDictionary<string, string[]> Errors) : AllocationOutcome;

    /// <summary>Every attempt failed on the pool servers; everything was compensated.</summary>
    public sealed record Failed(string Detail) : AllocationOutcome;

    /// <summary>Capacity is needed but no new server may be made now (a provisioning limit); nothing was created.</summary>
    public sealed record Unavailable(string Type, string Detail) : AllocationOutcome;
}
