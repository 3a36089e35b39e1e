using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

/// <summary>What an allocate (or provision-dedicated) call answers.</summary>
public abstract record AllocateResult
{
    /// <summary>200: the database is ready.</summary>
    public sealed record Placed(AllocationView View) : AllocateResult;

    /// <summary>202: waiting for a pool; the orchestration's status URLs track it.</summary>
    public sealed record Pending(string OrchestrationId, string Step) : AllocateResult;

    /// <summary>202: another call is still creating this instance's database.</summary>
    public sealed record InProgress(TenantDatabase Tenant) : AllocateResult;

    /// <summary>4xx/5xx: invalid, conflict, or failed with everything compensated.</summary>
    public sealed record Refused(AllocationOutcome Outcome) : AllocateResult;
}

/// <summary>
/// The allocate use case around <see cref="AllocationService"/>: the credential handoff, and the wait for capacity
/// (start or join pool provisioning, then an <c>AllocateWhenReady</c> orchestration) when no pool has room.
/// </summary>
public sealed partial class AllocationFlow(
    AllocationService allocation,
    ProvisioningService provisioning,
    ICredentialDeposit handoff,
    IOptions<AllocationOptions> allocationOptions,
    IOptions<PoolsOptions> poolsOptions,
    IOptions<CallbackUrlOptions> callbackOptions,
    ILogger<AllocationFlow> logger)
{
    private AllocationOptions Options => allocationOptions.Value;

    public static string ClaimUrl(string baseUrl, Guid instanceId) => $"{baseUrl}/api/database/credentials/{instanceId:D}/claim";

    public async Task<AllocateResult> AllocateAsync(AllocationRequest? request, DurableTaskClient client, string baseUrl, CancellationToken ct)
    {
        if (!AllocationValidator.TryValidate(request, poolsOptions.Value, callbackOptions.Value.AllowLoopbackCallbacks, out var valid, out var errors))
        {
            return new AllocateResult.Refused(new AllocationOutcome.Invalid(errors));
        }

        switch (await allocation.AllocateAsync(valid, ct))
        {
            case AllocationOutcome.Allocated placed:
                var view = await ViewAsync(placed, client, baseUrl, inline: Options.InlinePassword, ct);
                if (placed.Password is null && Options.InlinePassword
                    && await handoff.TakeAllocationPasswordAsync(client, placed.Tenant.InstanceId, ct) is { } handed)
                {
                    // The first 200 after a 202: the waiting allocation deposited the password (its output never holds it);
                    // this answer takes it, once, so the caller's "allocate, poll, allocate again" loop ends with it.
                    view = view with { DbUser = handed.DbUser, DbPassword = handed.Password.Reveal() };
                }

                // Headroom ahead of demand: once this pool has fewer free slots than the minimum (not only once it is full),
                // so the next server is ready before a tenant has to wait for it.
                if (placed.Pool.Status == PoolStatus.Full || placed.Pool.MaxInstances - placed.Pool.CurrentInstances < poolsOptions.Value.MinFreeSlots)
                {
                    await EnsureHeadroomBestEffortAsync(client, ct);
                }

                return new AllocateResult.Placed(view);
            case AllocationOutcome.NoCapacity:
                return await WaitForCapacityAsync(valid, client, baseUrl, ct);
            case AllocationOutcome.InProgress progress:
                return await client.GetInstanceAsync(WaitForCapacity.InstanceIdFor(valid.InstanceId), ct) is { } run && IsWaiting(run)
                    ? new AllocateResult.Pending(run.InstanceId, run.SerializedCustomStatus ?? "waiting")
                    : new AllocateResult.InProgress(progress.Tenant);
            case var refused:
                return new AllocateResult.Refused(refused);
        }
    }

    /// <summary>A dedicated server for one instance of a dedicated tier; idempotent like allocate.</summary>
    public async Task<AllocateResult> ProvisionDedicatedAsync(AllocationRequest? request, DurableTaskClient client, string baseUrl, CancellationToken ct)
    {
        if (!AllocationValidator.TryValidate(request, poolsOptions.Value, callbackOptions.Value.AllowLoopbackCallbacks, out var valid, out var errors))
        {
            return new AllocateResult.Refused(new AllocationOutcome.Invalid(errors));
        }

        if (!valid.Tier.Dedicated)
        {
            var dedicatedTiers = string.Join(", ", poolsOptions.Value.Tiers.Where(t => t.Value.Dedicated).Select(t => t.Key).Order(StringComparer.Ordinal));
            return new AllocateResult.Refused(new AllocationOutcome.Invalid(new Dictionary<string, string[]>
            {
                ["plan_tier"] = [$"plan_tier '{valid.PlanTier}' shares pools; provision-dedicated takes: {dedicatedTiers}."],
            }));
        }

        return await AllocateAsync(request, client, baseUrl, ct);
    }

    /// <summary>Where an instance's database lives, or the run it waits on; null when the instance is unknown.</summary>
    public async Task<AllocateResult?> StatusAsync(Guid instanceId, DurableTaskClient client, CancellationToken ct)
    {
        if (await allocation.FindAsync(instanceId, ct) is { } live)
        {
            return live.Tenant.Status == TenantDatabaseStatus.Creating
                ? new AllocateResult.InProgress(live.Tenant)
                : new AllocateResult.Placed(AllocationView.Of(live.Pool, live.Tenant));
        }

        // Pending (scheduled, not started yet) waits too: a look-up right after the 202 must not answer 404.
        return await client.GetInstanceAsync(WaitForCapacity.InstanceIdFor(instanceId), ct) is { } run && IsWaiting(run)
            ? new AllocateResult.Pending(run.InstanceId, run.SerializedCustomStatus ?? "waiting")
            : null;
    }

    /// <summary>One try of a waiting allocation (the <c>TryAllocate</c> activity).</summary>
    public async Task<AllocateAttempt> TryAllocateWaitingAsync(AllocateWhenReadyInput input, DurableTaskClient client, CancellationToken ct)
    {
        var request = new AllocationRequest(input.InstanceId, input.CustomerId, input.PlanTier, input.CallbackUrl);
        if (!AllocationValidator.TryValidate(request, poolsOptions.Value, callbackOptions.Value.AllowLoopbackCallbacks, out var valid, out var errors))
        {
            return new AllocateAttempt(true, null, string.Join(" ", errors.Values.SelectMany(e => e)), "invalid");
        }

        switch (await allocation.AllocateAsync(valid, ct))
        {
            case AllocationOutcome.Allocated placed:
                // The orchestration's output lands in the task hub in clear text: never the password, only the claim URL.
                return new AllocateAttempt(true, await ViewAsync(placed, client, input.BaseUrl, inline: false, ct), null, "allocated");
            case AllocationOutcome.NoCapacity { Dedicated: var dedicated }:
                try
                {
                    var pool = dedicated
                        ? await provisioning.StartDedicatedAsync(client, valid, AuditActor.Current, ct)
                        : await provisioning.StartSharedAsync(client, AuditActor.Current, $"no capacity for instance {valid.InstanceId:D}", ct, forNoCapacity: true);
                    return new AllocateAttempt(false, null, null, $"waiting-for-pool:{pool.Name}");
                }
                catch (ProvisioningRefusedException refused)
                    when (refused.Type is ProvisioningRefusedException.ServerLimit or ProvisioningRefusedException.SharedFailures)
                {
                    // Room may still come back (a purge, a retired pool, a raised limit, a mended driver): keep waiting, bounded by the
                    // run's timeout.
                    return new AllocateAttempt(false, null, null, refused.Type);
                }
                catch (ProvisioningRefusedException refused)
                {
                    return new AllocateAttempt(true, null, refused.Message, refused.Type);
                }
            case AllocationOutcome.InProgress or AllocationOutcome.Failed:
                return new AllocateAttempt(false, null, null, "retrying");
            case AllocationOutcome.Conflict conflict:
                return new AllocateAttempt(true, null, conflict.Detail, "conflict");
            case var other:
                return new AllocateAttempt(true, null, other.ToString(), "failed");
        }
    }

    private async Task<AllocateResult> WaitForCapacityAsync(ValidAllocationRequest valid, DurableTaskClient client, string baseUrl, CancellationToken ct)
    {
        var id = WaitForCapacity.InstanceIdFor(valid.InstanceId);
        if (await ConflictWithWaitingAsync(client, id, valid, ct) is { } conflict)
        {
            return conflict;
        }

        try
        {
            if (valid.Tier.Dedicated)
            {
                await provisioning.StartDedicatedAsync(client, valid, AuditActor.Current, ct);
            }
            else
            {
                await provisioning.StartSharedAsync(client, AuditActor.Current, $"no capacity for instance {valid.InstanceId:D}", ct, forNoCapacity: true);
            }
        }
        catch (ProvisioningRefusedException refused)
        {
            return new AllocateResult.Refused(new AllocationOutcome.Unavailable(refused.Type, refused.Message));
        }

        var existing = await client.GetInstanceAsync(id, ct);
        if (!IsWaiting(existing))
        {
            var input = new AllocateWhenReadyInput(valid.InstanceId.ToString("D"), valid.CustomerId.ToString("D"), valid.PlanTier,
                baseUrl, Options.WaitPollInterval, Options.WaitForCapacityTimeout, valid.CallbackUrl);
            try
            {
                await client.ScheduleNewOrchestrationInstanceAsync(WaitForCapacity.Orchestrator, input, new StartOrchestrationOptions(id), ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Two requests for one instance: the other one started the same deterministic run.
                if (!IsWaiting(await client.GetInstanceAsync(id, ct)))
                {
                    throw;
                }

                if (await ConflictWithWaitingAsync(client, id, valid, ct) is { } raced)
                {
                    return raced;
                }
            }
        }

        return new AllocateResult.Pending(id, "waiting-for-capacity");
    }

    private static bool IsWaiting(OrchestrationMetadata? run) =>
        run is { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended };

    /// <summary>The instance already waits for capacity for another customer or tier: 409, as on the fast path.</summary>
    private static async Task<AllocateResult.Refused?> ConflictWithWaitingAsync(DurableTaskClient client, string id, ValidAllocationRequest valid, CancellationToken ct)
    {
        var run = await client.GetInstanceAsync(id, getInputsAndOutputs: true, ct);
        if (!IsWaiting(run) || run!.ReadInputAs<AllocateWhenReadyInput>() is not { } waiting)
        {
            return null;
        }

        return Guid.TryParse(waiting.CustomerId, out var customer) && customer == valid.CustomerId && waiting.PlanTier == valid.PlanTier
            ? null
            : new AllocateResult.Refused(new AllocationOutcome.Conflict("instance-conflict",
                "This instance_id is already waiting for a database for another customer_id or plan_tier."));
    }

    private async Task<AllocationView> ViewAsync(AllocationOutcome.Allocated placed, DurableTaskClient client, string baseUrl, bool inline, CancellationToken ct)
    {
        if (placed.Password is null)
        {
            return AllocationView.Of(placed.Pool, placed.Tenant);
        }

        if (inline)
        {
            return AllocationView.Of(placed.Pool, placed.Tenant, password: placed.Password.Reveal());
        }

        // The ready row carries the password sealed (the catalog's copy): its first claim deposits it in the handoff, so nothing
        // on this path waits for the task hub. Only the inline mode keeps no copy: its waiting run deposits here.
        var expires = Options.InlinePassword
            ? await handoff.DepositAsync(client, placed.Tenant.InstanceId, placed.Password, placed.Tenant.HandoffFrom, ct)
            : handoff.ExpiresAt(placed.Tenant.HandoffFrom);
        return AllocationView.Of(placed.Pool, placed.Tenant, new CredentialsView(ClaimUrl(baseUrl, placed.Tenant.InstanceId), expires));
    }

    // The tenant is allocated; the headroom rule is a side effect the health sweep also applies. A fault in it (task hub,
    // catalog, a lost run's deprovisioning) never turns a finished allocation, and its one-time password, into a 503.
    private async Task EnsureHeadroomBestEffortAsync(DurableTaskClient client, CancellationToken ct)
    {
        try
        {
            await provisioning.EnsureHeadroomAsync(client, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            LogHeadroomDeferred(e);
        }
    }

    [LoggerMessage(LogLevel.Warning, "The headroom rule could not run after an allocation; the health sweep applies it")]
    private partial void LogHeadroomDeferred(Exception e);
}
