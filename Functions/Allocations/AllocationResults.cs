using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

/// <summary>What a purge run did: databases dropped, and purges that failed (recorded, retried next time).</summary>
public sealed record PurgeResult(int Purged, int Failed);

/// <summary>What a leftover cleanup did: failed allocations settled or dropped, and those that failed (retried next time).</summary>
public sealed record CleanResult(int Cleaned, int Failed);

public abstract record ReleaseOutcome
{
    public sealed record Released(TenantDatabase Tenant, DateTimeOffset? PurgeAfter) : ReleaseOutcome;
    public sealed record NotFound : ReleaseOutcome;
    public sealed record InProgress : ReleaseOutcome;
}

/// <summary>A pool failed in a way retrying elsewhere will not fix; the reservation was compensated.</summary>
public sealed class AllocationFailedException(string pool, Exception inner)
    : Exception($"Creating the tenant database on pool '{pool}' failed; the reservation was rolled back.", inner);

/// <summary>
/// Fills a new tenant's database on its pool after its objects are made and before its row turns ready (see
/// <see cref="AllocationService.AllocateAsync(ValidAllocationRequest, CancellationToken, TenantFill?)"/>).
/// </summary>
public delegate Task TenantFill(Allocation reservation, Pools.TenantNames names, CancellationToken ct);
