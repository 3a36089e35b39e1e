using System.Text.Json.Serialization;

namespace TenantDb.Functions.Moves;

/// <summary>
/// The durable runs of moves and evacuations: names, instance ids, inputs and outputs. The move use cases own this contract
/// and start the runs by name; <c>Orchestrations/MoveTenant</c> and <c>Orchestrations/EvacuatePool</c> implement it.
/// </summary>
public static class MoveRuns
{
    public const string MoveOrchestrator = "MoveTenant";
    public const string EvacuateOrchestrator = "EvacuatePool";
    public const string TierOrchestrator = "ChangeTierByMove";

    /// <summary>One run per tier change request.</summary>
    public static string TierInstanceIdFor(Guid moveId) => $"tier-{moveId:D}";

    /// <summary>One run per move: its id is derived from the move id.</summary>
    public static string MoveInstanceIdFor(Guid moveId) => $"move-{moveId:D}";

    /// <summary>One evacuation of a pool at a time: its id is derived from the pool id.</summary>
    public static string EvacuateInstanceIdFor(long poolId) => $"evacuate-{poolId}";
}

/// <summary>One move: of <paramref name="InstanceId"/>'s database, to <paramref name="TargetPoolId"/> (null: the pool with the most room).</summary>
/// <param name="AsTier">The tier whose pools may take it (a tier change's new tier); null: the tenant's own.</param>
public sealed record MoveRunInput(Guid MoveId, Guid InstanceId, long? TargetPoolId, string Reason, string? AsTier = null);

/// <summary>A tier change that needs another server: the tenant moved to a pool of <paramref name="ToTier"/>'s kind, then the tier changed.</summary>
public sealed record TierMoveInput(Guid MoveId, Guid InstanceId, string ToTier, TimeSpan PollInterval, TimeSpan Timeout);

/// <summary>One try of a tier change by a move, and its outcome: <c>changed</c>, <c>failed</c>, or <c>waiting</c> (for its dedicated server).</summary>
public sealed record TierMoveStep(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("instance_id")] Guid InstanceId,
    [property: JsonPropertyName("plan_tier")] string ToTier,
    [property: JsonPropertyName("step")] string? Step,
    [property: JsonPropertyName("move")] MoveResult? Move,
    [property: JsonPropertyName("error")] string? Error)
{
    public const string Changed = "changed";
    public const string Failed = "failed";
    public const string Waiting = "waiting";
}

/// <summary>What a move run came to (its orchestration's output): <c>moved</c>, or <c>failed</c> with the tenant on its source.</summary>
public sealed record MoveResult(
    [property: JsonPropertyName("move_id")] Guid MoveId,
    [property: JsonPropertyName("instance_id")] Guid InstanceId,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("source_pool_id")] long? SourcePoolId,
    [property: JsonPropertyName("target_pool_id")] long? TargetPoolId,
    [property: JsonPropertyName("generation")] int? Generation,
    [property: JsonPropertyName("downtime_ms")] double? DowntimeMs,
    [property: JsonPropertyName("tables")] int Tables,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("error_type")] string? ErrorType = null)
{
    public const string Moved = "moved";
    public const string Failed = "failed";
}

/// <summary>An evacuation: the pool drained, then every tenant on it moved, <paramref name="Parallelism"/> at a time.</summary>
public sealed record EvacuateRunInput(long PoolId, int Parallelism);

/// <summary>An evacuation's progress (custom status) and outcome (output).</summary>
public sealed record EvacuationProgress(
    [property: JsonPropertyName("pool_id")] long PoolId,
    [property: JsonPropertyName("total")] int Total,
    [property: JsonPropertyName("moved")] int Moved,
    [property: JsonPropertyName("failed")] int Failed,
    [property: JsonPropertyName("remaining")] int Remaining,
    [property: JsonPropertyName("failures")] IReadOnlyList<MoveResult> Failures);

/// <summary>A move that cannot be done as asked; <see cref="Type"/> is its problem type.</summary>
public sealed class MoveRefusedException(string type, string message) : Exception(message)
{
    public string Type { get; } = type;
}
