using Microsoft.Extensions.Logging;
using TenantDb.Functions.Catalog;

namespace TenantDb.Functions.Moves;

/// <summary>
/// The health sweep's part for moves: a move left in flight with no worker on its instance (its run failed, was terminated,
/// or its history purged, so no <c>RecoverMove</c> timer will come) is finished when it had switched and rolled back when not,
/// so no tenant stays frozen and no target slot stays reserved. A move whose worker is alive holds the instance's lock and is
/// left alone.
/// </summary>
public sealed partial class StuckMoveRecovery(MoveStore moves, TenantStore tenants, MoveService mover, TimeProvider time, ILogger<StuckMoveRecovery> logger)
{
    /// <summary>Moves younger than this are never looked at: their own run recovers them.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromMinutes(10);

    private const int BatchSize = 20;

    /// <summary>Recovers the abandoned moves; returns how many ended moved and how many rolled back.</summary>
    public async Task<(int Finished, int RolledBack)> RecoverAsync(CancellationToken ct)
    {
        var (finished, rolledBack) = (0, 0);
        foreach (var move in await moves.ListInFlightAsync(time.GetUtcNow() - Grace, BatchSize, ct))
        {
            await using (var probe = await tenants.OpenInstanceLockAsync(move.InstanceId, ct))
            {
                if (!await probe.TryAcquireAsync(ct))
                {
                    continue;
                }
            }

            LogAbandoned(move.Id, move.InstanceId, move.Status);
            var result = await mover.RecoverAsync(new MoveRunInput(move.Id, move.InstanceId, move.TargetPoolId, "recovered by the health sweep"), ct);
            if (result.Status == MoveResult.Moved)
            {
                finished++;
            }
            else if (await moves.FindAsync(move.Id, ct) is { Status: TenantMove.Failed })
            {
                rolledBack++;
            }
        }

        return (finished, rolledBack);
    }

    [LoggerMessage(LogLevel.Warning, "Move {MoveId} of instance {InstanceId} was left {Status} with no worker; the health sweep recovers it")]
    private partial void LogAbandoned(Guid moveId, Guid instanceId, string status);
}
