using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TenantDb.Functions.Administration;

namespace TenantDb.Functions.Api;

/// <summary>Operators' pool routes (admin key): list, detail, stats, health check, register, drain, activate, retire.</summary>
public sealed class AdminFunctions(PoolReadService reads, PoolLifecycleService lifecycle, PoolRegistrationService registration, HealthService health)
{
    private const string Pools = "database/admin/pools";

    [Function(nameof(ListPools))]
    public async Task<IActionResult> ListPools(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = Pools)] HttpRequest req, CancellationToken ct)
    {
        var q = req.Query;
        return Respond(await reads.ListAsync(q["status"], q["server_type"], q["health_status"], q["page"], q["page_size"], ct));
    }

    [Function(nameof(GetPool))]
    public Task<IActionResult> GetPool(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = Pools + "/{id}")] HttpRequest req, string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId => Respond(await reads.GetAsync(poolId, ct)));

    [Function(nameof(GetStats))]
    public async Task<IActionResult> GetStats(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "database/admin/stats")] HttpRequest req, CancellationToken ct) =>
        ApiJson.Ok(await reads.StatsAsync(ct));

    [Function(nameof(CheckPoolHealth))]
    public Task<IActionResult> CheckPoolHealth(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = Pools + "/{id}/health-check")] HttpRequest req, string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId => Respond(await health.CheckAsync(poolId, ct)));

    [Function(nameof(RegisterPool))]
    public async Task<IActionResult> RegisterPool(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = Pools + "/register")] HttpRequest req, CancellationToken ct)
    {
        var (body, problem) = await ApiJson.ReadAsync<RegisterPoolRequest>(req, ct);
        if (problem is not null)
        {
            return problem;
        }

        return Respond(await registration.RegisterAsync(body!, ct), StatusCodes.Status201Created);
    }

    [Function(nameof(DrainPool))]
    public Task<IActionResult> DrainPool(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = Pools + "/{id}/drain")] HttpRequest req, string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId => Respond(await lifecycle.DrainAsync(poolId, ct)));

    [Function(nameof(ActivatePool))]
    public Task<IActionResult> ActivatePool(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = Pools + "/{id}/activate")] HttpRequest req, string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId => Respond(await lifecycle.ActivateAsync(poolId, ct)));

    [Function(nameof(RetirePool))]
    public Task<IActionResult> RetirePool(
        [HttpTrigger(AuthorizationLevel.Admin, "delete", Route = Pools + "/{id}")] HttpRequest req, string id, CancellationToken ct) =>
        RouteIds.WithPoolAsync(id, async poolId => Respond(await lifecycle.RetireAsync(poolId, ct)));

    internal static IActionResult Respond<T>(AdminOutcome<T> outcome, int status = StatusCodes.Status200OK) where T : notnull => outcome switch
    {
        AdminOutcome<T>.Done done => ApiJson.Status(status, done.Value),
        AdminOutcome<T>.Invalid invalid => Problems.Validation(invalid.Errors),
        AdminOutcome<T>.NotFound notFound => Problems.NotFound(notFound.Type, notFound.Detail),
        AdminOutcome<T>.Conflict conflict => Problems.Conflict(conflict.Type, conflict.Detail),
        AdminOutcome<T>.Unprocessable bad => Problems.Create(StatusCodes.Status422UnprocessableEntity, bad.Type, "Unprocessable content", bad.Detail, bad.Extensions),
        AdminOutcome<T>.Unavailable down => Problems.Unavailable(down.Type, down.Detail),
        _ => throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}."),
    };
}
