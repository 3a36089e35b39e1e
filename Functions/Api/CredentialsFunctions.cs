using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Api;

/// <summary>The one-time credential handoff: claim the password once; rotate it (a new password, handed off again).</summary>
public sealed partial class CredentialsFunctions(HandoffService handoff, IOptions<AllocationOptions> options, IOptions<ApiOptions> api)
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    [Function(nameof(ClaimDatabaseCredentials))]
    public Task<IActionResult> ClaimDatabaseCredentials(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/credentials/{instance_id}/claim")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            if (!TryReadIdempotencyKey(req, out var key))
            {
                return Problems.BadRequest("invalid-idempotency-key",
                    "Idempotency-Key must be one value of 16 to 128 letters, digits, '-' or '_' (a UUID will do), optionally in double quotes.");
            }

            return await handoff.ClaimAsync(client, instanceId, key, ct) switch
            {
                ClaimOutcome.Claimed c => NoStore(req, new
                {
                    instance_id = c.InstanceId,
                    db_host = c.DbHost,
                    db_port = c.DbPort,
                    db_name = c.DbName,
                    db_user = c.DbUser,
                    db_password = c.Password.Reveal(),
                }),
                ClaimOutcome.AlreadyClaimed => Problems.Gone("credentials-already-claimed", "These credentials were already claimed; rotate to get a new password."),
                ClaimOutcome.Expired => Problems.Gone("credentials-expired", "These credentials expired unclaimed; rotate to get a new password."),
                ClaimOutcome.Superseded => Unavailable(req, "credentials-superseded", "A rotation replaced this password while it was claimed; claim again for the new one."),
                ClaimOutcome.Unavailable => Unavailable(req, "handoff-unavailable", "The credential handoff is not available yet (it did not answer in time, or the password is still being handed over). Retry after Retry-After; a retry with the same Idempotency-Key gets the same answer."),
                _ => Problems.NotFound("credentials-not-found", "There are no credentials to claim for this instance; for a ready database, rotate to hand over a new password."),
            };
        });

    [Function(nameof(RotateDatabaseCredentials))]
    public Task<IActionResult> RotateDatabaseCredentials(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "database/credentials/{instance_id}/rotate")] HttpRequest req,
        string instance_id, [DurableClient] DurableTaskClient client, CancellationToken ct)
        => RouteIds.WithInstanceAsync(instance_id, async instanceId =>
        {
            return await handoff.RotateAsync(client, instanceId, ct) switch
            {
                RotateOutcome.Rotated rotated when options.Value.InlinePassword => NoStore(req, new
                {
                    instance_id = instanceId,
                    credentials = new CredentialsView(AllocationFlow.ClaimUrl(api.Value.BaseUrl, instanceId), rotated.ExpiresAt),
                    db_user = rotated.DbUser,
                    db_password = rotated.Password.Reveal(),
                }),
                RotateOutcome.Rotated rotated => ApiJson.Ok(new
                {
                    instance_id = instanceId,
                    credentials = new CredentialsView(AllocationFlow.ClaimUrl(api.Value.BaseUrl, instanceId), rotated.ExpiresAt),
                }),
                RotateOutcome.InProgress => Problems.Conflict("rotation-in-progress", "Another rotation of this instance's password is in flight; the current password still works."),
                RotateOutcome.Unavailable unavailable => Unavailable(req, "rotation-unavailable", unavailable.Detail),
                RotateOutcome.NotReady notReady => Problems.Conflict("allocation-not-ready", $"The database is {notReady.Status.ToSql()}; only a ready database can rotate its password."),
                _ => Problems.NotFound("allocation-not-found", "This instance has no database."),
            };
        });

    /// <summary>A response that carries a password: no cache may keep it.</summary>
    public static JsonResult NoStore(HttpRequest request, object body)
    {
        request.HttpContext.Response.Headers.CacheControl = "no-store";
        return ApiJson.Ok(body);
    }

    private JsonResult Unavailable(HttpRequest request, string slug, string detail) =>
        Problems.Unavailable(slug, detail, options.Value.RetryAfterSeconds);

    /// <summary>No header: null (strictly once). One well-formed value (an RFC 8941 string's quotes allowed): the key.</summary>
    private static bool TryReadIdempotencyKey(HttpRequest request, out string? key)
    {
        key = null;
        if (!request.Headers.TryGetValue(IdempotencyKeyHeader, out var values))
        {
            return true;
        }

        if (values.Count != 1 || values[0] is not { } raw)
        {
            return false;
        }

        var value = raw.Length >= 2 && raw[0] == '"' && raw[^1] == '"' ? raw[1..^1] : raw;
        if (!IdempotencyKeyFormat().IsMatch(value))
        {
            return false;
        }

        key = value;
        return true;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{16,128}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdempotencyKeyFormat();
}
