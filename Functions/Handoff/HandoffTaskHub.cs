using System.Security.Cryptography;
using System.Text;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Handoff;

/// <summary>
/// The handoff's side of the task hub: signalling a deposit into the instance's <see cref="CredentialHandoff"/> entity, waiting
/// until it is applied, running one take-once <see cref="ClaimCredentials"/> run, each bounded by the handoff's timeouts. What
/// to deposit and when to claim is <see cref="HandoffService"/>'s.
/// </summary>
public sealed partial class HandoffTaskHub(IOptions<HandoffOptions> options, TimeProvider time, ILogger<HandoffTaskHub> logger)
{
    private HandoffOptions Options => options.Value;

    /// <summary>What the handoff keeps of an <c>Idempotency-Key</c>: its SHA-256, never the key.</summary>
    public static string KeyHash(string idempotencyKey) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(idempotencyKey)));

    private static string ClaimInstanceId(Guid instanceId) => $"claim-{instanceId:D}-{Guid.NewGuid():N}";

    /// <summary>Runs <paramref name="call"/> until <paramref name="deadline"/>; a task hub that does not answer by then is a <see cref="TimeoutException"/>.</summary>
    public async Task BoundedAsync(Func<CancellationToken, Task> call, DateTimeOffset deadline, CancellationToken ct)
    {
        var left = deadline - time.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            throw new TimeoutException("The task hub did not answer in time.");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(left);
        try
        {
            // WaitAsync too: not every client honours its token while storage stalls.
            await call(timeout.Token).WaitAsync(left, time, ct);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException("The task hub did not answer in time.");
        }
    }

    public async Task SignalDepositAsync(DurableTaskClient client, Guid instanceId, HandoffDeposit deposit, CancellationToken ct)
    {
        await client.Entities.SignalEntityAsync(CredentialHandoff.IdFor(instanceId), nameof(CredentialHandoff.Deposit), deposit, cancellation: ct);
        LogDeposited(instanceId, deposit.ExpiresAt);
    }

    public async Task WaitUntilAppliedAsync(DurableTaskClient client, Guid instanceId, HandoffDeposit deposit, DateTimeOffset deadline, CancellationToken ct)
    {
        while (true)
        {
            EntityMetadata<HandoffState>? entity = null;
            await BoundedAsync(async t => entity = await client.Entities.GetEntityAsync<HandoffState>(CredentialHandoff.IdFor(instanceId), includeState: true, t), deadline, ct);
            // Applied, or overtaken by a newer deposit (the entity keeps the newest): a newer rotation's, or for a first password
            // (no rotation id) any rotation's or its own.
            if (entity is { IncludesState: true, State: { } state }
                && (state.RotationId >= deposit.RotationId
                    || (deposit.RotationId is null && (state.RotationId is not null || state.DepositedAt >= deposit.DepositedAt))))
            {
                return;
            }

            if (time.GetUtcNow() >= deadline)
            {
                throw new TimeoutException("The deposit was not applied in time.");
            }

            await Task.Delay(Options.ClaimRetryInterval, time, ct);
        }
    }

    /// <summary>One take-once claim run; null when the run failed rather than answered.</summary>
    public async Task<ClaimResult?> RunClaimAsync(DurableTaskClient client, Guid instanceId, string? idempotencyKey, CancellationToken ct)
    {
        var id = ClaimInstanceId(instanceId);
        var input = idempotencyKey is null
            ? new ClaimCredentialsInput(instanceId.ToString("D"))
            : new ClaimCredentialsInput(instanceId.ToString("D"), KeyHash(idempotencyKey), Options.ClaimReplayWindow);
        await BoundedAsync(t => client.ScheduleNewOrchestrationInstanceAsync(nameof(ClaimCredentials), input, new StartOrchestrationOptions(id), t),
            time.GetUtcNow() + Options.StorageTimeout, ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.ClaimTimeout);
        OrchestrationMetadata run;
        try
        {
            run = await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The claim run {id} did not finish within {Options.ClaimTimeout}.");
        }

        var answer = run.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? run.ReadOutputAs<ClaimResult>() : null;
        if (answer is null)
        {
            LogClaimRunFailed(instanceId, run.RuntimeStatus);
        }

        try
        {
            // Its output (ciphertext) and history have served their purpose; best effort and bounded (the history purge
            // of the daily cleanup removes what is left), so it never replaces the answer.
            await BoundedAsync(t => client.PurgeInstanceAsync(id, t), time.GetUtcNow() + Options.StorageTimeout, CancellationToken.None);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogClaimPurgeDeferred(e, instanceId);
        }

        return answer;
    }

    [LoggerMessage(LogLevel.Warning, "The claim run of instance {InstanceId} ended {RuntimeStatus} without an answer; answered unavailable")]
    private partial void LogClaimRunFailed(Guid instanceId, OrchestrationRuntimeStatus runtimeStatus);
    [LoggerMessage(LogLevel.Warning, "The finished claim run of instance {InstanceId} could not be purged now; the history cleanup removes it")]
    private partial void LogClaimPurgeDeferred(Exception e, Guid instanceId);
    [LoggerMessage(LogLevel.Information, "Deposited the credential handoff of instance {InstanceId}, expiring at {ExpiresAt}")]
    private partial void LogDeposited(Guid instanceId, DateTimeOffset expiresAt);
}
