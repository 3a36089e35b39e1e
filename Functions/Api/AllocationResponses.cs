using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using TenantDb.Functions.Allocation;

namespace TenantDb.Functions.Api;

/// <summary>The Durable HTTP management URLs of an orchestration, as the Functions host serves them.</summary>
public sealed record StatusUrls(string Id, string StatusQueryGetUri, string SendEventPostUri, string TerminatePostUri, string PurgeHistoryDeleteUri)
{
    /// <summary>
    /// Built from the request's own base address; the caller's key is carried in <c>code</c>, so whoever may start the
    /// work may follow it.
    /// </summary>
    public static StatusUrls For(HttpRequest request, string instanceId)
    {
        var root = $"{BaseUrl(request)}/runtime/webhooks/durabletask/instances/{Uri.EscapeDataString(instanceId)}";
        var key = request.Headers["x-functions-key"].FirstOrDefault() ?? request.Query["code"].FirstOrDefault();
        var code = string.IsNullOrEmpty(key) ? "" : $"?code={Uri.EscapeDataString(key)}";
        var and = code.Length == 0 ? "?" : "&";
        return new StatusUrls(instanceId, root + code, $"{root}/raiseEvent/{{eventName}}{code}", $"{root}/terminate{code}{and}reason={{text}}", root + code);
    }

    public static string BaseUrl(HttpRequest request) => $"{request.Scheme}://{request.Host}{request.PathBase}";
}

/// <summary>Maps allocation results to the platform's HTTP answers.</summary>
public static class AllocationResponses
{
    public static IActionResult From(AllocateResult result, HttpRequest request, int retryAfterSeconds) => result switch
    {
        AllocateResult.Placed placed => ApiJson.Ok(placed.View),
        AllocateResult.Pending pending => Accepted(request, retryAfterSeconds, new
        {
            status = "provisioning",
            step = pending.Step,
            retry_after = retryAfterSeconds,
            orchestration = StatusUrls.For(request, pending.OrchestrationId),
        }, StatusUrls.For(request, pending.OrchestrationId).StatusQueryGetUri),
        AllocateResult.InProgress progress => Accepted(request, retryAfterSeconds, new
        {
            status = "creating",
            instance_id = progress.Tenant.InstanceId,
            retry_after = retryAfterSeconds,
        }, null),
        AllocateResult.Refused { Outcome: AllocationOutcome.Unavailable } refused => WithRetryAfter(request, retryAfterSeconds, Problem(refused.Outcome)),
        AllocateResult.Refused refused => Problem(refused.Outcome),
        _ => throw new InvalidOperationException($"Unmapped allocation result {result.GetType().Name}."),
    };

    public static IActionResult Problem(AllocationOutcome outcome) => outcome switch
    {
        AllocationOutcome.Invalid invalid => Problems.Validation(invalid.Errors),
        AllocationOutcome.Conflict conflict => Problems.Conflict(conflict.Type, conflict.Detail),
        AllocationOutcome.Failed failed => Problems.Unavailable("allocation-failed", failed.Detail),
        AllocationOutcome.NoCapacity => Problems.Unavailable("no-capacity", "No pool has room for this tenant."),
        AllocationOutcome.Unavailable unavailable => Problems.Unavailable(unavailable.Type, unavailable.Detail),
        _ => throw new InvalidOperationException($"Unmapped allocation outcome {outcome.GetType().Name}."),
    };

    private static IActionResult WithRetryAfter(HttpRequest request, int retryAfterSeconds, IActionResult result)
    {
        request.HttpContext.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return result;
    }

    private static JsonResult Accepted(HttpRequest request, int retryAfterSeconds, object body, string? location)
    {
        request.HttpContext.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (location is not null)
        {
            request.HttpContext.Response.Headers.Location = location;
        }

        return ApiJson.Status(StatusCodes.Status202Accepted, body);
    }
}
