namespace TenantDb.Functions.Domain;

/// <summary>An allocate request whose every field was checked; only these values ever reach SQL or DDL.</summary>
public sealed record ValidAllocationRequest(Guid InstanceId, Guid CustomerId, string PlanTier, PlanTier Tier);
