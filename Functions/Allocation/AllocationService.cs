using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Allocation;

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
        var failedPools = new List<long>();
        for (var attempt = 1; attempt <= Options.MaxPlacementAttempts; attempt++)
        {
            // A new instance (the common case) goes straight to the reservation; an existing one is found by the
            // unique index on live instance rows, so the fast path never pays for a look-up first.
            Reservation? reservation;
            try
            {
                reservation = await ReserveAsync(request, names, failedPools, ct);
            }
            catch (PostgresException e) when (e is { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: TenantStore.LiveInstanceIndex })
            {
                if (await ExistingAsync(request, ct) is { } existing)
                {
                    return existing;
                }

                // The other row failed meanwhile: try again, a bounded number of times.
                if (++raced < MaxRaces)
                {
                    attempt--;
                }

                continue;
            }

            if (reservation is null)
            {
                // No room anywhere; but an instance that already has its database needs none.
                if (await ExistingAsync(request, ct) is { } existing)
                {
                    return existing;
                }

                // The only pools with room failed just now: a fault to retry, never "no capacity" (that would provision a server).
                if (failedPools.Count > 0)
                {
                    break;
                }

                LogNoCapacity(request.InstanceId, request.PlanTier);
                return new AllocationOutcome.NoCapacity(request.Tier.Dedicated);
            }

            var outcome = await CreateOnPoolAsync(reservation, names, request, ct);
            if (outcome is not null)
            {
                return outcome;
            }

            lastFailure = $"pool '{reservation.Pool.Name}' failed";
            failedPools.Add(reservation.Pool.Id);
        }

        return new AllocationOutcome.Failed($"The tenant database could not be created ({lastFailure}); nothing was left behind. Retry later.");
    }

    /// <summary>The instance's live database, or null when there is none.</summary>
    public async Task<Reservation?> FindAsync(Guid instanceId, CancellationToken ct) => await tenants.FindLiveAsync(instanceId, ct);

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

    /// <summary>Drops every released tenant database released before <paramref name="releasedBefore"/>; returns how many.</summary>
    public async Task<int> PurgeReleasedAsync(DateTimeOffset releasedBefore, string actor, CancellationToken ct)
    {
        var purged = 0;
        foreach (var (pool, tenant) in await tenants.ListPurgeableAsync(releasedBefore, 500, ct))
        {
            try
            {
                await ddl.DropAsync(pool, NamesFor(tenant.InstanceId), ct);
                await tenants.MarkDroppedAsync(tenant.Id, actor, ct);
                purged++;
                LogPurged(tenant.InstanceId, pool.Name);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                LogPurgeFailed(e, tenant.InstanceId, pool.Name);
            }
        }

        return purged;
    }

    /// <summary>Retention applied to now: what the daily cleanup purges.</summary>
    public Task<int> PurgeExpiredAsync(string actor, CancellationToken ct) =>
        PurgeReleasedAsync(time.GetUtcNow() - Options.ReleaseRetention, actor, ct);

    /// <summary>
    /// Undoes allocations abandoned mid-way (still <c>creating</c> after <see cref="AllocationOptions.StaleCreatingAfter"/>):
    /// their objects are dropped, their slot given back, the row marked failed, so the instance can be allocated again.
    /// </summary>
    public async Task<int> RecoverAbandonedAsync(CancellationToken ct)
    {
        var stale = await tenants.ListStaleCreatingAsync(time.GetUtcNow() - Options.StaleCreatingAfter, 500, ct);
        foreach (var reservation in stale)
        {
            await CompensateAsync(reservation, NamesFor(reservation.Tenant.InstanceId), new InvalidOperationException("abandoned while creating: the allocator stopped mid-way"));
        }

        return stale.Count;
    }

    /// <summary>Drops the leftovers of failed allocations whose server was unreachable when they failed.</summary>
    public async Task<int> CleanFailedAsync(CancellationToken ct)
    {
        var cleaned = 0;
        foreach (var (pool, tenant) in await tenants.ListUncleanedFailuresAsync(500, ct))
        {
            try
            {
                await ddl.DropAsync(pool, NamesFor(tenant.InstanceId), ct);
                await tenants.MarkCleanedAsync(tenant.Id, ct);
                cleaned++;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                LogPurgeFailed(e, tenant.InstanceId, pool.Name);
            }
        }

        return cleaned;
    }

    private DateTimeOffset? PurgeAfter(TenantDatabase tenant) => tenant.ReleasedAt + Options.ReleaseRetention;

    private async Task<Reservation?> ReserveAsync(ValidAllocationRequest request, TenantNames names, IReadOnlyCollection<long> avoid, CancellationToken ct)
    {
        // First pass skips pools other allocations hold; an empty answer there proves nothing under contention,
        // so the second pass waits for those locks. Only its empty answer means no eligible pool has room.
        return await tenants.ReserveAsync(request, names.Database, names.LoginRole, request.Tier.Dedicated, Options.Strategy, skipLocked: true, ct, avoid)
            ?? await tenants.ReserveAsync(request, names.Database, names.LoginRole, request.Tier.Dedicated, Options.Strategy, skipLocked: false, ct, avoid);
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
    private async Task<AllocationOutcome?> CreateOnPoolAsync(Reservation reservation, TenantNames names, ValidAllocationRequest request, CancellationToken ct)
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
                // Leftovers of an earlier failed allocation that could not be cleaned while its server was down.
                await ddl.DropAsync(pool, names, ct);
                await ddl.CreateAsync(pool, names, verifier, request.Tier.ConnectionLimit, ct);
            }

            var ready = await tenants.MarkReadyAsync(tenant.Id, ct)
                ?? throw new InvalidOperationException("The tenant row left 'creating' while its database was being made.");
            LogAllocated(request.InstanceId, pool.Name, ready.DbName);
            return new AllocationOutcome.Allocated(pool, ready, new Secret(password));
        }
        catch (Exception e)
        {
            await CompensateAsync(reservation, names, e);
            if (e is OperationCanceledException && ct.IsCancellationRequested)
            {
                throw;
            }

            return e is NpgsqlException or TimeoutException or SocketException ? null : throw new AllocationFailedException(pool.Name, e);
        }
    }

    private async Task CompensateAsync(Reservation reservation, TenantNames names, Exception cause)
    {
        var (pool, tenant) = reservation;
        using var timeout = new CancellationTokenSource(CompensationTimeout);
        var reason = $"{cause.GetType().Name}: {Describe(cause)}";
        LogCompensating(cause, tenant.InstanceId, pool.Name);
        var cleaned = false;
        try
        {
            await ddl.DropAsync(pool, names, timeout.Token);
            cleaned = true;
        }
        catch (Exception dropError) when (dropError is NpgsqlException or TimeoutException or SocketException or OperationCanceledException)
        {
            LogCleanupDeferred(dropError, tenant.InstanceId, pool.Name);
        }

        if (IsConnectionFailure(cause))
        {
            await pools.RecordFailureAsync(pool.Id, reason, poolsOptions.Value.UnhealthyAfterFailures, timeout.Token);
        }

        await tenants.CompensateAsync(tenant.Id, reason, cleaned, timeout.Token);
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
    private partial void LogCleanupDeferred(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Released the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogReleased(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Information, "Purged the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurged(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not purge the database of instance {InstanceId} on pool {Pool}")]
    private partial void LogPurgeFailed(Exception e, Guid instanceId, string pool);
}

public abstract record ReleaseOutcome
{
    public sealed record Released(TenantDatabase Tenant, DateTimeOffset? PurgeAfter) : ReleaseOutcome;
    public sealed record NotFound : ReleaseOutcome;
    public sealed record InProgress : ReleaseOutcome;
}

/// <summary>A pool failed in a way retrying elsewhere will not fix; the reservation was compensated.</summary>
public sealed class AllocationFailedException(string pool, Exception inner)
    : Exception($"Creating the tenant database on pool '{pool}' failed; the reservation was rolled back.", inner);
