using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A warm-stock database of a pool, as the catalog records it.</summary>
public sealed record StockEntry(long PoolId, string Name);

/// <summary>A pool in placement that holds fewer warm-stock databases (ready or being made) than its target.</summary>
public sealed record StockDeficit(Pool Pool, int Missing);

/// <summary>
/// The <c>warm_stock</c> table (DESIGN.md §9). A row names stock that no tenant has claimed; the claim itself is part of the
/// reservation statement (<see cref="Placement"/>), which deletes the row and records its name on the tenant row. Every
/// removal here deletes the row first (so no allocation can claim it any more) and returns what the caller must drop.
/// </summary>
public sealed class WarmStockStore(NpgsqlDataSource catalog)
{
    internal const string Creating = "creating";
    internal const string Ready = "ready";

    /// <summary>The lock space of a pool's stock count (two-key advisory locks; the second key is the pool id).</summary>
    private const int StockLockClass = 0x5753;

    /// <summary>Active shared pools in placement holding fewer than <paramref name="target"/> stock databases, and how many they miss.</summary>
    public async Task<IReadOnlyList<StockDeficit>> ListDeficitsAsync(int target, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT s.*, @target - coalesce(w.n, 0) AS missing
            FROM db_servers s
            LEFT JOIN (SELECT db_server_id, count(*)::int AS n FROM warm_stock GROUP BY db_server_id) w ON w.db_server_id = s.id
            WHERE s.server_type = '{Words.Shared}' AND s.status = '{Words.Active}' AND s.health_status IN ('{Words.Healthy}', '{Words.Unknown}')
              AND coalesce(w.n, 0) < @target
            ORDER BY s.id
            """);
        cmd.Parameters.AddWithValue("target", target);
        var deficits = new List<StockDeficit>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            deficits.Add(new StockDeficit(reader.ToPool(), reader.GetInt32(reader.GetOrdinal("missing"))));
        }

        return deficits;
    }

    /// <summary>
    /// Records up to <paramref name="names"/>.Count new stock rows of the pool as <c>creating</c>, as many as keep it at or under
    /// <paramref name="target"/>, while it is an active shared pool in placement. Serialized per pool, so two replenishers never
    /// overfill it. Returns the names recorded: the caller makes their objects, then calls <see cref="MarkReadyAsync"/>.
    /// </summary>
    public async Task<IReadOnlyList<string>> BeginAsync(long poolId, int target, IReadOnlyList<string> names, CancellationToken ct)
    {
        // Two statements in one implicit transaction: the lock first, so the count the insert reads is taken after it.
        await using var batch = catalog.CreateBatch();
        var lockCommand = new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock(@class, @pool)");
        lockCommand.Parameters.AddWithValue("class", StockLockClass);
        lockCommand.Parameters.AddWithValue("pool", checked((int)poolId));
        var insert = new NpgsqlBatchCommand($"""
            INSERT INTO warm_stock (db_server_id, name, status)
            SELECT s.id, u.name, '{Creating}'
            FROM db_servers s, unnest(@names::text[]) WITH ORDINALITY AS u(name, n)
            WHERE s.id = @pool AND s.server_type = '{Words.Shared}' AND s.status = '{Words.Active}'
              AND s.health_status IN ('{Words.Healthy}', '{Words.Unknown}')
              AND u.n <= @target - (SELECT count(*) FROM warm_stock WHERE db_server_id = @pool)
            RETURNING name
            """);
        insert.Parameters.AddWithValue("names", names.ToArray());
        insert.Parameters.AddWithValue("pool", poolId);
        insert.Parameters.AddWithValue("target", target);
        batch.BatchCommands.Add(lockCommand);
        batch.BatchCommands.Add(insert);
        var recorded = new List<string>();
        await using var reader = await batch.ExecuteReaderAsync(ct);
        await reader.NextResultAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            recorded.Add(reader.GetString(0));
        }

        return recorded;
    }

    /// <summary>
    /// The stock's objects are made: claimable from now on. False when its row is gone (removed by the sweep or a drain) or its
    /// pool left placement meanwhile; the row is then removed and the caller drops the objects.
    /// </summary>
    public async Task<bool> MarkReadyAsync(string name, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH ready AS (
                UPDATE warm_stock w SET status = '{Ready}', ready_at = now()
                FROM db_servers s
                WHERE w.name = @name AND w.status = '{Creating}' AND s.id = w.db_server_id
                  AND s.server_type = '{Words.Shared}' AND s.status IN ('{Words.Active}', '{Words.Full}')
                RETURNING w.id
            ), gone AS (
                DELETE FROM warm_stock WHERE name = @name AND NOT EXISTS (SELECT 1 FROM ready)
            )
            SELECT count(*) FROM ready
            """);
        cmd.Parameters.AddWithValue("name", name);
        return (long)(await cmd.ExecuteScalarAsync(ct))! > 0;
    }

    /// <summary>Removes one stock row, whatever its status (its objects could not be made); true when it was there.</summary>
    public async Task<bool> RemoveAsync(string name, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("DELETE FROM warm_stock WHERE name = @name");
        cmd.Parameters.AddWithValue("name", name);
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    /// <summary>Removes the unclaimed stock of one pool (drain, retire): the rows go first; the caller drops the objects.</summary>
    public async Task<IReadOnlyList<StockEntry>> TakePoolStockAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand("DELETE FROM warm_stock WHERE db_server_id = @pool RETURNING db_server_id, name");
        cmd.Parameters.AddWithValue("pool", poolId);
        return await ReadEntriesAsync(cmd, ct);
    }

    /// <summary>
    /// Removes stock that can no longer be claimed or finished: the stock of pools that left active/full shared service, rows
    /// still <c>creating</c> since before <paramref name="staleBefore"/> (their replenisher stopped mid-way), and ready stock
    /// above <paramref name="target"/> per pool (the target was lowered). The caller drops the objects (a replenisher still at
    /// work finds its row gone and drops its own).
    /// </summary>
    public async Task<IReadOnlyList<StockEntry>> TakeUnusableAsync(DateTimeOffset staleBefore, int target, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH ranked AS (
                SELECT w.id, w.status, s.server_type, s.status AS pool_status, w.created_at,
                       row_number() OVER (PARTITION BY w.db_server_id ORDER BY w.id) AS n
                FROM warm_stock w JOIN db_servers s ON s.id = w.db_server_id
            )
            DELETE FROM warm_stock w USING ranked r
            WHERE r.id = w.id
              AND (r.server_type <> '{Words.Shared}' OR r.pool_status NOT IN ('{Words.Active}', '{Words.Full}')
                   OR (r.status = '{Creating}' AND r.created_at < @stale_before)
                   OR (r.status = '{Ready}' AND r.n > @target))
            RETURNING w.db_server_id, w.name
            """);
        cmd.Parameters.AddWithValue("stale_before", staleBefore);
        cmd.Parameters.AddWithValue("target", target);
        return await ReadEntriesAsync(cmd, ct);
    }

    /// <summary>Shared pools whose servers may hold stock and answer: active, full or draining, not unhealthy, with an endpoint.</summary>
    public async Task<IReadOnlyList<Pool>> ListScannableAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT * FROM db_servers
            WHERE server_type = '{Words.Shared}' AND status IN ('{Words.Active}', '{Words.Full}', '{Words.Draining}')
              AND health_status <> '{Words.Unhealthy}' AND host IS NOT NULL AND port IS NOT NULL
            ORDER BY id
            """);
        var found = new List<Pool>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            found.Add(reader.ToPool());
        }

        return found;
    }

    /// <summary>The ready stock of a pool, by name.</summary>
    public async Task<IReadOnlyList<string>> ListReadyAsync(long poolId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"SELECT name FROM warm_stock WHERE db_server_id = @pool AND status = '{Ready}' ORDER BY id");
        cmd.Parameters.AddWithValue("pool", poolId);
        return (await ReadEntriesAsync(cmd, ct, poolId)).Select(e => e.Name).ToList();
    }

    /// <summary>Removes these rows if they are still ready (unclaimed); returns the names removed.</summary>
    public async Task<IReadOnlyList<string>> RemoveReadyAsync(long poolId, IReadOnlyCollection<string> names, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"DELETE FROM warm_stock WHERE db_server_id = @pool AND name = ANY(@names) AND status = '{Ready}' RETURNING name");
        cmd.Parameters.AddWithValue("pool", poolId);
        cmd.Parameters.AddWithValue("names", names.ToArray());
        return (await ReadEntriesAsync(cmd, ct, poolId)).Select(e => e.Name).ToList();
    }

    /// <summary>
    /// Of these stock names found on a server, the ones something in the catalog still owns: a stock row (any status), or a
    /// tenant row that claimed it and may still hold it under that name (creating, or failed and not yet cleaned up).
    /// </summary>
    public async Task<IReadOnlySet<string>> OwnedAsync(IReadOnlyCollection<string> names, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT name FROM warm_stock WHERE name = ANY(@names)
            UNION
            SELECT stock_name FROM tenant_databases
            WHERE stock_name = ANY(@names) AND (status = '{Words.Creating}' OR (status = '{Words.Failed}' AND cleaned_at IS NULL))
            """);
        cmd.Parameters.AddWithValue("names", names.ToArray());
        var owned = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            owned.Add(reader.GetString(0));
        }

        return owned;
    }

    /// <summary>Ready stock per pool id (pools without stock are absent).</summary>
    public async Task<IReadOnlyDictionary<long, int>> CountReadyAsync(CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"SELECT db_server_id, count(*)::int FROM warm_stock WHERE status = '{Ready}' GROUP BY db_server_id");
        var counts = new Dictionary<long, int>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            counts[reader.GetInt64(0)] = reader.GetInt32(1);
        }

        return counts;
    }

    private static async Task<IReadOnlyList<StockEntry>> ReadEntriesAsync(NpgsqlCommand cmd, CancellationToken ct, long? poolId = null)
    {
        var entries = new List<StockEntry>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            entries.Add(poolId is { } pool ? new StockEntry(pool, reader.GetString(0)) : new StockEntry(reader.GetInt64(0), reader.GetString(1)));
        }

        return entries;
    }
}
