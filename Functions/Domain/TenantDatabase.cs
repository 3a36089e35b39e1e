namespace TenantDb.Functions.Domain;

/// <summary>A tenant's database on a pool (a row of <c>tenant_databases</c>).</summary>
public sealed record TenantDatabase
{
    public required long Id { get; init; }
    public required Guid InstanceId { get; init; }
    public required Guid CustomerId { get; init; }
    public required string PlanTier { get; init; }
    public required long DbServerId { get; init; }
    public required string DbName { get; init; }
    public required string DbUser { get; init; }
    public required TenantDatabaseStatus Status { get; init; }
    public string? LastError { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? ReadyAt { get; init; }
    public DateTimeOffset? ReleasedAt { get; init; }

    /// <summary>When the first password's handoff began (its TTL counts from here): when the row turned ready.</summary>
    public DateTimeOffset HandoffFrom => ReadyAt ?? CreatedAt;

    /// <summary>Where the tenant lives, counted: 1 where it was allocated, one more at every move (DESIGN.md §10).</summary>
    public int Generation { get; init; } = 1;

    /// <summary>The warm stock the database was made from (DESIGN.md §9), or null when it was created for the tenant.</summary>
    public string? StockName { get; init; }
}
