using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Telemetry;

namespace TenantDb.Functions.Provisioning;

/// <summary>
/// Starts (or joins) pool provisioning runs and does the work of their activities. Every step is idempotent: an
/// activity may run twice.
/// </summary>
public sealed partial class ProvisioningService(
    ProvisioningStore store,
    PoolStore pools,
    PoolProvisioners provisioners,
    PoolConnections connections,
    ServerHardening hardening,
    CatalogIdentity identity,
    PoolDeprovisioner deprovisioner,
    PoolAdminPasswords passwords,
    IOptions<ProvisioningOptions> provisioningOptions,
    IOptions<PoolsOptions> poolsOptions,
    TimeProvider time,
    AllocatorTelemetry telemetry,
    ILogger<ProvisioningService> logger)
{
    private const int AdminPasswordLength = 40;
    private ProvisioningOptions Options => provisioningOptions.Value;

    /// <summary>
    /// Provision a shared pool, or join the run already under way; a run that failed, was terminated or vanished is settled
    /// first, so a fresh one starts.
    /// </summary>
    /// <exception cref="ProvisioningRefusedException">A new server would pass <see cref="ProvisioningOptions.MaxServers"/>.</exception>
    /// <param name="forNoCapacity">A caller that found no room: a shared pool that turned active with room meanwhile answers it.</param>
    public async Task<ReservedPool> StartSharedAsync(DurableTaskClient client, string actor, string reason, CancellationToken ct, bool forNoCapacity = false)
    {
        await SettleLostRunsAsync(client, null, actor, ct);
        var shared = poolsOptions.Value.Shared;
        var reserved = await store.ReserveAsync(new PoolReservationRequest(ServerType.Shared, shared.MaxInstances, shared.Cpu, shared.Memory,
            Options.AdminUser, null, null, Options.Driver, actor, reason), NewEncryptedAdminPassword, r => ScheduleAsync(client, r, ct), ct, Limits,
            joinPoolWithRoom: forNoCapacity);
        return reserved;
    }

    /// <summary>Provision the dedicated server of one instance, or join the run already under way (a lost run is settled first).</summary>
    /// <exception cref="ProvisioningRefusedException">
    /// A new server would pass <see cref="ProvisioningOptions.MaxServers"/>, or this instance's dedicated provisioning already
    /// failed <see cref="ProvisioningOptions.MaxDedicatedAttempts"/> times.
    /// </exception>
    public async Task<ReservedPool> StartDedicatedAsync(DurableTaskClient client, ValidAllocationRequest request, string actor, CancellationToken ct)
    {
        await SettleLostRunsAsync(client, request.InstanceId, actor, ct);
        var tier = request.Tier;
        var reserved = await store.ReserveAsync(new PoolReservationRequest(ServerType.Dedicated, tier.MaxInstances, tier.Cpu, tier.Memory,
            Options.AdminUser, request.InstanceId, request.CustomerId, Options.Driver, actor, $"dedicated server for tier {request.PlanTier}"),
            NewEncryptedAdminPassword, r => ScheduleAsync(client, r, ct), ct, Limits);
        return reserved;
    }

    /// <summary>The headroom rule: when free slots across active shared pools fall below the minimum, provision the next pool now.</summary>
    public async Task<ReservedPool?> EnsureHeadroomAsync(DurableTaskClient client, CancellationToken ct)
    {
        var (free, provisioning) = await store.SharedHeadroomAsync(ct);
        if (provisioning && await SettleLostRunsAsync(client, null, AuditActor.Current, ct) > 0)
        {
            (free, provisioning) = await store.SharedHeadroomAsync(ct);
        }

        if (provisioning || free >= poolsOptions.Value.MinFreeSlots)
        {
            return null;
        }

        LogHeadroom(free, poolsOptions.Value.MinFreeSlots);
        try
        {
            return await StartSharedAsync(client, AuditActor.Current, $"headroom: {free} free slots < {poolsOptions.Value.MinFreeSlots}", ct);
        }
        catch (ProvisioningRefusedException e)
        {
            // Headroom is ahead of demand: at the server limit it simply is not made (the refusal is in the pool events).
            LogHeadroomRefused(e.Type);
            return null;
        }
    }

    /// <summary>
    /// A pool still provisioning or initializing whose run is over (failed, terminated, completed) or gone (purged) will never
    /// become active: it goes to error (with events), and what its run made is deprovisioned through the retire path. Returns
    /// how many pools were settled. Safe under concurrency: only the caller that moves the pool to error deprovisions it.
    /// </summary>
    public async Task<int> SettleLostRunsAsync(DurableTaskClient client, Guid? dedicatedToInstanceId, string actor, CancellationToken ct)
    {
        var settled = 0;
        foreach (var run in await store.ListInFlightAsync(dedicatedToInstanceId, ct))
        {
            var metadata = await client.GetInstanceAsync(run.RunId, ct);
            if (metadata is { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended })
            {
                continue;
            }

            var state = metadata is null ? "gone" : metadata.RuntimeStatus.ToString().ToLowerInvariant();
            var reason = $"provisioning run {run.RunId} is {state} while the pool is {run.Status.ToSql()}";
            if (await pools.TransitionAsync(run.PoolId, [PoolStatus.Provisioning, PoolStatus.Initializing], PoolStatus.Error, reason, actor, ct) is null)
            {
                continue; // it moved on meanwhile (its run finished it), or another caller settles it
            }

            settled++;
            await pools.AppendEventAsync(run.PoolId, null, PoolEventNames.ProvisioningRunLost, reason, actor, ct);
            LogRunLost(run.Name, run.RunId, state);
            if (await pools.BeginRetireAsync(run.PoolId, [PoolStatus.Error], reason, actor, ct) is RetireGate.Started started)
            {
                await deprovisioner.DeprovisionAsync(started.Pool, actor, ct);
            }
        }

        return settled;
    }

    /// <summary>Activity: the server exists (created through the pool's driver, idempotent by name) and the catalog knows its endpoint.</summary>
    public async Task CreateServerAsync(long poolId, CancellationToken ct)
    {
        // The run was started before its reservation committed: an engine quick to run this first activity waits for it.
        var pool = await pools.GetAsync(poolId, ct);
        if (pool is null)
        {
            await store.AwaitReservationsAsync(ct);
            pool = await RequirePoolAsync(poolId, ct);
        }

        if (pool.Status != PoolStatus.Provisioning)
        {
            return;
        }

        var spec = new PoolServerSpec(pool.Name, pool.ServerType.ToSql(), pool.AdminUser, passwords.Reveal(pool), pool.CpuLimit, pool.MemoryLimit,
            CatalogId: await identity.GetAsync(ct));
        var endpoint = await provisioners.For(pool.Driver).CreateAsync(spec, ct);
        await store.SetEndpointAsync(poolId, endpoint.Host, endpoint.Port, endpoint.ResourceId, endpoint.StoragePath, ct);
        LogCreated(pool.Name, pool.Driver, endpoint.Host, endpoint.Port);
        // Only a pool settled as lost (error, or retired) gives up its server: a duplicate run of this activity (activities run
        // at least once) that finds the pool already initializing, active or full must leave the server in service alone.
        if (await RequirePoolAsync(poolId, ct) is { Status: PoolStatus.Error or PoolStatus.Deleting or PoolStatus.Deleted } settled)
        {
            // Its run was lost and the pool settled while this activity was still creating: leave no server behind, and
            // finish the retirement the settling began (its own deprovision may have raced this creation).
            if (settled.Status == PoolStatus.Deleting)
            {
                await deprovisioner.DeprovisionAsync(settled, AuditActor.Current, ct);
            }
            else
            {
                await provisioners.For(pool.Driver).DeleteAsync(RefOf(settled), ct);
            }
        }
    }

    /// <summary>Activity: does the server answer <c>SELECT 1</c> with its admin credentials?</summary>
    public async Task<bool> IsReadyAsync(long poolId, CancellationToken ct)
    {
        var pool = await RequirePoolAsync(poolId, ct);
        if (pool.Status is PoolStatus.Active or PoolStatus.Initializing)
        {
            return true;
        }

        var state = await provisioners.For(pool.Driver).InspectAsync(RefOf(pool), ct);
        return state.Presence == ServerPresence.Running;
    }

    /// <summary>Activity: harden the new server and put it into placement.</summary>
    public async Task InitializeAsync(long poolId, CancellationToken ct)
    {
        var pool = await RequirePoolAsync(poolId, ct);
        if (pool.Status is PoolStatus.Active)
        {
            return;
        }

        pool = await pools.TransitionAsync(poolId, [PoolStatus.Provisioning, PoolStatus.Initializing], PoolStatus.Initializing, "server answers", AuditActor.Current, ct) ?? pool;
        var version = await hardening.HardenAsync(pool, ct);

        await store.SetServerFactsAsync(poolId, version, ct);
        if (await pools.TransitionAsync(poolId, [PoolStatus.Initializing], PoolStatus.Active, "healthy", AuditActor.Current, ct) is { } active)
        {
            RecordProvisioned(active, succeeded: true);
        }

        LogActive(pool.Name, version);
    }

    /// <summary>
    /// Activity (final failure): the pool leaves provisioning for error first, and only a pool this call moved there has its
    /// server removed. A late or repeated call for a pool already in service (activities may run twice; a reply may be lost
    /// after the pool went active) removes nothing (DESIGN §8.1); a server a failed removal left behind goes with the
    /// error pool at the daily cleanup.
    /// </summary>
    public async Task FailAsync(long poolId, string reason, CancellationToken ct)
    {
        await RequirePoolAsync(poolId, ct);
        var failed = await pools.TransitionAsync(poolId, [PoolStatus.Provisioning, PoolStatus.Initializing], PoolStatus.Error, reason, AuditActor.Current, ct);
        if (failed is null)
        {
            return;
        }

        LogFailed(failed.Name, reason);
        RecordProvisioned(failed, succeeded: false);
        await connections.ForgetAsync(poolId);
        await provisioners.For(failed.Driver).DeleteAsync(RefOf(failed), ct);
    }

    /// <summary>The run's duration: from the pool's reservation (its row's creation) until this transition.</summary>
    private void RecordProvisioned(Pool pool, bool succeeded) =>
        telemetry.Provisioned(pool.ServerType.ToString().ToLowerInvariant(), time.GetUtcNow() - pool.CreatedAt, succeeded);

    private ProvisioningLimits Limits => new(Options.MaxServers, Options.MaxDedicatedAttempts, Options.MaxSharedFailedPools);

    public ProvisionPoolInput InputFor(long poolId) =>
        new(poolId, Options.CreateAttempts, Options.FirstRetryInterval, Options.ReadyPollInterval, Options.ReadyTimeout);

    // Runs under the reservation's lock: a joined run is started again only if it never got started (a crash between
    // reserving and starting).
    private async Task ScheduleAsync(DurableTaskClient client, ReservedPool reserved, CancellationToken ct)
    {
        if (reserved.Joined && (reserved.ProvisioningInstanceId.Length == 0 || await client.GetInstanceAsync(reserved.ProvisioningInstanceId, ct) is not null))
        {
            return;
        }

        await client.ScheduleNewOrchestrationInstanceAsync(ProvisionPoolRun.Orchestrator, InputFor(reserved.PoolId),
            new StartOrchestrationOptions(reserved.ProvisioningInstanceId), ct);
        LogStarted(reserved.Name, reserved.ProvisioningInstanceId);
    }

    private async Task<Pool> RequirePoolAsync(long poolId, CancellationToken ct) =>
        await pools.GetAsync(poolId, ct) ?? throw new InvalidOperationException($"Pool {poolId} is not in the catalog.");

    private PoolServerRef RefOf(Pool pool) => PoolServerRef.Of(pool, passwords.Reveal(pool));

    private string NewEncryptedAdminPassword(string poolName) =>
        passwords.Protect(PasswordGenerator.Generate(AdminPasswordLength), poolName);

    [LoggerMessage(LogLevel.Information, "Provisioning pool {Pool} as orchestration {OrchestrationId}")]
    private partial void LogStarted(string pool, string orchestrationId);

    [LoggerMessage(LogLevel.Information, "Headroom: {FreeSlots} free shared slots, below {MinFreeSlots}; provisioning the next pool")]
    private partial void LogHeadroom(int freeSlots, int minFreeSlots);

    [LoggerMessage(LogLevel.Warning, "Headroom pool not provisioned: {Refusal}")]
    private partial void LogHeadroomRefused(string refusal);

    [LoggerMessage(LogLevel.Warning, "Pool {Pool} was still being provisioned but its run {OrchestrationId} is {State}; settled to error and deprovisioned")]
    private partial void LogRunLost(string pool, string orchestrationId, string state);

    [LoggerMessage(LogLevel.Information, "Pool {Pool} server created by driver {Driver} at {Host}:{Port}")]
    private partial void LogCreated(string pool, string driver, string host, int port);

    [LoggerMessage(LogLevel.Information, "Pool {Pool} is active (PostgreSQL {Version})")]
    private partial void LogActive(string pool, string? version);

    [LoggerMessage(LogLevel.Warning, "Provisioning pool {Pool} failed: {Reason}")]
    private partial void LogFailed(string pool, string reason);
}
