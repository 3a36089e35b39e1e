using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Telemetry;
using TenantDb.Functions.Usage;

namespace TenantDb.Functions.Administration;

/// <summary>What one health check found and recorded.</summary>
public sealed record PoolHealthReport(
    long PoolId,
    string Name,
    bool Reachable,
    HealthStatus HealthStatus,
    HealthStatus PreviousHealthStatus,
    int? ResponseMs,
    int? DatabaseCount,
    string? PostgresVersion,
    int ConsecutiveFailures,
    string? Error,
    CapacityDrift? Drift,
    UsageCollected? Usage = null);

/// <summary>What one sweep did.</summary>
public sealed record SweepSummary(int Checked, int Healthy, int Unhealthy, int DriftFixed, int Errors);

/// <summary>
/// Health of the pool servers: a real probe of each (TCP, admin credentials, the <c>postgres</c> database), the pool's
/// health moved by consecutive results, and its capacity counter reconciled with its live tenant rows.
/// </summary>
public sealed partial class HealthService(
    PoolStore pools,
    PoolHealthStore poolHealth,
    PoolAdminPasswords passwords,
    IOptions<PoolsOptions> poolsOptions,
    IOptions<SweepOptions> sweepOptions,
    PoolSnapshot snapshot,
    UsageCollector usage,
    ILogger<HealthService> logger)
{

    private SweepOptions Options => sweepOptions.Value;

    /// <summary>Checks one pool now. Not found for a pool that does not exist; a conflict for one provisioning or retired.</summary>
    public async Task<AdminOutcome<PoolHealthReport>> CheckAsync(long poolId, CancellationToken ct)
    {
        var pool = await pools.GetAsync(poolId, ct);
        if (pool is null)
        {
            return new AdminOutcome<PoolHealthReport>.NotFound("pool-not-found", $"There is no pool {poolId}.");
        }

        if (pool.Status is PoolStatus.Provisioning or PoolStatus.Deleting or PoolStatus.Deleted)
        {
            return new AdminOutcome<PoolHealthReport>.Conflict("pool-not-checkable",
                $"Pool {pool.Name} is {pool.Status.ToSql()}; only pools in service are health-checked.");
        }

        return await CheckPoolAsync(pool, ct) is { } report
            ? new AdminOutcome<PoolHealthReport>.Done(report)
            : new AdminOutcome<PoolHealthReport>.NotFound("pool-not-found", $"There is no pool {poolId}.");
    }

    /// <summary>Checks every pool in service, at most <see cref="SweepOptions.MaxParallelism"/> at a time.</summary>
    public async Task<SweepSummary> SweepAsync(CancellationToken ct)
    {
        var candidates = await poolHealth.ListCheckableAsync(ct);
        int checkedCount = 0, healthy = 0, unhealthy = 0, drift = 0, errors = 0;
        await Parallel.ForEachAsync(candidates, new ParallelOptions { MaxDegreeOfParallelism = Options.MaxParallelism, CancellationToken = ct },
            async (pool, token) =>
            {
                try
                {
                    if (await CheckPoolAsync(pool, token) is not { } report)
                    {
                        return;
                    }

                    Interlocked.Increment(ref checkedCount);
                    if (report.Reachable)
                    {
                        Interlocked.Increment(ref healthy);
                    }
                    else
                    {
                        Interlocked.Increment(ref unhealthy);
                    }

                    if (report.Drift is not null)
                    {
                        Interlocked.Increment(ref drift);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
                {
                    // One pool's catalog trouble must not end the sweep for the others.
                    Interlocked.Increment(ref errors);
                    LogCheckFailed(e, pool.Name);
                }
            });

        // The pool gauges report what this sweep found; pools it no longer checks leave them.
        snapshot.Retain(candidates.Select(p => p.Id).ToList());
        var summary = new SweepSummary(checkedCount, healthy, unhealthy, drift, errors);
        LogSwept(summary.Checked, summary.Healthy, summary.Unhealthy, summary.DriftFixed, summary.Errors);
        return summary;
    }

    private async Task<PoolHealthReport?> CheckPoolAsync(Pool pool, CancellationToken ct)
    {
        var probe = await ProbeAsync(pool, ct);
        var recorded = await poolHealth.RecordHealthAsync(pool.Id, probe.Ok, probe.ElapsedMs, probe.DatabaseCount, probe.Version, probe.Error,
            poolsOptions.Value.UnhealthyAfterFailures, AuditActor.Current, ct);
        if (recorded is null)
        {
            return null;
        }

        var (after, before) = (recorded.Pool, recorded.PreviousHealth);
        if (after.HealthStatus != before)
        {
            LogHealthChanged(pool.Name, before.ToSql(), after.HealthStatus.ToSql(), probe.Error);
        }

        var drift = await poolHealth.ReconcileCapacityAsync(pool.Id, AuditActor.Current, ct);
        if (drift is not null)
        {
            LogDrift(pool.Name, drift.Recorded, drift.Corrected);
        }

        // Usage rides on the check (DESIGN.md §11): one more query to a server that just answered.
        var used = probe.Ok ? await usage.CollectAsync(pool, ct) : null;
        snapshot.Update(pool.Id, pool.Name, drift?.Corrected ?? after.CurrentInstances, after.MaxInstances, after.HealthStatus.ToSql());
        return new PoolHealthReport(pool.Id, pool.Name, probe.Ok, after.HealthStatus, before, probe.Ok ? probe.ElapsedMs : null,
            after.DatabaseCount, after.PostgresVersion, after.ConsecutiveHealthFailures, probe.Error, drift, used);
    }

    private async Task<ProbeResult> ProbeAsync(Pool pool, CancellationToken ct)
    {
        if (pool.Host.Length == 0 || pool.Port == 0)
        {
            return new ProbeResult(false, 0, null, null, "the pool has no endpoint");
        }

        if (!passwords.TryReveal(pool, out var password))
        {
            return new ProbeResult(false, 0, null, null, "the pool's admin password cannot be decrypted with the configured key");
        }

        return await PoolProbe.ProbeAsync(pool.Host, pool.Port, pool.AdminUser, password, Options.ProbeTimeout, ct);
    }

    [LoggerMessage(LogLevel.Warning, "Pool {Pool} health changed from {From} to {To} ({Error})")]
    private partial void LogHealthChanged(string pool, string from, string to, string? error);

    [LoggerMessage(LogLevel.Warning, "Pool {Pool} capacity counter drifted: {Recorded} recorded, corrected to {Corrected}")]
    private partial void LogDrift(string pool, int recorded, int corrected);

    [LoggerMessage(LogLevel.Error, "Health check of pool {Pool} failed")]
    private partial void LogCheckFailed(Exception e, string pool);

    [LoggerMessage(LogLevel.Information, "Health sweep: {Checked} pools checked, {Healthy} answering, {Unhealthy} not, {DriftFixed} counters corrected, {Errors} errors")]
    private partial void LogSwept(int @checked, int healthy, int unhealthy, int driftFixed, int errors);
}
