using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Moves;

/// <summary>
/// Moves one tenant's database to another pool (DESIGN.md §10). Under the instance's lock: the target's slot reserved with the
/// move's row; then, holding the tenant row (no rotation, release or restore meanwhile), the tenant's roles made on the
/// target with their stored verifiers, a scratch database there, the freeze of the source (logins refused, sessions ended),
/// <c>pg_dump | pg_restore</c> straight from source to target, every table's rows counted on both sides, and the switch of
/// the row (pool, generation + 1) in that same transaction. Then the copy opens on the target under the tenant's name and the
/// source copy is closed and kept until the release retention ends. Anything failing before the switch rolls back: the target
/// emptied, its slot given back, the source unfrozen. A move that died mid-way is finished (switched) or rolled back
/// (not switched) by the next move of the tenant.
/// </summary>
public sealed partial class MoveService(
    TenantStore tenants,
    PoolStore pools,
    MoveStore moves,
    MoveDdl ddl,
    ITenantDdl tenantDdl,
    TenantRestoreDdl restoreDdl,
    PgClientTools tools,
    PoolAdminPasswords passwords,
    IOptions<AllocationOptions> allocation,
    IOptions<PoolsOptions> poolsOptions,
    TimeProvider time,
    ILogger<MoveService> logger)
{
    /// <summary>The error type of a move stopped where only a later run can tell how to go on (<see cref="RecoverAsync(MoveRunInput, CancellationToken)"/>).</summary>
    public const string Interrupted = "move-interrupted";

    private static readonly TimeSpan[] SwitchCheckDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4)];

    /// <summary>Runs the move (the activity). Never throws for a move that cannot be done: its result says why.</summary>
    public async Task<MoveResult> RunAsync(MoveRunInput input, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        Allocation? live = null;
        try
        {
            // The same run again (its activity redelivered after its host died): this move is finished or rolled back, not begun anew.
            if (await moves.FindAsync(input.MoveId, ct) is not null)
            {
                return await RecoverAsync(input, ct);
            }

            await using var instanceLock = await tenants.OpenInstanceLockAsync(input.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                throw new MoveRefusedException("instance-busy", "Another operation on this instance is under way; try again later.");
            }

            live = await MovableAsync(input.InstanceId, ct);
            var names = NamesOf(live);
            // A move of this tenant that died mid-way: finished when it had switched, rolled back when not.
            if (await moves.FindInFlightAsync(live.Tenant.Id, ct) is { } interrupted)
            {
                await RecoverAsync(interrupted, names, ct);
                live = await MovableAsync(input.InstanceId, ct);
            }

            if (input.TargetPoolId == live.Pool.Id)
            {
                throw new MoveRefusedException("already-on-target", "The tenant's database is already on the target pool.");
            }

            var dedicated = poolsOptions.Value.Tiers.TryGetValue(input.AsTier ?? live.Tenant.PlanTier, out var tier) && tier.Dedicated;
            var (move, target) = await moves.BeginAsync(input.MoveId, live.Tenant, input.TargetPoolId, dedicated, input.Reason, AuditActor.Current, ct) switch
            {
                MoveBegin.Begun begun => (begun.Move, begun.Target),
                MoveBegin.InFlight => throw new MoveRefusedException("move-in-flight", "Another move of this tenant is under way."),
                MoveBegin.NoTarget none => throw new MoveRefusedException("no-target", none.Detail),
                _ => throw new InvalidOperationException("Unknown answer of the move's start."),
            };
            LogStarted(input.InstanceId, live.Pool.Name, target.Name);
            var copied = await CopyAndSwitchAsync(live, move, target, names, ct);
            var seconds = time.GetElapsedTime(started).TotalSeconds;
            LogMoved(input.InstanceId, live.Pool.Name, target.Name, copied.DowntimeMs, copied.Tables, copied.Rows);
            return new MoveResult(input.MoveId, input.InstanceId, MoveResult.Moved, live.Pool.Id, target.Id, live.Tenant.Generation + 1, copied.DowntimeMs,
                copied.Tables, copied.Rows, copied.Bytes, seconds, null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var type = e switch
            {
                MoveRefusedException refused => refused.Type,
                MoveInterruptedException => Interrupted,
                _ => "move-failed",
            };
            var error = PgClientTools.Trim(e is MoveRefusedException or InvalidOperationException or PostgresException or BackupRefusedException
                ? e.Message : $"{e.GetType().Name}: {e.Message}");
            LogFailed(e, input.InstanceId, type);
            return new MoveResult(input.MoveId, input.InstanceId, MoveResult.Failed, live?.Pool.Id, input.TargetPoolId, live?.Tenant.Generation, null, 0, 0, 0,
                time.GetElapsedTime(started).TotalSeconds, error, type);
        }
    }

    /// <summary>
    /// Finishes (switched) or rolls back (not switched) the move <paramref name="input"/> started and that stopped mid-way; the
    /// <c>RecoverMove</c> activity. The result is the move's: <c>moved</c>, or <c>failed</c> with the tenant on its source.
    /// </summary>
    public async Task<MoveResult> RecoverAsync(MoveRunInput input, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        try
        {
            await using var instanceLock = await tenants.OpenInstanceLockAsync(input.InstanceId, ct);
            if (!await instanceLock.TryAcquireAsync(ct))
            {
                throw new MoveInterruptedException("Another operation on this instance is under way; the recovery tries again.", new TimeoutException());
            }

            var move = await moves.FindAsync(input.MoveId, ct);
            if (move is { Status: TenantMove.Moving or TenantMove.Switched })
            {
                var live = await tenants.FindLiveAsync(input.InstanceId, ct) ?? throw new InvalidOperationException("The moved instance has no database.");
                await RecoverAsync(move, NamesOf(live), ct);
                move = await moves.FindAsync(input.MoveId, ct);
            }

            var after = await tenants.FindLiveAsync(input.InstanceId, ct);
            return move?.Status is TenantMove.Moved or TenantMove.SourcePurged
                ? new MoveResult(input.MoveId, input.InstanceId, MoveResult.Moved, move.SourcePoolId, move.TargetPoolId, after?.Tenant.Generation, null, 0, 0, 0,
                    time.GetElapsedTime(started).TotalSeconds, null)
                : new MoveResult(input.MoveId, input.InstanceId, MoveResult.Failed, move?.SourcePoolId, move?.TargetPoolId, after?.Tenant.Generation, null, 0, 0, 0,
                    time.GetElapsedTime(started).TotalSeconds, "The move was interrupted and rolled back; the tenant is on its source.", "move-failed");
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            LogFailed(e, input.InstanceId, Interrupted);
            return new MoveResult(input.MoveId, input.InstanceId, MoveResult.Failed, null, input.TargetPoolId, null, null, 0, 0, 0,
                time.GetElapsedTime(started).TotalSeconds, PgClientTools.Trim(e.Message), Interrupted);
        }
    }

    private sealed record Copied(double DowntimeMs, int Tables, long Rows, long Bytes);

    private async Task<Allocation> MovableAsync(Guid instanceId, CancellationToken ct)
    {
        var live = await tenants.FindLiveAsync(instanceId, ct) ?? throw new MoveRefusedException("allocation-not-found", "This instance has no database.");
        return live.Tenant.Status is TenantDatabaseStatus.Ready or TenantDatabaseStatus.Released
            ? live
            : throw new MoveRefusedException("allocation-not-ready", $"The tenant database is {live.Tenant.Status.ToSql()}; only a ready or released one moves.");
    }

    // The names the row records (an adopted tenant keeps its own).
    private TenantNames NamesOf(Allocation live) => TenantNames.Of(live.Tenant, allocation.Value.DatabasePrefix);

    private async Task<Copied> CopyAndSwitchAsync(Allocation live, TenantMove move, Pool target, TenantNames names, CancellationToken ct)
    {
        var source = live.Pool;
        IReadOnlyList<string> frozen = [];
        var sourceOpen = true;
        long frozenAt = 0;
        double downtime = 0;
        (int Tables, long Rows, long Bytes) copied = default;
        var switched = false;
        try
        {
            var (sourceVersion, _) = await restoreDdl.ServerVersionAsync(source, ct);
            var (targetVersion, _) = await restoreDdl.ServerVersionAsync(target, ct);
            await tools.EnsureCanServeAsync(Math.Max(sourceVersion, targetVersion), ct);
            if (targetVersion / 10000 < sourceVersion / 10000)
            {
                throw new MoveRefusedException("target-too-old", "The target server runs an older PostgreSQL major version than the source.");
            }

            await DropTargetLeftoversAsync(live.Tenant.InstanceId, target, names, ct);
            sourceOpen = await ddl.AllowsConnectionsAsync(source, names, ct);
            var locked = await moves.LockTenantAsync(live.Tenant.Id, ct)
                ?? throw new MoveRefusedException("allocation-not-ready", "The tenant database is no longer ready or released.");
            await using var conn = locked.Conn;
            await using var tx = locked.Tx;
            // Held from here to the switch: the verifiers read now are the ones in force when the source freezes.
            await ddl.CreateRolesAsync(target, names, await ddl.ReadLoginsAsync(source, names, ct), ct);
            var restorePassword = PasswordGenerator.Generate(40);
            await restoreDdl.CreateScratchAsync(target, names, ScramVerifier.Compute(restorePassword), ct);

            frozenAt = time.GetTimestamp();
            frozen = await restoreDdl.FreezeAsync(source, names, ct);
            copied = await CopyVerifiedAsync(source, target, names, restorePassword, sourceOpen, ct);
            // Opened on the target before the switch commits, while the row is still held: a release or rotation waiting for the
            // row acts on the target, already as it will stay. Nobody learns the target's address before the commit, so a
            // rollback that drops it loses nothing.
            await ddl.OpenOnTargetAsync(target, names, frozen, sourceOpen, ct);
            downtime = time.GetElapsedTime(frozenAt).TotalMilliseconds;
            await MoveStore.SwitchAsync(conn, tx, move, frozen, sourceOpen,
                $"moved from pool {source.Name} to {target.Name}: {copied.Tables} tables, {copied.Rows} rows verified", AuditActor.Current, ct);
            try
            {
                await tx.CommitAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // The answer is lost, not necessarily the commit: the row says where the tenant is.
                switched = await SwitchedAsync(live.Tenant.InstanceId, target.Id) ?? throw new MoveInterruptedException(
                    "The catalog did not answer the switch; the tenant stays frozen on both sides until the next move of it finishes or rolls back.", e);
                if (!switched)
                {
                    throw;
                }
            }

            switched = true;
        }
        catch (Exception e) when (!switched && e is not MoveInterruptedException)
        {
            await RollbackAsync(live.Tenant.InstanceId, move, source, target, names, frozen, sourceOpen, e);
            throw;
        }

        // Switched: the tenant lives on the target; what remains closes the source copy and records the move.
        await FinishAsync(move, source, names, downtime, copied.Tables, copied.Rows);
        return new Copied(downtime, copied.Tables, copied.Rows, copied.Bytes);
    }

    /// <summary>The dump piped into the target's scratch (as the restore login, never the admin), then every table counted on both sides.</summary>
    private async Task<(int Tables, long Rows, long Bytes)> CopyVerifiedAsync(Pool source, Pool target, TenantNames names, string restorePassword, bool sourceOpen,
        CancellationToken ct)
    {
        var scratch = TenantRestoreDdl.ScratchName(names);
        if (!sourceOpen)
        {
            // A released tenant's database is closed even to the admin: opened for the copy's moment, its logins still refused.
            await ddl.SetAllowConnectionsAsync(source, names, allow: true, ct);
        }

        try
        {
            long bytes;
            try
            {
                bytes = await tools.CopyAsync(PgTarget.Of(source, passwords.Reveal(source), names.Database),
                    new PgTarget(target.Host, target.Port, TenantRestoreDdl.RestoreLoginName(names), restorePassword, scratch), names.OwnerRole, ct);
            }
            finally
            {
                await restoreDdl.DropRestoreLoginAsync(target, names, CancellationToken.None);
            }

            IReadOnlyList<TableRows> expected;
            long expectedLargeObjects;
            await using (var conn = await restoreDdl.OpenAsync(source, names.Database, ct))
            {
                (expected, expectedLargeObjects) = await TenantRestoreDdl.CountAsync(conn, null, ct);
            }

            IReadOnlyList<TableRows> restored;
            long largeObjects;
            await using (var conn = await restoreDdl.OpenAsync(target, scratch, ct))
            {
                (restored, largeObjects) = await TenantRestoreDdl.CountAsync(conn, null, ct);
            }

            var differ = expected.Count(e => !restored.Any(r => r.Schema == e.Schema && r.Table == e.Table && r.Rows == e.Rows));
            if (differ > 0 || restored.Count != expected.Count || largeObjects != expectedLargeObjects)
            {
                throw new InvalidOperationException(
                    $"The copy does not match the source: {differ} tables differ in rows, {restored.Count} tables of {expected.Count}, " +
                    $"{largeObjects} large objects of {expectedLargeObjects}.");
            }

            return (expected.Count, expected.Sum(t => t.Rows), bytes);
        }
        finally
        {
            if (!sourceOpen)
            {
                await ddl.SetAllowConnectionsAsync(source, names, allow: false, CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Objects of this tenant's names on the target are the copy an earlier move kept there (the tenant moves back) or leftovers
    /// of a move that could not clean up (a target that died): the target is never the tenant's pool (checked again here), so
    /// they are an outdated copy of this tenant or nobody's.
    /// </summary>
    private async Task DropTargetLeftoversAsync(Guid instanceId, Pool target, TenantNames names, CancellationToken ct)
    {
        if (await tenants.FindLiveAsync(instanceId, ct) is not { } live || live.Pool.Id == target.Id)
        {
            throw new InvalidOperationException("The move's target is the tenant's own pool; nothing was dropped.");
        }

        await restoreDdl.DropScratchAsync(target, names, ct);
        await tenantDdl.DropAsync(target, names, ct);
        await moves.MarkCopiesPurgedAsync(instanceId, target.Id, AuditActor.Current, ct);
    }

    /// <summary>Before the switch: the target emptied, its slot back, the source unfrozen. Each step runs whatever the others did.</summary>
    private async Task RollbackAsync(Guid instanceId, TenantMove move, Pool source, Pool target, TenantNames names, IReadOnlyList<string> frozen,
        bool sourceOpen, Exception cause)
    {
        var targetCleaned = true;
        try
        {
            await DropTargetLeftoversAsync(instanceId, target, names, CancellationToken.None);
        }
        catch (Exception e)
        {
            targetCleaned = false;
            LogTargetNotCleaned(e, instanceId, target.Name);
        }

        try
        {
            await restoreDdl.UnfreezeAsync(source, names, frozen.Count > 0 ? frozen : await restoreDdl.FrozenLoginsAsync(source, names, CancellationToken.None),
                CancellationToken.None);
            if (!sourceOpen)
            {
                await ddl.SetAllowConnectionsAsync(source, names, allow: false, CancellationToken.None);
            }
        }
        catch (Exception e)
        {
            LogSourceNotUnfrozen(e, instanceId, source.Name);
            throw new MoveInterruptedException("The source could not be unfrozen; the next move of this tenant rolls it back.", e);
        }

        var error = PgClientTools.Trim(cause.Message) + (targetCleaned ? "" : $" (objects left on pool {target.Name} are dropped by the next move there)");
        await moves.FailAsync(move.Id, error, AuditActor.Current, CancellationToken.None);
    }

    /// <summary>After the switch: the source copy closed and marked, the move recorded as done with its downtime.</summary>
    private async Task FinishAsync(TenantMove move, Pool source, TenantNames names, double? downtimeMs, int tables, long rows)
    {
        try
        {
            await ddl.CloseSourceCopyAsync(source, names, move.Id, CancellationToken.None);
        }
        catch (Exception e)
        {
            // Its logins stay refused by the freeze; the cleanup closes it before it drops it.
            LogSourceNotClosed(e, move.InstanceId, source.Name);
        }

        await moves.MarkMovedAsync(move.Id, downtimeMs ?? 0, tables, rows, time.GetUtcNow() + allocation.Value.ReleaseRetention, AuditActor.Current,
            CancellationToken.None);
    }

    /// <summary>A move that died mid-way (its host killed, its catalog gone at the switch): finished or rolled back.</summary>
    private async Task RecoverAsync(TenantMove move, TenantNames names, CancellationToken ct)
    {
        var source = await pools.GetAsync(move.SourcePoolId, ct) ?? throw new InvalidOperationException("The interrupted move's source pool is gone.");
        var target = await pools.GetAsync(move.TargetPoolId, ct) ?? throw new InvalidOperationException("The interrupted move's target pool is gone.");
        LogRecovering(move.InstanceId, move.Id, move.Status);
        if (move.Status == TenantMove.Switched)
        {
            await ddl.OpenOnTargetAsync(target, names, move.FrozenLogins, move.SourceOpen, ct);
            await FinishAsync(move, source, names, null, 0, 0);
            return;
        }

        await RollbackAsync(move.InstanceId, move, source, target, names, [], sourceOpen: true,
            new InvalidOperationException("The move was interrupted before its switch; rolled back."));
    }

    /// <summary>Where the row says the tenant is after a lost answer: true on the target, false on the source, null when the catalog does not answer.</summary>
    private async Task<bool?> SwitchedAsync(Guid instanceId, long targetPoolId)
    {
        foreach (var delay in SwitchCheckDelays)
        {
            try
            {
                return (await tenants.FindLiveAsync(instanceId, CancellationToken.None))?.Pool.Id == targetPoolId;
            }
            catch (NpgsqlException)
            {
                await Task.Delay(delay, time);
            }
        }

        return null;
    }

    [LoggerMessage(LogLevel.Information, "Moving instance {InstanceId} from pool {Source} to pool {Target}")]
    private partial void LogStarted(Guid instanceId, string source, string target);

    [LoggerMessage(LogLevel.Information, "Moved instance {InstanceId} from pool {Source} to pool {Target}: downtime {DowntimeMs:0} ms, {Tables} tables, {Rows} rows verified")]
    private partial void LogMoved(Guid instanceId, string source, string target, double downtimeMs, int tables, long rows);

    [LoggerMessage(LogLevel.Warning, "Move of instance {InstanceId} did not happen ({Type}); the tenant is on its source")]
    private partial void LogFailed(Exception e, Guid instanceId, string type);

    [LoggerMessage(LogLevel.Warning, "A failed move of instance {InstanceId} left objects on pool {Pool}; the next move there drops them")]
    private partial void LogTargetNotCleaned(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Error, "A failed move of instance {InstanceId} could not unfreeze it on pool {Pool}; the next move of it rolls back")]
    private partial void LogSourceNotUnfrozen(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "The source copy of moved instance {InstanceId} on pool {Pool} could not be closed; its logins stay refused")]
    private partial void LogSourceNotClosed(Exception e, Guid instanceId, string pool);

    [LoggerMessage(LogLevel.Warning, "Recovering the interrupted move {MoveId} of instance {InstanceId} (status {Status})")]
    private partial void LogRecovering(Guid instanceId, Guid moveId, string status);
}

/// <summary>A move stopped where only a later run can tell how to go on (the catalog or the source gone at the wrong moment).</summary>
public sealed class MoveInterruptedException(string message, Exception inner) : Exception(message, inner);
