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

    /// <summary>The role owning an adopted database (issue 14 item 7); null for a tenant the allocator made (names from its instance id).</summary>
    public string? OwnerRole { get; init; }

    /// <summary>The first login of an adopted tenant (its second is this name + <c>_b</c>); null for a tenant the allocator made.</summary>
    public string? LoginRole { get; init; }

    /// <summary>When an existing database became this tenant; null for a tenant the allocator made. An adopted tenant has no first password to hand off.</summary>
    public DateTimeOffset? AdoptedAt { get; init; }

    /// <summary>Where the tenant stands against its tier's size limit (<see cref="QuotaStates"/>); <c>ok</c> where the row was read without it.</summary>
    public string QuotaState { get; init; } = QuotaStates.Ok;

    /// <summary>Where the allocator POSTs a signed notice after a move or a restore (https, or loopback in development).</summary>
    public string? CallbackUrl { get; init; }
}
