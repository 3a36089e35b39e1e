namespace TenantDb.Functions.Domain;

/// <summary>How placement picks among the eligible pools (<c>Allocation:Strategy</c>).</summary>
public enum PlacementStrategy
{
    /// <summary>Pack tenants onto the fullest eligible pool first (fewest servers running).</summary>
    FillFirst,
    /// <summary>Place on the least utilised eligible pool (even load).</summary>
    Spread,
}
