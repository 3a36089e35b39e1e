using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

/// <summary>
/// Allocate and release tenant databases (DESIGN.md §4). The fast path is one catalog statement (reserve),
/// the DDL on the pool, and one catalog statement (ready); nothing else.
/// </summary>
public sealed partial class AllocationService(
    TenantStore tenants,
    PoolStore pools,
    ITenantDdl ddl,
    IOptions<AllocationOptions> allocationOptions,
    IOptions<PoolsOptions> poolsOptions,
    TimeProvider time,
    ILogger<AllocationService> logger)
{
    private static readonly TimeSpan CompensationTimeout = TimeSpan.FromSeconds(30);
    private const int MaxRaces = 5;
    private static readonly TimeSpan DuplicatePollInterval = TimeSpan.FromMilliseconds(100);
    private AllocationOptions Options => allocationOptions.Value;

    public Task<AllocationOutcome> AllocateAsync(AllocationRequest? request, CancellationToken ct) =>
        AllocationValidator.TryValidate(request, poolsOptions.Value, out var valid, out var errors)
            ? AllocateAsync(valid, ct)
            : Task.FromResult<AllocationOutcome>(new AllocationOutcome.Invalid(errors));

    public async Task<AllocationOutcome> AllocateAsync(ValidAllocationRequest request, CancellationToken ct)
    {
        var names = NamesFor(request.InstanceId);
        string? lastFailure = null;
        var raced = 0;
        // Pools that failed this allocation are not tried again by it (one failure does not take a pool out of placement).
        var failedPools = new List<long>();
        for (var attempt = 1; attempt <= Options.MaxPlacementAttempts; attempt++)
        {
            var (step, outcome, pool) = await AttemptAsync(request, names, failedPools, ct);
            switch (step)
            {
                case Attempt.Done:
                    return outcome!;
                case Attempt.PoolFailed:
                    lastFailure = $"pool '{pool!.Name}' failed";
                    failedPools.Add(pool.Id);
                    continue;
            }

            // The instance has a live row (the unique index said so), another worker holds it, or no pool has room; an
            // instance that already has its database needs none.
            if (await ExistingAsync(request, ct) is { } existing)
            {
                return existing;
            }

            if (step == Attempt.NoRoom)
            {
                // The only pools with room failed just now: a fault to retry, never "no capacity" (that would provision a server).
                if (failedPools.Count > 0)
                {
                    break;
                }

                LogNoCapacity(request.InstanceId, request.PlanTier);
                return new AllocationOutcome.NoCapacity(request.Tier.Dedicated);
            }

            // The other row or worker went away meanwhile (compensated or recovered): try again, a bounded number of times.
            if (++raced < MaxRaces)
            {
                attempt--;
                await Task.Delay(DuplicatePollInterval, time, ct);
            }
        }

        return new AllocationOutcome.Failed($"The tenant database could not be created ({lastFailure ?? "another request for this instance kept it busy"}); nothing was left behind. Retry later.");
    }

    private enum Attempt { Done, PoolFailed, NoRoom, Taken }

    /// <summary>One placement: reserve under the instance's lock, make the objects, mark ready. The lock (and its catalog
    /// connection) is held only for this, never while waiting on another request of the same instance.</summary>
    private async Task<(Attempt Step, AllocationOutcome? Outcome, Pool? Pool)> AttemptAsync(ValidAllocationRequest request, TenantNames names,
        IReadOnlyCollection<long> avoid, CancellationToken ct)
    {
        // Held from the reservation until the row is ready or compensated: the sweep and the cleanup see a live worker.
        await using var instanceLock = await tenants.OpenInstanceLockAsync(request.InstanceId, ct);
        Allocation? reservation;
        try
        {
            // A new instance (the common case) goes straight to the reservation; an existing one is found by the
            // unique index on live instance rows, so the fast path never pays for a look-up first.
            reservation = await ReserveAsync(request, names, instanceLock, avoid, ct);
        }
        catch (PostgresException e) when (e is { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: TenantStore.LiveInstanceIndex })
        {
            return (Attempt.Taken, null, null);
        }

        if (reservation is null)
        {
            return (instanceLock.Held ? Attempt.NoRoom : Attempt.Taken, null, null);
        }

        var outcome = await CreateOnPoolAsync(reservation, names, request, instanceLock, ct);
        return outcome is null ? (Attempt.PoolFailed, null, reservation.Pool) : (Attempt.Done, outcome, null);
    }

    /// <summary>The instance's live database, or null when there is none.</summary>
    public async Task<Allocation?> FindAsync(Guid instanceId, CancellationToken ct) => await tenants.FindLiveAsync(instanceId, ct);

    public TenantNames NamesFor(Guid instanceId) => TenantNames.For(instanceId, Options.DatabasePrefix);

    /// <summary>Logins refused, sessions ended, data kept until <see cref="AllocationOptions.ReleaseRetention"/> ends.</summary>
    public async Task<ReleaseOutcome> ReleaseAsync(Guid instanceId, string actor, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct);
        switch (live?.Tenant.Status)
        {
            case null:
                return new ReleaseOutcome.NotFound();
            case TenantDatabaseStatus.Creating:
                return new ReleaseOutcome.InProgress();
            case TenantDatabaseStatus.Released:
                return new ReleaseOutcome.Released(live.Tenant, PurgeAfter(live.Tenant));
        }

        await ddl.ReleaseAsync(live.Pool, NamesFor(instanceId), ct);
        var released = await tenants.MarkReleasedAsync(live.Tenant.Id, actor, ct)
            ?? (await tenants.FindLiveAsync(instanceId, ct))?.Tenant;
        LogReleased(instanceId, live.Pool.Name);
        return released is null ? new ReleaseOutcome.NotFound() : new ReleaseOutcome.Released(released, PurgeAfter(released));
    }

    /// <summary>
    /// Drops every released tenant database released before <paramref name="releasedBefore"/>. A purge that fails (server
    /// down, an object the tenant left that still blocks it) is counted and recorded as a <c>purge_failed</c> event; the row
    /// stays released and the next cleanup tries again.
    /// </summary>
    public async Task<PurgeResult> PurgeReleasedAsync(DateTimeOffset releasedBefore, string actor, CancellationToken ct)
    {
        int purged = 0, failed = 0;
        foreach (var (pool, tenant) in await tenants.ListPurgeableAsync(releasedBefore, 500, ct))
        {
            try
            {
                await ddl.DropAsync(pool, NamesFor(tenant.InstanceId), ct);
                await tenants.MarkDroppedAsync(tenant.Id, actor, ct);
                purged++;
                LogPurged(tenant.InstanceId, pool.Name);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
            {
                failed++;
                LogPurgeFailed(e, tenant.InstanceId, pool.Name);
                await pools.AppendEventAsync(pool.Id, tenant.InstanceId, PoolEventNames.PurgeFailed, Describe(e), actor, ct);
            }
        }

        return new PurgeResult(purged, failed);
    }

    /// <summary>Retention applied to now: what the daily cleanup purges.</summary>
    public Task<PurgeResult> PurgeExpiredAsync(string actor, CancellationToken ct) =>
        PurgeReleasedAsync(time.GetUtcNow() - Options.ReleaseRetention, actor, ct);

    /// <summary>
    /// Undoes allocations abandoned mid-way (still <c>creating</c> after <see cref="AllocationOptions.StaleCreatingAfter"/>
    /// and no live worker holding the instance's lock): the row marked failed and its slot given back first, then its objects
    /// dropped, so the instance can be allocated again. A slow allocation still running holds its lock and is left alone.
    /// </summary>
    public async Task<int> RecoverAbandonedAsync(CancellationToken ct)
    {
        var recovered = 0;
        foreach (var reservation in await tenants.ListStaleCreatingAsync(time.GetUtcNow() - Options.StaleCreatingAfter, 500, ct))
        {
            await using var instanceLock = await tenants.OpenInstanceLockAsync(reservation.Tenant.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                LogStillAllocating(reservation.Tenant.InstanceId, reservation.Pool.Name);
                continue;
            }

            var cause = new InvalidOperationException("abandoned while creating: the allocator stopped mid-way");
            if ((await CompensateAsync(reservation, NamesFor(reservation.Tenant.InstanceId), cause, poolAtFault: false, instanceLock)).Moved)
            {
                recovered++;
            }
        }

        return recovered;
    }

    /// <summary>
    /// Settles the leftovers of failed allocations whose server was unreachable when they failed. Names are deterministic
    /// per instance, so a name match proves nothing: under the instance's lock, a leftover on a server where a live row of the
    /// same instance now lives is only marked settled (its objects are that tenant's); any other is dropped.
    /// </summary>
    public async Task<CleanResult> CleanFailedAsync(CancellationToken ct)
    {
        int cleaned = 0, failed = 0;
        foreach (var (pool, tenant) in await tenants.ListUncleanedFailuresAsync(500, ct))
        {
            await using var instanceLock = await tenants.OpenInstanceLockAsync(tenant.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                continue; // an allocation of this instance is under way; the next cleanup looks again
            }

            try
            {
                if (!await tenants.SettleLeftoverOfLiveTenantAsync(tenant.Id, ct))
                {
                    await ddl.DropAsync(pool, NamesFor(tenant.InstanceId), ct);
                    await tenants.MarkCleanedAsync(tenant.Id, ct);
                }

                cleaned++;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
            {
                failed++;
                LogPurgeFailed(e, tenant.InstanceId, pool.Name);
            }
        }

        return new CleanResult(cleaned, failed);
    }

    private DateTimeOffset? PurgeAfter(TenantDatabase tenant) => tenant.ReleasedAt + Options.ReleaseRetention;

    private async Task<Allocation?> ReserveAsync(ValidAllocationRequest request, TenantNames names, InstanceLock instanceLock,
        IReadOnlyCollection<long> avoid, CancellationToken ct)
    {
        // First pass skips pools other allocations hold; an empty answer there proves nothing under contention,
        // so the second pass waits for those locks. Only its empty answer means no eligible pool has room.
        var reserved = await tenants.ReserveAsync(request, names.Database, names.LoginRole, request.Tier.Dedicated, Options.Strategy,
            skipLocked: true, instanceLock, ct, avoid);
        return reserved is not null || !instanceLock.Held
            ? reserved
            : await tenants.ReserveAsync(request, names.Database, names.LoginRole, request.Tier.Dedicated, Options.Strategy, skipLocked: false,
                instanceLock, ct, avoid);
    }

    private async Task<AllocationOutcome?> ExistingAsync(ValidAllocationRequest request, CancellationToken ct)
    {
        var deadline = time.GetUtcNow() + Options.DuplicateWait;
        while (true)
        {
            var live = await tenants.FindLiveAsync(request.InstanceId, ct);
            if (live is null)
            {
                return null;
            }

            var tenant = live.Tenant;
            if (tenant.CustomerId != request.CustomerId || tenant.PlanTier != request.PlanTier)
            {
                return new AllocationOutcome.Conflict("instance-conflict",
                    "This instance_id already has a database for another customer_id or plan_tier.");
            }

            switch (tenant.Status)
            {
                case TenantDatabaseStatus.Ready:
                    return new AllocationOutcome.Allocated(live.Pool, tenant, Password: null);
                case TenantDatabaseStatus.Released:
                    return new AllocationOutcome.Conflict("instance-released",
                        "This instance's database was released; it can be allocated again after it is purged.");
            }

            if (time.GetUtcNow() >= deadline)
            {
                return new AllocationOutcome.InProgress(tenant);
            }

            await Task.Delay(DuplicatePollInterval, time, ct);
        }
    }

    /// <summary>Makes the tenant's objects on the reserved pool; null means "this pool failed, try another" (already compensated).</summary>
    private async Task<AllocationOutcome?> CreateOnPoolAsync(Allocation reservation, TenantNames names, ValidAllocationRequest request,
        InstanceLock instanceLock, CancellationToken ct)
    {
        var (pool, tenant) = reservation;
        var password = PasswordGenerator.Generate(Options.PasswordLength);
        var verifier = ScramVerifier.Compute(password);
        try
        {
            try
            {
                await ddl.CreateAsync(pool, names, verifier, request.Tier.ConnectionLimit, ct);
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DuplicateObject or PostgresErrorCodes.DuplicateDatabase)
            {
                // Leftovers of an earlier failed allocation that could not be cleaned while its server was down. This row is the
                // instance's only live one and its lock is held, so no live tenant owns objects of these names here.
                await ddl.DropAsync(pool, names, ct);
                await ddl.CreateAsync(pool, names, verifier, request.Tier.ConnectionLimit, ct);
            }
        }
        catch (Exception e)
        {
            await CompensateAsync(reservation, names, e, poolAtFault: IsConnectionFailure(e), instanceLock);
            return Retryable(e, pool, ct);
        }

        TenantDatabase? ready;
        try
        {
            ready = await tenants.MarkReadyAsync(tenant.Id, instanceLock, ct);
        }
        catch (Exception e)
        {
            // The catalog's answer is lost: the row may be ready (then the objects are the tenant's and the allocation stands).
            if ((await CompensateAsync(reservation, names, e, poolAtFault: false, instanceLock)).Ready is { } readyMeanwhile)
            {
                LogAllocated(request.InstanceId, pool.Name, readyMeanwhile.DbName);
                return new AllocationOutcome.Allocated(pool, readyMeanwhile, new Secret(password));
            }

            return Retryable(e, pool, ct);
        }

        if (ready is null)
        {
            throw new AllocationFailedException(pool.Name, new InvalidOperationException("The tenant row left 'creating' while its database was being made."));
        }

        LogAllocated(request.InstanceId, pool.Name, ready.DbName);
        return new AllocationOutcome.Allocated(pool, ready, new Secret(password));
    }

    /// <summary>After a compensated failure: null to try another pool, or the exception when retrying elsewhere will not help.</summary>
    private static AllocationOutcome? Retryable(Exception e, Pool pool, CancellationToken ct)
    {
        if (e is OperationCanceledException && ct.IsCancellationRequested)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
        }

        return e is NpgsqlException or TimeoutException or SocketException ? null : throw new AllocationFailedException(pool.Name, e);
    }

    /// <summary>
    /// Undoes a reservation, catalog first: the row leaves <c>creating</c> (slot given back) and only then are the objects
    /// dropped, so a row that turned ready meanwhile (a lost reply) keeps its database. <c>Moved</c> says this call failed the
    /// row; <c>Ready</c> is the row when it had turned ready instead. A catalog fault propagates with nothing dropped (the
    /// row stays creating, and the sweep recovers it once no worker holds the instance).
    /// </summary>
    private async Task<(bool Moved, TenantDatabase? Ready)> CompensateAsync(Allocation reservation, TenantNames names, Exception cause, bool poolAtFault,
        InstanceLock instanceLock)
    {
        var (pool, tenant) = reservation;
        using var timeout = new CancellationTokenSource(CompensationTimeout);
        // The objects may only be dropped while this worker provably holds the instance: the lock's connection may have
        // broken (a lost reply), and with it the lock, so a retry of the same instance could be making its objects now.
        await using var confirmed = await ConfirmLockAsync(instanceLock, tenant.InstanceId, timeout.Token);
        var reason = $"{cause.GetType().Name}: {Describe(cause)}";
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
            await tenants.MarkCleanedAsync(tenant.Id, timeout.Token);
        }
        catch (Exception dropError) when (dropError is NpgsqlException or TimeoutException or SocketException or OperationCanceledException)
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

    // The allocator's own connection pool to the server running dry is load here, not a failing server.
    private static bool IsConnectionFailure(Exception e) =>
        !IsAdminPoolExhausted(e) && (e is NpgsqlException { InnerException: SocketException or IOException or TimeoutException } or TimeoutException or SocketException
        || e is NpgsqlException and not PostgresException && e.InnerException is not OperationCanceledException
        || e is PostgresException { SqlState: PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.CrashShutdown });

    // Npgsql signals a pool with no free connection within its timeout by this message (no SqlState, no socket error).
    private static bool IsAdminPoolExhausted(Exception e) =>
        e is NpgsqlException and not PostgresException && e.Message.StartsWith("The connection pool has been exhausted", StringComparison.Ordinal);

    // Server messages only: never a command text (a DDL carries a password verifier).
    private static string Describe(Exception e) => e switch
    {
        PostgresException pg => $"{pg.SqlState} {pg.MessageText}",
        _ => e.Message,
    };

    [LoggerMessage(LogLevel.Information, "Allocated tenant database {DbName} for instance {InstanceId} on pool {Pool}")]
    private partial void LogAllocated(Guid instanceId, string pool, string dbName);

    [LoggerMessage(LogLevel.Warning, "No shared pool has room for instance {InstanceId} (tier {PlanTier})")]
    private partial void LogNoCapacity(Guid instanceId, string planTier);

    [LoggerMessage(LogLevel.Warning, "Allocation for instance {InstanceId} failed on pool {Pool}; compensating")]
    private partial void LogCompensating(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not drop the objects of instance {InstanceId} on pool {Pool}; the cleanup will retry")]
    private partial void LogCleanupDeferred(Exception? e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Released the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogReleased(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Purged the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurged(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not purge the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurgeFailed(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Instance {InstanceId} on pool {Pool} has been creating for long, but its allocation is still running; left alone")]
    private partial void LogStillAllocating(Guid instanceId, string pool);
}

/// <summary>What a purge run did: databases dropped, and purges that failed (recorded, retried next time).</summary>
public sealed record PurgeResult(int Purged, int Failed);

/// <summary>What a leftover cleanup did: failed allocations settled or dropped, and those that failed (retried next time).</summary>
public sealed record CleanResult(int Cleaned, int Failed);

public abstract record ReleaseOutcome
{
    public sealed record Released(TenantDatabase Tenant, DateTimeOffset? PurgeAfter) : ReleaseOutcome;
    public sealed record NotFound : ReleaseOutcome;
    public sealed record InProgress : ReleaseOutcome;
}

/// <summary>A pool failed in a way retrying elsewhere will not fix; the reservation was compensated.</summary>
public sealed class AllocationFailedException(string pool, Exception inner)
    : Exception($"Creating the tenant database on pool '{pool}' failed; the reservation was rolled back.", inner);
