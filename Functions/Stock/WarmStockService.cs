using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Stock;

/// <summary>What one repair pass of the warm stock did.</summary>
public sealed record StockRepair(int Removed, int MissingObjects, int Orphans, int Made);

/// <summary>
/// Keeps every active shared pool in placement stocked with <see cref="PoolsOptions.WarmStock"/> databases made ahead of
/// demand (DESIGN.md §9), never on the request path: the replenisher calls <see cref="ReplenishAsync"/> when an allocation
/// consumed stock and on a timer; the health sweep calls <see cref="RepairAsync"/>. Each stock database is recorded in the
/// catalog before its objects are made and removed from it before they are dropped, so the catalog always knows, or the
/// server holds nothing claimable; stock is only ever this catalog's (marked) and never a tenant's.
/// </summary>
public sealed partial class WarmStockService(
    WarmStockStore store,
    PoolStore pools,
    WarmStockDdl ddl,
    CatalogIdentity identity,
    IOptions<PoolsOptions> poolsOptions,
    TimeProvider time,
    ILogger<WarmStockService> logger)
{
    /// <summary>A stock row still <c>creating</c> after this was abandoned by its replenisher (making one takes well under a second).</summary>
    public static readonly TimeSpan StaleCreatingAfter = TimeSpan.FromMinutes(2);

    private int Target => poolsOptions.Value.WarmStock;

    /// <summary>Fills every active shared pool in placement up to its target now; returns how many stock databases it made.</summary>
    public async Task<int> ReplenishAsync(CancellationToken ct)
    {
        if (Target == 0)
        {
            return 0;
        }

        var made = 0;
        foreach (var deficit in await store.ListDeficitsAsync(Target, ct))
        {
            made += await FillAsync(deficit.Pool, deficit.Missing, ct);
        }

        return made;
    }

    /// <summary>
    /// The sweep's pass: stock that can no longer be claimed or finished is removed (pools out of service, abandoned makes,
    /// stock above the target), ready stock whose objects are missing on its server is removed, stock objects of this catalog
    /// that nothing in it owns are dropped; then the pools are filled again.
    /// </summary>
    public async Task<StockRepair> RepairAsync(CancellationToken ct)
    {
        var removed = 0;
        foreach (var entry in await store.TakeUnusableAsync(time.GetUtcNow() - StaleCreatingAfter, Target, ct))
        {
            removed++;
            if (await pools.GetAsync(entry.PoolId, ct) is { Status: not PoolStatus.Deleted, Host.Length: > 0 } pool)
            {
                await DropQuietlyAsync(pool, entry.Name, ct);
            }
        }

        int missing = 0, orphans = 0;
        foreach (var pool in await store.ListScannableAsync(ct))
        {
            try
            {
                var (gone, dropped) = await ScanAsync(pool, ct);
                missing += gone;
                orphans += dropped;
            }
            catch (Exception e) when (PoolFailures.IsTransient(e))
            {
                LogScanFailed(e, pool.Name);
            }
        }

        var made = await ReplenishAsync(ct);
        if (removed + missing + orphans > 0)
        {
            LogRepaired(removed, missing, orphans, made);
        }

        return new StockRepair(removed, missing, orphans, made);
    }

    /// <summary>Drops the unclaimed stock of a pool leaving service (drain, retire); a server that does not answer keeps it for the sweep's orphan scan.</summary>
    public async Task<int> DropPoolStockAsync(Pool pool, CancellationToken ct)
    {
        var taken = await store.TakePoolStockAsync(pool.Id, ct);
        foreach (var entry in taken)
        {
            await DropQuietlyAsync(pool, entry.Name, ct);
        }

        return taken.Count;
    }

    private async Task<int> FillAsync(Pool pool, int missing, CancellationToken ct)
    {
        var names = Enumerable.Range(0, missing).Select(_ => StockNames.New()).ToList();
        var recorded = await store.BeginAsync(pool.Id, Target, names, ct);
        var catalogId = await identity.GetAsync(ct);
        var made = 0;
        for (var i = 0; i < recorded.Count; i++)
        {
            var name = recorded[i];
            try
            {
                await ddl.CreateAsync(pool, name, catalogId, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Nothing half-made: this one and the rest of this pass leave the catalog, their objects (if any) are dropped.
                LogMakeFailed(e, pool.Name);
                foreach (var left in recorded.Skip(i))
                {
                    await store.RemoveAsync(left, CancellationToken.None);
                    await DropQuietlyAsync(pool, left, CancellationToken.None);
                }

                break;
            }

            if (await store.MarkReadyAsync(name, ct))
            {
                made++;
            }
            else
            {
                // Its row went meanwhile (the pool left service, or the sweep took it for abandoned): the objects go too.
                await DropQuietlyAsync(pool, name, ct);
            }
        }

        return made;
    }

    private async Task<(int Missing, int Orphans)> ScanAsync(Pool pool, CancellationToken ct)
    {
        // Ready rows first, then the server: a row ready before the listing had its objects made before it, so a name
        // missing from the listing is really missing (or claimed and renamed meanwhile: then its row is gone and stays so).
        var ready = await store.ListReadyAsync(pool.Id, ct);
        var onServer = await ddl.ListAsync(pool, await identity.GetAsync(ct), ct);
        var whole = onServer.Where(s => s.HasDatabase && s.HasOwner).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var removed = await store.RemoveReadyAsync(pool.Id, ready.Where(r => !whole.Contains(r)).ToList(), ct);
        foreach (var name in removed)
        {
            LogStockMissing(name, pool.Name);
            await DropQuietlyAsync(pool, name, ct);
        }

        // Then the catalog again: whatever was made after the listing has its row, so an unowned name is a leftover. Only this
        // catalog's stock is ever dropped.
        var unknown = onServer.Where(s => s.Marked && !ready.Contains(s.Name)).Select(s => s.Name).ToList();
        var owned = unknown.Count == 0 ? new HashSet<string>() : await store.OwnedAsync(unknown, ct);
        var orphans = 0;
        foreach (var name in unknown.Where(n => !owned.Contains(n)))
        {
            LogOrphanStock(name, pool.Name);
            await DropQuietlyAsync(pool, name, ct);
            orphans++;
        }

        return (removed.Count, orphans);
    }

    private async Task DropQuietlyAsync(Pool pool, string name, CancellationToken ct)
    {
        try
        {
            await ddl.DropAsync(pool, name, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Not claimable any more (no row); the sweep's orphan scan drops it once the server answers.
            LogDropFailed(e, name, pool.Name);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Making warm stock on pool {Pool} failed; the next pass tries again")]
    private partial void LogMakeFailed(Exception e, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not drop warm stock {Stock} on pool {Pool}; the sweep drops it later")]
    private partial void LogDropFailed(Exception e, string stock, string pool);

    [LoggerMessage(LogLevel.Warning, "Warm stock {Stock} of pool {Pool} is missing on its server; removed from the catalog")]
    private partial void LogStockMissing(string stock, string pool);

    [LoggerMessage(LogLevel.Warning, "Warm stock {Stock} on pool {Pool} is known to nothing in the catalog; dropped")]
    private partial void LogOrphanStock(string stock, string pool);

    [LoggerMessage(LogLevel.Warning, "Could not scan the warm stock of pool {Pool}; the next sweep tries again")]
    private partial void LogScanFailed(Exception e, string pool);

    [LoggerMessage(LogLevel.Information, "Warm stock repaired: {Removed} unusable removed, {Missing} missing on their server, {Orphans} orphans dropped, {Made} made")]
    private partial void LogRepaired(int removed, int missing, int orphans, int made);
}
