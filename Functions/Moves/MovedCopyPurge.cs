using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Moves;

/// <summary>
/// The daily cleanup's part for moves: the source copies kept by moves whose retention ended are dropped, only when the
/// database there still carries its move's mark and no live row of the instance is on that pool.
/// </summary>
public sealed partial class MovedCopyPurge(MoveStore moves, MoveDdl ddl, ITenantDdl tenantDdl, IOptions<AllocationOptions> allocation, TimeProvider time,
    ILogger<MovedCopyPurge> logger)
{
    private const int BatchSize = 100;

    /// <summary>Drops the due copies; returns how many were dropped and how many failed (retried next time).</summary>
    public async Task<(int Purged, int Failed)> PurgeDueAsync(string actor, CancellationToken ct)
    {
        var (purged, failed) = (0, 0);
        foreach (var copy in await moves.ListSourceCopiesDueAsync(time.GetUtcNow(), BatchSize, ct))
        {
            var names = TenantNames.Of(copy.InstanceId, copy.DbName, copy.OwnerRole, copy.LoginRole, allocation.Value.DatabasePrefix);
            try
            {
                if (await ddl.IsMovedCopyAsync(copy.Pool, names, copy.MoveId, ct))
                {
                    await tenantDdl.DropAsync(copy.Pool, names, ct);
                }
                else
                {
                    // Not (or no longer) this move's copy: its objects are left alone, only the record ends.
                    LogNotOurs(copy.InstanceId, copy.Pool.Name);
                }

                await moves.MarkSourcePurgedAsync(copy.MoveId, actor, ct);
                purged++;
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                LogFailed(e, copy.InstanceId, copy.Pool.Name);
                failed++;
            }
        }

        return (purged, failed);
    }

    [LoggerMessage(LogLevel.Warning, "The copy of moved instance {InstanceId} on pool {Pool} no longer carries its move's mark; left alone")]
    private partial void LogNotOurs(Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "The copy of moved instance {InstanceId} on pool {Pool} could not be dropped; retried next cleanup")]
    private partial void LogFailed(Exception e, Guid instanceId, string pool);
}
