using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Stock;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Telemetry;

namespace TenantDb.Functions.Allocations;

/// <summary>
/// Allocate and release tenant databases (DESIGN.md §4). The fast path is one catalog statement (reserve),
/// the DDL on the pool, and one catalog statement (ready); nothing else. What undoes a failed allocation is
/// <see cref="AllocationCompensation"/>; purge, recovery and leftover cleanup have their own classes.
/// </summary>
public sealed partial class AllocationService(
    TenantStore tenants,
    AllocationCompensation compensation,
    ITenantDdl ddl,
    WarmStockReplenisher stock,
    SecretProtector secrets,
    IOptions<AllocationOptions> allocationOptions,
    IOptions<PoolsOptions> poolsOptions,
    IOptions<CallbackUrlOptions> callbackOptions,
    TimeProvider time,
    AllocatorTelemetry telemetry,
    ILogger<AllocationService> logger)
{
    private const int MaxRaces = 5;
    private static readonly TimeSpan DuplicatePollInterval = TimeSpan.FromMilliseconds(100);
    private AllocationOptions Options => allocationOptions.Value;

    public Task<AllocationOutcome> AllocateAsync(AllocationRequest? request, CancellationToken ct)
    {
        if (AllocationValidator.TryValidate(request, poolsOptions.Value, callbackOptions.Value.AllowLoopbackCallbacks, out var valid, out var errors))
        {
            return AllocateAsync(valid, ct);
        }

        AllocationOutcome invalid = new AllocationOutcome.Invalid(errors);
        telemetry.Allocation(AllocatorTelemetry.OutcomeName(invalid), TimeSpan.Zero);
        return Task.FromResult(invalid);
    }

    /// <summary>Allocates, with its span, its log scope (<c>InstanceId</c>) and its metrics; recording them adds no I/O.</summary>
    /// <param name="fill">
    /// Run on the pool once the tenant's objects exist and before the row turns ready (a restore into a new instance fills
    /// the database here): a failure compensates the allocation as any failure of step 4 does, so nothing is left half-made.
    /// </param>
    public async Task<AllocationOutcome> AllocateAsync(ValidAllocationRequest request, CancellationToken ct, TenantFill? fill = null)
    {
        using var activity = AllocatorTelemetry.Source.StartActivity("allocate");
        activity?.SetTag("tenantdb.instance_id", request.InstanceId);
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["InstanceId"] = request.InstanceId });
        var started = time.GetTimestamp();
        var outcome = "error";
        try
        {
            var result = await AllocateCoreAsync(request, fill, ct);
            outcome = AllocatorTelemetry.OutcomeName(result);
            return result;
        }
        finally
        {
            activity?.SetTag("tenantdb.outcome", outcome);
            telemetry.Allocation(outcome, time.GetElapsedTime(started));
        }
    }

    private async Task<AllocationOutcome> AllocateCoreAsync(ValidAllocationRequest request, TenantFill? fill, CancellationToken ct)
    {
        var names = NamesFor(request.InstanceId);
        string? lastFailure = null;
        var raced = 0;
        // Another worker on this instance with no row yet (between placements, or waiting for a pool's lock) is waited for as
        // a duplicate is: up to DuplicateWait, never a fixed number of quick tries that a loaded server outlasts.
        var raceDeadline = time.GetUtcNow() + Options.DuplicateWait;
        // Pools that failed this allocation are not tried again by it (one failure does not take a pool out of placement).
        var failedPools = new List<long>();
        for (var attempt = 1; attempt <= Options.MaxPlacementAttempts; attempt++)
        {
            var (step, outcome, pool) = await AttemptAsync(request, names, failedPools, fill, ct);
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

            // The other row or worker went away meanwhile (compensated or recovered), or the other worker has no row yet: try
            // again, until DuplicateWait has passed (and at least a few times).
            if (++raced < MaxRaces || time.GetUtcNow() < raceDeadline)
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
        IReadOnlyCollection<long> avoid, TenantFill? fill, CancellationToken ct)
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

        var outcome = await CreateOnPoolAsync(reservation, names, request, instanceLock, fill, ct);
        return outcome is null ? (Attempt.PoolFailed, null, reservation.Pool) : (Attempt.Done, outcome, null);
    }

    /// <summary>The instance's live database, or null when there is none.</summary>
    public async Task<Allocation?> FindAsync(Guid instanceId, CancellationToken ct) => await tenants.FindLiveAsync(instanceId, ct);

    public TenantNames NamesFor(Guid instanceId) => TenantNames.For(instanceId, Options.DatabasePrefix);

    /// <summary>Logins refused, sessions ended, data kept until <see cref="AllocationOptions.ReleaseRetention"/> ends.</summary>
    public async Task<ReleaseOutcome> ReleaseAsync(Guid instanceId, string actor, CancellationToken ct)
    {
        // A move may switch the tenant to another pool between the look-up and the row's update (which waits for the move's
        // switch): then the row is not released, and the release runs again on the pool the tenant is on now.
        for (var attempt = 1; ; attempt++)
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

            await ddl.ReleaseAsync(live.Pool, TenantNames.Of(live.Tenant, Options.DatabasePrefix), ct);
            if (await tenants.MarkReleasedAsync(live.Tenant.Id, live.Pool.Id, actor, ct) is { } released)
            {
                LogReleased(instanceId, live.Pool.Name);
                return new ReleaseOutcome.Released(released, PurgeAfter(released));
            }

            if (attempt >= MaxRaces)
            {
                return new ReleaseOutcome.InProgress();
            }
        }
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
        InstanceLock instanceLock, TenantFill? fill, CancellationToken ct)
    {
        var (pool, tenant) = reservation;
        var password = PasswordGenerator.Generate(Options.PasswordLength);
        var verifier = ScramVerifier.Compute(password);
        try
        {
            try
            {
                await MakeObjectsAsync(reservation, names, verifier, request.Tier.ConnectionLimit, ct);
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DuplicateObject or PostgresErrorCodes.DuplicateDatabase)
            {
                // Leftovers of an earlier failed allocation that could not be cleaned while its server was down. This row is the
                // instance's only live one and its lock is held, so no live tenant owns objects of these names here.
                await ddl.DropAsync(pool, names, ct);
                await MakeObjectsAsync(reservation, names, verifier, request.Tier.ConnectionLimit, ct);
            }

            if (fill is not null)
            {
                await fill(reservation, names, ct);
            }
        }
        catch (Exception e)
        {
            await compensation.CompensateAsync(reservation, names, e, poolAtFault: PoolFailures.IsConnectionFailure(e), instanceLock);
            return Retryable(e, pool, ct);
        }

        TenantDatabase? ready;
        try
        {
            ready = await tenants.MarkReadyAsync(tenant.Id, FirstPasswordCopy(request.InstanceId, password), instanceLock, ct);
        }
        catch (Exception e)
        {
            // The catalog's answer is lost: the row may be ready (then the objects are the tenant's and the allocation stands).
            if ((await compensation.CompensateAsync(reservation, names, e, poolAtFault: false, instanceLock)).Ready is { } readyMeanwhile)
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
        if (pool.ServerType == ServerType.Shared)
        {
            // The pool's stock is one short (or was empty): the replenisher refills it off this path.
            stock.Wake();
        }

        return new AllocationOutcome.Allocated(pool, ready, new Secret(password));
    }

    /// <summary>
    /// Step 4 (DESIGN.md §4): the claimed warm-stock database renamed to the tenant's (§9), or, with no stock claimed or its
    /// objects gone from the server, the database created for the tenant.
    /// </summary>
    private async Task MakeObjectsAsync(Allocation reservation, TenantNames names, string verifier, int connectionLimit, CancellationToken ct)
    {
        var (pool, tenant) = reservation;
        if (tenant.StockName is { } stockName)
        {
            if (await ddl.CreateFromStockAsync(pool, stockName, names, verifier, connectionLimit, ct))
            {
                return;
            }

            LogStockGone(stockName, pool.Name);
        }

        await ddl.CreateAsync(pool, names, verifier, connectionLimit, ct);
    }

    /// <summary>
    /// The first password sealed for the handoff, recorded with the ready row: an answer lost after the row turned ready (a
    /// catalog fault, a killed host) loses the deposit, not the password. None in the inline mode, whose 200 carries it.
    /// </summary>
    private string? FirstPasswordCopy(Guid instanceId, string password) =>
        Options.InlinePassword ? null : secrets.Protect(password, SecretProtector.HandoffPurpose(instanceId));

    /// <summary>After a compensated failure: null to try another pool, or the exception when retrying elsewhere will not help.</summary>
    private static AllocationOutcome? Retryable(Exception e, Pool pool, CancellationToken ct)
    {
        if (e is OperationCanceledException && ct.IsCancellationRequested)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
        }

        return PoolFailures.IsTransient(e) ? null : throw new AllocationFailedException(pool.Name, e);
    }

    [LoggerMessage(LogLevel.Information, "Allocated tenant database {DbName} for instance {InstanceId} on pool {Pool}")]
    private partial void LogAllocated(Guid instanceId, string pool, string dbName);

    [LoggerMessage(LogLevel.Warning, "Warm stock {Stock} of pool {Pool} was claimed but is not on its server; creating the database instead")]
    private partial void LogStockGone(string stock, string pool);

    [LoggerMessage(LogLevel.Warning, "No shared pool has room for instance {InstanceId} (tier {PlanTier})")]
    private partial void LogNoCapacity(Guid instanceId, string planTier);

    [LoggerMessage(LogLevel.Information, "Released the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogReleased(Guid instanceId, string pool);

}
