using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;

namespace TenantDb.LocalHost.Durable;

/// <summary>
/// Durable Functions' instance management HTTP API at <c>/runtime/webhooks/durabletask/instances/{id}</c>:
/// status (202 while running, 200 when done), terminate, raise event, purge. The system key or the master key only, as
/// the Functions host requires on its extension webhooks; a function key is refused. Bodies are capped.
/// </summary>
internal static class ManagementEndpoints
{
    public const string Prefix = DurableClientBinding.WebhookPath + "/instances";

    public static void MapDurableManagement(this WebApplication app, FunctionKeys keys, int maxBodyBytes)
    {
        var group = app.MapGroup(Prefix).AddEndpointFilter(async (context, next) =>
            keys.IsAuthorized(context.HttpContext.Request, AuthLevel.System)
                ? await next(context)
                : Results.Problem(detail: "The system key or the master key is required.", statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized"));

        group.MapGet("/{instanceId}", GetStatusAsync);
        group.MapPost("/{instanceId}/terminate", TerminateAsync);
        group.MapPost("/{instanceId}/raiseEvent/{eventName}", (string instanceId, string eventName, HttpRequest request, DurableTaskClient client, CancellationToken cancellationToken) =>
            RaiseEventAsync(instanceId, eventName, request, client, maxBodyBytes, cancellationToken));
        group.MapDelete("/{instanceId}", PurgeAsync);
        Log.ManagementMapped(app.Logger, Prefix + "/{instanceId}");
    }

    private static async Task<IResult> GetStatusAsync(
        string instanceId, HttpRequest request, DurableTaskClient client, DurableClientBinding binding, CancellationToken cancellationToken)
    {
        var showInput = !string.Equals(request.Query["showInput"], "false", StringComparison.OrdinalIgnoreCase);
        var instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
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

        var running = !instance.IsCompleted;
        if (running)
        {
            // The status URL as the durable client hands it out: this host's public base and the system key, never the
            // request's Host header nor the key the caller presented.
            request.HttpContext.Response.Headers.Location = binding.StatusQueryGetUri(instance.InstanceId);
            request.HttpContext.Response.Headers.RetryAfter = "1";
        }

        return Results.Json(body, statusCode: running ? StatusCodes.Status202Accepted : StatusCodes.Status200OK);
    }

    private static async Task<IResult> TerminateAsync(string instanceId, string? reason, DurableTaskClient client, CancellationToken cancellationToken)
    {
        var instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, cancellationToken);
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

    private static async Task<IResult> RaiseEventAsync(
        string instanceId, string eventName, HttpRequest request, DurableTaskClient client, int maxBodyBytes, CancellationToken cancellationToken)
    {
        // Read (at most the cap) before anything else: an oversized body is refused without touching the task hub.
        var body = request.ContentLength > maxBodyBytes ? null : await ReadCappedAsync(request.Body, maxBodyBytes, cancellationToken);
        if (body is null)
        {
            return Results.Problem(
                detail: $"The event payload is larger than {maxBodyBytes} bytes.", statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload Too Large");
        }

        var instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, cancellationToken);
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
            payload = body.Length == 0 ? null : JsonSerializer.Deserialize<JsonElement>(body);
        }
        catch (JsonException)
        {
            return Results.Problem(detail: "The event payload is not valid JSON.", statusCode: StatusCodes.Status400BadRequest, title: "Bad Request");
        }

        await client.RaiseEventAsync(instanceId, eventName, payload, cancellationToken);
        return Results.Accepted();
    }

    /// <summary>The whole body, or null as soon as it passes <paramref name="maxBytes"/> (a chunked body has no length to check first).</summary>
    private static async Task<byte[]?> ReadCappedAsync(Stream body, int maxBytes, CancellationToken cancellationToken)
    {
        using MemoryStream buffer = new();
        var chunk = new byte[Math.Min(16 * 1024, maxBytes + 1)];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static async Task<IResult> PurgeAsync(string instanceId, DurableTaskClient client, CancellationToken cancellationToken)
    {
        var result = await client.PurgeInstanceAsync(instanceId, cancellation: cancellationToken);
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
