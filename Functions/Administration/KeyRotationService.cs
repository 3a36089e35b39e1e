using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>What one re-wrap pass did: rows now under the current key, rows a concurrent writer changed first, rows that did not decrypt, rows left.</summary>
public sealed record RewrapSummary(string CurrentKeyId, int Rewrapped, int ChangedMeanwhile, int Failed, int Remaining);

/// <summary>
/// Re-wraps the pool admin passwords in the catalog under the current secrets key (<see cref="SecretProtector.CurrentKeyId"/>),
/// so an old key can be removed from configuration: all of them on an operator's request, a bounded batch on every health sweep.
/// Credential handoffs are not re-wrapped: they live at most <c>Handoff:Ttl</c> and decrypt while their key is configured.
/// </summary>
public sealed partial class KeyRotationService(
    AdminPasswordStore store,
    SecretProtector secrets,
    IOptions<SecretsOptions> options,
    ILogger<KeyRotationService> logger)
{

    // Where the sweep's next step starts, so rows that cannot be re-wrapped never hold back the ones after them.
    private long _sweepAfterId;

    /// <summary>Every ciphertext not under the current key (the operator's action).</summary>
    public async Task<RewrapSummary> RewrapAllAsync(CancellationToken ct) => (await RewrapAsync(0, int.MaxValue, ct)).Summary;

    /// <summary>At most <see cref="SecretsOptions.RewrapBatchSize"/> of them, after where the last step ended (the health sweep's step).</summary>
    public async Task<RewrapSummary> RewrapStepAsync(CancellationToken ct)
    {
        var budget = options.Value.RewrapBatchSize;
        var (summary, examined, lastId) = await RewrapAsync(Interlocked.Read(ref _sweepAfterId), budget, ct);
        Interlocked.Exchange(ref _sweepAfterId, examined < budget ? 0 : lastId); // at the end: from the start next time
        return summary;
    }

    private async Task<(RewrapSummary Summary, int Examined, long LastId)> RewrapAsync(long afterId, int budget, CancellationToken ct)
    {
        var prefix = secrets.CurrentPrefix;
        int examined = 0, rewrapped = 0, changed = 0, failed = 0;
        while (examined < budget)
        {
            var batch = await store.ListNotUnderAsync(prefix, afterId, Math.Min(options.Value.RewrapBatchSize, budget - examined), ct);
            if (batch.Count == 0)
            {
                break;
            }

            foreach (var row in batch)
            {
                examined++;
                afterId = row.PoolId;
                string? replacement;
                try
                {
                    replacement = secrets.Rewrap(row.Ciphertext, PoolAdminPasswords.Purpose(row.PoolName));
                }
                catch (CryptographicException)
                {
                    failed++;
                    LogUndecryptable(row.PoolName, SecretProtector.KeyIdOf(row.Ciphertext) ?? "(none: first format)");
                    continue;
                }

                if (replacement is null)
                {
                    continue;
                }

                if (await store.ReplaceAsync(row.PoolId, row.Ciphertext, replacement, secrets.CurrentKeyId, AuditActor.Current, ct))
                {
                    rewrapped++;
                }
                else
                {
                    changed++; // a concurrent writer stored a new password; it is under the current key or the next pass takes it
                }
            }
        }

        var summary = new RewrapSummary(secrets.CurrentKeyId, rewrapped, changed, failed, await store.CountNotUnderAsync(prefix, ct));
        if (examined > 0)
        {
            LogRewrapped(summary.CurrentKeyId, summary.Rewrapped, summary.ChangedMeanwhile, summary.Failed, summary.Remaining);
        }

        return (summary, examined, afterId);
    }

    [LoggerMessage(LogLevel.Error, "The admin password of pool {Pool} does not decrypt with the configured secrets keys (its key id: {KeyId})")]
    private partial void LogUndecryptable(string pool, string keyId);

    [LoggerMessage(LogLevel.Information, "Secrets re-wrapped under key {KeyId}: {Rewrapped} rewrapped, {ChangedMeanwhile} changed meanwhile, {Failed} not decryptable, {Remaining} not yet under this key")]
    private partial void LogRewrapped(string keyId, int rewrapped, int changedMeanwhile, int failed, int remaining);
}
