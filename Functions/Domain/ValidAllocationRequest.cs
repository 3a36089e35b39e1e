namespace TenantDb.Functions.Domain;

/// <summary>An allocate request whose every field was checked; only these values ever reach SQL or DDL.</summary>
/// <param name="CallbackUrl">Where to POST a signed notice after a move or a restore (checked by <see cref="CallbackUrls"/>), or null.</param>
public sealed record ValidAllocationRequest(Guid InstanceId, Guid CustomerId, string PlanTier, PlanTier Tier, string? CallbackUrl = null);
