using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Allocations;

/// <summary>Undoes a failed or abandoned allocation: the catalog row first, then the objects, only while the instance is provably held.</summary>
public sealed partial class AllocationCompensation(
    TenantStore tenants,
    PoolStore pools,
    ITenantDdl ddl,
    WarmStockDdl stockDdl,
    IOptions<PoolsOptions> poolsOptions,
    ILogger<AllocationCompensation> logger)
{
    /// <summary>Bounds the whole undo; it runs on its own token, so a cancelled request still leaves nothing half-made.</summary>
    private static readonly TimeSpan CompensationTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Undoes a reservation, catalog first: the row leaves <c>creating</c> (slot given back) and only then are the objects
    /// dropped, so a row that turned ready meanwhile (a lost reply) keeps its database. <c>Moved</c> says this call failed the
    /// row; <c>Ready</c> is the row when it had turned ready instead. A catalog fault propagates with nothing dropped (the
    /// row stays creating, and the sweep recovers it once no worker holds the instance).
    /// </summary>
    public async Task<(bool Moved, TenantDatabase? Ready)> CompensateAsync(Allocation reservation, TenantNames names, Exception cause, bool poolAtFault,
        InstanceLock instanceLock)
    {
        var (pool, tenant) = reservation;
        using var timeout = new CancellationTokenSource(CompensationTimeout);
        // The objects may only be dropped while this worker provably holds the instance: the lock's connection may have
        // broken (a lost reply), and with it the lock, so a retry of the same instance could be making its objects now.
        await using var confirmed = await ConfirmLockAsync(instanceLock, tenant.InstanceId, timeout.Token);
        var reason = $"{cause.GetType().Name}: {PoolFailures.Describe(cause)}";
        LogCompensating(cause, tenant.InstanceId, pool.Name);
        if (poolAtFault)
        {
            await pools.RecordFailureAsync(pool.Id, reason, poolsOptions.Value.UnhealthyAfterFailures, timeout.Token);
        }

        if (!await tenants.CompensateAsync(tenant.Id, reason, timeout.Token))
        {
            var live = await tenants.FindLiveAsync(tenant.InstanceId, timeout.Token);
            return (false, live is { Tenant.Status: TenantDatabaseStatus.Ready } && live.Tenant.Id == tenant.Id ? live.Tenant : null);
        }

        if (confirmed is null)
        {
            // Not ours any more: the failed row keeps cleaned_at NULL, and the leftover cleanup settles it under the lock.
            LogCleanupDeferred(null, tenant.InstanceId, pool.Name);
            return (true, null);
        }

        try
        {
            await ddl.DropAsync(pool, names, timeout.Token);
            if (tenant.StockName is { } stockName)
            {
                // A claimed stock database not renamed yet still carries its stock name; it was this tenant's alone.
                await stockDdl.DropAsync(pool, stockName, timeout.Token);
            }

            await tenants.MarkCleanedAsync(tenant.Id, timeout.Token);
        }
        catch (Exception dropError) when (PoolFailures.IsTransient(dropError) || dropError is OperationCanceledException)
        {
            LogCleanupDeferred(dropError, tenant.InstanceId, pool.Name);
        }

        return (true, null);
    }

    /// <summary>
    /// The instance's lock, confirmed held: re-taken on <paramref name="held"/>'s connection (re-entrant when it is still this
    /// session's), or on a fresh connection when that one broke. Null when another session holds it. A fresh lock is
    /// returned for the caller to dispose; <paramref name="held"/> itself is returned as a borrowed wrapper.
    /// </summary>
    private async Task<IAsyncDisposable?> ConfirmLockAsync(InstanceLock held, Guid instanceId, CancellationToken ct)
    {
        try
        {
            if (await held.TryAcquireAsync(ct))
            {
                return NoRelease.Instance;
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            // Its connection broke, and the server released the lock with the session.
        }

        var fresh = await tenants.OpenInstanceLockAsync(instanceId, ct);
        if (await fresh.TryAcquireAsync(ct))
        {
            return fresh;
        }

        await fresh.DisposeAsync();
        return null;
    }

    private sealed class NoRelease : IAsyncDisposable
    {
        public static readonly NoRelease Instance = new();
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [LoggerMessage(LogLevel.Warning, "Allocation for instance {InstanceId} failed on pool {Pool}; compensating")]
    private partial void LogCompensating(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not drop the objects of instance {InstanceId} on pool {Pool}; the cleanup will retry")]
    private partial void LogCleanupDeferred(Exception? e, Guid instanceId, string pool);
}
