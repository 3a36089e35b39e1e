using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using TenantDb.Functions.Allocations;

namespace TenantDb.Functions.Api;

/// <summary>The ids in route paths: parsed in one place, a bad one answered with the same 400 problem on every route.</summary>
public static class RouteIds
{
    /// <summary>Runs <paramref name="handle"/> with the instance id (a canonical UUID), or answers 400 <c>invalid-instance-id</c>.</summary>
    public static async Task<IActionResult> WithInstanceAsync(string? value, Func<Guid, Task<IActionResult>> handle) =>
        AllocationValidator.TryParseId(value, out var instanceId) ? await handle(instanceId) : Problems.InvalidInstanceId();

    /// <summary>
    /// Runs <paramref name="handle"/> with the pool id (a positive whole number written canonically: no sign, no leading zero),
    /// or answers 400 <c>invalid-pool-id</c>. A non-canonical spelling never reaches a real pool.
    /// </summary>
    public static async Task<IActionResult> WithPoolAsync(string? value, Func<long, Task<IActionResult>> handle) =>
        value is [>= '1' and <= '9', ..] && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var poolId)
            ? await handle(poolId)
            : Problems.BadRequest("invalid-pool-id", "The pool id must be a positive whole number.");
}
