namespace TenantDb.Functions.Domain;

/// <summary>One line of the append-only audit trail (<c>pool_events</c>).</summary>
public sealed record PoolEvent(
    long Id,
    long? DbServerId,
    Guid? InstanceId,
    string Event,
    string? FromStatus,
    string? ToStatus,
    string? Reason,
    string Actor,
    DateTimeOffset At);
