namespace TenantDb.Functions.Domain;

/// <summary>A tenant database with the pool that holds it: what a reservation makes, and what look-up, release and the
/// handoff read back, in any live status (creating, ready or released).</summary>
public sealed record Allocation(Pool Pool, TenantDatabase Tenant);
