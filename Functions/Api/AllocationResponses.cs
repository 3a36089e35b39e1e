using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using TenantDb.Functions.Allocations;

namespace TenantDb.Functions.Api;

/// <summary>The Durable HTTP management URLs of an orchestration, as the Functions host serves them.</summary>
public sealed record StatusUrls(string Id, string StatusQueryGetUri, string SendEventPostUri, string TerminatePostUri, string PurgeHistoryDeleteUri)
{
    /// <summary>
    /// From the Durable client's management payload: the host's own base URL and its system key (what the host requires on
    /// <c>/runtime/webhooks/durabletask</c>), never the request's Host header nor the caller's key.
    /// </summary>
    public static StatusUrls For(DurableTaskClient client, string instanceId)
    {
        var payload = client.CreateHttpManagementPayload(instanceId);
        return new StatusUrls(instanceId, Url(payload.StatusQueryGetUri), Url(payload.SendEventPostUri), Url(payload.TerminatePostUri), Url(payload.PurgeHistoryDeleteUri));

        static string Url(string? url) => url ?? throw new InvalidOperationException("The Durable client made no management URL.");
    }

    /// <summary>A 202 for a started run, as allocate's: its status URLs (the host's system key), Location and Retry-After.</summary>
    public static JsonResult Accepted(HttpRequest request, DurableTaskClient client, string orchestrationId, int retryAfterSeconds, object body)
    {
        request.HttpContext.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        request.HttpContext.Response.Headers.Location = For(client, orchestrationId).StatusQueryGetUri;
        return ApiJson.Status(StatusCodes.Status202Accepted, body);
    }
}

/// <summary>Maps allocation results to the platform's HTTP answers.</summary>
public static class AllocationResponses
{
    public static IActionResult From(AllocateResult result, HttpRequest request, DurableTaskClient client, int retryAfterSeconds) => result switch
    {
        AllocateResult.Placed placed => placed.View.DbPassword is null ? ApiJson.Ok(placed.View) : CredentialsFunctions.NoStore(request, placed.View),
        AllocateResult.Pending pending => Accepted(request, retryAfterSeconds, new
        {
            status = "provisioning",
            step = pending.Step,
            retry_after = retryAfterSeconds,
            orchestration = StatusUrls.For(client, pending.OrchestrationId),
        }, StatusUrls.For(client, pending.OrchestrationId).StatusQueryGetUri),
        AllocateResult.InProgress progress => Accepted(request, retryAfterSeconds, new
        {
            status = "creating",
            instance_id = progress.Tenant.InstanceId,
            retry_after = retryAfterSeconds,
        }, null),
        AllocateResult.Refused refused => WithRetryAfter(request, Problem(refused.Outcome, retryAfterSeconds)),
        _ => throw new InvalidOperationException($"Unmapped allocation result {result.GetType().Name}."),
    };

    /// <summary>A refusal as problem+json; every 503 carries the configured <c>Retry-After</c>, in its header and body.</summary>
    public static IActionResult Problem(AllocationOutcome outcome, int retryAfterSeconds) => outcome switch
    {
        AllocationOutcome.Invalid invalid => Problems.Validation(invalid.Errors),
        AllocationOutcome.Conflict conflict => Problems.Conflict(conflict.Type, conflict.Detail),
        AllocationOutcome.Failed failed => Problems.Unavailable("allocation-failed", failed.Detail, retryAfterSeconds),
        AllocationOutcome.NoCapacity => Problems.Unavailable("no-capacity", "No pool has room for this tenant.", retryAfterSeconds),
        AllocationOutcome.Unavailable unavailable => Problems.Unavailable(unavailable.Type, unavailable.Detail, retryAfterSeconds),
        _ => throw new InvalidOperationException($"Unmapped allocation outcome {outcome.GetType().Name}."),
    };

    // The header on the response at once (not only when the result executes), for every 503.
    private static IActionResult WithRetryAfter(HttpRequest request, IActionResult result)
    {
        if (result is Problems.RetryAfterResult unavailable)
        {
            request.HttpContext.Response.Headers.RetryAfter = unavailable.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

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
