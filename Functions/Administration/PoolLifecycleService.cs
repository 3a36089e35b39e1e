using Microsoft.Extensions.Logging;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Stock;

namespace TenantDb.Functions.Administration;

/// <summary>Operators' moves of a pool in and out of service: drain, activate, retire (deprovision an empty pool).</summary>
public sealed partial class PoolLifecycleService(
    PoolStore pools,
    HealthService health,
    PoolDeprovisioner deprovisioner,
    WarmStockService stock,
    ILogger<PoolLifecycleService> logger)
{
    private static readonly PoolStatus[] Drainable = [PoolStatus.Active, PoolStatus.Full];
    private static readonly PoolStatus[] Activatable = [PoolStatus.Draining, PoolStatus.Error];
    private static readonly PoolStatus[] Retirable = [PoolStatus.Active, PoolStatus.Full, PoolStatus.Draining, PoolStatus.Error, PoolStatus.Deleting];

    /// <summary>Out of placement (no new tenants); existing tenants stay. Idempotent.</summary>
    public async Task<AdminOutcome<PoolView>> DrainAsync(long id, CancellationToken ct)
    {
        if (await pools.TransitionAsync(id, Drainable, PoolStatus.Draining, "drained by an operator", AuditActor.Current, ct) is { } drained)
        {
            LogDrained(drained.Name);
            await DropStockBestEffortAsync(drained, ct);
            return new AdminOutcome<PoolView>.Done(PoolView.From(drained));
        }

        return await pools.GetAsync(id, ct) switch
        {
            null => AdminOutcome<PoolView>.PoolNotFound(id),
            { Status: PoolStatus.Draining } pool => new AdminOutcome<PoolView>.Done(PoolView.From(pool)),
            var pool => new AdminOutcome<PoolView>.Conflict("pool-status", $"Pool {pool.Name} is {pool.Status.ToSql()}; only an active or full pool can be drained."),
        };
    }

    /// <summary>Back into placement: active, or full when at capacity, only when its server answers a probe now. Idempotent.</summary>
    public async Task<AdminOutcome<PoolView>> ActivateAsync(long id, CancellationToken ct)
    {
        // A pool in error (or drained) may sit on a dead server: it takes tenants again only once a real probe answers.
        if (await pools.GetAsync(id, ct) is { Host.Length: > 0 } candidate && Activatable.Contains(candidate.Status)
            && await health.CheckAsync(id, ct) is AdminOutcome<PoolHealthReport>.Done { Value: { Reachable: false } probe })
        {
            LogActivationRefused(candidate.Name, probe.Error);
            return new AdminOutcome<PoolView>.Conflict("pool-unreachable",
                $"Pool {candidate.Name} did not answer its health probe ({probe.Error}); it stays {candidate.Status.ToSql()}.");
        }

        if (await pools.ActivateAsync(id, Activatable, "activated by an operator", AuditActor.Current, ct) is { } activated)
        {
            LogActivated(activated.Name, activated.Status.ToSql());
            return new AdminOutcome<PoolView>.Done(PoolView.From(activated));
        }

        return await pools.GetAsync(id, ct) switch
        {
            null => AdminOutcome<PoolView>.PoolNotFound(id),
            { Status: PoolStatus.Active or PoolStatus.Full } pool => new AdminOutcome<PoolView>.Done(PoolView.From(pool)),
            { Status: PoolStatus.Draining or PoolStatus.Error } pool => new AdminOutcome<PoolView>.Conflict("pool-no-endpoint",
                $"Pool {pool.Name} has no server endpoint; it cannot take tenants."),
            var pool => new AdminOutcome<PoolView>.Conflict("pool-status", $"Pool {pool.Name} is {pool.Status.ToSql()}; only a draining or error pool can be activated."),
        };
    }

    /// <summary>
    /// Deprovisions a pool that hosts no live tenant database: deleting → the driver removes the server → deleted.
    /// A pool with tenants is refused. Idempotent; a pool left in deleting by a failed driver call is finished by a retry.
    /// </summary>
    public async Task<AdminOutcome<PoolView>> RetireAsync(long id, CancellationToken ct)
    {
        switch (await pools.BeginRetireAsync(id, Retirable, "retired by an operator", AuditActor.Current, ct))
        {
            case RetireGate.NotFound:
                return AdminOutcome<PoolView>.PoolNotFound(id);
            case RetireGate.HasTenants tenants:
                return new AdminOutcome<PoolView>.Conflict("pool-has-tenants",
                    $"The pool hosts {tenants.LiveTenants} live tenant databases (creating, ready or released); release and purge them first.");
            case RetireGate.InStatus { Status: PoolStatus.Deleted }:
                return new AdminOutcome<PoolView>.Done(PoolView.From((await pools.GetAsync(id, ct))!));
            case RetireGate.InStatus other:
                return new AdminOutcome<PoolView>.Conflict("pool-status", $"The pool is {other.Status.ToSql()}; it cannot be retired now.");
            case RetireGate.Started started:
                await DropStockBestEffortAsync(started.Pool, ct);
                return await deprovisioner.DeprovisionAsync(started.Pool, AuditActor.Current, ct) is { } deleted
                    ? new AdminOutcome<PoolView>.Done(PoolView.From(deleted))
                    : new AdminOutcome<PoolView>.Unavailable("retire-failed",
                        $"Removing the server of pool {started.Pool.Name} failed; the pool stays 'deleting'. Retry the request.");
            default:
                throw new InvalidOperationException("Unknown retire gate.");
        }
    }

    /// <summary>A pool leaving service keeps no warm stock (DESIGN.md §9); a fault here leaves it to the sweep, which removes it too.</summary>
    private async Task DropStockBestEffortAsync(Pool pool, CancellationToken ct)
    {
        try
        {
            await stock.DropPoolStockAsync(pool, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            LogStockDeferred(e, pool.Name);
        }
    }

    [LoggerMessage(LogLevel.Warning, "The warm stock of pool {Pool} could not be dropped now; the health sweep drops it")]
    private partial void LogStockDeferred(Exception e, string pool);

    [LoggerMessage(LogLevel.Information, "Pool {Pool} drained")]
    private partial void LogDrained(string pool);

    [LoggerMessage(LogLevel.Warning, "Pool {Pool} not activated: its server did not answer the probe ({Error})")]
    private partial void LogActivationRefused(string pool, string? error);

    [LoggerMessage(LogLevel.Information, "Pool {Pool} activated ({Status})")]
    private partial void LogActivated(string pool, string status);
}
