using System.Text.Json.Serialization;

namespace TenantDb.Functions.Allocations;

/// <summary>
/// The durable run a tenant waits in while no pool has room: its name, instance id, input and output. The allocate use case
/// owns this contract and starts the run by name; <c>Orchestrations/AllocateWhenReady</c> implements it.
/// </summary>
public static class WaitForCapacity
{
    public const string Orchestrator = "AllocateWhenReady";

    /// <summary>What every such run's id starts with (the operators' dashboard lists the runs by it).</summary>
    public const string InstanceIdPrefix = "allocate-";

    /// <summary>One run per instance: its id is derived from the instance id, so two requests join the same run.</summary>
    public static string InstanceIdFor(Guid instanceId) => $"{InstanceIdPrefix}{instanceId:D}";

    /// <summary>The instance id a run's id was derived from; false for any other id.</summary>
    public static bool TryParseInstanceId(string runId, out Guid instanceId)
    {
        instanceId = Guid.Empty;
        return runId.StartsWith(InstanceIdPrefix, StringComparison.Ordinal)
            && Guid.TryParseExact(runId.AsSpan(InstanceIdPrefix.Length), "D", out instanceId);
    }
}

/// <param name="BaseUrl">The app's public base URL (<c>Api:PublicBaseUrl</c>); the claim URL of the result is built from it.</param>
public sealed record AllocateWhenReadyInput(string InstanceId, string CustomerId, string PlanTier, string BaseUrl, TimeSpan PollInterval, TimeSpan Timeout,
    string? CallbackUrl = null);

/// <summary>One try: <c>Done</c> with the allocation (or the error that ends the wait), or not yet.</summary>
public sealed record AllocateAttempt(
    [property: JsonPropertyName("done")] bool Done,
    [property: JsonPropertyName("allocation")] AllocationView? Allocation,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("step")] string Step);
