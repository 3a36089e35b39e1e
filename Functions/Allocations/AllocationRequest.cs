using System.Text.Json.Serialization;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Allocations;

/// <summary>The allocate body as the platform's instance-service sends it (snake_case JSON). Nothing is trusted yet.</summary>
public sealed record AllocationRequest(
    [property: JsonPropertyName("instance_id")] string? InstanceId,
    [property: JsonPropertyName("customer_id")] string? CustomerId,
    [property: JsonPropertyName("plan_tier")] string? PlanTier,
    [property: JsonPropertyName("callback_url")] string? CallbackUrl = null);

public static class AllocationValidator
{
    /// <summary>Checks the request; <paramref name="errors"/> names each bad field (the key is the JSON name).</summary>
    public static bool TryValidate(AllocationRequest? request, PoolsOptions pools, out ValidAllocationRequest valid, out Dictionary<string, string[]> errors) =>
        TryValidate(request, pools, allowLoopbackCallbacks: false, out valid, out errors);

    /// <inheritdoc cref="TryValidate(AllocationRequest?, PoolsOptions, out ValidAllocationRequest, out Dictionary{string, string[]})"/>
    /// <param name="allowLoopbackCallbacks">Whether a <c>callback_url</c> may be http to a loopback host (<c>Api:AllowLoopbackCallbacks</c>).</param>
    public static bool TryValidate(AllocationRequest? request, PoolsOptions pools, bool allowLoopbackCallbacks, out ValidAllocationRequest valid,
        out Dictionary<string, string[]> errors)
    {
        errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        valid = null!;
        if (request is null)
        {
            errors["body"] = ["A JSON body with instance_id, customer_id and plan_tier is required."];
            return false;
        }

        var instance = ParseId(request.InstanceId, "instance_id", errors);
        var customer = ParseId(request.CustomerId, "customer_id", errors);
        if (!pools.TryGetTier(request.PlanTier, out var tier))
        {
            errors["plan_tier"] = [$"plan_tier must be one of: {string.Join(", ", pools.Tiers.Keys.Order(StringComparer.Ordinal))}."];
        }

        if (request.CallbackUrl is { } callback && CallbackUrls.Problem(callback, allowLoopbackCallbacks) is { } callbackProblem)
        {
            errors["callback_url"] = [callbackProblem];
        }

        if (errors.Count > 0)
        {
            return false;
        }

        valid = new ValidAllocationRequest(instance, customer, request.PlanTier!, tier, request.CallbackUrl);
        return true;
    }

    /// <summary>A UUID in its canonical 36-character form; anything else (SQL, unicode, null bytes, huge strings) is refused.</summary>
    public static bool TryParseId(string? value, out Guid id)
    {
        id = Guid.Empty;
        return value is { Length: 36 } && Guid.TryParseExact(value, "D", out id) && id != Guid.Empty;
    }

    private static Guid ParseId(string? value, string field, Dictionary<string, string[]> errors)
    {
        if (TryParseId(value, out var id))
        {
            return id;
        }

        errors[field] = [string.IsNullOrEmpty(value) ? $"{field} is required." : $"{field} must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."];
        return Guid.Empty;
    }
}
