using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace TenantDb.LocalHost.Durable;

/// <summary>
/// Durable Functions' instance management HTTP API at <c>/runtime/webhooks/durabletask/instances/{id}</c>:
/// status (202 while running, 200 when done), terminate, raise event, purge. Master or function key required.
/// </summary>
internal static class ManagementEndpoints
{
    public const string Prefix = "/runtime/webhooks/durabletask/instances";

    public static void MapDurableManagement(this WebApplication app, FunctionKeys keys)
    {
        RouteGroupBuilder group = app.MapGroup(Prefix).AddEndpointFilter(async (context, next) =>
            keys.IsAuthorized(context.HttpContext.Request, AuthLevel.Function)
                ? await next(context)
                : Results.Problem(detail: "A valid function key is required.", statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized"));

        group.MapGet("/{instanceId}", GetStatusAsync);
        group.MapPost("/{instanceId}/terminate", TerminateAsync);
        group.MapPost("/{instanceId}/raiseEvent/{eventName}", RaiseEventAsync);
        group.MapDelete("/{instanceId}", PurgeAsync);
        Log.ManagementMapped(app.Logger, Prefix + "/{instanceId}");
    }

    private static async Task<IResult> GetStatusAsync(string instanceId, HttpRequest request, DurableTaskClient client, CancellationToken cancellationToken)
    {
        bool showInput = !string.Equals(request.Query["showInput"], "false", StringComparison.OrdinalIgnoreCase);
        OrchestrationMetadata? instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
        if (instance is null)
        {
            return Results.NotFound();
        }

        JsonObject body = new()
        {
            ["name"] = instance.Name,
            ["instanceId"] = instance.InstanceId,
            ["runtimeStatus"] = instance.RuntimeStatus.ToString(),
            ["input"] = showInput ? Parse(instance.SerializedInput) : null,
            ["customStatus"] = Parse(instance.SerializedCustomStatus),
            ["output"] = Parse(instance.SerializedOutput),
            ["createdTime"] = instance.CreatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["lastUpdatedTime"] = instance.LastUpdatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        };
        if (instance.FailureDetails is { } failure)
        {
            body["output"] = failure.ErrorMessage;
        }

        bool running = !instance.IsCompleted;
        if (running)
        {
            request.HttpContext.Response.Headers.Location = $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}";
            request.HttpContext.Response.Headers.RetryAfter = "1";
        }

        return Results.Json(body, statusCode: running ? StatusCodes.Status202Accepted : StatusCodes.Status200OK);
    }

    private static async Task<IResult> TerminateAsync(string instanceId, string? reason, DurableTaskClient client, CancellationToken cancellationToken)
    {
        OrchestrationMetadata? instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, cancellationToken);
        if (instance is null)
        {
            return Results.NotFound();
        }

        if (instance.IsCompleted)
        {
            return Results.StatusCode(StatusCodes.Status410Gone);
        }

        await client.TerminateInstanceAsync(instanceId, reason, cancellationToken);
        return Results.Accepted();
    }

    private static async Task<IResult> RaiseEventAsync(string instanceId, string eventName, HttpRequest request, DurableTaskClient client, CancellationToken cancellationToken)
    {
        OrchestrationMetadata? instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, cancellationToken);
        if (instance is null)
        {
            return Results.NotFound();
        }

        if (instance.IsCompleted)
        {
            return Results.StatusCode(StatusCodes.Status410Gone);
        }

        JsonElement? payload;
        try
        {
            payload = request.ContentLength == 0 ? null : await JsonSerializer.DeserializeAsync<JsonElement>(request.Body, cancellationToken: cancellationToken);
        }
        catch (JsonException)
        {
            return Results.Problem(detail: "The event payload is not valid JSON.", statusCode: StatusCodes.Status400BadRequest, title: "Bad Request");
        }

        await client.RaiseEventAsync(instanceId, eventName, payload, cancellationToken);
        return Results.Accepted();
    }

    private static async Task<IResult> PurgeAsync(string instanceId, DurableTaskClient client, CancellationToken cancellationToken)
    {
        PurgeResult result = await client.PurgeInstanceAsync(instanceId, cancellation: cancellationToken);
        return result.PurgedInstanceCount == 0 ? Results.NotFound() : Results.Ok(new { instancesDeleted = result.PurgedInstanceCount });
    }

    private static JsonNode? Parse(string? serialized)
    {
        if (string.IsNullOrEmpty(serialized))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(serialized);
        }
        catch (JsonException)
        {
            return JsonValue.Create(serialized);
        }
    }
}
